//go:build amd64 && !purego

package ggml

import "golang.org/x/sys/cpu"

// haveR16Q and haveR16F select the R16 assembly kernels; tests switch them
// off to compare them with the pure Go ones.
var (
	haveR16Q = haveVNNI && cpu.X86.HasAVX512F && cpu.X86.HasAVX512BW
	haveR16F = haveF16C && cpu.X86.HasAVX512F
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

func gemmR16Q(t Type, nb int, w, a []byte, astride, ntok int, out []float32, ostride int) {
	if !haveR16Q {
		gemmR16QGo(t, nb, w, a, astride, ntok, out, ostride)
		return
	}
	switch t {
	case Q4_0:
		r16Q4(ntok, nb, &w[0], &a[0], astride, &out[0], 4*ostride)
		return
	case Q4_K:
		r16Q4K(ntok, nb, &w[0], &a[0], astride, &out[0], 4*ostride)
		return
	case Q5_K:
		r16Q5K(ntok, nb, &w[0], &a[0], astride, &out[0], 4*ostride)
		return
	case Q6_K:
		r16Q6K(ntok, nb, &w[0], &a[0], astride, &out[0], 4*ostride)
		return
	}
	r16Q8(ntok, nb, &w[0], &a[0], astride, &out[0], 4*ostride)
}

func r16Q8(ntok, nb int, w, a *byte, as int, out *float32, os int) {
	switch ntok {
	case 1:
		gemmR16Q8x1(nb, w, a, as, out, os)
	case 2:
		gemmR16Q8x2(nb, w, a, as, out, os)
	case 3:
		gemmR16Q8x3(nb, w, a, as, out, os)
	case 4:
		gemmR16Q8x4(nb, w, a, as, out, os)
	case 5:
		gemmR16Q8x5(nb, w, a, as, out, os)
	case 6:
		gemmR16Q8x6(nb, w, a, as, out, os)
	case 7:
		gemmR16Q8x7(nb, w, a, as, out, os)
	case 8:
		gemmR16Q8x8(nb, w, a, as, out, os)
	}
}

func r16Q4(ntok, nb int, w, a *byte, as int, out *float32, os int) {
	switch ntok {
	case 1:
		gemmR16Q4x1(nb, w, a, as, out, os)
	case 2:
		gemmR16Q4x2(nb, w, a, as, out, os)
	case 3:
		gemmR16Q4x3(nb, w, a, as, out, os)
	case 4:
		gemmR16Q4x4(nb, w, a, as, out, os)
	case 5:
		gemmR16Q4x5(nb, w, a, as, out, os)
	case 6:
		gemmR16Q4x6(nb, w, a, as, out, os)
	case 7:
		gemmR16Q4x7(nb, w, a, as, out, os)
	case 8:
		gemmR16Q4x8(nb, w, a, as, out, os)
	}
}

func r16Q4K(ntok, nb int, w, a *byte, as int, out *float32, os int) {
	switch ntok {
	case 1:
		gemmR16Q4Kx1(nb, w, a, as, out, os)
	case 2:
		gemmR16Q4Kx2(nb, w, a, as, out, os)
	case 3:
		gemmR16Q4Kx3(nb, w, a, as, out, os)
	case 4:
		gemmR16Q4Kx4(nb, w, a, as, out, os)
	case 5:
		gemmR16Q4Kx5(nb, w, a, as, out, os)
	case 6:
		gemmR16Q4Kx6(nb, w, a, as, out, os)
	case 7:
		gemmR16Q4Kx7(nb, w, a, as, out, os)
	case 8:
		gemmR16Q4Kx8(nb, w, a, as, out, os)
	}
}

func r16Q6K(ntok, nb int, w, a *byte, as int, out *float32, os int) {
	switch ntok {
	case 1:
		gemmR16Q6Kx1(nb, w, a, as, out, os)
	case 2:
		gemmR16Q6Kx2(nb, w, a, as, out, os)
	case 3:
		gemmR16Q6Kx3(nb, w, a, as, out, os)
	case 4:
		gemmR16Q6Kx4(nb, w, a, as, out, os)
	case 5:
		gemmR16Q6Kx5(nb, w, a, as, out, os)
	case 6:
		gemmR16Q6Kx6(nb, w, a, as, out, os)
	case 7:
		gemmR16Q6Kx7(nb, w, a, as, out, os)
	case 8:
		gemmR16Q6Kx8(nb, w, a, as, out, os)
	}
}

func gemmR16Float(t Type, cols int, w []byte, x []float32, xstride, ntok int, out []float32, ostride int) {
	if !haveR16F {
		gemmR16FloatGo(t, cols, w, x, xstride, ntok, out, ostride)
		return
	}
	if t == BF16 {
		r16BF16(ntok, cols, &w[0], &x[0], 4*xstride, &out[0], 4*ostride)
		return
	}
	r16F16(ntok, cols, &w[0], &x[0], 4*xstride, &out[0], 4*ostride)
}

func r16F16(ntok, k int, w *byte, a *float32, as int, out *float32, os int) {
	switch ntok {
	case 1:
		gemmR16F16x1(k, w, a, as, out, os)
	case 2:
		gemmR16F16x2(k, w, a, as, out, os)
	case 3:
		gemmR16F16x3(k, w, a, as, out, os)
	case 4:
		gemmR16F16x4(k, w, a, as, out, os)
	case 5:
		gemmR16F16x5(k, w, a, as, out, os)
	case 6:
		gemmR16F16x6(k, w, a, as, out, os)
	case 7:
		gemmR16F16x7(k, w, a, as, out, os)
	case 8:
		gemmR16F16x8(k, w, a, as, out, os)
	}
}

func r16BF16(ntok, k int, w *byte, a *float32, as int, out *float32, os int) {
	switch ntok {
	case 1:
		gemmR16BF16x1(k, w, a, as, out, os)
	case 2:
		gemmR16BF16x2(k, w, a, as, out, os)
	case 3:
		gemmR16BF16x3(k, w, a, as, out, os)
	case 4:
		gemmR16BF16x4(k, w, a, as, out, os)
	case 5:
		gemmR16BF16x5(k, w, a, as, out, os)
	case 6:
		gemmR16BF16x6(k, w, a, as, out, os)
	case 7:
		gemmR16BF16x7(k, w, a, as, out, os)
	case 8:
		gemmR16BF16x8(k, w, a, as, out, os)
	}
}

func r16Q5K(ntok, nb int, w, a *byte, as int, out *float32, os int) {
	switch ntok {
	case 1:
		gemmR16Q5Kx1(nb, w, a, as, out, os)
	case 2:
		gemmR16Q5Kx2(nb, w, a, as, out, os)
	case 3:
		gemmR16Q5Kx3(nb, w, a, as, out, os)
	case 4:
		gemmR16Q5Kx4(nb, w, a, as, out, os)
	case 5:
		gemmR16Q5Kx5(nb, w, a, as, out, os)
	case 6:
		gemmR16Q5Kx6(nb, w, a, as, out, os)
	case 7:
		gemmR16Q5Kx7(nb, w, a, as, out, os)
	case 8:
		gemmR16Q5Kx8(nb, w, a, as, out, os)
	}
}
