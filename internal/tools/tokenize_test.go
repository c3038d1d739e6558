package tools

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"helexa/internal/testshared"
	"helexa/node/tokenizer"
)

// TestToolsTokenizeOutput checks that `helexa tools tokenize` prints the
// .out files of the shared vocabulary tests byte for byte.
func TestToolsTokenizeOutput(t *testing.T) {
	shared := filepath.Join(testshared.Dir(t), "tokenizers")
	if _, err := os.Stat(shared); err != nil {
		t.Skipf("shared test data not found at ../shared: %v", err)
	}
	cases := []struct{ model, vectors string }{
		{"gpt-2/ggml-vocab-gpt-2.gguf", "gpt-2/ggml-vocab-gpt-2.gguf"},
		{"llama-spm/ggml-vocab-llama-spm.gguf", "llama-spm/ggml-vocab-llama-spm.gguf"},
		{"llama3", "llama3/ggml-vocab-llama-bpe.gguf"},
		{"qwen3/tokenizer.json", "qwen3/ggml-vocab-qwen2.gguf"},
	}
	for _, c := range cases {
		t.Run(c.model, func(t *testing.T) {
			tok, err := loadTokenizer(filepath.Join(shared, c.model))
			if err != nil {
				t.Fatal(err)
			}
			inp, err := os.ReadFile(filepath.Join(shared, c.vectors+".inp"))
			if err != nil {
				t.Fatal(err)
			}
			want, err := os.ReadFile(filepath.Join(shared, c.vectors+".out"))
			if err != nil {
				t.Fatal(err)
			}
			var got bytes.Buffer
			if err := writeTokenized(&got, tok, tokenizer.SplitVocabTests(string(inp)), false, false); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got.Bytes(), want) {
				t.Errorf("output differs from %s.out:\n got %q\nwant %q", c.vectors, got.Bytes(), want)
			}
		})
	}
}

func TestLoadTokenizerErrors(t *testing.T) {
	if _, err := loadTokenizer(filepath.Join(t.TempDir(), "missing.gguf")); err == nil {
		t.Error("missing file: no error")
	}
	bad := filepath.Join(t.TempDir(), "bad.gguf")
	if err := os.WriteFile(bad, []byte("not a gguf file"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := loadTokenizer(bad); err == nil {
		t.Error("corrupt file: no error")
	}
}
