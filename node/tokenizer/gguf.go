package tokenizer

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"helexa/node/gguf"
)

// ErrUnsupported is returned for vocabularies of a kind this package does
// not implement.
var ErrUnsupported = errors.New("unsupported tokenizer")

// FromGGUF builds the tokenizer described by a GGUF file's tokenizer.ggml.*
// metadata ("llama" SentencePiece or "gpt2" byte-level BPE vocabularies).
func FromGGUF(f *gguf.File) (*Tokenizer, error) {
	model, ok := f.String("tokenizer.ggml.model")
	if !ok {
		return nil, fmt.Errorf("gguf tokenizer: tokenizer.ggml.model missing")
	}
	tokens, ok := f.Strings("tokenizer.ggml.tokens")
	if !ok || len(tokens) == 0 {
		return nil, fmt.Errorf("gguf tokenizer: tokenizer.ggml.tokens missing or empty")
	}
	if len(tokens) > 1<<30 {
		return nil, fmt.Errorf("gguf tokenizer: %d tokens is too many", len(tokens))
	}
	n := len(tokens)

	types := make([]uint8, n)
	if tt, ok := f.Int32s("tokenizer.ggml.token_type"); ok {
		if len(tt) < n {
			return nil, fmt.Errorf("gguf tokenizer: %d token types for %d tokens", len(tt), n)
		}
		for i := range types {
			if tt[i] >= int32(typeNormal) && tt[i] <= int32(typeByte) {
				types[i] = uint8(tt[i])
			} else {
				types[i] = typeNormal
			}
		}
	} else {
		for i := range types {
			types[i] = typeNormal
		}
	}
	scores := make([]float32, n)
	if sc, ok := f.Float32s("tokenizer.ggml.scores"); ok {
		if len(sc) < n {
			return nil, fmt.Errorf("gguf tokenizer: %d scores for %d tokens", len(sc), n)
		}
		copy(scores, sc)
	}

	var t *Tokenizer
	switch model {
	case "llama":
		t = newTokenizer(kindSPM, tokens, types, scores)
		t.bos, t.eos, t.unk = 1, 2, 0
		t.addBOS, t.addSpacePrefix = true, true
	case "gpt2":
		pre, _ := f.String("tokenizer.ggml.pre")
		split, err := preSplitter(pre)
		if err != nil {
			return nil, fmt.Errorf("gguf tokenizer: %w", err)
		}
		t = newTokenizer(kindBPE, tokens, types, scores)
		t.split = split
		// as llama.cpp: Llama 3 style vocabularies take whole words found
		// in the vocabulary and start with BOS
		switch pre {
		case "llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2", "jina-v5-nano", "tekken":
			t.ignoreMerges, t.addBOS = true, true
		case "minicpm5":
			t.ignoreMerges = true
		}
		merges, ok := f.Strings("tokenizer.ggml.merges")
		if !ok {
			return nil, fmt.Errorf("gguf tokenizer: tokenizer.ggml.merges missing")
		}
		pairs := make([][2]string, 0, len(merges))
		for _, m := range merges {
			// split at the first space after the first byte, as a merge's
			// left part may itself be a space
			k := strings.IndexByte(m[min(1, len(m)):], ' ')
			if k < 0 {
				pairs = append(pairs, [2]string{"", ""})
				continue
			}
			k += min(1, len(m))
			pairs = append(pairs, [2]string{m[:k], m[k+1:]})
		}
		t.setMerges(pairs)
		t.cache = newWordCache(1 << 16)
	case "bert":
		if !hasPhantomSpace(tokens) {
			tokens = slices.Clone(tokens)
			wordPieceVocab(tokens)
		}
		t = newTokenizer(kindWPM, tokens, types, scores)
		// llama.cpp's defaults for BERT vocabularies: [CLS] 101 first,
		// [SEP] 102 last, [UNK] 100, uncased
		t.bos, t.unk, t.sep = 101, 100, 102
		// a vocabulary laid out otherwise names them by text
		for text, dst := range map[string]*int32{"[CLS]": &t.bos, "[UNK]": &t.unk, "[SEP]": &t.sep} {
			if id, ok := t.vocab[text]; ok {
				*dst = id
			}
		}
		t.addBOS, t.addSep = true, true
		t.lowercase = true
		if v, ok := f.Bool("tokenizer.ggml.normalizer.lowercase"); ok {
			t.lowercase = v
		}
		t.stripAccents = t.lowercase
		if v, ok := f.Bool("tokenizer.ggml.normalizer.strip_accents"); ok {
			t.stripAccents = v
		}
	default:
		return nil, fmt.Errorf("gguf tokenizer: %w: tokenizer.ggml.model %q (supported: llama, gpt2, bert)", ErrUnsupported, model)
	}

	id := func(key string, dst *int32) {
		if v, ok := f.Uint(key); ok {
			if v < uint64(n) {
				*dst = int32(v)
			} else {
				*dst = -1
			}
		}
	}
	id("tokenizer.ggml.bos_token_id", &t.bos)
	id("tokenizer.ggml.eos_token_id", &t.eos)
	id("tokenizer.ggml.unknown_token_id", &t.unk)
	if t.kind == kindWPM {
		// older converters wrote [CLS] as cls_token_id only
		if _, ok := f.Uint("tokenizer.ggml.bos_token_id"); !ok {
			id("tokenizer.ggml.cls_token_id", &t.bos)
		}
		id("tokenizer.ggml.seperator_token_id", &t.sep)
		if !t.valid(t.sep) {
			t.sep = -1
		}
		if v, ok := f.Bool("tokenizer.ggml.add_sep_token"); ok {
			t.addSep = v
		}
	}
	for _, key := range []string{"tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id"} {
		e := int32(-1)
		id(key, &e)
		if e >= 0 {
			t.eog = append(t.eog, e)
		}
	}
	for _, id := range []*int32{&t.bos, &t.eos, &t.unk} {
		if !t.valid(*id) {
			*id = -1
		}
	}
	if v, ok := f.Bool("tokenizer.ggml.add_bos_token"); ok {
		t.addBOS = v
	}
	if v, ok := f.Bool("tokenizer.ggml.add_eos_token"); ok && t.kind != kindWPM {
		// (a BERT vocabulary ends with [SEP] through add_sep_token; its
		// converter may also mark [SEP] as EOS to add, which would
		// double it, and llama.cpp ignores it there too)
		t.addEOS = v
	}
	if v, ok := f.Bool("tokenizer.ggml.add_space_prefix"); ok && t.kind == kindSPM {
		t.addSpacePrefix = v
	}
	t.finish()
	return t, nil
}

// setMerges installs BPE merge rules in rank order. A rule whose parts or
// result are not in the vocabulary can never apply and is skipped.
func (t *Tokenizer) setMerges(pairs [][2]string) {
	t.merges = make(map[uint64]merge, len(pairs))
	for rank, p := range pairs {
		a, ok1 := t.vocab[p[0]]
		b, ok2 := t.vocab[p[1]]
		ab, ok3 := t.vocab[p[0]+p[1]]
		if !ok1 || !ok2 || !ok3 {
			continue
		}
		key := uint64(a)<<32 | uint64(b)
		if _, dup := t.merges[key]; !dup {
			t.merges[key] = merge{rank: int32(rank), id: ab}
		}
	}
}
