package tokenizer

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzRoundTrip checks that decoding what Encode produced gives the text
// back: for byte-level BPE always, for SentencePiece when the text is valid
// UTF-8 without a literal ▁.
func FuzzRoundTrip(f *testing.F) {
	for _, s := range []string{"", " ", "Hello world", "\t\n  x", "日本語 🚀", "don't 123456", "\xff\xfe", "<s></s><|endoftext|>", "a\u00a0b", "'''"} {
		f.Add(s)
	}
	spm := loadGGUF(f, "tokenizers/llama-spm/ggml-vocab-llama-spm.gguf")
	gpt2 := loadGGUF(f, "tokenizers/gpt-2/ggml-vocab-gpt-2.gguf")
	f.Fuzz(func(t *testing.T, s string) {
		if got := gpt2.Decode(gpt2.Encode(s, false, false)); got != s {
			t.Errorf("gpt-2: %q round-trips to %q", s, got)
		}
		gpt2.Encode(s, true, true)
		ids := spm.Encode(s, true, false)
		if utf8.ValidString(s) && !strings.Contains(s, "▁") {
			if got := spm.Decode(ids); got != s {
				t.Errorf("spm: %q round-trips to %q", s, got)
			}
		}
		for _, id := range spm.Encode(s, false, true) {
			if id < 0 || int(id) >= spm.VocabSize() {
				t.Fatalf("id %d out of range", id)
			}
		}
	})
}
