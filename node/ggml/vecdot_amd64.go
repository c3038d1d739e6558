//go:build amd64 && !purego

package ggml

import "golang.org/x/sys/cpu"

// haveAVX2 selects the AVX2 kernels; tests switch it off to compare them
// with the pure Go ones.
var haveAVX2 = cpu.X86.HasAVX2

//go:noescape
func dotQ8_0AVX2(nb int, x, y *byte, tab *float32) float32

//go:noescape
func dotQ4_0AVX2(nb int, x, y *byte, tab *float32) float32

//go:noescape
func dotQ4KAVX2(nb int, x, y *byte, sc *int16, d *float32) float32

//go:noescape
func dotQ5KAVX2(nb int, x, y *byte, sc *int16, d *float32) float32

//go:noescape
func dotQ6KAVX2(nb int, x, y *byte, sc *int16, d *float32) float32

func dotQ8_0Fast(nb int, w, a []byte) float32 {
	if !haveAVX2 || nb == 0 {
		return dotQ8_0(nb, w, a)
	}
	w, a = w[:34*nb], a[:34*nb]
	return dotQ8_0AVX2(nb, &w[0], &a[0], &fp16Table[0])
}

func dotQ4_0Fast(nb int, w, a []byte) float32 {
	if !haveAVX2 || nb == 0 {
		return dotQ4_0(nb, w, a)
	}
	w, a = w[:18*nb], a[:34*nb]
	return dotQ4_0AVX2(nb, &w[0], &a[0], &fp16Table[0])
}

// kChunk is the number of super-blocks whose scales are decoded per
// kernel call.
const kChunk = 16

func dotQ4KFast(nb int, w, a []byte) float32 {
	if !haveAVX2 || nb == 0 {
		return dotQ4K(nb, w, a)
	}
	return dotK4Fast(nb, w[:q4KBytes*nb], a[:q8KBytes*nb], q4KBytes)
}

func dotQ5KFast(nb int, w, a []byte) float32 {
	if !haveAVX2 || nb == 0 {
		return dotQ5K(nb, w, a)
	}
	return dotK4Fast(nb, w[:q5KBytes*nb], a[:q8KBytes*nb], q5KBytes)
}

// dotK4Fast runs a Q4_K/Q5_K kernel: the 6-bit scales are decoded here,
// the mins' contribution (mins · bsums) is subtracted here, and the
// kernel sums scale · Σ q·y per block.
func dotK4Fast(nb int, w, a []byte, bb int) float32 {
	var (
		sc  [8 * kChunk]int16
		ds  [kChunk]float32
		sum float32
	)
	for b0 := 0; b0 < nb; b0 += kChunk {
		m := min(kChunk, nb-b0)
		for i := range m {
			x := w[bb*(b0+i) : bb*(b0+i)+16]
			y := (*[q8KBytes]byte)(a[q8KBytes*(b0+i):])
			s, mn := unpackK4((*[12]byte)(x[4:16]))
			var summs int32
			for j := range 8 {
				summs += mn[j] * (q8KBsum(y, 2*j) + q8KBsum(y, 2*j+1))
				sc[8*i+j] = int16(s[j])
			}
			yd := f32At(y[0:])
			ds[i] = fp16At(x[0:]) * yd
			sum -= fp16At(x[2:]) * yd * float32(summs)
		}
		// Direct calls (not through a func value) keep sc and ds on
		// the stack.
		if bb == q4KBytes {
			sum += dotQ4KAVX2(m, &w[bb*b0], &a[q8KBytes*b0], &sc[0], &ds[0])
		} else {
			sum += dotQ5KAVX2(m, &w[bb*b0], &a[q8KBytes*b0], &sc[0], &ds[0])
		}
	}
	return sum
}

func dotQ6KFast(nb int, w, a []byte) float32 {
	if !haveAVX2 || nb == 0 {
		return dotQ6K(nb, w, a)
	}
	w, a = w[:q6KBytes*nb], a[:q8KBytes*nb]
	var (
		sc  [16 * kChunk]int16
		ds  [kChunk]float32
		sum float32
	)
	for b0 := 0; b0 < nb; b0 += kChunk {
		m := min(kChunk, nb-b0)
		for i := range m {
			x := (*[q6KBytes]byte)(w[q6KBytes*(b0+i):])
			y := (*[q8KBytes]byte)(a[q8KBytes*(b0+i):])
			// The kernel takes levels unsigned (0..63); remove 32·Σ s·bsum.
			var corr int32
			for g := range 16 {
				s := int32(int8(x[192+g]))
				sc[16*i+g] = int16(s)
				corr += s * q8KBsum(y, g)
			}
			d := fp16At(x[208:]) * f32At(y[0:])
			ds[i] = d
			sum -= d * float32(32*corr)
		}
		sum += dotQ6KAVX2(m, &w[q6KBytes*b0], &a[q8KBytes*b0], &sc[0], &ds[0])
	}
	return sum
}
