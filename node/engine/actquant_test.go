package engine

import (
	"math"
	"testing"

	"helexa/node/ggml"
)

// The activation quantizers decode (through ggml) to within half a step
// of the input, and differ from the reference quantizer only on ties.
func TestQuantizeActivations(t *testing.T) {
	x := make([]float32, 64)
	for i := range x {
		x[i] = float32(math.Sin(float64(i)*0.7)) * float32(1+i%5)
	}
	x[5] = 0
	for _, typ := range []ggml.Type{ggml.Q8_0, ggml.Q8_1, ggml.Q8_K} {
		n := len(x)
		if typ == ggml.Q8_K {
			n = 256
		}
		in := make([]float32, n)
		for i := range in {
			in[i] = x[i%len(x)]
		}
		rb, _ := ggml.RowBytes(typ, n)
		q := make([]byte, rb)
		quantizeActivations(typ, in, q)
		back := make([]float32, n)
		if err := ggml.Dequantize(typ, q, back); err != nil {
			t.Fatal(err)
		}
		for i := range in {
			// one step is amax/127 per block; amax <= 5 here
			if d := math.Abs(float64(back[i] - in[i])); d > 5.0/127/2*1.01 {
				t.Fatalf("%v: value %d: %v decodes to %v", typ, i, in[i], back[i])
			}
		}
	}
	// Q8_1's stored sum is d times the sum of the quants.
	q := make([]byte, 36)
	quantizeActivations(ggml.Q8_1, x[:32], q)
	d := ggml.FP16ToFP32(uint16(q[0]) | uint16(q[1])<<8)
	s := ggml.FP16ToFP32(uint16(q[2]) | uint16(q[3])<<8)
	sum := 0
	for _, b := range q[4:] {
		sum += int(int8(b))
	}
	if want := ggml.FP16ToFP32(ggml.FP32ToFP16(d * float32(sum))); math.Abs(float64(s-want)) > 1e-3*math.Abs(float64(want))+1e-6 {
		t.Errorf("Q8_1 sum %v, want %v", s, want)
	}
}
