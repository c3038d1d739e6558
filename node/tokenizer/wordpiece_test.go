package tokenizer

import (
	"bytes"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"helexa/node/gguf"
)

// bertGGUF writes a small BERT vocabulary (ids in order) as llama.cpp's
// converter does and loads it back.
func bertGGUF(t *testing.T, tokens []string, extra func(w *gguf.Writer)) *Tokenizer {
	t.Helper()
	w := gguf.NewWriter()
	w.Set("general.architecture", gguf.NewValue("bert"))
	w.Set("tokenizer.ggml.model", gguf.NewValue("bert"))
	types := make([]int32, len(tokens))
	for i, s := range tokens {
		types[i] = int32(typeNormal)
		if len(s) > 1 && s[0] == '[' && s[len(s)-1] == ']' {
			types[i] = int32(typeControl)
		}
	}
	w.Set("tokenizer.ggml.tokens", gguf.NewArray(tokens))
	w.Set("tokenizer.ggml.token_type", gguf.NewArray(types))
	w.Set("tokenizer.ggml.unknown_token_id", gguf.NewValue(uint32(1)))
	w.Set("tokenizer.ggml.cls_token_id", gguf.NewValue(uint32(2)))
	w.Set("tokenizer.ggml.seperator_token_id", gguf.NewValue(uint32(3)))
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
	tok, err := FromGGUF(f)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

var wpTokens = []string{
	"[PAD]", "[UNK]", "[CLS]", "[SEP]", // 0-3
	"▁un", "aff", "able", "▁hello", // 4-7
	"▁world", "▁,", "▁!", "▁cafe", // 8-11
	"▁中", "▁国", "▁a", "b", // 12-15
}

func TestWordPiece(t *testing.T) {
	tok := bertGGUF(t, wpTokens, nil)
	cases := []struct {
		text string
		want []int32
	}{
		{"unaffable", []int32{4, 5, 6}},
		{"Hello, World!", []int32{7, 9, 8, 10}},              // lowercased, punctuation split
		{"  hello\tworld\n", []int32{7, 8}},                  // any whitespace separates
		{"Café", []int32{11}},                                // accent stripped after NFD
		{"unaffablex hello", []int32{1, 7}},                  // an uncovered part makes the whole word [UNK]
		{"中国", []int32{12, 13}},                              // each CJK ideograph is a word
		{"ab\u200bb", []int32{14, 15, 15}},                   // format characters are dropped
		{"hello [CLS] world", []int32{7, 1, 1, 1, 8}},        // special text not parsed: "[", "cls", "]" are words
		{string(bytes.Repeat([]byte("b"), 101)), []int32{1}}, // over 100 characters: [UNK]
	}
	for _, c := range cases {
		if diff := cmp.Diff(c.want, tok.Encode(c.text, false, false)); diff != "" {
			t.Errorf("Encode(%q) (-want +got):\n%s", c.text, diff)
		}
	}
	if diff := cmp.Diff([]int32{2, 7, 8, 3}, tok.Encode("hello world", true, false)); diff != "" {
		t.Errorf("with special tokens, [CLS] … [SEP] (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]int32{2, 7, 2, 8, 3}, tok.Encode("hello[CLS]world", true, true)); diff != "" {
		t.Errorf("parsed special text (-want +got):\n%s", diff)
	}
	if got := tok.Decode([]int32{2, 4, 5, 6, 8, 3}); got != "unaffable world" {
		t.Errorf("Decode = %q", got)
	}
}

// TestWordPieceSEPOnce: a file that also names [SEP] as an EOS to add (as
// converters reading a [CLS] $A [SEP] template write it) still ends with
// one [SEP].
func TestWordPieceSEPOnce(t *testing.T) {
	tok := bertGGUF(t, wpTokens, func(w *gguf.Writer) {
		w.Set("tokenizer.ggml.bos_token_id", gguf.NewValue(uint32(2)))
		w.Set("tokenizer.ggml.eos_token_id", gguf.NewValue(uint32(3)))
		w.Set("tokenizer.ggml.add_bos_token", gguf.NewValue(true))
		w.Set("tokenizer.ggml.add_eos_token", gguf.NewValue(true))
	})
	if diff := cmp.Diff([]int32{2, 7, 3}, tok.Encode("hello", true, false)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// TestWordPieceSpecialsByText: without id keys, [CLS] [SEP] [UNK] are
// found by their text.
func TestWordPieceSpecialsByText(t *testing.T) {
	w := gguf.NewWriter()
	w.Set("general.architecture", gguf.NewValue("bert"))
	w.Set("tokenizer.ggml.model", gguf.NewValue("bert"))
	w.Set("tokenizer.ggml.tokens", gguf.NewArray([]string{"[PAD]", "[SEP]", "[CLS]", "[UNK]", "▁hello"}))
	var buf bytes.Buffer
	if _, err := w.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	f, err := gguf.Parse(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	tok, err := FromGGUF(f)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]int32{2, 4, 3, 1}, tok.Encode("hello x", true, false)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestWordPieceCased(t *testing.T) {
	tokens := append([]string{}, wpTokens...)
	tokens = append(tokens, "▁Hello", "▁Café")
	tok := bertGGUF(t, tokens, func(w *gguf.Writer) {
		w.Set("tokenizer.ggml.normalizer.lowercase", gguf.NewValue(false))
	})
	if diff := cmp.Diff([]int32{16, 17}, tok.Encode("Hello Café", false, false)); diff != "" {
		t.Errorf("cased vocabulary keeps case and accents (-want +got):\n%s", diff)
	}
}

// A vocabulary in Hugging Face's form (## continuations) is converted.
func TestWordPieceHashForm(t *testing.T) {
	tok := bertGGUF(t, []string{"[PAD]", "[UNK]", "[CLS]", "[SEP]", "un", "##aff", "##able"}, nil)
	if diff := cmp.Diff([]int32{4, 5, 6}, tok.Encode("unaffable", false, false)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if got := tok.TokenText(5); got != "aff" {
		t.Errorf("TokenText(5) = %q, want the continuation without ##", got)
	}
}

// FuzzWordPiece: any input encodes to ids in range without a panic, and
// text of ASCII letters and spaces decodes back to its lowercased words.
func FuzzWordPiece(f *testing.F) {
	for _, s := range []string{"", "Hello World", "unaffable!", "\xff\xfe", "Café 中国", "a\u00a0b\u200b", "[CLS]x[SEP]"} {
		f.Add(s)
	}
	toks := append([]string{}, wpTokens...)
	for c := 'a'; c <= 'z'; c++ {
		toks = append(toks, "▁"+string(c), string(c))
	}
	tok := bertGGUF(&testing.T{}, toks, nil)
	f.Fuzz(func(t *testing.T, s string) {
		for _, parse := range []bool{false, true} {
			for _, id := range tok.Encode(s, true, parse) {
				if id < 0 || int(id) >= tok.VocabSize() {
					t.Fatalf("id %d out of range", id)
				}
			}
		}
		plain := true
		for _, r := range s {
			if !(r == ' ' || 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z') {
				plain = false
			}
		}
		for _, w := range strings.Fields(s) {
			plain = plain && len(w) <= maxWordChars // longer words are [UNK]
		}
		if !plain {
			return
		}
		want := strings.Join(strings.Fields(strings.ToLower(s)), " ")
		if got := tok.Decode(tok.Encode(s, true, false)); got != want {
			t.Errorf("%q decodes to %q, want %q", s, got, want)
		}
	})
}
