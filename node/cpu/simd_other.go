//go:build !amd64 || purego

package cpu

// Variables, as on amd64, so tests can switch the SIMD paths off.
var (
	useAVX2 = false
	useF16C = false
)

func dotAVX2(a, b *float32, n int) float32            { panic("BUG: dotAVX2 without amd64") }
func axpyAVX2(alpha float32, x, y *float32, n int)    { panic("BUG: axpyAVX2 without amd64") }
func dotF16AVX2(a *float32, h *uint16, n int) float32 { panic("BUG: dotF16AVX2 without amd64") }
func axpyF16AVX2(alpha float32, h *uint16, y *float32, n int) {
	panic("BUG: axpyF16AVX2 without amd64")
}

func dotBF16AVX2(w *byte, a *float32, n int) float32 { panic("BUG: dotBF16AVX2 without amd64") }

func scoresF16(q *float32, k *uint16, stride int, hd int, npos int, scale float32, out *float32) {
	panic("BUG: scoresF16 without amd64")
}

func mixF16(w *float32, v *uint16, stride int, hd int, npos int, out *float32) {
	panic("BUG: mixF16 without amd64")
}

func expAVX2(x *float32, n int, shift float32) { panic("BUG: expAVX2 without amd64") }
func maxAVX2(x *float32, n int) float32        { panic("BUG: maxAVX2 without amd64") }
func sumSqAVX2(x *float32, n int) float64      { panic("BUG: sumSqAVX2 without amd64") }
func scaleMulAVX2(out, x, w *float32, n int, s float32) {
	panic("BUG: scaleMulAVX2 without amd64")
}
func anyAboveAVX2(x *float32, n int, t float32) bool {
	panic("BUG: anyAboveAVX2 without amd64")
}
func siluMulAVX2(gp, up *float32, n int)  { panic("BUG: siluMulAVX2 without amd64") }
func sum64AVX2(x *float32, n int) float64 { panic("BUG: sum64AVX2 without amd64") }
func scaleHalfF16C(x *float32, n int, s float32) {
	panic("BUG: scaleHalfF16C without amd64")
}

func dotF16x8AVX2(h *byte, x *float32, stride int, n int, out *float32) {
	panic("BUG: dotF16x8AVX2 without amd64")
}

func dotF16RowAVX2(h *byte, x *float32, n int) float32 { panic("BUG: dotF16RowAVX2 without amd64") }

func dotF16T3x4AVX2(h *byte, hs int, x *float32, xs int, n int, out *float32) {
	panic("BUG: dotF16T3x4AVX2 without amd64")
}

func toF16F16C(h *uint16, x *float32, n int) { panic("BUG: toF16F16C without amd64") }
