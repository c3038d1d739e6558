package engine

import (
	"fmt"
	"math"
	"testing"

	"helexa/node/ggml"
)

// The oracle is self-consistent on a quantized synthetic model: every
// position's logits equal those of the same tokens fed one at a time, the
// slots are independent, and bad input is refused.
func TestOracleConsistent(t *testing.T) {
	for _, arch := range []string{"llama", "qwen2", "qwen3"} {
		w := synthetic(SyntheticSpec{Arch: arch, Seed: 7, Type: "Q4_K", Vocab: 50, Dim: 256, Layers: 2, Heads: 4, KVHeads: 2, FFN: 512})
		r, err := NewOracle(w, RunnerOptions{ContextLength: 16, Slots: 2})
		if err != nil {
			t.Fatal(err)
		}
		toks := []int32{3, 14, 15, 9, 26}
		nv := w.H.NVocab
		all := make([]float32, len(toks)*nv)
		if err := ForwardSlot(r, 0, toks, 0, all, true); err != nil {
			t.Fatal(err)
		}
		one := make([]float32, nv)
		for i, tk := range toks {
			if err := ForwardSlot(r, 1, []int32{tk}, i, one, false); err != nil {
				t.Fatal(err)
			}
			for j := range one {
				if d := math.Abs(float64(one[j] - all[i*nv+j])); d > 1e-5 {
					t.Fatalf("%s token %d logit %d: %v vs %v", arch, i, j, one[j], all[i*nv+j])
				}
			}
		}
		if err := ForwardSlot(r, 0, []int32{int32(nv)}, 5, one, false); err == nil {
			t.Error("out-of-vocabulary token accepted")
		}
		if err := ForwardSlot(r, 0, []int32{1}, 16, one, false); err == nil {
			t.Error("position beyond the context accepted")
		}
		var spread float64
		for _, v := range one {
			spread = math.Max(spread, math.Abs(float64(v)))
		}
		if spread == 0 || math.IsNaN(spread) {
			t.Errorf("degenerate logits (max |logit| %v)", spread)
		}
		r.Close()
		if err := ForwardSlot(r, 0, []int32{1}, 0, one, false); err == nil {
			t.Error("forward after close accepted")
		}
	}
}

// The oracle refuses weights the engine would refuse.
func TestOracleRejects(t *testing.T) {
	w := tinyModel(1, "llama")
	w.Layers[0].FFNUp = nil
	if _, err := NewOracle(w, RunnerOptions{ContextLength: 8, Slots: 1}); err == nil {
		t.Error("model without ffn_up accepted")
	}
	if _, err := NewOracle(tinyModel(1, "llama"), RunnerOptions{ContextLength: 0, Slots: 1}); err == nil {
		t.Error("zero context accepted")
	}
}

