//go:build amd64 && !purego

package ggml

//go:generate go run asm_gen.go

import "golang.org/x/sys/cpu"

// haveAVX2 selects the AVX2 kernels; tests switch it off to compare them
// with the pure Go ones.
var haveAVX2 = cpu.X86.HasAVX2

//go:noescape
func dotQ8_0AVX2(nb int, x, y *byte, tab *float32) float32

//go:noescape
func dotQ4_0AVX2(nb int, x, y *byte, tab *float32) float32

//go:noescape
func dotQ8_0AVX2x4(nb int, x, y *byte, ys int, tab *float32, out *float32)

//go:noescape
func dotQ4_0AVX2x4(nb int, x, y *byte, ys int, tab *float32, out *float32)

//go:noescape
func dotQ4KAVX2(nb int, x, y *byte, tab *float32) float32

//go:noescape
func dotQ5KAVX2(nb int, x, y *byte, tab *float32) float32

//go:noescape
func dotQ4KAVX2x4(nb int, x, y *byte, ys int, tab *float32, out *float32)

//go:noescape
func dotQ5KAVX2x4(nb int, x, y *byte, ys int, tab *float32, out *float32)

//go:noescape
func dotQ6KAVX2x4(nb int, x, y *byte, ys int, tab *float32, out *float32)

//go:noescape
func dotQ6KAVX2(nb int, x, y *byte, tab *float32) float32

//go:noescape
func dotQ8_0G(nb int, x, y *byte) float32

//go:noescape
func dotQ4_0G(nb int, x, y *byte) float32

//go:noescape
func dotQ8_0Gx4(nb int, x, y *byte, ys int, out *float32)

//go:noescape
func dotQ4_0Gx4(nb int, x, y *byte, ys int, out *float32)

// haveGrouped selects the grouped Q8_0/Q4_0 kernels (eight blocks per
// iteration, half-precision scales converted with F16C) for rows of at
// least eight blocks; the blocks past the last whole group go through the
// per-block kernels. VecDot and VecDotN split a row the same way, so their
// results stay identical.
var haveGrouped = haveF16C

// haveVNNI selects the variants of the grouped and prepared kernels that
// use AVX-512 VNNI dot products on 256-bit registers; the block sums are
// exact either way, so their results are the same bit for bit.
var haveVNNI = haveGrouped && cpu.X86.HasAVX512VL && cpu.X86.HasAVX512VNNI

//go:noescape
func dotQ8_0GV(nb int, x, y *byte) float32

//go:noescape
func dotQ4_0GV(nb int, x, y *byte) float32

//go:noescape
func dotQ8_0GVx4(nb int, x, y *byte, ys int, out *float32)

//go:noescape
func dotQ4_0GVx4(nb int, x, y *byte, ys int, out *float32)

//go:noescape
func dotQ4_0PV(nb int, x, y *byte, perm *int32) float32

//go:noescape
func dotQ4_0PVx4(nb int, x, y *byte, ys int, perm *int32, out *float32)

func dotQ8_0Fast(nb int, w, a []byte) float32 {
	if !haveAVX2 || nb == 0 {
		return dotQ8_0(nb, w, a)
	}
	w, a = w[:34*nb], a[:34*nb]
	if !haveGrouped || nb < 8 {
		return dotQ8_0AVX2(nb, &w[0], &a[0], &fp16Table[0])
	}
	g := nb / 8
	var s float32
	if haveVNNI {
		s = dotQ8_0GV(g, &w[0], &a[0])
	} else {
		s = dotQ8_0G(g, &w[0], &a[0])
	}
	if m := nb - 8*g; m > 0 {
		s += dotQ8_0AVX2(m, &w[34*8*g], &a[34*8*g], &fp16Table[0])
	}
	return s
}

func dotQ4_0Fast(nb int, w, a []byte) float32 {
	if !haveAVX2 || nb == 0 {
		return dotQ4_0(nb, w, a)
	}
	w, a = w[:18*nb], a[:34*nb]
	if !haveGrouped || nb < 8 {
		return dotQ4_0AVX2(nb, &w[0], &a[0], &fp16Table[0])
	}
	g := nb / 8
	var s float32
	if haveVNNI {
		s = dotQ4_0GV(g, &w[0], &a[0])
	} else {
		s = dotQ4_0G(g, &w[0], &a[0])
	}
	if m := nb - 8*g; m > 0 {
		s += dotQ4_0AVX2(m, &w[18*8*g], &a[34*8*g], &fp16Table[0])
	}
	return s
}

