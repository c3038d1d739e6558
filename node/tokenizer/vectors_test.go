package tokenizer

import (
	"helexa/internal/testshared"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"helexa/node/gguf"
)

// sharedDir returns the shared test data folder beside the repository, or
// skips the test when it is absent.
func sharedDir(t testing.TB) string {
	t.Helper()
	dir := testshared.ModuleRoot(t)
	shared := filepath.Join(dir, "..", "shared")
	if _, err := os.Stat(shared); err != nil {
		t.Skipf("shared test data not found at ../shared: %v", err)
	}
	return shared
}

func sharedFile(t testing.TB, rel string) string {
	t.Helper()
	p := filepath.Join(sharedDir(t), rel)
	if _, err := os.Stat(p); err != nil {
		t.Skipf("shared test data %s not found: %v", rel, err)
	}
	return p
}

// readVectors reads an .inp file (texts separated by the line
// __ggml_vocab_test__) and its .out file (one line of ids per text).
func readVectors(t *testing.T, inp string) ([]string, [][]int32) {
	t.Helper()
	in, err := os.ReadFile(inp)
	if err != nil {
		t.Fatal(err)
	}
	texts := SplitVocabTests(string(in))
	out, err := os.ReadFile(strings.TrimSuffix(inp, ".inp") + ".out")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	if len(lines) != len(texts) {
		t.Fatalf("%d texts but %d lines of ids", len(texts), len(lines))
	}
	want := make([][]int32, len(lines))
	for i, l := range lines {
		for _, f := range strings.Fields(l) {
			v, err := strconv.Atoi(f)
			if err != nil {
				t.Fatalf("line %d: %v", i+1, err)
			}
			want[i] = append(want[i], int32(v))
		}
	}
	return texts, want
}

func checkVectors(t *testing.T, tok *Tokenizer, inp string) {
	t.Helper()
	texts, want := readVectors(t, inp)
	bad := 0
	for i, text := range texts {
		got := tok.Encode(text, false, false)
		if !equalIDs(got, want[i]) {
			bad++
			t.Errorf("text %d %q:\n got %v\nwant %v", i, text, got, want[i])
		}
	}
	if bad > 0 {
		t.Logf("%d of %d texts differ", bad, len(texts))
	}
}

func equalIDs(a, b []int32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// loaded caches the tokenizers the tests build (they are immutable).
var loaded sync.Map // path → *Tokenizer

func loadGGUF(t testing.TB, rel string) *Tokenizer {
	t.Helper()
	if tok, ok := loaded.Load(rel); ok {
		return tok.(*Tokenizer)
	}
	f, err := gguf.Open(sharedFile(t, rel))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tok, err := FromGGUF(f)
	if err != nil {
		t.Fatal(err)
	}
	loaded.Store(rel, tok)
	return tok
}

func TestVectorsGPT2(t *testing.T) {
	tok := loadGGUF(t, "tokenizers/gpt-2/ggml-vocab-gpt-2.gguf")
	checkVectors(t, tok, sharedFile(t, "tokenizers/gpt-2/ggml-vocab-gpt-2.gguf.inp"))
}

func TestVectorsLlamaSPM(t *testing.T) {
	tok := loadGGUF(t, "tokenizers/llama-spm/ggml-vocab-llama-spm.gguf")
	checkVectors(t, tok, sharedFile(t, "tokenizers/llama-spm/ggml-vocab-llama-spm.gguf.inp"))
}

func loadHF(t testing.TB, rel string) *Tokenizer {
	t.Helper()
	if tok, ok := loaded.Load(rel); ok {
		return tok.(*Tokenizer)
	}
	dir := sharedFile(t, rel)
	tok, err := FromHF(dir)
	if err != nil {
		t.Fatal(err)
	}
	loaded.Store(rel, tok)
	return tok
}

func TestVectorsLlama3(t *testing.T) {
	tok := loadHF(t, "tokenizers/llama3")
	checkVectors(t, tok, sharedFile(t, "tokenizers/llama3/ggml-vocab-llama-bpe.gguf.inp"))
}

func TestVectorsQwen3(t *testing.T) {
	tok := loadHF(t, "tokenizers/qwen3")
	checkVectors(t, tok, sharedFile(t, "tokenizers/qwen3/ggml-vocab-qwen2.gguf.inp"))
}
