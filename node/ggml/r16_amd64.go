//go:build amd64 && !purego

package ggml

import "golang.org/x/sys/cpu"

// haveR16Q and haveR16F select the R16 assembly kernels; tests switch them
// off to compare them with the pure Go ones.
var (
	haveR16Q  = haveVNNI && cpu.X86.HasAVX512F && cpu.X86.HasAVX512BW
	haveR16F  = haveF16C && cpu.X86.HasAVX512F
	haveR16F2 = haveF16C // the AVX2 (FMA, F16C) float kernels
	// useR16Pairs selects the AVX-512 float kernels that take two groups
	// at once (tests switch it off to compare them with the one-group ones)
	useR16Pairs = true
	// BF16 weights against bfloat16 activations (VDPBF16PS)
	haveR16BF16DP = haveR16F && cpu.X86.HasAVX512BF16
)

//go:noescape
func gemmR16Q8x1(nb int, w *byte, a *byte, as int, out *float32, os int)

//go:noescape
func gemmR16Q8x2(nb int, w *byte, a *byte, as int, out *float32, os int)

//go:noescape
func gemmR16Q8x3(nb int, w *byte, a *byte, as int, out *float32, os int)

//go:noescape
func gemmR16Q8x4(nb int, w *byte, a *byte, as int, out *float32, os int)

//go:noescape
func gemmR16Q8x5(nb int, w *byte, a *byte, as int, out *float32, os int)

//go:noescape
func gemmR16Q8x6(nb int, w *byte, a *byte, as int, out *float32, os int)

//go:noescape
func gemmR16Q8x7(nb int, w *byte, a *byte, as int, out *float32, os int)

//go:noescape
func gemmR16Q8x8(nb int, w *byte, a *byte, as int, out *float32, os int)

//go:noescape
func gemmR16Q4x1(nb int, w *byte, a *byte, as int, out *float32, os int)

//go:noescape
func gemmR16Q4x2(nb int, w *byte, a *byte, as int, out *float32, os int)

//go:noescape
func gemmR16Q4x3(nb int, w *byte, a *byte, as int, out *float32, os int)

//go:noescape
func gemmR16Q4x4(nb int, w *byte, a *byte, as int, out *float32, os int)

//go:noescape
func gemmR16Q4x5(nb int, w *byte, a *byte, as int, out *float32, os int)

//go:noescape
func gemmR16Q4x6(nb int, w *byte, a *byte, as int, out *float32, os int)

//go:noescape
func gemmR16Q4x7(nb int, w *byte, a *byte, as int, out *float32, os int)

//go:noescape
func gemmR16Q4x8(nb int, w *byte, a *byte, as int, out *float32, os int)

//go:noescape
func gemmR16F16x1(k int, w *byte, a *float32, as int, out *float32, os int)

//go:noescape
func gemmR16F16x2(k int, w *byte, a *float32, as int, out *float32, os int)

//go:noescape
func gemmR16F16x3(k int, w *byte, a *float32, as int, out *float32, os int)

//go:noescape
func gemmR16F16x4(k int, w *byte, a *float32, as int, out *float32, os int)

//go:noescape
func gemmR16F16x5(k int, w *byte, a *float32, as int, out *float32, os int)

//go:noescape
func gemmR16F16x6(k int, w *byte, a *float32, as int, out *float32, os int)

//go:noescape
func gemmR16F16x7(k int, w *byte, a *float32, as int, out *float32, os int)

//go:noescape
func gemmR16F16x8(k int, w *byte, a *float32, as int, out *float32, os int)

//go:noescape
func gemmR16Q4Kx1(nb int, w *byte, a *byte, as int, out *float32, os int)

//go:noescape
func gemmR16Q4Kx2(nb int, w *byte, a *byte, as int, out *float32, os int)

//go:noescape
func gemmR16Q4Kx3(nb int, w *byte, a *byte, as int, out *float32, os int)

//go:noescape
func gemmR16Q4Kx4(nb int, w *byte, a *byte, as int, out *float32, os int)

//go:noescape
func gemmR16Q4Kx5(nb int, w *byte, a *byte, as int, out *float32, os int)

