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
