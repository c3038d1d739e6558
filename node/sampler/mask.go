package sampler

import (
	"math"
	"math/bits"
)

// ApplyMask sets the logits of the tokens not in allowed (a bitmap over
// token ids: bit id%64 of word id/64) to -Inf, so that sampling, greedy
// or not, and log-probabilities see only the allowed tokens (the masked
// distribution, renormalised over them, as llama.cpp reports it under a
// grammar). It returns how many tokens stay allowed.
func ApplyMask(logits []float32, allowed []uint64) int {
	n := 0
	for w := 0; w*64 < len(logits); w++ {
		var word uint64
		if w < len(allowed) {
			word = allowed[w]
		}
		base := w * 64
		end := min(base+64, len(logits))
		switch word {
		case math.MaxUint64:
			n += end - base
		case 0:
			copy(logits[base:end], negInf[:])
		default:
			n += bits.OnesCount64(word)
			out := logits[base:end]
			for z := ^word; z != 0; z &= z - 1 {
				if i := bits.TrailingZeros64(z); i < len(out) {
					out[i] = negInf[0]
				}
			}
		}
	}
	return n
}

// negInf is a block of -Inf, copied over masked words.
var negInf = func() (b [64]float32) {
	for i := range b {
		b[i] = float32(math.Inf(-1))
	}
	return b
}()
