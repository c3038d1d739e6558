package cpu

import "helexa/node/ggml"

// DotF16 returns the dot product of a with the half-precision values
// h[:len(a)], accumulated in float32.
func DotF16(a []float32, h []uint16) float32 {
	n := len(a)
	h = h[:n]
	var s float32
	i := 0
	if useF16C && n >= 8 {
		i = n &^ 7
		s = dotF16AVX2(&a[0], &h[0], i)
	}
	for ; i < n; i++ {
		s += a[i] * ggml.FP16ToFP32(h[i])
	}
	return s
}

// AxpyF16 adds alpha times the half-precision values h[:len(y)] to y.
func AxpyF16(alpha float32, h []uint16, y []float32) {
	n := len(y)
	h = h[:n]
	i := 0
	if useF16C && n >= 8 {
		i = n &^ 7
		axpyF16AVX2(alpha, &h[0], &y[0], i)
	}
	for ; i < n; i++ {
		y[i] += alpha * ggml.FP16ToFP32(h[i])
	}
}

// ToF16 stores x rounded to half precision in h[:len(x)].
func ToF16(h []uint16, x []float32) {
	h = h[:len(x)]
	for i, v := range x {
		h[i] = ggml.FP32ToFP16(v)
	}
}
