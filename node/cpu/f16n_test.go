package cpu

import (
	"math"
	"math/rand/v2"
	"testing"

	"helexa/node/ggml"
)

func TestDotF16N(t *testing.T) {
	r := rand.New(rand.NewPCG(41, 42))
	for _, n := range []int{0, 5, 8, 64, 200, 768} {
		h := make([]byte, 2*n)
		hu := make([]uint16, n)
		for i := range hu {
			hu[i] = ggml.FP32ToFP16(float32(r.NormFloat64()))
			h[2*i], h[2*i+1] = byte(hu[i]), byte(hu[i]>>8)
		}
		stride := n + 3
		for _, rows := range []int{1, 7, 8, 9, 16, 21} {
			x := make([]float32, rows*stride)
			for i := range x {
				x[i] = float32(r.NormFloat64())
			}
			out := make([]float32, rows)
			if err := DotF16N(h, x, stride, n, out); err != nil {
				t.Fatal(err)
			}
			for j := range rows {
				var want, mag float64
				for i := range n {
					p := float64(x[j*stride+i]) * float64(ggml.FP16ToFP32(hu[i]))
					want += p
					mag += math.Abs(p)
				}
				if d := math.Abs(float64(out[j]) - want); d > 1e-5*mag+1e-9 {
					t.Errorf("n=%d rows=%d: row %d = %g, want %g", n, rows, j, out[j], want)
				}
			}
		}
	}
	out := make([]float32, 3)
	if err := DotF16N(make([]byte, 16), make([]float32, 20), 8, 8, out); err == nil {
		t.Error("short activations accepted")
	}
	if out[0] != 0 {
		t.Error("failed call wrote results")
	}
}