// dotQ0x4 computes four rows of a Q8_0 or Q4_0 VecDotN (AVX2) the way
// dotQ8_0Fast and dotQ4_0Fast compute one.
func dotQ0x4(t Type, nb int, w, y []byte, ys int, o *[4]float32) {
	xb := 34
	if t == Q4_0 {
		xb = 18
	}
	g := 0
	if haveGrouped && nb >= 8 {
		g = nb / 8
		switch {
		case t == Q8_0 && haveVNNI:
			dotQ8_0GVx4(g, &w[0], &y[0], ys, &o[0])
		case t == Q8_0:
			dotQ8_0Gx4(g, &w[0], &y[0], ys, &o[0])
		case haveVNNI:
			dotQ4_0GVx4(g, &w[0], &y[0], ys, &o[0])
		default:
			dotQ4_0Gx4(g, &w[0], &y[0], ys, &o[0])
		}
	}
	m := nb - 8*g
	if m == 0 {
		return
	}
	var tail [4]float32
	if t == Q8_0 {
		dotQ8_0AVX2x4(m, &w[xb*8*g], &y[34*8*g], ys, &fp16Table[0], &tail[0])
	} else {
		dotQ4_0AVX2x4(m, &w[xb*8*g], &y[34*8*g], ys, &fp16Table[0], &tail[0])
	}
	if g == 0 {
		*o = tail
		return
	}
	for k := range o {
		o[k] += tail[k]
	}
}

// kChunk is the number of super-blocks whose scales are decoded per
// kernel call.
const kChunk = 16

func dotQ4KFast(nb int, w, a []byte) float32 {
	if !haveAVX2 || nb == 0 {
		return dotQ4K(nb, w, a)
	}
	w, a = w[:q4KBytes*nb], a[:q8KBytes*nb]
	return dotQ4KAVX2(nb, &w[0], &a[0], &fp16Table[0])
}

func dotQ5KFast(nb int, w, a []byte) float32 {
	if !haveAVX2 || nb == 0 {
		return dotQ5K(nb, w, a)
	}
	w, a = w[:q5KBytes*nb], a[:q8KBytes*nb]
	return dotQ5KAVX2(nb, &w[0], &a[0], &fp16Table[0])
}

func dotQ6KFast(nb int, w, a []byte) float32 {
	if !haveAVX2 || nb == 0 {
		return dotQ6K(nb, w, a)
	}
	w, a = w[:q6KBytes*nb], a[:q8KBytes*nb]
	return dotQ6KAVX2(nb, &w[0], &a[0], &fp16Table[0])
}

// vecDotMulti computes as many of VecDotN's results as it has a multi-row
// kernel for (groups of four), returning how many it did. The caller has
// validated the sizes.
func vecDotMulti(t Type, n int, w, a []byte, aStride int, out []float32) int {
	var bs int
	switch t {
	case Q4_K, Q5_K, Q6_K:
		bs = QKK
	case Q8_0, Q4_0:
		bs = QK
	default:
		return 0
	}
	if !haveAVX2 || n < bs {
		return 0
	}
	nb := n / bs
	yb := nb * VecDotType(t).BlockBytes()
	done := 0
	for ; done+4 <= len(out); done += 4 {
		y := a[done*aStride : (done+3)*aStride+yb]
		o := (*[4]float32)(out[done:])
		// Direct calls: a func value would make y and o escape.
		switch t {
		case Q4_K:
			dotQ4KAVX2x4(nb, &w[0], &y[0], aStride, &fp16Table[0], &o[0])
		case Q5_K:
			dotQ5KAVX2x4(nb, &w[0], &y[0], aStride, &fp16Table[0], &o[0])
		case Q6_K:
			dotQ6KAVX2x4(nb, &w[0], &y[0], aStride, &fp16Table[0], &o[0])
		case Q8_0, Q4_0:
			dotQ0x4(t, nb, w, y, aStride, o)
		}
	}
	return done
}

// havePrepared selects the Q4_0 kernel against prepared activations.
var havePrepared = haveGrouped

//go:noescape
func dotQ4_0P(nb int, x, y *byte, perm *int32) float32

//go:noescape
func dotQ4_0Px4(nb int, x, y *byte, ys int, perm *int32, out *float32)

// dotQ4_0Prep and dotQ4_0Prepx4 run the prepared Q4_0 kernels.
func dotQ4_0Prep(ng int, w, p *byte) float32 {
	if haveVNNI {
		return dotQ4_0PV(ng, w, p, &q40pPerm[0])
	}
	return dotQ4_0P(ng, w, p, &q40pPerm[0])
}

func dotQ4_0Prepx4(ng int, w, p *byte, ps int, out *float32) {
	if haveVNNI {
		dotQ4_0PVx4(ng, w, p, ps, &q40pPerm[0], out)
		return
	}
	dotQ4_0Px4(ng, w, p, ps, &q40pPerm[0], out)
}

// havePrepared8 selects the Q8_0 kernels against prepared activations.
var havePrepared8 = haveVNNI

//go:noescape
func dotQ8_0U(nb int, x, y *byte) float32

//go:noescape
func dotQ8_0Ux4(nb int, x, y *byte, ys int, out *float32)
