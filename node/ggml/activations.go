package ggml

// QuantizeActivations quantizes a row of activations to t (normally
// VecDotType of a weight type) the way ggml's x86 SIMD code does before a
// matrix multiplication. For Q8_0 and Q8_1 that path differs from the
// reference quantizer of QuantizeRow in two details: the multiplier is
// 127/amax rather than 1/(amax/127), and rounding is to nearest even
// rather than half away from zero. Both only matter for values within an
// ulp of a rounding boundary, but a forward pass amplifies them: against
// llama.cpp's CPU reference outputs this variant agreed measurably better.
// Every other type is quantized exactly as QuantizeRow does (Q8_K
// activations use the reference quantizer on every platform).
func QuantizeActivations(t Type, src []float32, dst []byte) error {
	if t != Q8_0 && t != Q8_1 {
		return QuantizeRow(t, src, dst)
	}
	nb, err := checkRow("ggml: quantize activations", t, len(src), len(dst))
	if err != nil {
		return err
	}
	bb := t.BlockBytes()
	qoff := bb - 32 // Q8_0: d then qs; Q8_1: d, s then qs
	for b := range nb {
		x := (*[32]float32)(src[32*b:])
		y := dst[bb*b : bb*(b+1)]
		var amax float32
		for _, v := range x {
			amax = max(amax, abs32(v))
		}
		var id float32
		if amax != 0 {
			id = 127 / amax
		}
		put16(y[0:], FP32ToFP16(amax/127))
		sum := 0
		for j, v := range x {
			q := int8(nearestInt(v * id))
			y[qoff+j] = byte(q)
			sum += int(q)
		}
		if t == Q8_1 {
			put16(y[2:], FP32ToFP16(amax/127*float32(sum)))
		}
	}
	return nil
}
