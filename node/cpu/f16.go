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

// ScoresF16 sets out[p] = scale * DotF16(q, k[p*stride:]) for every p
// < len(out): one attention head's scores against a half-precision key
// cache whose rows are stride apart.
func ScoresF16(out, q []float32, k []uint16, stride int, scale float32) {
	n, hd := len(out), len(q)
	if n == 0 {
		return
	}
	_ = k[(n-1)*stride+hd-1] // bounds
	if useF16C && hd%8 == 0 && hd > 0 {
		scoresF16(&q[0], &k[0], stride, hd, n, scale, &out[0])
		return
	}
	for p := range out {
		out[p] = DotF16(q, k[p*stride:p*stride+hd]) * scale
	}
}

// MixF16 adds Σ_p w[p] * v[p*stride:][:len(out)] to out, in p order: one
// attention head's weighted sum of a half-precision value cache.
func MixF16(out, w []float32, v []uint16, stride int) {
	n, hd := len(w), len(out)
	if n == 0 || hd == 0 {
		return
	}
	_ = v[(n-1)*stride+hd-1] // bounds
	if useF16C && hd%8 == 0 {
		mixF16(&w[0], &v[0], stride, hd, n, &out[0])
		return
	}
	for p, a := range w {
		AxpyF16(a, v[p*stride:p*stride+hd], out)
	}
}
