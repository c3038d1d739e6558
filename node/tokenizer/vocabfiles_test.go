package tokenizer

import (
	"os"
	"path/filepath"
	"testing"

	"helexa/internal/testshared"
	"helexa/node/gguf"
)

// llamaVocabDir is where scripts/fetch-vocab-vectors.sh puts llama.cpp's
// vocabulary test files (ggml-vocab-NAME.gguf with its .inp and .out),
// relative to the module root. The folder is not part of the repository.
const llamaVocabDir = "testdata/llama-vocab"

// llamaVocab returns the path of ggml-vocab-NAME.gguf: from
// ../shared/tokenizers/NAME/ when present, else from llamaVocabDir. The test
// skips when neither holds the file with its .inp and .out.
func llamaVocab(t *testing.T, name string) string {
	t.Helper()
	root := testshared.ModuleRoot(t)
	file := "ggml-vocab-" + name + ".gguf"
	dirs := []string{
		filepath.Join(root, "..", "shared", "tokenizers", name),
		filepath.Join(root, llamaVocabDir),
	}
	for _, d := range dirs {
		p := filepath.Join(d, file)
		ok := true
		for _, ext := range []string{"", ".inp", ".out"} {
			if _, err := os.Stat(p + ext); err != nil {
				ok = false
			}
		}
		if ok {
			return p
		}
	}
	t.Skipf("%s with its .inp and .out not found in %v: run scripts/fetch-vocab-vectors.sh to fetch llama.cpp's vocabulary test files", file, dirs)
	return ""
}

func loadLlamaVocab(t *testing.T, name string) (*Tokenizer, string) {
	t.Helper()
	p := llamaVocab(t, name)
	if tok, ok := loaded.Load(p); ok {
		return tok.(*Tokenizer), p
	}
	f, err := gguf.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tok, err := FromGGUF(f)
	if err != nil {
		t.Fatal(err)
	}
	loaded.Store(p, tok)
	return tok, p
}

func TestVectorsBertBGE(t *testing.T) {
	tok, p := loadLlamaVocab(t, "bert-bge")
	checkVectors(t, tok, p+".inp")
}

func TestVectorsDeepseekLLM(t *testing.T) {
	tok, p := loadLlamaVocab(t, "deepseek-llm")
	checkVectors(t, tok, p+".inp")
}

// TestBertBGESpecialTokens: with special tokens a BERT vocabulary frames the
// ids as [CLS] … [SEP] (101, 102 in bge, whose file names them only as
// cls_token_id and seperator_token_id); parsed special text becomes them.
func TestBertBGESpecialTokens(t *testing.T) {
	tok, _ := loadLlamaVocab(t, "bert-bge")
	got := tok.Encode("Hello World!", true, false)
	want := []int32{101, 7592, 2088, 999, 102}
	if !equalIDs(got, want) {
		t.Fatalf("Encode = %v, want %v", got, want)
	}
	if got := tok.Encode("[CLS] hi [SEP]", false, true); !equalIDs(got, []int32{101, 7632, 102}) {
		t.Errorf("parsed specials: %v", got)
	}
}
