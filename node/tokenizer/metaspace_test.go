package tokenizer

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

// spmAsTokenizerJSON turns a SentencePiece vocabulary into the tokenizer.json
// Hugging Face derives from it: merges ordered by the merged piece's score,
// spaces written as ▁ by normalizers, byte fallback.
func spmAsTokenizerJSON(t *testing.T, spm *Tokenizer, legacy bool) []byte {
	t.Helper()
	type m struct {
		l, r  int32
		score float32
	}
	var merges []m
	for id, piece := range spm.tokens {
		var local []m
		for i := 1; i < len(piece); i++ {
			if !utf8.RuneStart(piece[i]) {
				continue
			}
			l, okL := spm.vocab[piece[:i]]
			r, okR := spm.vocab[piece[i:]]
			if okL && okR {
				local = append(local, m{l, r, spm.scores[id]})
			}
		}
		slices.SortFunc(local, func(a, b m) int {
			if a.l != b.l {
				return int(a.l - b.l)
			}
			return int(a.r - b.r)
		})
		merges = append(merges, local...)
	}
	slices.SortStableFunc(merges, func(a, b m) int {
		switch {
		case a.score > b.score:
			return -1
		case a.score < b.score:
			return 1
		}
		return 0
	})
	mergeText := make([][2]string, len(merges))
	for i, x := range merges {
		mergeText[i] = [2]string{spm.tokens[x.l], spm.tokens[x.r]}
	}
	vocab := map[string]int32{}
	var added []map[string]any
	for id, piece := range spm.tokens {
		vocab[piece] = int32(id)
		if spm.types[id] == typeControl || spm.types[id] == typeUnknown {
			added = append(added, map[string]any{"id": id, "content": piece, "special": true})
		}
	}
	doc := map[string]any{
		"added_tokens": added,
		"model": map[string]any{
			"type": "BPE", "vocab": vocab, "merges": mergeText,
			"byte_fallback": true, "fuse_unk": true, "unk_token": "<unk>",
		},
		"post_processor": map[string]any{
			"type":           "TemplateProcessing",
			"single":         []any{map[string]any{"SpecialToken": map[string]any{"id": "<s>"}}, map[string]any{"Sequence": map[string]any{"id": "A"}}},
			"special_tokens": map[string]any{"<s>": map[string]any{"ids": []int{1}}},
		},
	}
	if legacy {
		doc["normalizer"] = map[string]any{"type": "Sequence", "normalizers": []any{
			map[string]any{"type": "Prepend", "prepend": "▁"},
			map[string]any{"type": "Replace", "pattern": map[string]any{"String": " "}, "content": "▁"},
		}}
	} else {
		doc["pre_tokenizer"] = map[string]any{"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": false}
	}
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// metaspaceTok returns (and caches) the tokenizer.json form of the llama-spm
// vocabulary, legacy (normalizers) or with a Metaspace pre-tokenizer.
func metaspaceTok(t *testing.T, legacy bool) *Tokenizer {
	t.Helper()
	key := fmt.Sprintf("metaspace legacy=%v", legacy)
	if tok, ok := loaded.Load(key); ok {
		return tok.(*Tokenizer)
	}
	spm := loadGGUF(t, "tokenizers/llama-spm/ggml-vocab-llama-spm.gguf")
	tok, err := FromHFJSON(spmAsTokenizerJSON(t, spm, legacy), []byte(`{"bos_token": "<s>", "eos_token": "</s>"}`))
	if err != nil {
		t.Fatal(err)
	}
	loaded.Store(key, tok)
	return tok
}

// TestMetaspaceBPE runs the llama-spm vectors through the tokenizer.json
// form of the same vocabulary (the form Llama 2 and Mistral folders ship).
func TestMetaspaceBPE(t *testing.T) {
	for _, legacy := range []bool{true, false} {
		tok := metaspaceTok(t, legacy)
		if legacy {
			checkVectors(t, tok, sharedFile(t, "tokenizers/llama-spm/ggml-vocab-llama-spm.gguf.inp"))
		} else {
			// Metaspace adds no ▁ to text that starts with a space, unlike
			// SentencePiece; the other texts must match
			texts, want := readVectors(t, sharedFile(t, "tokenizers/llama-spm/ggml-vocab-llama-spm.gguf.inp"))
			for i, text := range texts {
				if strings.HasPrefix(text, " ") {
					continue
				}
				if got := tok.Encode(text, false, false); !equalIDs(got, want[i]) {
					t.Errorf("Metaspace: text %q:\n got %v\nwant %v", text, got, want[i])
				}
			}
			if got := tok.Encode(" Hello", false, false); !equalIDs(got, []int32{15043}) {
				t.Errorf("Metaspace: \" Hello\" = %v, want [15043]", got)
			}
		}
		if !tok.AddBOS() || tok.BOS() != 1 || !tok.IsEOG(2) {
			t.Errorf("AddBOS %v BOS %d EOGs %v", tok.AddBOS(), tok.BOS(), tok.EOGs())
		}
		for _, text := range []string{"Hello world", "two  spaces ", "𝄞 bytes\n\ttab"} {
			ids := tok.Encode(text, true, false)
			if got := tok.Decode(ids); got != text {
				t.Errorf("legacy %v: Decode(Encode(%q)) = %q", legacy, text, got)
			}
		}
	}
}

// TestMetaspacePrependScheme checks where ▁ goes around special tokens:
// the legacy normalizers put it before every piece of text, Metaspace's
// "first" scheme only at the start of the input.
func TestMetaspacePrependScheme(t *testing.T) {
	spm := loadGGUF(t, "tokenizers/llama-spm/ggml-vocab-llama-spm.gguf")
	legacy, first := metaspaceTok(t, true), metaspaceTok(t, false)
	text := "Hi</s>there"
	if got := legacy.Decode(legacy.Encode(text, true, true)); got != "Hi there" {
		t.Errorf("legacy: %q", got)
	}
	if got := first.Decode(first.Encode(text, true, true)); got != "Hithere" {
		t.Errorf("first: %q", got)
	}
	// both agree with SentencePiece itself on plain text
	for _, s := range []string{"Hello world", "the quick brown fox"} {
		want := spm.Encode(s, true, false)
		if got := first.Encode(s, true, false); !equalIDs(got, want) {
			t.Errorf("first %q: %v, want %v", s, got, want)
		}
		if got := legacy.Encode(s, true, false); !equalIDs(got, want) {
			t.Errorf("legacy %q: %v, want %v", s, got, want)
		}
	}
}
