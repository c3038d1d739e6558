package ggml

import "fmt"

// VecDotN computes out[j] = VecDot(t, n, w, a[j*aStride:]) for every j <
// len(out): one weight row against several activation rows (tokens of a
// batch), each quantized to VecDotType(t) and aStride bytes apart. Every
// result equals what VecDot returns for that row, bit for bit. Where a
// kernel handles several rows at once (Q4_0, Q8_0, Q4_K, Q5_K and Q6_K
// with AVX2) each
// weight block is decoded once per four rows, which speeds up prompt
// processing. It returns an error, changing nothing, when the slices are
// too short.
func VecDotN(t Type, n int, w, a []byte, aStride int, out []float32) error {
	if len(out) == 0 {
		return nil
	}
	wb, err := RowBytes(t, n)
	if err != nil {
		return fmt.Errorf("ggml: VecDotN: %w", err)
	}
	ab, err := RowBytes(VecDotType(t), n)
	if err != nil {
		return fmt.Errorf("ggml: VecDotN: %w", err)
	}
	if len(w) < wb {
		return fmt.Errorf("ggml: VecDotN: weight row of %d bytes, %d elements of %s need %d", len(w), n, t, wb)
	}
	if aStride < ab {
		return fmt.Errorf("ggml: VecDotN: activation stride %d below the %d bytes of a row", aStride, ab)
	}
	if len(a) < ab || (len(out) > 1 && aStride > (len(a)-ab)/(len(out)-1)) {
		return fmt.Errorf("ggml: VecDotN: %d activation rows %d bytes apart do not fit in %d bytes", len(out), aStride, len(a))
	}
	j := vecDotMulti(t, n, w[:wb], a, aStride, out)
	for ; j < len(out); j++ {
		out[j] = VecDot(t, n, w, a[j*aStride:j*aStride+ab])
	}
	return nil
}
