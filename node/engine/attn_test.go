package engine

import (
	"fmt"
	"math"
	"testing"
)

// groupedModel is tinyModel's llama with nHead query heads over nKV
// key/value heads of hd values.
func groupedModel(seed uint64, nHead, nKV, hd int) *Weights {
	return synthetic(SyntheticSpec{Seed: seed, Vocab: 40, Dim: 32, Layers: 2, Heads: nHead, KVHeads: nKV, HeadDim: hd, FFN: 48, Ctx: 64})
}

// Grouped-query attention covers every head of every group, whatever the
// group size and however the groups are split over workers: a prefill
// and then single-token decode steps match the float64 oracle.
func TestForwardGroupedHeads(t *testing.T) {
	tokens := []int32{3, 17, 0, 39, 8, 8, 21, 5, 30, 11, 2, 9, 14, 27, 33, 1, 6, 19, 25, 12}
	const prefill = 13
	for _, c := range []struct{ nHead, nKV, hd, threads int }{
		{1, 1, 16, 2}, {3, 1, 16, 2}, {6, 2, 16, 3}, {7, 1, 16, 2}, {8, 1, 64, 3},
		{12, 4, 64, 2}, {5, 5, 24, 4}, {16, 2, 8, 3}, {9, 3, 80, 1},
	} {
		t.Run(fmt.Sprintf("h%d_kv%d_d%d_t%d", c.nHead, c.nKV, c.hd, c.threads), func(t *testing.T) {
			w := groupedModel(11, c.nHead, c.nKV, c.hd)
			if err := w.validate(); err != nil {
				t.Fatal(err)
			}
			r, err := CPU{}.NewRunner(w, RunnerOptions{ContextLength: 32, Slots: 1, Threads: c.threads})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			nv := w.H.NVocab
			got := make([]float32, len(tokens)*nv)
			if err := ForwardSlot(r, 0, tokens[:prefill], 0, got, true); err != nil {
				t.Fatal(err)
			}
			for p := prefill; p < len(tokens); p++ {
				if err := ForwardSlot(r, 0, tokens[p:p+1], p, got[p*nv:(p+1)*nv], false); err != nil {
					t.Fatal(err)
				}
			}
			want := oracleLogits(t, w, tokens)
			worst := 0.0
			for i := range tokens {
				for j := range nv {
					worst = math.Max(worst, math.Abs(float64(got[i*nv+j])-want[i][j]))
				}
			}
			if worst > 0.02 {
				t.Errorf("max |logit - oracle| = %g", worst)
			}
		})
	}
}

func TestAttnSplit(t *testing.T) {
	for _, c := range []struct{ n, nKV, group, nth, chunk, tb int }{
		{64, 4, 3, 2, 3, 4}, {64, 4, 7, 2, 4, 3}, {64, 4, 6, 2, 3, 4}, {64, 1, 8, 16, 4, 3},
		{64, 8, 1, 2, 1, 12}, {5, 8, 1, 2, 1, 5}, {64, 1, 1, 16, 1, 4},
		{1, 4, 3, 2, 3, 1}, {1, 4, 4, 16, 1, 1}, {1, 2, 8, 4, 4, 1}, {1, 2, 8, 8, 2, 1}, {1, 8, 1, 16, 1, 1},
	} {
		if chunk, tb := attnSplit(c.n, c.nKV, c.group, c.nth); chunk != c.chunk || tb != c.tb {
			t.Errorf("attnSplit(%d, %d, %d, %d) = %d, %d, want %d, %d", c.n, c.nKV, c.group, c.nth, chunk, tb, c.chunk, c.tb)
		}
	}
}
