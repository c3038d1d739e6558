package ggml

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestFastKernels compares the dispatching kernels (AVX2 where the CPU has
// it) with the pure Go ones on random rows of many lengths.
func TestFastKernels(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	type kernel struct {
		ty         Type
		fast, slow func(int, []byte, []byte) float32
	}
	for _, k := range []kernel{
		{F32, dotF32Fast, dotF32},
		{F16, dotF16Fast, dotF16},
		{BF16, dotBF16Fast, dotBF16},
		{Q8_0, dotQ8_0Fast, dotQ8_0},
		{Q4_0, dotQ4_0Fast, dotQ4_0},
		{Q4_1, dotQ4_1Fast, dotQ4_1},
		{Q5_0, dotQ5_0Fast, dotQ5_0},
		{Q5_1, dotQ5_1Fast, dotQ5_1},
		{Q2_K, dotQ2KFast, dotQ2K},
		{Q3_K, dotQ3KFast, dotQ3K},
		{Q4_K, dotQ4KFast, dotQ4K},
		{Q5_K, dotQ5KFast, dotQ5K},
		{Q6_K, dotQ6KFast, dotQ6K},
	} {
		bs := k.ty.BlockSize()
		for _, nb := range []int{0, 1, 2, 15, 16, 17, 33, 64} {
			switch bs {
			case 1:
				nb = nb*32 + nb%5 // lengths with and without a tail
			case 32:
				nb *= 8
			}
			n := nb * bs
			for trial := range 3 {
				x := randRow(r, n, 0.05)
				y := randRow(r, n, 1)
				if trial == 1 && n > 0 {
					for i := range x {
						x[i] = float32(r.IntN(3)-1) * 1e3 // saturating levels
					}
				}
				w := quantize(t, k.ty, x)
				a := quantize(t, VecDotType(k.ty), y)
				got, want := k.fast(nb, w, a), k.slow(nb, w, a)
				_, mag := refDotBytes(k.ty, n, w, a)
				if d := math.Abs(float64(got - want)); d > 1e-6*mag+1e-12 {
					t.Errorf("%s nb=%d trial %d: fast %g, pure Go %g (scale %g)", k.ty, nb, trial, got, want, mag)
				}
			}
		}
	}
}

func refDotBytes(ty Type, n int, w, a []byte) (dot, mag float64) {
	wf := make([]float32, n)
	af := make([]float32, n)
	_ = Dequantize(ty, w, wf)
	_ = Dequantize(VecDotType(ty), a, af)
	for i := range wf {
		dot += float64(wf[i]) * float64(af[i])
		mag += math.Abs(float64(wf[i]) * float64(af[i]))
	}
	return dot, mag
}

func BenchmarkVecDotPureGo(b *testing.B) {
	const n = 4096
	r := rand.New(rand.NewPCG(5, 6))
	for _, k := range []struct {
		ty   Type
		slow func(int, []byte, []byte) float32
	}{{F32, dotF32}, {F16, dotF16}, {BF16, dotBF16}, {Q8_0, dotQ8_0}, {Q4_0, dotQ4_0}, {Q4_1, dotQ4_1}, {Q5_0, dotQ5_0}, {Q5_1, dotQ5_1}, {Q2_K, dotQ2K}, {Q3_K, dotQ3K}, {Q4_K, dotQ4K}, {Q5_K, dotQ5K}, {Q6_K, dotQ6K}} {
		w := quantize(b, k.ty, randRow(r, n, 0.05))
		a := quantize(b, VecDotType(k.ty), randRow(r, n, 1))
		nb := n / k.ty.BlockSize()
		b.Run(k.ty.String(), func(b *testing.B) {
			var s float32
			for b.Loop() {
				s += k.slow(nb, w, a)
			}
			_ = s
		})
	}
}

func TestVecDotDoesNotAllocate(t *testing.T) {
	r := rand.New(rand.NewPCG(15, 16))
	for _, ty := range allTypes {
		w := quantize(t, ty, randRow(r, 4096, 0.05))
		a := quantize(t, VecDotType(ty), randRow(r, 4096, 1))
		if n := testing.AllocsPerRun(10, func() { VecDot(ty, 4096, w, a) }); n != 0 {
			t.Errorf("%s: %v allocations per VecDot", ty, n)
		}
	}
}

// TestFastKernelsRandomBytes feeds every kernel weight rows of random
// bytes (every level pattern, scales made finite) to compare the
// dispatching kernels with the pure Go ones beyond what quantizers emit.
func TestFastKernelsRandomBytes(t *testing.T) {
	r := rand.New(rand.NewPCG(17, 18))
	// Offsets of the f16 scales in each block, to keep them finite.
	halves := map[Type][]int{
		F16: nil, BF16: nil, Q4_0: {0}, Q4_1: {0, 2}, Q5_0: {0}, Q5_1: {0, 2}, Q8_0: {0},
		Q2_K: {80, 82}, Q3_K: {108}, Q4_K: {0, 2}, Q5_K: {0, 2}, Q6_K: {208},
	}
	fast := map[Type]func(int, []byte, []byte) float32{
		F16: dotF16Fast, BF16: dotBF16Fast, Q4_0: dotQ4_0Fast, Q4_1: dotQ4_1Fast, Q5_0: dotQ5_0Fast,
		Q5_1: dotQ5_1Fast, Q8_0: dotQ8_0Fast, Q2_K: dotQ2KFast, Q3_K: dotQ3KFast, Q4_K: dotQ4KFast,
		Q5_K: dotQ5KFast, Q6_K: dotQ6KFast,
	}
	slow := map[Type]func(int, []byte, []byte) float32{
		F16: dotF16, BF16: dotBF16, Q4_0: dotQ4_0, Q4_1: dotQ4_1, Q5_0: dotQ5_0,
		Q5_1: dotQ5_1, Q8_0: dotQ8_0, Q2_K: dotQ2K, Q3_K: dotQ3K, Q4_K: dotQ4K,
		Q5_K: dotQ5K, Q6_K: dotQ6K,
	}
	for ty, offs := range halves {
		n := 1024
		nb := n / ty.BlockSize()
		w := make([]byte, nb*ty.BlockBytes())
		for i := range w {
			w[i] = byte(r.Uint32())
		}
		finite := func(b []byte) {
			h := FP32ToFP16(float32(r.NormFloat64() * 0.01))
			put16(b, h)
		}
		switch ty {
		case F16:
			for i := 0; i < len(w); i += 2 {
				finite(w[i:])
			}
		case BF16:
			for i := 0; i < len(w); i += 2 {
				put16(w[i:], FP32ToBF16(float32(r.NormFloat64())))
			}
		}
		for b := range nb {
			for _, o := range offs {
				finite(w[b*ty.BlockBytes()+o:])
			}
		}
		a := quantize(t, VecDotType(ty), randRow(r, n, 1))
		arg := nb
		if ty.BlockSize() == 1 {
			arg = n
		}
		got, want := fast[ty](arg, w, a), slow[ty](arg, w, a)
		wf := make([]float32, n)
		af := make([]float32, n)
		_ = Dequantize(ty, w, wf)
		_ = Dequantize(VecDotType(ty), a, af)
		var mag float64
		for i := range wf {
			mag += math.Abs(float64(wf[i]) * float64(af[i]))
		}
		if d := math.Abs(float64(got - want)); d > 1e-5*mag+1e-9 || math.IsNaN(float64(got)) {
			t.Errorf("%s: fast %g, pure Go %g (scale %g)", ty, got, want, mag)
		}
	}
}
