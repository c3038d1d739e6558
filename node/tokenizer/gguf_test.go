package tokenizer

import (
	"bytes"
	"errors"
	"slices"
	"testing"

	"helexa/node/gguf"
)

// toGGUF writes tok's vocabulary as GGUF tokenizer metadata, the way
// llama.cpp's converter does, and parses it back.
func toGGUF(t *testing.T, tok *Tokenizer, model, pre string, extra func(w *gguf.Writer)) *gguf.File {
	t.Helper()
	w := gguf.NewWriter()
	w.Set("general.architecture", gguf.NewValue("llama"))
	w.Set("tokenizer.ggml.model", gguf.NewValue(model))
	if pre != "" {
		w.Set("tokenizer.ggml.pre", gguf.NewValue(pre))
	}
	tokens := slices.Clone(tok.tokens)
	types := make([]int32, len(tokens))
	for i := range types {
		types[i] = int32(tok.types[i])
		if tokens[i] == "" {
			tokens[i] = "[PAD]" // GGUF vocabularies have no holes
		}
	}
	w.Set("tokenizer.ggml.tokens", gguf.NewArray(tokens))
	w.Set("tokenizer.ggml.token_type", gguf.NewArray(types))
	if model == "gpt2" {
		merges := make([]string, 0, len(tok.merges))
		type rm struct {
			rank int32
			text string
		}
		var list []rm
		for key, m := range tok.merges {
			list = append(list, rm{m.rank, tok.tokens[key>>32] + " " + tok.tokens[uint32(key)]})
		}
		slices.SortFunc(list, func(a, b rm) int { return int(a.rank - b.rank) })
		for _, m := range list {
			merges = append(merges, m.text)
		}
		w.Set("tokenizer.ggml.merges", gguf.NewArray(merges))
	} else {
		w.Set("tokenizer.ggml.scores", gguf.NewArray(tok.scores))
	}
	if tok.bos >= 0 {
		w.Set("tokenizer.ggml.bos_token_id", gguf.NewValue(uint32(tok.bos)))
	}
	if tok.eos >= 0 {
		w.Set("tokenizer.ggml.eos_token_id", gguf.NewValue(uint32(tok.eos)))
	}
	if extra != nil {
		extra(w)
	}
	var buf bytes.Buffer
	if _, err := w.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	f, err := gguf.Parse(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// TestGGUFBPEPreTokenizers runs the llama-bpe and qwen2 vectors through the
// GGUF path (tokenizer.ggml.pre picks the splitter).
func TestGGUFBPEPreTokenizers(t *testing.T) {
	if raceEnabled || testing.Short() {
		t.Skip("rebuilds two large vocabularies; skipped under -race and -short")
	}
	cases := []struct{ hf, pre, inp string }{
		{"tokenizers/llama3", "llama-bpe", "tokenizers/llama3/ggml-vocab-llama-bpe.gguf.inp"},
		{"tokenizers/qwen3", "qwen2", "tokenizers/qwen3/ggml-vocab-qwen2.gguf.inp"},
	}
	for _, c := range cases {
		t.Run(c.pre, func(t *testing.T) {
			hf := loadHF(t, c.hf)
			tok, err := FromGGUF(toGGUF(t, hf, "gpt2", c.pre, nil))
			if err != nil {
				t.Fatal(err)
			}
			checkVectors(t, tok, sharedFile(t, c.inp))
			if c.pre == "llama-bpe" && (!tok.AddBOS() || tok.BOS() != 128000) {
				t.Errorf("llama-bpe: AddBOS %v BOS %d", tok.AddBOS(), tok.BOS())
			}
			if c.pre == "qwen2" && tok.AddBOS() {
				t.Error("qwen2 adds no BOS by default")
			}
			if !slices.Equal(tok.EOGs(), hf.EOGs()) {
				t.Errorf("EOGs %v, from tokenizer.json %v", tok.EOGs(), hf.EOGs())
			}
		})
	}
}

func TestFromGGUFKeys(t *testing.T) {
	spm := loadGGUF(t, "models/stories260K.gguf")
	f := toGGUF(t, spm, "llama", "", func(w *gguf.Writer) {
		w.Set("tokenizer.ggml.add_bos_token", gguf.NewValue(false))
		w.Set("tokenizer.ggml.add_eos_token", gguf.NewValue(true))
		w.Set("tokenizer.ggml.eot_token_id", gguf.NewValue(uint32(300)))
		w.Set("tokenizer.ggml.padding_token_id", gguf.NewValue(uint32(0xFFFFFFFF)))
	})
	tok, err := FromGGUF(f)
	if err != nil {
		t.Fatal(err)
	}
	if tok.AddBOS() || !tok.AddEOS() {
		t.Errorf("AddBOS %v AddEOS %v", tok.AddBOS(), tok.AddEOS())
	}
	if !tok.IsEOG(300) || !tok.IsEOG(2) {
		t.Errorf("EOGs %v", tok.EOGs())
	}
	ids := tok.Encode("Once upon a time", true, false)
	want := []int32{403, 407, 261, 378, 2}
	if !equalIDs(ids, want) {
		t.Errorf("Encode = %v, want %v", ids, want)
	}
	// without the space prefix, the first word has no ▁
	f = toGGUF(t, spm, "llama", "", func(w *gguf.Writer) {
		w.Set("tokenizer.ggml.add_space_prefix", gguf.NewValue(false))
	})
	if tok, err = FromGGUF(f); err != nil {
		t.Fatal(err)
	}
	if got := tok.Encode("Once", false, false); equalIDs(got, []int32{403}) {
		t.Errorf("add_space_prefix=false still adds ▁: %v", got)
	}
}

func TestFromGGUFErrors(t *testing.T) {
	spm := loadGGUF(t, "models/stories260K.gguf")
	f := func(name string, build func(w *gguf.Writer)) error {
		t.Helper()
		_, err := FromGGUF(toGGUF(t, spm, "llama", "", build))
		if err == nil {
			t.Errorf("%s: no error", name)
		}
		return err
	}
	f("no model", func(w *gguf.Writer) { w.Delete("tokenizer.ggml.model") })
	f("no tokens", func(w *gguf.Writer) { w.Delete("tokenizer.ggml.tokens") })
	f("short scores", func(w *gguf.Writer) { w.Set("tokenizer.ggml.scores", gguf.NewArray([]float32{1, 2})) })
	f("short types", func(w *gguf.Writer) { w.Set("tokenizer.ggml.token_type", gguf.NewArray([]int32{1})) })
	f("gpt2 without merges", func(w *gguf.Writer) { w.Set("tokenizer.ggml.model", gguf.NewValue("gpt2")) })
	f("unknown pre", func(w *gguf.Writer) {
		w.Set("tokenizer.ggml.model", gguf.NewValue("gpt2"))
		w.Set("tokenizer.ggml.pre", gguf.NewValue("no-such-pre"))
		w.Set("tokenizer.ggml.merges", gguf.NewArray([]string{"a b"}))
	})
	err := f("t5", func(w *gguf.Writer) { w.Set("tokenizer.ggml.model", gguf.NewValue("t5")) })
	if !errors.Is(err, ErrUnsupported) {
		t.Errorf("t5: %v, want ErrUnsupported", err)
	}
}