//go:noescape
func gemmR16Q4Kx6(nb int, w *byte, a *byte, as int, out *float32, os int)

//go:noescape
func gemmR16Q4Kx7(nb int, w *byte, a *byte, as int, out *float32, os int)

//go:noescape
func gemmR16Q4Kx8(nb int, w *byte, a *byte, as int, out *float32, os int)

//go:noescape
func quantR16Q8(nb int, x *float32, out *byte)

func quantizeR16(nb int, src []float32, dst []byte) {
	if !haveR16Q {
		quantizeR16Go(nb, src, dst)
		return
	}
	quantR16Q8(nb, &src[0], &dst[0])
}

//go:noescape
func quantR16K(nb int, x *float32, out *byte)

func quantizeR16K(nb int, src []float32, dst []byte) {
	if !haveR16Q {
		quantizeR16KGo(nb, src, dst)
		return
	}
	quantR16K(nb, &src[0], &dst[0])
}

//go:noescape
func roundHalfF16C(n int, dst, src *float32)

func roundHalf(dst, src []float32) {
	m := len(src) &^ 7
	if haveF16C && m > 0 {
		roundHalfF16C(m, &dst[0], &src[0])
	}
	roundHalfGo(dst[m:], src[m:])
}

//go:noescape
func gemmR16Q6Kx1(nb int, w *byte, a *byte, as int, out *float32, os int)

//go:noescape
func gemmR16Q6Kx2(nb int, w *byte, a *byte, as int, out *float32, os int)

//go:noescape
func gemmR16Q6Kx3(nb int, w *byte, a *byte, as int, out *float32, os int)

//go:noescape
func gemmR16Q6Kx4(nb int, w *byte, a *byte, as int, out *float32, os int)

//go:noescape
func gemmR16Q6Kx5(nb int, w *byte, a *byte, as int, out *float32, os int)

//go:noescape
func gemmR16Q6Kx6(nb int, w *byte, a *byte, as int, out *float32, os int)

//go:noescape
func gemmR16Q6Kx7(nb int, w *byte, a *byte, as int, out *float32, os int)

//go:noescape
func gemmR16Q6Kx8(nb int, w *byte, a *byte, as int, out *float32, os int)

//go:noescape
func gemmR16Q6Kx16(nb int, w *byte, a *byte, as int, out *float32, os int)

//go:noescape
func gemmR16BF16x1(k int, w *byte, a *float32, as int, out *float32, os int)

//go:noescape
func gemmR16BF16x2(k int, w *byte, a *float32, as int, out *float32, os int)

//go:noescape
func gemmR16BF16x3(k int, w *byte, a *float32, as int, out *float32, os int)

//go:noescape
func gemmR16BF16x4(k int, w *byte, a *float32, as int, out *float32, os int)

//go:noescape
func gemmR16BF16x5(k int, w *byte, a *float32, as int, out *float32, os int)

//go:noescape
func gemmR16BF16x6(k int, w *byte, a *float32, as int, out *float32, os int)

//go:noescape
func gemmR16BF16x7(k int, w *byte, a *float32, as int, out *float32, os int)

//go:noescape
func gemmR16BF16x8(k int, w *byte, a *float32, as int, out *float32, os int)

//go:noescape
func gemmR16Q5Kx1(nb int, w *byte, a *byte, as int, out *float32, os int)

//go:noescape
func gemmR16Q5Kx2(nb int, w *byte, a *byte, as int, out *float32, os int)

//go:noescape
func gemmR16Q5Kx3(nb int, w *byte, a *byte, as int, out *float32, os int)

//go:noescape
func gemmR16Q5Kx4(nb int, w *byte, a *byte, as int, out *float32, os int)

//go:noescape
func gemmR16Q5Kx5(nb int, w *byte, a *byte, as int, out *float32, os int)

//go:noescape
func gemmR16Q5Kx6(nb int, w *byte, a *byte, as int, out *float32, os int)

//go:noescape
func gemmR16Q5Kx7(nb int, w *byte, a *byte, as int, out *float32, os int)

