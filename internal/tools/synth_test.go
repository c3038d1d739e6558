package tools

import (
	"bytes"
	"context"
	"math"
	"os"
	"path/filepath"
	"testing"

	"helexa/node/ggml"
	"helexa/node/gguf"
)

// writeVocab writes a vocabulary-only GGUF with n tokens.
func writeVocab(t *testing.T, n int) string {
	t.Helper()
	toks := make([]string, n)
	scores := make([]float32, n)
	types := make([]int32, n)
	for i := range toks {
		toks[i] = string(rune('a'+i%26)) + string(rune('A'+i/26%26))
		scores[i] = -float32(i)
		types[i] = 1
	}
	w := gguf.NewWriter()
	w.Set("general.architecture", gguf.NewValue("llama"))
	w.Set("tokenizer.ggml.model", gguf.NewValue("llama"))
	w.Set("tokenizer.ggml.tokens", gguf.NewArray(toks))
	w.Set("tokenizer.ggml.scores", gguf.NewArray(scores))
	w.Set("tokenizer.ggml.token_type", gguf.NewArray(types))
	w.Set("tokenizer.ggml.bos_token_id", gguf.NewValue(uint32(1)))
	p := filepath.Join(t.TempDir(), "vocab.gguf")
	if err := w.WriteFile(p); err != nil {
		t.Fatal(err)
	}
	return p
}

func synthFile(t *testing.T, s synthSpec, vocabPath string) (*gguf.File, []byte) {
	t.Helper()
	vocab, err := gguf.Open(vocabPath)
	if err != nil {
		t.Fatal(err)
	}
	defer vocab.Close()
	out := filepath.Join(t.TempDir(), "m.gguf")
	if _, err := writeSynth(context.Background(), s, tokenizerKVs(vocab), out); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	f, err := gguf.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return f, raw
}

func TestSynthLoadsBack(t *testing.T) {
	vocab := writeVocab(t, 64)
	s := synthSpec{Arch: "llama", Dim: 256, Layers: 2, Heads: 4, KVHeads: 2, FFN: 256, Type: "Q4_K_M", Seed: 7, Ctx: 1024, Name: "tiny", RopeTheta: 10000, NormEps: 1e-5}
	f, _ := synthFile(t, s, vocab)

	wantU := map[string]uint64{
		"llama.embedding_length": 256, "llama.block_count": 2, "llama.attention.head_count": 4,
		"llama.attention.head_count_kv": 2, "llama.feed_forward_length": 256, "llama.context_length": 1024,
		"llama.rope.dimension_count": 64, "llama.vocab_size": 64, "general.file_type": 15, "tokenizer.ggml.bos_token_id": 1,
	}
	for k, want := range wantU {
		if got, ok := f.Uint(k); !ok || got != want {
			t.Errorf("%s = %d (%v), want %d", k, got, ok, want)
		}
	}
	if f.Arch() != "llama" {
		t.Errorf("arch %q", f.Arch())
	}
	if toks, _ := f.Strings("tokenizer.ggml.tokens"); len(toks) != 64 || toks[27] != "bB" {
		t.Errorf("tokens not copied: %d", len(toks))
	}
	if len(f.Tensors) != 3+9*2 {
		t.Fatalf("%d tensors", len(f.Tensors))
	}
	want := map[string]struct {
		typ  ggml.Type
		dims []uint64
	}{
		"token_embd.weight":        {ggml.Q4_K, []uint64{256, 64}},
		"output.weight":            {ggml.Q6_K, []uint64{256, 64}},
		"output_norm.weight":       {ggml.F32, []uint64{256}},
		"blk.0.attn_q.weight":      {ggml.Q4_K, []uint64{256, 256}},
		"blk.0.attn_k.weight":      {ggml.Q4_K, []uint64{256, 128}},
		"blk.0.attn_v.weight":      {ggml.Q4_K, []uint64{256, 128}},
		"blk.1.attn_v.weight":      {ggml.Q6_K, []uint64{256, 128}}, // more bits in the last layer
		"blk.0.ffn_down.weight":    {ggml.Q4_K, []uint64{256, 256}},
		"blk.1.ffn_down.weight":    {ggml.Q6_K, []uint64{256, 256}},
		"blk.1.ffn_gate.weight":    {ggml.Q4_K, []uint64{256, 256}},
		"blk.1.attn_norm.weight":   {ggml.F32, []uint64{256}},
		"blk.1.ffn_norm.weight":    {ggml.F32, []uint64{256}},
		"blk.1.attn_output.weight": {ggml.Q4_K, []uint64{256, 256}},
	}
	for name, w := range want {
		ti, data, ok := f.Tensor(name)
		if !ok {
			t.Errorf("missing %s", name)
			continue
		}
		if ti.Type != w.typ || len(ti.Dims) != len(w.dims) || ti.Dims[0] != w.dims[0] || (len(w.dims) > 1 && ti.Dims[1] != w.dims[1]) {
			t.Errorf("%s: %s %v, want %s %v", name, ti.Type, ti.Dims, w.typ, w.dims)
		}
		// The values have the intended distribution.
		vals := make([]float32, ti.Elements())
		if err := ggml.Dequantize(ti.Type, data, vals); err != nil {
			t.Fatal(err)
		}
		var sum, sq float64
		for _, v := range vals {
			sum += float64(v)
			sq += float64(v) * float64(v)
		}
		mean := sum / float64(len(vals))
		std := math.Sqrt(sq/float64(len(vals)) - mean*mean)
		wantMean, wantStd := 0.0, 1/math.Sqrt(float64(ti.Dims[0]))
		switch {
		case ti.Type == ggml.F32:
			wantMean, wantStd = 1, 0.1
		case name == "token_embd.weight":
			wantStd = 1
		}
		if math.Abs(mean-wantMean) > 0.1*wantStd+0.01 || math.Abs(std-wantStd) > 0.1*wantStd {
			t.Errorf("%s: mean %.4f std %.4f, want %.4f and %.4f", name, mean, std, wantMean, wantStd)
		}
	}

	// Same seed, same bytes; another seed, other weights.
	s = synthSpec{Arch: "llama", Dim: 64, Layers: 2, Heads: 4, FFN: 64, Type: "Q8_0", Seed: 7, Ctx: 64}
	_, raw := synthFile(t, s, vocab)
	_, again := synthFile(t, s, vocab)
	if !bytes.Equal(raw, again) {
		t.Errorf("same seed wrote different files")
	}
	s.Seed = 8
	_, other := synthFile(t, s, vocab)
	if bytes.Equal(raw, other) {
		t.Errorf("different seeds wrote the same file")
	}
}

