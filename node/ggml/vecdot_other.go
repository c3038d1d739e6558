//go:build !amd64 || purego

package ggml

func dotQ8_0Fast(nb int, w, a []byte) float32 { return dotQ8_0(nb, w, a) }
func dotQ4_0Fast(nb int, w, a []byte) float32 { return dotQ4_0(nb, w, a) }
func dotQ4KFast(nb int, w, a []byte) float32  { return dotQ4K(nb, w, a) }
func dotQ6KFast(nb int, w, a []byte) float32  { return dotQ6K(nb, w, a) }
func dotQ5KFast(nb int, w, a []byte) float32  { return dotQ5K(nb, w, a) }
func dotF32Fast(n int, w, a []byte) float32   { return dotF32(n, w, a) }
func dotBF16Fast(n int, w, a []byte) float32  { return dotBF16(n, w, a) }
func dotF16Fast(n int, w, a []byte) float32   { return dotF16(n, w, a) }
func dotQ4_1Fast(nb int, w, a []byte) float32 { return dotQ4_1(nb, w, a) }
func dotQ5_0Fast(nb int, w, a []byte) float32 { return dotQ5_0(nb, w, a) }
func dotQ5_1Fast(nb int, w, a []byte) float32 { return dotQ5_1(nb, w, a) }
func dotQ2KFast(nb int, w, a []byte) float32  { return dotQ2K(nb, w, a) }
func dotQ3KFast(nb int, w, a []byte) float32  { return dotQ3K(nb, w, a) }

func vecDotMulti(Type, int, []byte, []byte, int, []float32) int { return 0 }

const havePrepared = false

func dotQ4_0P(nb int, x, y *byte, perm *int32) float32 { panic("BUG: dotQ4_0P without amd64") }

func dotQ4_0Px4(nb int, x, y *byte, ys int, perm *int32, out *float32) {
	panic("BUG: dotQ4_0Px4 without amd64")
}

func dotQ4_0Prep(ng int, w, p *byte) float32 { panic("BUG: dotQ4_0Prep without amd64") }

func dotQ4_0Prepx4(ng int, w, p *byte, ps int, out *float32) {
	panic("BUG: dotQ4_0Prepx4 without amd64")
}

const havePrepared8 = false

func dotQ8_0U(nb int, x, y *byte) float32 { panic("BUG: dotQ8_0U without amd64") }

func dotQ8_0Ux4(nb int, x, y *byte, ys int, out *float32) {
	panic("BUG: dotQ8_0Ux4 without amd64")
}