//go:noescape
func gemmR16Q5Kx8(nb int, w *byte, a *byte, as int, out *float32, os int)

//go:noescape
func gemmR16Q5Kx16(nb int, w *byte, a *byte, as int, out *float32, os int)

//go:noescape
func gemmR16F16y1(k int, w *byte, a *float32, as int, out *float32, os int)

//go:noescape
func gemmR16BF16y1(k int, w *byte, a *float32, as int, out *float32, os int)

//go:noescape
func gemmR16F16y2(k int, w *byte, a *float32, as int, out *float32, os int)

//go:noescape
func gemmR16BF16y2(k int, w *byte, a *float32, as int, out *float32, os int)

//go:noescape
func gemmR16F16y3(k int, w *byte, a *float32, as int, out *float32, os int)

//go:noescape
func gemmR16BF16y3(k int, w *byte, a *float32, as int, out *float32, os int)

//go:noescape
func gemmR16F16y4(k int, w *byte, a *float32, as int, out *float32, os int)

//go:noescape
func gemmR16BF16y4(k int, w *byte, a *float32, as int, out *float32, os int)

//go:noescape
func gemmR16F16z1(k int, w *byte, a *float32, as int, out *float32, os int, gb int)

//go:noescape
func gemmR16F16z2(k int, w *byte, a *float32, as int, out *float32, os int, gb int)

//go:noescape
func gemmR16F16z3(k int, w *byte, a *float32, as int, out *float32, os int, gb int)

//go:noescape
func gemmR16F16z4(k int, w *byte, a *float32, as int, out *float32, os int, gb int)

//go:noescape
func gemmR16F16z5(k int, w *byte, a *float32, as int, out *float32, os int, gb int)

//go:noescape
func gemmR16F16z6(k int, w *byte, a *float32, as int, out *float32, os int, gb int)

//go:noescape
func gemmR16F16z7(k int, w *byte, a *float32, as int, out *float32, os int, gb int)

//go:noescape
func gemmR16F16z8(k int, w *byte, a *float32, as int, out *float32, os int, gb int)

//go:noescape
func gemmR16BF16z1(k int, w *byte, a *float32, as int, out *float32, os int, gb int)

//go:noescape
func gemmR16BF16z2(k int, w *byte, a *float32, as int, out *float32, os int, gb int)

//go:noescape
func gemmR16BF16z3(k int, w *byte, a *float32, as int, out *float32, os int, gb int)

//go:noescape
func gemmR16BF16z4(k int, w *byte, a *float32, as int, out *float32, os int, gb int)

//go:noescape
func gemmR16BF16z5(k int, w *byte, a *float32, as int, out *float32, os int, gb int)

//go:noescape
func gemmR16BF16z6(k int, w *byte, a *float32, as int, out *float32, os int, gb int)

//go:noescape
func gemmR16BF16z7(k int, w *byte, a *float32, as int, out *float32, os int, gb int)

//go:noescape
func gemmR16BF16z8(k int, w *byte, a *float32, as int, out *float32, os int, gb int)

//go:noescape
func gemmR16BF16dp1(k int, w *byte, a *byte, as int, out *float32, os int)

//go:noescape
func gemmR16BF16dp2(k int, w *byte, a *byte, as int, out *float32, os int)

//go:noescape
func gemmR16BF16dp3(k int, w *byte, a *byte, as int, out *float32, os int)

//go:noescape
func gemmR16BF16dp4(k int, w *byte, a *byte, as int, out *float32, os int)

//go:noescape
func gemmR16BF16dp5(k int, w *byte, a *byte, as int, out *float32, os int)

//go:noescape
func gemmR16BF16dp6(k int, w *byte, a *byte, as int, out *float32, os int)

//go:noescape
func gemmR16BF16dp7(k int, w *byte, a *byte, as int, out *float32, os int)

//go:noescape
func gemmR16BF16dp8(k int, w *byte, a *byte, as int, out *float32, os int)

//go:noescape
func gemmR16BF16dq6(k int, w *byte, a *byte, as int, out *float32, os int, gb int)

