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
	ninf := float32(math.Inf(-1))
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
			for i := base; i < end; i++ {
				logits[i] = ninf
			}
		default:
			n += bits.OnesCount64(word)
			for i := base; i < end; i++ {
				if word&(1<<(i-base)) == 0 {
					logits[i] = ninf
				}
			}
		}
	}
	return n
}
