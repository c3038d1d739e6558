package ggml

import (
	"math"
	"math/rand/v2"
	"testing"
)

// Q8_0 and Q4_0 rows whose block count is not a multiple of eight run the
// grouped kernels and the per-block ones for the tail: they must still
// agree with the pure Go kernels, and VecDotN with VecDot bit for bit.
func TestQ0Tails(t *testing.T) {
	r := rand.New(rand.NewPCG(29, 30))
	for _, ty := range []Type{Q8_0, Q4_0} {
		for _, nb := range []int{3, 7, 9, 13, 16, 27} {
			n := nb * QK
			w := quantize(t, ty, randRow(r, n, 0.05))
			ab, _ := RowBytes(Q8_0, n)
			stride := ab + 34
			const rows = 6
			a := make([]byte, rows*stride)
			for j := range rows {
				if err := QuantizeRow(Q8_0, randRow(r, n, 1), a[j*stride:j*stride+ab]); err != nil {
					t.Fatal(err)
				}
			}
			out := make([]float32, rows)
			if err := VecDotN(ty, n, w, a, stride, out); err != nil {
				t.Fatal(err)
			}
			for j := range rows {
				y := a[j*stride : j*stride+ab]
				got := VecDot(ty, n, w, y)
				if math.Float32bits(out[j]) != math.Float32bits(got) {
					t.Errorf("%s nb=%d: VecDotN row %d = %g, VecDot %g", ty, nb, j, out[j], got)
				}
				var want float32
				if ty == Q8_0 {
					want = dotQ8_0(nb, w, y)
				} else {
					want = dotQ4_0(nb, w, y)
				}
				_, mag := refDotBytes(ty, n, w, y)
				if d := math.Abs(float64(got - want)); d > 1e-6*mag+1e-12 {
					t.Errorf("%s nb=%d row %d: fast %g, pure Go %g (scale %g)", ty, nb, j, got, want, mag)
				}
			}
		}
	}
}
