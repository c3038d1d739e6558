//go:build !amd64 || purego

package ggml

const (
	haveR16Q  = false
	haveR16F  = false
	haveR16F2 = false

	haveR16BF16DP = false
)

func gemmR16BF16DP(cols int, w, a []byte, astride, ntok int, out []float32, ostride int) {
	gemmR16BF16DPGo(cols, w, a, astride, ntok, out, ostride)
}

func roundBF16(dst []byte, src []float32) { roundBF16Go(dst, src) }

func gemmR16Q(t Type, nb int, w, a []byte, astride, ntok int, out []float32, ostride int) {
	gemmR16QGo(t, nb, w, a, astride, ntok, out, ostride)
}

func hasR16Wide(Type) bool { return false }

func gemmR16Float(t Type, cols int, w []byte, x []float32, xstride, ntok int, out []float32, ostride int) {
	gemmR16FloatGo(t, cols, w, x, xstride, ntok, out, ostride)
}

func roundHalf(dst, src []float32) { roundHalfGo(dst, src) }

func quantizeR16(nb int, src []float32, dst []byte) { quantizeR16Go(nb, src, dst) }

func quantizeR16K(nb int, src []float32, dst []byte) { quantizeR16KGo(nb, src, dst) }

func gemmR16Float2(t Type, cols int, w []byte, gb int, x []float32, xstride, ntok int, out []float32, ostride int) bool {
	return false
}

func gemmR16BF16DP2(cols int, w []byte, gb int, a []byte, astride, ntok int, out []float32, ostride int) bool {
	return false
}
