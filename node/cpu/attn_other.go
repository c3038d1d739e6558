//go:build !amd64 || purego

package cpu

var haveAVX512 = false

func scoresGAVX2(q *float32, qs, nq int, k *uint16, ks, hd, nb int, scale float32, out *float32, os int, scr *float32) {
	panic("BUG: scoresGAVX2 without amd64")
}

func scoresGAVX512(q *float32, qs, nq int, k *uint16, ks, hd, nb int, scale float32, out *float32, os int, scr *float32) {
	panic("BUG: scoresGAVX512 without amd64")
}

func mixGAVX2(w *float32, ws, nq int, v *uint16, vs, hd, npos int, out *float32, os int) {
	panic("BUG: mixGAVX2 without amd64")
}

func mixGAVX512(w *float32, ws, nq int, v *uint16, vs, hd, npos int, out *float32, os int) {
	panic("BUG: mixGAVX512 without amd64")
}

func mix12AVX512(w *float32, ws int, v *uint16, vs, hd, npos int, out *float32, os int) {
	panic("BUG: mix12AVX512 without amd64")
}

func prefetchLines(p *byte, n int) { panic("BUG: prefetchLines without amd64") }
