package tokenizer

import (
	"slices"
	"testing"
)

func TestSplitVocabTests(t *testing.T) {
	f := func(in string, want ...string) {
		t.Helper()
		if got := SplitVocabTests(in); !slices.Equal(got, want) {
			t.Errorf("SplitVocabTests(%q) = %q, want %q", in, got, want)
		}
	}
	f("")
	f("a\n__ggml_vocab_test__\n", "a")
	f("a\n__ggml_vocab_test__\n\n__ggml_vocab_test__\n\n\n__ggml_vocab_test__\n", "a", "", "\n")
	f("x\ny\n__ggml_vocab_test__\nz\n__ggml_vocab_test__", "x\ny", "z")
	f("no separator", "no separator")
}