//go:noescape
func gemmR16BF16dq7(k int, w *byte, a *byte, as int, out *float32, os int, gb int)

//go:noescape
func gemmR16BF16dq8(k int, w *byte, a *byte, as int, out *float32, os int, gb int)

//go:noescape
func cvtBF16(n int, dst *byte, src *float32)

func roundBF16(dst []byte, src []float32) {
	m := len(src) &^ 31
	if haveR16BF16DP && m > 0 {
		cvtBF16(m, &dst[0], &src[0])
	}
	roundBF16Go(dst[2*m:], src[m:])
}

// gemmR16BF16DP2 is gemmR16BF16DP for two groups gb bytes apart, the
// second's results 16 floats after the first's; it reports false, doing
// nothing, where it has no kernel (below six tokens the one-group kernels,
// with several partial sums per token, hide the latency better).
func gemmR16BF16DP2(cols int, w []byte, gb int, a []byte, astride, ntok int, out []float32, ostride int) bool {
	if !haveR16BF16DP || !useR16Pairs || ntok < 6 {
		return false
	}
	[3]func(k int, w *byte, a *byte, as int, out *float32, os int, gb int){
		gemmR16BF16dq6, gemmR16BF16dq7, gemmR16BF16dq8}[ntok-6](cols, &w[0], &a[0], astride, &out[0], 4*ostride, gb)
	return true
}

func gemmR16BF16DP(cols int, w, a []byte, astride, ntok int, out []float32, ostride int) {
	if !haveR16BF16DP {
		gemmR16BF16DPGo(cols, w, a, astride, ntok, out, ostride)
		return
	}
	r16BFDP[ntok-1](cols, &w[0], &a[0], astride, &out[0], 4*ostride)
}

// The kernels by tile size (tokens-1).
type (
	r16QKernel  func(nb int, w, a *byte, as int, out *float32, os int)
	r16FKernel  func(k int, w *byte, a *float32, as int, out *float32, os int)
	r16FKernel2 func(k int, w *byte, a *float32, as int, out *float32, os int, gb int)
)

// gemmR16Float2 multiplies two consecutive groups (gb bytes apart) with
// the tokens, the second group's results 16 floats after the first's.
// It reports false, doing nothing, where those kernels do not run: they
// need AVX-512, and below four tokens the one-group kernels, which keep
// several partial sums per token, hide the latency of the multiply-adds
// better.
func gemmR16Float2(t Type, cols int, w []byte, gb int, x []float32, xstride, ntok int, out []float32, ostride int) bool {
	if !haveR16F || !useR16Pairs || ntok < 4 {
		return false
	}
	k := &r16F16Z
	if t == BF16 {
		k = &r16BFZ
	}
	k[ntok-1](cols, &w[0], &x[0], 4*xstride, &out[0], 4*ostride, gb)
	return true
}

