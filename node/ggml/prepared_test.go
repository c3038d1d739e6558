package ggml

import (
	"math"
	"math/rand/v2"
	"testing"
)

// DotQ4_0Prepared equals VecDot on the Q8_0 row it was prepared from.
func TestDotQ4_0Prepared(t *testing.T) {
	if !PreparedQ4_0(256) {
		t.Skip("no AVX2/FMA/F16C")
	}
	r := rand.New(rand.NewPCG(51, 52))
	for _, n := range []int{256, 768, 2048} {
		for trial := range 4 {
			x := randRow(r, n, 0.05)
			if trial == 1 {
				for i := range x {
					x[i] = float32(r.IntN(3)-1) * 1e3
				}
			}
			w := quantize(t, Q4_0, x)
			a := quantize(t, Q8_0, randRow(r, n, 1))
			p := make([]byte, PreparedQ4_0Bytes(n))
			if err := PrepareQ4_0(a, n, p); err != nil {
				t.Fatal(err)
			}
			got, err := DotQ4_0Prepared(n, w, p)
			if err != nil {
				t.Fatal(err)
			}
			want := VecDot(Q4_0, n, w, a)
			if math.Float32bits(got) != math.Float32bits(want) {
				t.Errorf("n=%d trial %d: prepared %g, VecDot %g", n, trial, got, want)
			}
			// several prepared rows, not packed, against the same weights
			pb := PreparedQ4_0Bytes(n)
			stride := pb + 64
			const rows = 7
			ps := make([]byte, rows*stride)
			wants := make([]float32, rows)
			for j := range rows {
				aj := quantize(t, Q8_0, randRow(r, n, 1))
				if err := PrepareQ4_0(aj, n, ps[j*stride:j*stride+pb]); err != nil {
					t.Fatal(err)
				}
				wants[j], _ = DotQ4_0Prepared(n, w, ps[j*stride:])
			}
			for _, m := range []int{1, 4, 5, 7} {
				out := make([]float32, m)
				if err := DotQ4_0PreparedN(n, w, ps, stride, out); err != nil {
					t.Fatal(err)
				}
				for j := range m {
					if math.Float32bits(out[j]) != math.Float32bits(wants[j]) {
						t.Errorf("n=%d rows=%d: row %d = %g, single %g", n, m, j, out[j], wants[j])
					}
				}
			}
		}
	}
	if err := PrepareQ4_0(make([]byte, 34*8), 200, make([]byte, 320)); err == nil {
		t.Error("PrepareQ4_0 accepted 200 values")
	}
	if _, err := DotQ4_0Prepared(256, make([]byte, 10), make([]byte, 320)); err == nil {
		t.Error("DotQ4_0Prepared accepted a short weight row")
	}
	if err := DotQ4_0PreparedN(256, make([]byte, 144), make([]byte, 500), 320, make([]float32, 2)); err == nil {
		t.Error("DotQ4_0PreparedN accepted rows that do not fit")
	}
	if PreparedQ4_0(100) {
		t.Error("PreparedQ4_0(100)")
	}
}

func BenchmarkDotQ4_0Prepared(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	n := 4096
	w := quantize(b, Q4_0, randRow(r, n, 0.05))
	a := quantize(b, Q8_0, randRow(r, n, 1))
	p := make([]byte, PreparedQ4_0Bytes(n))
	if err := PrepareQ4_0(a, n, p); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		_, _ = DotQ4_0Prepared(n, w, p)
	}
}

// DotQ8_0PreparedN equals VecDot on the Q8_0 rows it was prepared from.
func TestDotQ8_0Prepared(t *testing.T) {
	if !PreparedQ8_0(256) {
		t.Skip("no AVX-512 VNNI")
	}
	r := rand.New(rand.NewPCG(53, 54))
	for _, n := range []int{256, 768, 2048} {
		for trial := range 3 {
			x := randRow(r, n, 0.05)
			if trial == 1 {
				for i := range x {
					x[i] = float32(r.IntN(3)-1) * 1e3
				}
			}
			w := quantize(t, Q8_0, x)
			pb := PreparedQ4_0Bytes(n)
			stride := pb + 32
			const rows = 7
			ps := make([]byte, rows*stride)
			wants := make([]float32, rows)
			for j := range rows {
				aj := quantize(t, Q8_0, randRow(r, n, 1))
				if err := PrepareQ8_0(aj, n, ps[j*stride:j*stride+pb]); err != nil {
					t.Fatal(err)
				}
				wants[j] = VecDot(Q8_0, n, w, aj)
			}
			for _, m := range []int{1, 4, 5, 7} {
				out := make([]float32, m)
				if err := DotQ8_0PreparedN(n, w, ps, stride, out); err != nil {
					t.Fatal(err)
				}
				for j := range m {
					if math.Float32bits(out[j]) != math.Float32bits(wants[j]) {
						t.Errorf("n=%d trial %d rows=%d: row %d = %g, VecDot %g", n, trial, m, j, out[j], wants[j])
					}
				}
			}
		}
	}
	if err := PrepareQ8_0(make([]byte, 34*8), 200, make([]byte, 320)); err == nil {
		t.Error("PrepareQ8_0 accepted 200 values")
	}
	if err := DotQ8_0PreparedN(256, make([]byte, 100), make([]byte, 320), 320, make([]float32, 1)); err == nil {
		t.Error("DotQ8_0PreparedN accepted a short weight row")
	}
}
