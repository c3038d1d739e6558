package engine

import (
	"math"

	"helexa/node/ggml"
)

// quantizeActivations quantizes one row of activations to t, the way
// llama.cpp's CPU backend does before a quantized matmul. For Q8_0 and
// Q8_1 that is its SIMD quantizer, which differs from the reference one
// (ggml.QuantizeRow) in two details: the inverse scale is 127/amax rather
// than 1/(amax/127), and values round half to even. These models are
// sensitive enough for that to show in the logits, so the engine follows
// the SIMD variant. Other types use ggml.QuantizeRow.
func quantizeActivations(t ggml.Type, x []float32, dst []byte) {
	switch t {
	case ggml.Q8_0:
		for b := 0; b < len(x)/32; b++ {
			d, _ := quantBlock8((*[32]float32)(x[32*b:]), (*[32]byte)(dst[34*b+2:]))
			put16(dst[34*b:], ggml.FP32ToFP16(d))
		}
	case ggml.Q8_1:
		for b := 0; b < len(x)/32; b++ {
			d, sum := quantBlock8((*[32]float32)(x[32*b:]), (*[32]byte)(dst[36*b+4:]))
			put16(dst[36*b:], ggml.FP32ToFP16(d))
			put16(dst[36*b+2:], ggml.FP32ToFP16(d*float32(sum)))
		}
	default:
		// Sizes were validated at load; an error here cannot happen.
		_ = ggml.QuantizeRow(t, x, dst)
	}
}

// quantBlock8 quantizes 32 values symmetrically to int8, returning the
// scale and the sum of the quants.
func quantBlock8(x *[32]float32, q *[32]byte) (d float32, sum int) {
	var amax float32
	for _, v := range x {
		amax = max(amax, float32(math.Abs(float64(v))))
	}
	d = amax / 127
	var id float32
	if amax != 0 {
		id = 127 / amax
	}
	for j, v := range x {
		n := int8(math.RoundToEven(float64(v * id)))
		q[j] = byte(n)
		sum += int(n)
	}
	return d, sum
}

func put16(b []byte, v uint16) { b[0], b[1] = byte(v), byte(v>>8) }
