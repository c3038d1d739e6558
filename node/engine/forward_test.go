package engine

import (
	"math"
	"testing"
)

// tinyModel builds the random weights of a small model of the given arch
// ("llama", "llama3", "qwen2" or "qwen3"; see SyntheticSpec).
func tinyModel(seed uint64, arch string) *Weights {
	return synthetic(SyntheticSpec{Arch: arch, Seed: seed, Vocab: 40, Dim: 32, Layers: 2, Heads: 4, KVHeads: 2, HeadDim: 16, FFN: 48, Ctx: 64})
}

// synthetic is SyntheticWeights for specs known to be good.
func synthetic(s SyntheticSpec) *Weights {
	w, err := SyntheticWeights(s)
	if err != nil {
		panic("BUG: " + err.Error())
	}
	return w
}

// oracleLogits runs tokens from position 0 through the float64 oracle and
// returns every token's logits.
func oracleLogits(t *testing.T, w *Weights, tokens []int32) [][]float64 {
	t.Helper()
	o, err := NewOracle(w, RunnerOptions{ContextLength: len(tokens), Slots: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	nv := w.H.NVocab
	flat := make([]float32, len(tokens)*nv)
	if err := ForwardSlot(o, 0, tokens, 0, flat, true); err != nil {
		t.Fatal(err)
	}
	out := make([][]float64, len(tokens))
	for i := range out {
		out[i] = f64s(flat[i*nv : (i+1)*nv])
	}
	return out
}

// The CPU runner computes what the float64 oracle computes for each
// architecture variant: RoPE styles and frequency factors, GQA,
// QKV biases (qwen2) and per-head Q/K norms (qwen3).
func TestForwardMatchesOracle(t *testing.T) {
	for _, arch := range []string{"llama", "llama3", "qwen2", "qwen3"} {
		t.Run(arch, func(t *testing.T) {
			w := tinyModel(7, arch)
			if err := w.validate(); err != nil {
				t.Fatal(err)
			}
			r, err := CPU{}.NewRunner(w, RunnerOptions{ContextLength: 32, Slots: 1, Threads: 2})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			tokens := []int32{3, 17, 0, 39, 8, 8, 21, 5, 30, 11}
			nv := w.H.NVocab
			got := make([]float32, len(tokens)*nv)
			if err := ForwardSlot(r, 0, tokens, 0, got, true); err != nil {
				t.Fatal(err)
			}
			want := oracleLogits(t, w, tokens)
			worst := 0.0
			for i := range tokens {
				for j := 0; j < nv; j++ {
					worst = math.Max(worst, math.Abs(float64(got[i*nv+j])-want[i][j]))
				}
			}
			// Half-precision K/V (as llama.cpp keeps them) bounds the
			// agreement; logits here are of order 1-10.
			if worst > 0.02 {
				t.Errorf("max |logit - oracle| = %g", worst)
			}
			t.Logf("max |logit - oracle| = %.2g", worst)
		})
	}
}
