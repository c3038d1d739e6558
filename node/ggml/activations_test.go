package ggml

import (
	"math/rand/v2"
	"testing"
)

func TestQuantizeActivations(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	for _, ty := range []Type{Q8_0, Q8_1, Q8_K, F16} {
		x := randRow(r, 4096, 1)
		ref := quantize(t, ty, x)
		got := make([]byte, len(ref))
		if err := QuantizeActivations(ty, x, got); err != nil {
			t.Fatal(err)
		}
		// Scales are identical; levels differ by at most one, and rarely.
		a, b := make([]float32, len(x)), make([]float32, len(x))
		if err := Dequantize(ty, ref, a); err != nil {
			t.Fatal(err)
		}
		if err := Dequantize(ty, got, b); err != nil {
			t.Fatal(err)
		}
		diff := 0
		for i := range a {
			if a[i] != b[i] {
				diff++
				d := FP16ToFP32(le16(got[(i/32)*ty.BlockBytes():]))
				if e := a[i] - b[i]; e > d*1.0001 || e < -d*1.0001 {
					t.Fatalf("%s element %d: %g vs %g", ty, i, a[i], b[i])
				}
			}
		}
		if diff > len(x)/100 {
			t.Errorf("%s: %d of %d levels differ", ty, diff, len(x))
		}
	}
	// A tie: amax 127 makes the multiplier exactly 1; 2.5 rounds to even.
	x := make([]float32, 32)
	x[0], x[1], x[2] = 127, 2.5, -3.5
	for _, ty := range []Type{Q8_0, Q8_1} {
		got := make([]byte, ty.BlockBytes())
		if err := QuantizeActivations(ty, x, got); err != nil {
			t.Fatal(err)
		}
		q := got[ty.BlockBytes()-32:]
		if int8(q[0]) != 127 || int8(q[1]) != 2 || int8(q[2]) != -4 {
			t.Errorf("%s: levels %d %d %d, want 127 2 -4", ty, int8(q[0]), int8(q[1]), int8(q[2]))
		}
		ref := quantize(t, ty, x)
		if rq := ref[ty.BlockBytes()-32:]; int8(rq[1]) != 3 {
			t.Errorf("%s reference: 2.5 -> %d, want 3 (half away from zero)", ty, int8(rq[1]))
		}
		if ty == Q8_1 {
			if s := FP16ToFP32(le16(got[2:])); s != 127+2-4 {
				t.Errorf("Q8_1 s = %g, want 125", s)
			}
		}
	}
	if err := QuantizeActivations(Q8_0, make([]float32, 32), make([]byte, 10)); err == nil {
		t.Error("short destination accepted")
	}
}
