package ggml

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestVecDotN(t *testing.T) {
	r := rand.New(rand.NewPCG(19, 20))
	for _, ty := range allTypes {
		for _, n := range []int{256, 1024, 4096} {
			w := quantize(t, ty, randRow(r, n, 0.05))
			ab, _ := RowBytes(VecDotType(ty), n)
			stride := ab + 36 // rows need not be packed
			const rows = 9
			a := make([]byte, rows*stride)
			for j := range rows {
				if err := QuantizeRow(VecDotType(ty), randRow(r, n, 1), a[j*stride:j*stride+ab]); err != nil {
					t.Fatal(err)
				}
			}
			for _, m := range []int{0, 1, 3, 4, 5, 8, 9} {
				out := make([]float32, m)
				if err := VecDotN(ty, n, w, a, stride, out); err != nil {
					t.Fatal(err)
				}
				for j := range m {
					want := VecDot(ty, n, w, a[j*stride:j*stride+ab])
					if math.Float32bits(out[j]) != math.Float32bits(want) {
						t.Errorf("%s n=%d rows=%d: row %d = %g, VecDot %g", ty, n, m, j, out[j], want)
					}
				}
			}
		}
	}
	w := quantize(t, Q4_K, randRow(r, 256, 1))
	a := quantize(t, Q8_K, randRow(r, 512, 1))
	out := make([]float32, 2)
	if err := VecDotN(Q4_K, 256, w, a, 292, out); err != nil {
		t.Fatal(err)
	}
	for name, f := range map[string]func() error{
		"short activations": func() error { return VecDotN(Q4_K, 256, w, a[:583], 292, out) },
		"small stride":      func() error { return VecDotN(Q4_K, 256, w, a, 291, out) },
		"huge stride":       func() error { return VecDotN(Q4_K, 256, w, a, math.MaxInt/2+1, out) },
		"short weights":     func() error { return VecDotN(Q4_K, 256, w[:143], a, 292, out) },
		"partial block":     func() error { return VecDotN(Q4_K, 200, w, a, 292, out) },
	} {
		out[0] = 42
		if err := f(); err == nil {
			t.Errorf("%s: no error", name)
		}
		if out[0] != 42 {
			t.Errorf("%s: output changed on error", name)
		}
	}
}

func BenchmarkVecDotN(b *testing.B) {
	const n, rows = 4096, 4
	r := rand.New(rand.NewPCG(21, 22))
	for _, ty := range []Type{Q4_0, Q8_0, Q4_K, Q5_K, Q6_K} {
		w := quantize(b, ty, randRow(r, n, 0.05))
		a := quantize(b, VecDotType(ty), randRow(r, rows*n, 1))
		ab, _ := RowBytes(VecDotType(ty), n)
		out := make([]float32, rows)
		b.Run(ty.String()+"/x4", func(b *testing.B) {
			for b.Loop() {
				_ = VecDotN(ty, n, w, a, ab, out)
			}
		})
		b.Run(ty.String()+"/4xVecDot", func(b *testing.B) {
			for b.Loop() {
				for j := range rows {
					out[j] = VecDot(ty, n, w, a[j*ab:(j+1)*ab])
				}
			}
		})
	}
}
