package cpu

import (
	"unsafe"

	"helexa/node/ggml"
)

// Grouped-query attention kernels. In a model with fewer key/value heads
// than query heads, the G = nHead/nKV query heads of one group read the
// same keys and values; these kernels score (and mix) up to AttnMaxGroup
// of them per pass, so each cached half-precision row is converted once
// for the whole group instead of once per head.

// AttnMaxGroup is the most query rows the narrowest value-mixing kernels
// take in one pass (MixF16G splits larger counts); a KV group's heads are
// taken in chunks of at most this many.
const AttnMaxGroup = 4

// attnKeys is the number of keys the widest scoring kernel reduces
// together (the AVX2 one takes eight).
const attnKeys = 16

// attnLevel selects the attention kernels: 2 AVX-512, 1 AVX2+F16C,
// 0 portable Go. Tests lower it to check every level the CPU has.
var attnLevel = attnBest()

func attnBest() int {
	switch {
	case useF16C && haveAVX512:
		return 2
	case useF16C:
		return 1
	}
	return 0
}

// Prefetch asks the CPU to start loading the cache lines of h (a no-op
// without the assembly kernels), so that a kernel reading it later finds
// it in cache: attention issues it for a KV head's values before it
// scores the keys.
func Prefetch(h []uint16) {
	if attnLevel >= 1 && len(h) > 0 {
		prefetchLines((*byte)(unsafe.Pointer(&h[0])), (2*len(h)+63)/64)
	}
}

// ScoresScratch is the length of the scratch slice ScoresF16G needs for a
// head dimension of hd.
func ScoresScratch(hd int) int { return attnKeys * hd }

// ScoresF16G sets out[g*outStride+p] = scale * Σ_i q[g*qStride+i] *
// half(k[p*kStride+i]) for g < nq, p < npos and i < hd: the scores of nq
// query heads against the npos keys of one half-precision key cache whose
// rows are kStride apart. Each key is converted once for all nq heads and
// several keys' sums are reduced together; results differ from the plain
// sum only in the order of float32 additions. scratch needs
// ScoresScratch(hd) floats. Slices too short for the arguments panic.
func ScoresF16G(out []float32, outStride int, q []float32, qStride, nq int, k []uint16, kStride, hd, npos int, scale float32, scratch []float32) {
	if nq <= 0 || npos <= 0 || hd <= 0 {
		return
	}
	_ = out[(nq-1)*outStride+npos-1]
	_ = q[(nq-1)*qStride+hd-1]
	_ = k[(npos-1)*kStride+hd-1]
	if lv := attnLevel; lv >= 1 && hd%8 == 0 {
		p := 0
		if nb := npos / 16; lv == 2 && nb > 0 {
			_ = scratch[16*hd-1]
			scoresGAVX512(&q[0], 4*qStride, nq, &k[0], 2*kStride, hd, nb, scale, &out[0], 4*outStride, &scratch[0])
			p = 16 * nb
		}
		if nb := (npos - p) / 8; nb > 0 {
			_ = scratch[8*hd-1]
			scoresGAVX2(&q[0], 4*qStride, nq, &k[p*kStride], 2*kStride, hd, nb, scale, &out[p], 4*outStride, &scratch[0])
			p += 8 * nb
		}
		for ; p < npos; p++ {
			kp := k[p*kStride : p*kStride+hd]
			for g := range nq {
				out[g*outStride+p] = DotF16(q[g*qStride:g*qStride+hd], kp) * scale
			}
		}
		return
	}
	scoresGGo(out, outStride, q, qStride, nq, k, kStride, hd, npos, scale)
}

// scoresGGo is ScoresF16G in portable Go.
func scoresGGo(out []float32, outStride int, q []float32, qStride, nq int, k []uint16, kStride, hd, npos int, scale float32) {
	var kf [256]float32
	for p := range npos {
		kp := k[p*kStride : p*kStride+hd]
		for i0 := 0; i0 < hd; i0 += len(kf) {
			i1 := min(hd, i0+len(kf))
			for i, h := range kp[i0:i1] {
				kf[i] = ggml.FP16ToFP32(h)
			}
			for g := range nq {
				qg := q[g*qStride+i0 : g*qStride+i1]
				var s float32
				for i, x := range qg {
					s += x * kf[i]
				}
				if i0 == 0 {
					out[g*outStride+p] = s
				} else {
					out[g*outStride+p] += s
				}
			}
		}
		for g := range nq {
			out[g*outStride+p] *= scale
		}
	}
}

// MixF16G adds Σ_p w[g*wStride+p] * half(v[p*vStride+i]) to
// out[g*outStride+i] for g < nq, i < hd, summing p in order: the weighted
// sums of the half-precision value cache for nq query rows, each value
// row converted once for up to twelve of them (AVX-512; four otherwise).
// Every output element is summed exactly as MixF16 sums it. Slices too
// short for the arguments panic.
func MixF16G(out []float32, outStride int, w []float32, wStride, nq int, v []uint16, vStride, hd, npos int) {
	if nq <= 0 || npos <= 0 || hd <= 0 {
		return
	}
	_ = out[(nq-1)*outStride+hd-1]
	_ = w[(nq-1)*wStride+npos-1]
	_ = v[(npos-1)*vStride+hd-1]
	lv := attnLevel
	for ; lv == 2 && hd%16 == 0 && nq >= 12; nq -= 12 {
		mix12AVX512(&w[0], 4*wStride, &v[0], 2*vStride, hd, npos, &out[0], 4*outStride)
		if nq > 12 {
			out, w = out[12*outStride:], w[12*wStride:]
		}
	}
	for ; nq > 0; nq -= AttnMaxGroup {
		n := min(nq, AttnMaxGroup)
		switch {
		case lv == 2 && hd%16 == 0:
			mixGAVX512(&w[0], 4*wStride, n, &v[0], 2*vStride, hd, npos, &out[0], 4*outStride)
		case lv >= 1 && hd%8 == 0:
			mixGAVX2(&w[0], 4*wStride, n, &v[0], 2*vStride, hd, npos, &out[0], 4*outStride)
		default:
			mixGGo(out, outStride, w, wStride, n, v, vStride, hd, npos)
		}
		if nq > AttnMaxGroup {
			out, w = out[AttnMaxGroup*outStride:], w[AttnMaxGroup*wStride:]
		}
	}
}

// mixGGo is MixF16G in portable Go.
func mixGGo(out []float32, outStride int, w []float32, wStride, nq int, v []uint16, vStride, hd, npos int) {
	var vf [256]float32
	for i0 := 0; i0 < hd; i0 += len(vf) {
		i1 := min(hd, i0+len(vf))
		for p := range npos {
			for i, h := range v[p*vStride+i0 : p*vStride+i1] {
				vf[i] = ggml.FP16ToFP32(h)
			}
			for g := range nq {
				a := w[g*wStride+p]
				og := out[g*outStride+i0 : g*outStride+i1]
				for i, x := range vf[:i1-i0] {
					og[i] += a * x
				}
			}
		}
	}
}