var (
	r16Q8   = [8]r16QKernel{gemmR16Q8x1, gemmR16Q8x2, gemmR16Q8x3, gemmR16Q8x4, gemmR16Q8x5, gemmR16Q8x6, gemmR16Q8x7, gemmR16Q8x8}
	r16Q4   = [8]r16QKernel{gemmR16Q4x1, gemmR16Q4x2, gemmR16Q4x3, gemmR16Q4x4, gemmR16Q4x5, gemmR16Q4x6, gemmR16Q4x7, gemmR16Q4x8}
	r16Q4K  = [8]r16QKernel{gemmR16Q4Kx1, gemmR16Q4Kx2, gemmR16Q4Kx3, gemmR16Q4Kx4, gemmR16Q4Kx5, gemmR16Q4Kx6, gemmR16Q4Kx7, gemmR16Q4Kx8}
	r16Q5K  = [8]r16QKernel{gemmR16Q5Kx1, gemmR16Q5Kx2, gemmR16Q5Kx3, gemmR16Q5Kx4, gemmR16Q5Kx5, gemmR16Q5Kx6, gemmR16Q5Kx7, gemmR16Q5Kx8}
	r16Q6K  = [8]r16QKernel{gemmR16Q6Kx1, gemmR16Q6Kx2, gemmR16Q6Kx3, gemmR16Q6Kx4, gemmR16Q6Kx5, gemmR16Q6Kx6, gemmR16Q6Kx7, gemmR16Q6Kx8}
	r16F16  = [8]r16FKernel{gemmR16F16x1, gemmR16F16x2, gemmR16F16x3, gemmR16F16x4, gemmR16F16x5, gemmR16F16x6, gemmR16F16x7, gemmR16F16x8}
	r16BF   = [8]r16FKernel{gemmR16BF16x1, gemmR16BF16x2, gemmR16BF16x3, gemmR16BF16x4, gemmR16BF16x5, gemmR16BF16x6, gemmR16BF16x7, gemmR16BF16x8}
	r16F16Y = [4]r16FKernel{gemmR16F16y1, gemmR16F16y2, gemmR16F16y3, gemmR16F16y4}
	r16BFY  = [4]r16FKernel{gemmR16BF16y1, gemmR16BF16y2, gemmR16BF16y3, gemmR16BF16y4}
	r16F16Z = [8]r16FKernel2{gemmR16F16z1, gemmR16F16z2, gemmR16F16z3, gemmR16F16z4, gemmR16F16z5, gemmR16F16z6, gemmR16F16z7, gemmR16F16z8}
	r16BFDP = [8]r16QKernel{gemmR16BF16dp1, gemmR16BF16dp2, gemmR16BF16dp3, gemmR16BF16dp4, gemmR16BF16dp5, gemmR16BF16dp6, gemmR16BF16dp7, gemmR16BF16dp8}
	r16BFZ  = [8]r16FKernel2{gemmR16BF16z1, gemmR16BF16z2, gemmR16BF16z3, gemmR16BF16z4, gemmR16BF16z5, gemmR16BF16z6, gemmR16BF16z7, gemmR16BF16z8}
)

func gemmR16Q(t Type, nb int, w, a []byte, astride, ntok int, out []float32, ostride int) {
	if !haveR16Q {
		gemmR16QGo(t, nb, w, a, astride, ntok, out, ostride)
		return
	}
	if ntok == r16WideTokens {
		if k := r16WideKernel(t); k != nil {
			k(nb, &w[0], &a[0], astride, &out[0], 4*ostride)
			return
		}
	}
	k := &r16Q8
	switch t {
	case Q4_0:
		k = &r16Q4
	case Q4_K:
		k = &r16Q4K
	case Q5_K:
		k = &r16Q5K
	case Q6_K:
		k = &r16Q6K
	}
	k[ntok-1](nb, &w[0], &a[0], astride, &out[0], 4*ostride)
}

// hasR16Wide reports whether t has a kernel for r16WideTokens tokens.
func hasR16Wide(t Type) bool { return r16WideKernel(t) != nil }

// r16WideKernel is t's kernel for r16WideTokens tokens at once, or nil:
// Q5_K and Q6_K, whose weights take the most work to unpack, have one
// (+7-13% in BenchmarkGemmR16Q against two passes of eight).
func r16WideKernel(t Type) r16QKernel {
	if !haveR16Q {
		return nil
	}
	switch t {
	case Q5_K:
		return gemmR16Q5Kx16
	case Q6_K:
		return gemmR16Q6Kx16
	}
	return nil
}

func gemmR16Float(t Type, cols int, w []byte, x []float32, xstride, ntok int, out []float32, ostride int) {
	switch {
	case haveR16F:
		k := &r16F16
		if t == BF16 {
			k = &r16BF
		}
		k[ntok-1](cols, &w[0], &x[0], 4*xstride, &out[0], 4*ostride)
	case haveR16F2:
		k := &r16F16Y
		if t == BF16 {
			k = &r16BFY
		}
		for t0 := 0; t0 < ntok; t0 += 4 { // tiles of up to four tokens
			nt := min(4, ntok-t0)
			k[nt-1](cols, &w[0], &x[t0*xstride], 4*xstride, &out[t0*ostride], 4*ostride)
		}
	default:
		gemmR16FloatGo(t, cols, w, x, xstride, ntok, out, ostride)
	}
}
