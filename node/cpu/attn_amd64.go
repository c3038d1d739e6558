//go:build !purego

package cpu

import xcpu "golang.org/x/sys/cpu"

// haveAVX512 selects the 512-bit attention kernels (AVX-512F; OS support
// of the zmm state is part of x/sys/cpu's check).
var haveAVX512 = xcpu.X86.HasAVX512F

// scoresGAVX2 is ScoresF16G for nb blocks of eight keys; hd is a multiple
// of 8, strides are in bytes and scr holds ScoresScratch(hd) floats.
//
//go:noescape
func scoresGAVX2(q *float32, qs, nq int, k *uint16, ks, hd, nb int, scale float32, out *float32, os int, scr *float32)

// scoresGAVX512 is scoresGAVX2 with 512-bit registers; hd is a multiple
// of 16.
//
//go:noescape
func scoresGAVX512(q *float32, qs, nq int, k *uint16, ks, hd, nb int, scale float32, out *float32, os int, scr *float32)

// mixGAVX2 is MixF16G with byte strides; hd is a multiple of 8 and
// 1 <= nq <= 4.
//
//go:noescape
func mixGAVX2(w *float32, ws, nq int, v *uint16, vs, hd, npos int, out *float32, os int)

// mixGAVX512 is mixGAVX2 with 512-bit registers; hd is a multiple of 16.
//
//go:noescape
func mixGAVX512(w *float32, ws, nq int, v *uint16, vs, hd, npos int, out *float32, os int)

// mix12AVX512 is mixGAVX512 for exactly twelve rows; hd is a multiple of
// 16 and npos at least 1.
//
//go:noescape
func mix12AVX512(w *float32, ws int, v *uint16, vs, hd, npos int, out *float32, os int)

// prefetchLines asks for the n > 0 cache lines from p on.
//
//go:noescape
func prefetchLines(p *byte, n int)