// The synthetic builder gives every variant its tensors, types and
// hyperparameters; the same spec gives the same bytes, another seed
// others; and bad specs are refused.
func TestSyntheticWeights(t *testing.T) {
	base := SyntheticSpec{Seed: 9, Vocab: 40, Dim: 64, Layers: 8, Heads: 4, KVHeads: 2, FFN: 96}
	for _, c := range []struct {
		arch           string
		bias, qk, neox bool
	}{{"llama", false, false, false}, {"llama3", false, false, false}, {"qwen2", true, false, true}, {"qwen3", false, true, true}} {
		s := base
		s.Arch = c.arch
		w := synthetic(s)
		if err := w.validate(); err != nil {
			t.Fatalf("%s: %v", c.arch, err)
		}
		l := w.Layers[3]
		if (l.Bq != nil) != c.bias || (l.QNorm != nil) != c.qk || (w.H.RopeStyle == RopeNeoX) != c.neox {
			t.Errorf("%s: bias %v, q norm %v, rope %v", c.arch, l.Bq != nil, l.QNorm != nil, w.H.RopeStyle)
		}
		if (w.H.RopeFreqs != nil) != (c.arch == "llama3") {
			t.Errorf("%s: rope freqs %v", c.arch, w.H.RopeFreqs)
		}
	}
	q := base
	q.Type = "Q4_K_M"
	q.Dim, q.FFN, q.HeadDim = 256, 512, 64
	w := synthetic(q)
	if w.Output.Type != ggml.Q6_K || w.Layers[0].Wv.Type != ggml.Q6_K || w.Layers[1].Wv.Type != ggml.Q4_K || w.Layers[0].Wq.Type != ggml.Q4_K {
		t.Errorf("Q4_K_M mix: output %v, attn_v %v/%v, attn_q %v", w.Output.Type, w.Layers[0].Wv.Type, w.Layers[1].Wv.Type, w.Layers[0].Wq.Type)
	}
	fb := base
	fb.Type = "Q4_K" // rows of 64 do not fit 256-value super-blocks
	if w := synthetic(fb); w.Layers[0].Wq.Type != ggml.Q8_0 {
		t.Errorf("fallback: %v, want Q8_0", w.Layers[0].Wq.Type)
	}
	a, b := synthetic(base), synthetic(base)
	other := base
	other.Seed++
	c := synthetic(other)
	if string(a.Layers[1].Wk.Data) != string(b.Layers[1].Wk.Data) || string(a.Layers[1].Wk.Data) == string(c.Layers[1].Wk.Data) {
		t.Error("weights do not follow the seed")
	}
	for _, bad := range []SyntheticSpec{
		{Vocab: 40, Dim: 64, Layers: 1, Heads: 3, FFN: 96},                                           // 64 not a multiple of 3 heads
		{Vocab: 40, Dim: 64, Layers: 1, Heads: 4, KVHeads: 3, FFN: 96},                               // 4 heads over 3
		{Vocab: 40, Dim: 64, Layers: 1, Heads: 4, FFN: 96, Arch: "mistral"},                          // unknown
		{Vocab: 40, Dim: 64, Layers: 1, Heads: 4, FFN: 96, Type: "Q3_K"},                             // unknown type
		{Vocab: 0, Dim: 64, Layers: 1, Heads: 4, FFN: 96},                                            // no vocabulary
		{Vocab: 40, Dim: 64, Layers: 1, Heads: 4, FFN: 96, Type: "F16", RandomBlocks: true, Seed: 1}, // fine: floats ignore RandomBlocks
	} {
		_, err := SyntheticWeights(bad)
		if (err == nil) != (bad.Type == "F16") {
			t.Errorf("%+v: err %v", bad, err)
		}
	}
}

// The Q4_K_M choice per tensor is the mix llama.cpp's quantizer gives an
// 8-layer model (as in the shared synth-25m-Q4_K_M file): Q6_K for the
// output and for attn_v and ffn_down of layers 0, 3, 6 and 7.
func TestSyntheticQ4KMMix(t *testing.T) {
	ts, err := SyntheticTensors(SyntheticSpec{Type: "Q4_K_M", Vocab: 64, Dim: 512, Layers: 8, Heads: 8, FFN: 512})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]ggml.Type{}
	for _, st := range ts {
		got[st.Name] = st.Type
	}
	if got["output.weight"] != ggml.Q6_K || got["token_embd.weight"] != ggml.Q4_K || got["output_norm.weight"] != ggml.F32 {
		t.Errorf("output %s, token_embd %s, output_norm %s", got["output.weight"], got["token_embd.weight"], got["output_norm.weight"])
	}
	for l := range 8 {
		want := ggml.Q4_K
		if l == 0 || l == 3 || l == 6 || l == 7 {
			want = ggml.Q6_K
		}
		for _, n := range []string{"attn_v", "ffn_down"} {
			name := fmt.Sprintf("blk.%d.%s.weight", l, n)
			if got[name] != want {
				t.Errorf("%s: %s, want %s", name, got[name], want)
			}
		}
		for _, n := range []string{"attn_q", "attn_k", "attn_output", "ffn_gate", "ffn_up"} {
			name := fmt.Sprintf("blk.%d.%s.weight", l, n)
			if got[name] != ggml.Q4_K {
				t.Errorf("%s: %s, want Q4_K", name, got[name])
			}
		}
	}
}