func TestSynthTypesAndFallback(t *testing.T) {
	vocab := writeVocab(t, 64)
	for _, c := range []struct {
		typ      string
		dim      int
		want     ggml.Type
		wantDown ggml.Type
	}{
		{"F32", 64, ggml.F32, ggml.F32},
		{"f16", 64, ggml.F16, ggml.F16},
		{"Q8_0", 64, ggml.Q8_0, ggml.Q8_0},
		{"Q4_0", 64, ggml.Q4_0, ggml.Q4_0},
		{"Q6_K", 256, ggml.Q6_K, ggml.Q8_0}, // ffn 96: rows of ffn_down fall back
		{"Q4_K", 96, ggml.Q8_0, ggml.Q8_0},  // 96 is no multiple of 256
	} {
		s := synthSpec{Arch: "llama", Dim: c.dim, Layers: 1, Heads: 2, FFN: 96, Type: c.typ, Seed: 1, Ctx: 64, RopeTheta: 10000, NormEps: 1e-5}
		f, _ := synthFile(t, s, vocab)
		q, _ := f.TensorInfo("blk.0.attn_q.weight")
		down, _ := f.TensorInfo("blk.0.ffn_down.weight")
		if q.Type != c.want || down.Type != c.wantDown {
			t.Errorf("--type %s dim %d: attn_q %s, ffn_down %s; want %s, %s", c.typ, c.dim, q.Type, down.Type, c.want, c.wantDown)
		}
		if kvh, _ := f.Uint("llama.attention.head_count_kv"); kvh != 2 {
			t.Errorf("kv heads default: %d", kvh)
		}
	}
}

func TestSynthRejectsBadSpecs(t *testing.T) {
	vocabPath := writeVocab(t, 16)
	vocab, err := gguf.Open(vocabPath)
	if err != nil {
		t.Fatal(err)
	}
	defer vocab.Close()
	base := synthSpec{Arch: "llama", Dim: 64, Layers: 1, Heads: 2, FFN: 64, Type: "F32", Ctx: 64}
	for name, mod := range map[string]func(*synthSpec){
		"arch":       func(s *synthSpec) { s.Arch = "gpt2" },
		"type":       func(s *synthSpec) { s.Type = "Q3_K" },
		"heads":      func(s *synthSpec) { s.Heads = 3 },
		"kv heads":   func(s *synthSpec) { s.KVHeads = 3 },
		"zero layer": func(s *synthSpec) { s.Layers = 0 },
		"odd head":   func(s *synthSpec) { s.Dim, s.Heads = 66, 2 },
	} {
		s := base
		mod(&s)
		out := filepath.Join(t.TempDir(), "x.gguf")
		if _, err := writeSynth(context.Background(), s, tokenizerKVs(vocab), out); err == nil {
			t.Errorf("%s: no error", name)
		}
		if _, err := os.Stat(out); err == nil {
			t.Errorf("%s: file written despite the error", name)
		}
	}
}

func TestSynthCommand(t *testing.T) {
	vocab := writeVocab(t, 32)
	out := filepath.Join(t.TempDir(), "cli.gguf")
	args := []string{"tools", "synth", "--dim", "64", "--layers", "2", "--heads", "4", "--kv-heads", "2",
		"--ffn", "128", "--vocab-from", vocab, "--type", "Q8_0", "--out", out, "--seed", "5", "--ctx", "256"}
	if err := Command().Run(context.Background(), args); err != nil {
		t.Fatal(err)
	}
	f, err := gguf.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if n, _ := f.Uint("llama.context_length"); n != 256 {
		t.Errorf("context length %d", n)
	}
	if ti, ok := f.TensorInfo("blk.1.ffn_up.weight"); !ok || ti.Type != ggml.Q8_0 {
		t.Errorf("blk.1.ffn_up.weight: %+v", ti)
	}
}
