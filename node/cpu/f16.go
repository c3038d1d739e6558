package cpu

import (
	"fmt"

	"helexa/node/ggml"
)

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
	i := 0
	if useF16C {
		i = len(x) &^ 7
		if i > 0 {
			toF16F16C(&h[0], &x[0], i)
		}
	}
	for ; i < len(x); i++ {
		h[i] = ggml.FP32ToFP16(x[i])
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

// DotF16N sets out[t] to the dot product of the half-precision row h
// (n values, little-endian bytes) with x[t*stride : t*stride+n] for every
// t < len(out): one weight row against several activation rows, each
// weight converted once for up to eight rows. It returns an error,
// changing nothing, when the slices are too short.
func DotF16N(h []byte, x []float32, stride, n int, out []float32) error {
	if len(out) == 0 {
		return nil
	}
	if n < 0 || len(h) < 2*n || stride < n || (len(out)-1)*stride+n > len(x) {
		return fmt.Errorf("cpu: DotF16N: %d rows of %d values %d apart need %d floats and %d bytes, have %d and %d",
			len(out), n, stride, (len(out)-1)*stride+n, 2*n, len(x), len(h))
	}
	t := 0
	if useF16C && n >= 8 && n%8 == 0 {
		for ; t+8 <= len(out); t += 8 {
			dotF16x8AVX2(&h[0], &x[t*stride], 4*stride, n, &out[t])
		}
		if t < len(out) && t >= 8 {
			// the last eight rows again, overlapping rows done above
			t = len(out) - 8
			dotF16x8AVX2(&h[0], &x[t*stride], 4*stride, n, &out[t])
			return nil
		}
		for ; t < len(out); t++ {
			out[t] = dotF16RowAVX2(&h[0], &x[t*stride], n)
		}
	}
	for ; t < len(out); t++ {
		xt := x[t*stride : t*stride+n]
		var s float32
		for i, v := range xt {
			s += v * ggml.FP16ToFP32(uint16(h[2*i])|uint16(h[2*i+1])<<8)
		}
		out[t] = s
	}
	return nil
}

// HaveF16Tile reports whether DotF16Tile runs for rows of n values (the
// CPU has AVX2, FMA and F16C, and n is a positive multiple of 8).
func HaveF16Tile(n int) bool { return useF16C && n > 0 && n%8 == 0 }

// DotF16Tile computes a tile of three half-precision rows (n values each,
// hStride bytes apart in h) against four float rows (xStride values apart
// in x): out[3t+r] is row r's dot product with row t of x, with one
// accumulator per pair as DotF16N keeps for eight or more rows. It returns an error, changing nothing, when
// HaveF16Tile(n) is false or the rows do not fit.
func DotF16Tile(h []byte, hStride int, x []float32, xStride, n int, out *[12]float32) error {
	if !HaveF16Tile(n) {
		return fmt.Errorf("cpu: DotF16Tile: not available for %d values", n)
	}
	if hStride < 2*n || xStride < n || len(h) < 2*hStride+2*n || len(x) < 3*xStride+n {
		return fmt.Errorf("cpu: DotF16Tile: 3 rows of %d values %d bytes apart and 4 of %d floats apart need %d bytes and %d floats, have %d and %d",
			n, hStride, xStride, 2*hStride+2*n, 3*xStride+n, len(h), len(x))
	}
	dotF16T3x4AVX2(&h[0], hStride, &x[0], 4*xStride, n, &out[0])
	return nil
}
