package demo

import (
	"fmt"

	"helexa/node/gguf"
)

// Token types, numbered as GGUF's tokenizer.ggml.token_type.
const (
	typeNormal  int32 = 1
	typeUnknown int32 = 2
	typeControl int32 = 3
	typeByte    int32 = 6
)

// commonWords are whole-word pieces, so that English text does not
// tokenize into one piece per letter.
var commonWords = []string{
	"the", "a", "and", "was", "to", "of", "in", "he", "she", "it", "is", "you",
	"once", "upon", "time", "there", "little", "day", "her", "his", "they", "said",
	"with", "for", "on", "that", "big", "happy", "friend", "play", "saw", "had",
}

// ByteVocab returns the tokenizer metadata of a small SentencePiece-style
// vocabulary that needs no input file: <unk>, <s>, </s>, the 256 byte
// tokens (<0x00>…<0xFF>, so any text encodes), the printable ASCII
// characters, ▁ (a space) alone and before each letter, and a few common
// English words with their prefixes. About 450 tokens.
func ByteVocab() []gguf.KV {
	var toks []string
	var types []int32
	var scores []float32
	add := func(s string, typ int32, score float32) {
		toks = append(toks, s)
		types = append(types, typ)
		scores = append(scores, score)
	}
	add("<unk>", typeUnknown, 0)
	add("<s>", typeControl, 0)
	add("</s>", typeControl, 0)
	for b := range 256 {
		add(fmt.Sprintf("<0x%02X>", b), typeByte, 0)
	}
	// Longer pieces score higher, so the encoder prefers them.
	for c := byte('!'); c <= '~'; c++ {
		add(string(c), typeNormal, -3)
	}
	add("▁", typeNormal, -2)
	for c := byte('a'); c <= 'z'; c++ {
		add("▁"+string(c), typeNormal, -2)
		add("▁"+string(c-'a'+'A'), typeNormal, -2)
	}
	// SentencePiece merges two pieces only into a piece the vocabulary
	// has: every prefix of a word is a piece, so the whole word is reached.
	seen := map[string]bool{}
	for _, t := range toks {
		seen[t] = true
	}
	for _, w := range commonWords {
		for n := 2; n <= len(w); n++ {
			if p := "▁" + w[:n]; !seen[p] {
				seen[p] = true
				add(p, typeNormal, float32(n-10)/10)
			}
		}
	}
	return []gguf.KV{
		{Key: "tokenizer.ggml.model", Value: gguf.NewValue("llama")},
		{Key: "tokenizer.ggml.tokens", Value: gguf.NewArray(toks)},
		{Key: "tokenizer.ggml.scores", Value: gguf.NewArray(scores)},
		{Key: "tokenizer.ggml.token_type", Value: gguf.NewArray(types)},
		{Key: "tokenizer.ggml.unknown_token_id", Value: gguf.NewValue(uint32(0))},
		{Key: "tokenizer.ggml.bos_token_id", Value: gguf.NewValue(uint32(1))},
		{Key: "tokenizer.ggml.eos_token_id", Value: gguf.NewValue(uint32(2))},
		{Key: "tokenizer.ggml.add_bos_token", Value: gguf.NewValue(true)},
	}
}
