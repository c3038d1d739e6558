package cpu

import (
	"math"

	"helexa/node/ggml"
)

// Dot returns the dot product of a and b[:len(a)], accumulated in float32
// in SIMD lanes and summed at the end.
func Dot(a, b []float32) float32 {
	b = b[:len(a)]
	if useAVX2 && len(a) >= 8 {
		return dotAVX2(&a[0], &b[0], len(a))
	}
	return dotGo(a, b)
}

// dotGo is Dot in portable Go, in eight lanes.
func dotGo(a, b []float32) float32 {
	n := len(a)
	b = b[:n]
	var s0, s1, s2, s3, s4, s5, s6, s7 float32
	i := 0
	for ; i+8 <= n; i += 8 {
		aa := a[i : i+8 : i+8]
		bb := b[i : i+8 : i+8]
		s0 += aa[0] * bb[0]
		s1 += aa[1] * bb[1]
		s2 += aa[2] * bb[2]
		s3 += aa[3] * bb[3]
		s4 += aa[4] * bb[4]
		s5 += aa[5] * bb[5]
		s6 += aa[6] * bb[6]
		s7 += aa[7] * bb[7]
	}
	for ; i < n; i++ {
		s0 += a[i] * b[i]
	}
	return ((s0 + s4) + (s1 + s5)) + ((s2 + s6) + (s3 + s7))
}

// Axpy adds alpha*x to y[:len(x)].
func Axpy(alpha float32, x, y []float32) {
	y = y[:len(x)]
	if useAVX2 && len(x) >= 8 {
		axpyAVX2(alpha, &x[0], &y[0], len(x))
		return
	}
	for i, v := range x {
		y[i] += alpha * v
	}
}

// Add adds x to y[:len(x)] element-wise.
func Add(x, y []float32) {
	y = y[:len(x)]
	for i, v := range x {
		y[i] += v
	}
}

// DotBF16 returns the dot product of the n bfloat16 values in w (little
// endian) with a[:n], accumulated in float32 like Dot.
func DotBF16(w []byte, a []float32) float32 {
	n := len(a)
	w = w[:2*n]
	if useAVX2 && n >= 8 {
		m := n &^ 7
		s := dotBF16AVX2(&w[0], &a[0], m)
		if m < n {
			s += dotBF16Go(w[2*m:], a[m:])
		}
		return s
	}
	return dotBF16Go(w, a)
}

func dotBF16Go(w []byte, a []float32) float32 {
	n := len(a)
	w = w[:2*n]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= n; i += 4 {
		ww := w[2*i : 2*i+8 : 2*i+8]
		aa := a[i : i+4 : i+4]
		s0 += math.Float32frombits(uint32(ww[0])<<16|uint32(ww[1])<<24) * aa[0]
		s1 += math.Float32frombits(uint32(ww[2])<<16|uint32(ww[3])<<24) * aa[1]
		s2 += math.Float32frombits(uint32(ww[4])<<16|uint32(ww[5])<<24) * aa[2]
		s3 += math.Float32frombits(uint32(ww[6])<<16|uint32(ww[7])<<24) * aa[3]
	}
	for ; i < n; i++ {
		s0 += math.Float32frombits(uint32(w[2*i])<<16|uint32(w[2*i+1])<<24) * a[i]
	}
	return (s0 + s1) + (s2 + s3)
}

// Exp sets x[i] = e^x[i], to within 2 ulp (8 values at a time with
// AVX2). Inputs below -87.3 give about 1.2e-38 rather than smaller
// values, and inputs above 88.3 give about 2.2e38: Softmax and SiLUMul
// compute the same exponential (EXP8) inside their own passes, where
// neither matters; Exp is their reference in the tests.
func Exp(x []float32) {
	i := 0
	if useAVX2 && len(x) >= 8 {
		i = len(x) &^ 7
		expAVX2(&x[0], i, 0)
	}
	for ; i < len(x); i++ {
		v := min(max(x[i], -87.3), 88.3)
		x[i] = float32(math.Exp(float64(v)))
	}
}

// RMSNorm writes x / rms(x) · w to out (out may be x; w as long as x),
// rounding as ggml's RMS norm does: each square in float32, their sum in
// float64 (in eight lanes with AVX2, so the last bits of the sum may
// differ from a sequential one), the mean and the scale in float32, then
// x·scale·w in float32.
func RMSNorm(out, x, w []float32, eps float32) {
	n := len(x)
	out, w = out[:n], w[:n]
	simd := 0
	if useAVX2 {
		simd = n &^ 7
	}
	var ss float64
	if simd > 0 {
		ss = sumSqAVX2(&x[0], simd)
	}
	for _, v := range x[simd:] {
		ss += float64(v * v)
	}
	mean := float32(ss / float64(n))
	scale := 1 / float32(math.Sqrt(float64(mean+eps)))
	if simd > 0 {
		scaleMulAVX2(&out[0], &x[0], &w[0], simd, scale)
	}
	for i := simd; i < n; i++ {
		out[i] = x[i] * scale * w[i]
	}
}

// AnyAbove reports whether some x[i] > t; NaN is never above. A sampler
// scans a vocabulary's logits with it to skip runs that cannot beat its
// current best.
func AnyAbove(x []float32, t float32) bool {
	i := 0
	if useAVX2 && len(x) >= 8 {
		i = len(x) &^ 7
		if anyAboveAVX2(&x[0], i, t) {
			return true
		}
	}
	for _, v := range x[i:] {
		if v > t {
			return true
		}
	}
	return false
}

// SiLUMul sets g[i] = silu(g[i])·u[i] = g[i] / (1 + e^-g[i]) · u[i] (a
// SwiGLU FFN's activation), with Exp's e^x, in float32.
func SiLUMul(g, u []float32) {
	u = u[:len(g)]
	i := 0
	if useAVX2 && len(g) >= 8 {
		i = len(g) &^ 7
		siluMulAVX2(&g[0], &u[0], i)
	}
	for ; i < len(g); i++ {
		v := g[i]
		e := float32(math.Exp(float64(min(max(-v, -87.3), 88.3))))
		g[i] = v / (1 + e) * u[i]
	}
}

// Softmax replaces x with softmax(x): exp(x - max), divided by the sum
// taken in float64 as ggml does. With half set, each weight is then rounded
// to half precision (to nearest even), as llama.cpp's attention over an F16
// cache rounds them. Exp's clamping applies after the shift.
func Softmax(x []float32, half bool) {
	n := len(x)
	if n == 0 {
		return
	}
	simd := 0
	if useAVX2 {
		simd = n &^ 7
	}
	mx := x[0]
	if simd > 0 {
		mx = maxAVX2(&x[0], simd)
	}
	for _, v := range x[simd:] {
		mx = max(mx, v)
	}
	if simd > 0 {
		expAVX2(&x[0], simd, mx)
	}
	for i := simd; i < n; i++ {
		v := min(max(x[i]-mx, -87.3), 88.3)
		x[i] = float32(math.Exp(float64(v)))
	}
	var sum float64
	if simd > 0 {
		sum = sum64AVX2(&x[0], simd)
	}
	for _, v := range x[simd:] {
		sum += float64(v)
	}
	inv := float32(1 / sum)
	rest := 0
	if half && useF16C {
		rest = n &^ 7
		if rest > 0 {
			scaleHalfF16C(&x[0], rest, inv)
		}
	}
	for i := rest; i < n; i++ {
		w := x[i] * inv
		if half {
			w = ggml.FP16ToFP32(ggml.FP32ToFP16(w))
		}
		x[i] = w
	}
}
