package engine

import (
	"errors"
	"fmt"
	"path/filepath"
	"testing"

	"helexa/node/gguf"
)

// writeGGUF writes w as a GGUF file with llama.cpp's key and tensor names.
func writeGGUF(t *testing.T, w *Weights, arch string) string {
	t.Helper()
	h := w.H
	g := gguf.NewWriter()
	g.Set("general.architecture", gguf.NewValue(arch))
	u := func(k string, v int) { g.Set(arch+"."+k, gguf.NewValue(uint32(v))) }
	u("context_length", h.NCtxTrain)
	u("embedding_length", h.NEmbd)
	u("block_count", h.NLayer)
	u("feed_forward_length", h.NFF)
	u("attention.head_count", h.NHead)
	u("attention.head_count_kv", h.NHeadKV)
	u("attention.key_length", h.HeadDim)
	g.Set(arch+".attention.layer_norm_rms_epsilon", gguf.NewValue(h.NormEps))
	g.Set(arch+".rope.freq_base", gguf.NewValue(h.RopeTheta))
	add := func(name string, tt *Tensor) {
		if tt == nil {
			return
		}
		dims := make([]uint64, len(tt.Dims))
		for i, d := range tt.Dims {
			dims[i] = uint64(d)
		}
		if err := g.AddTensor(name, tt.Type, dims, tt.Data); err != nil {
			t.Fatal(err)
		}
	}
	add("token_embd.weight", w.TokEmbd)
	add("output_norm.weight", w.OutNorm)
	add("output.weight", w.Output)
	if h.NExpert > 0 {
		u("expert_count", h.NExpert)
		u("expert_used_count", h.NExpertUsed)
		u("expert_feed_forward_length", h.NFFExp)
	}
	if h.SlidingWindow > 0 {
		u("attention.sliding_window", h.SlidingWindow)
		g.Set(arch+".rope.freq_base_swa", gguf.NewValue(h.RopeThetaSWA))
	}
	if h.RopeFreqScale != 0 {
		g.Set(arch+".rope.scaling.type", gguf.NewValue("linear"))
		g.Set(arch+".rope.scaling.factor", gguf.NewValue(1/h.RopeFreqScale))
	}
	// every tensor any architecture declares, under its GGUF name
	for i := range w.Layers {
		p := fmt.Sprintf("blk.%d.", i)
		seen := map[string]bool{}
		for _, name := range archNames() {
			for _, d := range archRegistry[name].tensors(&h, i) {
				if !seen[d.name] {
					seen[d.name] = true
					add(p+d.name, *d.field(&w.Layers[i]))
				}
			}
		}
	}
	path := filepath.Join(t.TempDir(), arch+".gguf")
	if err := g.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	return path
}

// GGUF files of qwen2 and qwen3 load with their optional tensors (biases,
// Q/K norms) and NeoX RoPE, and compute what the in-memory weights do.
func TestGGUFArchVariants(t *testing.T) {
	for _, arch := range []string{"llama", "qwen2", "qwen3"} {
		t.Run(arch, func(t *testing.T) {
			mem := tinyModel(11, arch)
			path := writeGGUF(t, mem, arch)
			f, err := gguf.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			w, info, err := weightsFromGGUF(path, f)
			if err != nil {
				t.Fatal(err)
			}
			if info.Arch != arch || info.NHead != 4 || info.HeadDim != 16 || w.H.RopeStyle != mem.H.RopeStyle {
				t.Fatalf("info %+v, rope %v", info, w.H.RopeStyle)
			}
			l := w.Layers[1]
			if (l.Bq != nil) != (arch == "qwen2") || (l.QNorm != nil) != (arch == "qwen3") {
				t.Fatalf("optional tensors: bias %v, qnorm %v", l.Bq != nil, l.QNorm != nil)
			}
			tokens := []int32{1, 2, 3, 4, 5}
			logits := func(w *Weights) []float32 {
				r, err := CPU{}.NewRunner(w, RunnerOptions{ContextLength: 8, Threads: 1})
				if err != nil {
					t.Fatal(err)
				}
				defer r.Close()
				out := make([]float32, len(tokens)*w.H.NVocab)
				if err := ForwardSlot(r, 0, tokens, 0, out, true); err != nil {
					t.Fatal(err)
				}
				return out
			}
			if d := maxDiff(logits(w), logits(mem)); d != 0 {
				t.Errorf("file and in-memory weights differ by %g", d)
			}
		})
	}
}

// A GGUF missing a required tensor or with a wrong shape is refused with
// ErrUnsupported.
func TestGGUFValidation(t *testing.T) {
	w := tinyModel(3, "llama")
	w.Layers[1].FFNUp = nil
	path := writeGGUF(t, w, "llama")
	if _, err := Inspect(path); !errors.Is(err, ErrUnsupported) {
		t.Errorf("model without blk.1.ffn_up: %v, want ErrUnsupported", err)
	}
	w = tinyModel(3, "llama")
	w.Layers[0].Wk = w.Layers[0].Wq // q's shape where k's belongs
	path = writeGGUF(t, w, "llama")
	if _, err := Inspect(path); !errors.Is(err, ErrUnsupported) {
		t.Errorf("model with a mis-shaped attn_k: %v, want ErrUnsupported", err)
	}
}

// LoadWeights is the loader Load uses: it validates, refuses what Load
// refuses (an architecture it does not know, a missing tensor) and reads
// the same hyperparameters.
func TestLoadWeights(t *testing.T) {
	w := tinyModel(5, "llama")
	path := writeGGUF(t, w, "llama")
	got, info, closeW, err := LoadWeights(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.H.NLayer != w.H.NLayer || got.H.NHeadKV != w.H.NHeadKV || got.H.NVocab != w.H.NVocab || info.Arch != "llama" {
		t.Errorf("hparams %+v, info %+v; want those of %+v", got.H, info, w.H)
	}
	if len(got.Layers) != len(w.Layers) || !got.Layers[1].FFNDown.Mapped {
		t.Errorf("layers not loaded from the mapping")
	}
	if err := closeW(); err != nil {
		t.Error(err)
	}

	if _, _, _, err := LoadWeights(writeGGUF(t, w, "mistral")); !errors.Is(err, ErrUnsupported) {
		t.Errorf("mistral: %v, want ErrUnsupported", err)
	}
	bad := tinyModel(5, "llama")
	bad.Layers[0].Wv = nil
	if _, _, _, err := LoadWeights(writeGGUF(t, bad, "llama")); !errors.Is(err, ErrUnsupported) {
		t.Errorf("missing attn_v: %v, want ErrUnsupported", err)
	}
	if _, _, _, err := LoadWeights(filepath.Join(t.TempDir(), "absent.gguf")); err == nil {
		t.Error("absent file loaded")
	}
}
