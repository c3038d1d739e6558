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

// DotF16Tile's twelve results equal DotF16N's for the same rows.
func TestDotF16Tile(t *testing.T) {
	if !HaveF16Tile(8) {
		t.Skip("no F16C")
	}
	r := rand.New(rand.NewPCG(43, 44))
	for _, n := range []int{8, 64, 776} {
		hs := 2*n + 6
		h := make([]byte, 3*hs)
		for i := range h {
			h[i] = byte(r.IntN(256)) & 0xbf // finite halves
		}
		xs := n + 5
		x := make([]float32, 4*xs)
		for i := range x {
			x[i] = float32(r.NormFloat64())
		}
		var got [12]float32
		if err := DotF16Tile(h, hs, x, xs, n, &got); err != nil {
			t.Fatal(err)
		}
		for row := range 3 {
			var want [4]float32
			if err := DotF16N(h[row*hs:], x, xs, n, want[:]); err != nil {
				t.Fatal(err)
			}
			for tok := range 4 {
				// DotF16N runs fewer than eight rows one at a time (four
				// accumulators), so compare with a tolerance.
				if d := math.Abs(float64(got[3*tok+row] - want[tok])); d > 1e-4*(1+math.Abs(float64(want[tok]))) {
					t.Errorf("n=%d row %d token %d: %g, DotF16N %g", n, row, tok, got[3*tok+row], want[tok])
				}
			}
		}
	}
	var out [12]float32
	if err := DotF16Tile(make([]byte, 10), 16, make([]float32, 40), 8, 8, &out); err == nil {
		t.Error("short rows accepted")
	}
}
