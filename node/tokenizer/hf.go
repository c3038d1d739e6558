package tokenizer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
)

// FromHF builds the tokenizer of a Hugging Face model folder: its
// tokenizer.json, plus tokenizer_config.json, chat_template.jinja and
// generation_config.json's eos_token_id when present.
func FromHF(dir string) (*Tokenizer, error) {
	tj, err := os.ReadFile(filepath.Join(dir, "tokenizer.json"))
	if err != nil {
		return nil, fmt.Errorf("loading tokenizer: %w", err)
	}
	cfg, err := readOptional(filepath.Join(dir, "tokenizer_config.json"))
	if err != nil {
		return nil, fmt.Errorf("loading tokenizer: %w", err)
	}
	tmpl, err := readOptional(filepath.Join(dir, "chat_template.jinja"))
	if err != nil {
		return nil, fmt.Errorf("loading tokenizer: %w", err)
	}
	gen, err := readOptional(filepath.Join(dir, "generation_config.json"))
	if err != nil {
		return nil, fmt.Errorf("loading tokenizer: %w", err)
	}
	var eog []int32
	if gen != nil {
		var g struct {
			EOS json.RawMessage `json:"eos_token_id"`
		}
		if err := json.Unmarshal(gen, &g); err != nil {
			return nil, fmt.Errorf("loading tokenizer from %s: generation_config.json: %w", dir, err)
		}
		if eog, err = intOrList(g.EOS); err != nil {
			return nil, fmt.Errorf("loading tokenizer from %s: generation_config.json: eos_token_id: %w", dir, err)
		}
	}
	t, err := fromHFJSON(tj, cfg, eog)
	if err != nil {
		return nil, fmt.Errorf("loading tokenizer from %s: %w", dir, err)
	}
	if tmpl != nil {
		t.chatTemplate = string(tmpl)
	}
	return t, nil
}

func readOptional(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return b, err
}

func intOrList(raw json.RawMessage) ([]int32, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	if raw[0] == '[' {
		var ids []int32
		err := json.Unmarshal(raw, &ids)
		return ids, err
	}
	var id int32
	err := json.Unmarshal(raw, &id)
	return []int32{id}, err
}

// FromHFJSON builds a tokenizer from the bytes of tokenizer.json and, when
// not nil, tokenizer_config.json. BPE models are supported: byte-level ones
// (GPT-2, Llama 3, Qwen) and SentencePiece-style ones that write spaces as ▁
// and fall back to <0xXX> byte tokens (Llama 2, Mistral).
func FromHFJSON(tokenizerJSON, tokenizerConfigJSON []byte) (*Tokenizer, error) {
	return fromHFJSON(tokenizerJSON, tokenizerConfigJSON, nil)
}

// fromHFJSON is FromHFJSON with more end-of-generation ids (from
// generation_config.json).
func fromHFJSON(tokenizerJSON, tokenizerConfigJSON []byte, eog []int32) (*Tokenizer, error) {
	var tj hfTokenizerJSON
	if err := json.Unmarshal(tokenizerJSON, &tj); err != nil {
		return nil, fmt.Errorf("tokenizer.json: %w", err)
	}
	var cfg hfConfig
	if tokenizerConfigJSON != nil {
		if err := json.Unmarshal(tokenizerConfigJSON, &cfg); err != nil {
			return nil, fmt.Errorf("tokenizer_config.json: %w", err)
		}
	}
	if tj.Model.Type != "BPE" && !(tj.Model.Type == "" && len(tj.Model.Vocab) > 0 && len(tj.Model.Merges) > 0) {
		return nil, fmt.Errorf("tokenizer.json: %w: model type %q (supported: BPE)", ErrUnsupported, tj.Model.Type)
	}
	pl, err := readPipeline(&tj)
	if err != nil {
		return nil, fmt.Errorf("tokenizer.json: %w", err)
	}
	tokens, types, added, err := readVocab(&tj, &cfg)
	if err != nil {
		return nil, err
	}

	t := newTokenizer(kindBPE, tokens, types, make([]float32, len(tokens)))
	pairs, err := parseMerges(tj.Model.Merges)
	if err != nil {
		return nil, fmt.Errorf("tokenizer.json: merges: %w", err)
	}
	t.setMerges(pairs)
	t.ignoreMerges = tj.Model.IgnoreMerges
	t.nfc = pl.nfc
	t.prefixSpace = pl.prefixSpace
	t.cache = newWordCache(1 << 16)
	if pl.meta.on {
		t.metaspace = true
		t.addSpacePrefix, t.prefixFirst, t.prefixMissing, t.splitMeta = pl.meta.prefix, pl.meta.first, pl.meta.missing, pl.meta.split
	} else {
		t.split = chain(pl.splits)
	}
	if err := t.readSpecials(&tj, &cfg); err != nil {
		return nil, err
	}
	if t.chatTemplate, err = chatTemplate(cfg.ChatTemplate); err != nil {
		return nil, fmt.Errorf("tokenizer_config.json: chat_template: %w", err)
	}
	for _, id := range eog {
		if t.valid(id) {
			t.eog = append(t.eog, id)
		}
	}
	t.finish()
	for _, a := range added {
		if a.LStrip || a.RStrip {
			t.setStrip(a.ID, a.LStrip, a.RStrip)
		}
	}
	return t, nil
}

// pipeline is what tokenizer.json's normalizer and pre-tokenizer ask for.
type pipeline struct {
	splits      []splitter // Split regexes, then ByteLevel's own
	byteLevel   bool
	prefixSpace bool // ByteLevel add_prefix_space
	nfc         bool
	meta        struct{ on, prefix, first, missing, split bool } // SentencePiece-style ▁ spaces
}

// readPipeline reads the normalizer and pre-tokenizer of tokenizer.json.
func readPipeline(tj *hfTokenizerJSON) (*pipeline, error) {
	pl := &pipeline{}
	if tj.PreTokenizer != nil {
		if err := pl.preTokenizer(tj.PreTokenizer); err != nil {
			return nil, err
		}
	}
	if tj.Normalizer != nil {
		if err := pl.normalizer(tj.Normalizer); err != nil {
			return nil, err
		}
	}
	if pl.byteLevel == pl.meta.on {
		return nil, fmt.Errorf("%w: need either a ByteLevel pre-tokenizer or SentencePiece-style ▁ spaces", ErrUnsupported)
	}
	if pl.byteLevel && len(pl.splits) == 0 {
		return nil, fmt.Errorf("%w: ByteLevel without any splitting regex", ErrUnsupported)
	}
	return pl, nil
}

func (pl *pipeline) preTokenizer(p *hfPreTokenizer) error {
	switch p.Type {
	case "Sequence":
		for i := range p.Pretokenizers {
			if err := pl.preTokenizer(&p.Pretokenizers[i]); err != nil {
				return err
			}
		}
	case "Metaspace":
		if p.Replacement != "▁" && p.Replacement != "" {
			return fmt.Errorf("%w: Metaspace replacement %q", ErrUnsupported, p.Replacement)
		}
		pl.meta.on, pl.meta.missing = true, true
		pl.meta.prefix = p.PrependScheme != "never" && (p.AddPrefixSpace == nil || *p.AddPrefixSpace)
		pl.meta.first = p.PrependScheme == "first"
		pl.meta.split = p.Split == nil || *p.Split
	case "ByteLevel":
		pl.byteLevel = true
		pl.prefixSpace = p.AddPrefixSpace != nil && *p.AddPrefixSpace
		if p.UseRegex == nil || *p.UseRegex {
			pl.splits = append(pl.splits, splitter{style: styleGPT2})
		}
	case "Digits":
		pattern := `\p{N}+`
		if p.Individual {
			pattern = `\p{N}`
		}
		s, err := compileRegexSplit(pattern)
		if err != nil {
			return err
		}
		pl.splits = append(pl.splits, s)
	case "Split":
		if p.Pattern == nil || p.Invert || (p.Behavior != "Isolated" && p.Behavior != "") {
			return fmt.Errorf("%w: Split pre-tokenizer other than an isolated regex", ErrUnsupported)
		}
		var s splitter
		var err error
		switch {
		case p.Pattern.Regex != nil:
			s, err = compileSplit(*p.Pattern.Regex)
		case p.Pattern.String != nil:
			s, err = compileSplit(regexp.QuoteMeta(*p.Pattern.String))
		default:
			err = errors.New("split pre-tokenizer without a pattern")
		}
		if err != nil {
			return fmt.Errorf("%w: %v", ErrUnsupported, err)
		}
		pl.splits = append(pl.splits, s)
	default:
		return fmt.Errorf("%w: pre-tokenizer %q", ErrUnsupported, p.Type)
	}
	return nil
}

func (pl *pipeline) normalizer(n *hfNormalizer) error {
	switch n.Type {
	case "Sequence":
		for i := range n.Normalizers {
			if err := pl.normalizer(&n.Normalizers[i]); err != nil {
				return err
			}
		}
	case "NFC":
		pl.nfc = true
	case "Prepend":
		if n.Prepend != "▁" {
			return fmt.Errorf("%w: Prepend normalizer of %q", ErrUnsupported, n.Prepend)
		}
		pl.meta.on, pl.meta.prefix = true, true
	case "Replace":
		if n.Pattern == nil || n.Pattern.String == nil || *n.Pattern.String != " " || n.Content != "▁" {
			return fmt.Errorf("%w: Replace normalizer other than space to ▁", ErrUnsupported)
		}
		pl.meta.on = true
	default:
		return fmt.Errorf("%w: normalizer %q", ErrUnsupported, n.Type)
	}
	return nil
}

// readVocab lays out the vocabulary by id: the model's entries (normal, or
// byte tokens under byte fallback), then the added tokens of tokenizer.json
// and any more from tokenizer_config.json's added_tokens_decoder (control
// when special, user-defined otherwise). Ids nobody uses stay empty.
func readVocab(tj *hfTokenizerJSON, cfg *hfConfig) ([]string, []uint8, []hfAddedToken, error) {
	n := 0
	for _, id := range tj.Model.Vocab {
		if id < 0 {
			return nil, nil, nil, fmt.Errorf("tokenizer.json: negative token id %d", id)
		}
		n = max(n, int(id)+1)
	}
	added := tj.AddedTokens
	seen := map[int32]bool{}
	for _, a := range added {
		seen[a.ID] = true
	}
	for key, a := range cfg.AddedDecoder {
		id, err := strconv.ParseInt(key, 10, 32)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("tokenizer_config.json: added_tokens_decoder key %q: %w", key, err)
		}
		if !seen[int32(id)] {
			added = append(added, hfAddedToken{ID: int32(id), Content: a.Content, Special: a.Special, LStrip: a.LStrip, RStrip: a.RStrip})
		}
	}
	for _, a := range added {
		if a.ID < 0 {
			return nil, nil, nil, fmt.Errorf("tokenizer.json: negative added token id %d", a.ID)
		}
		n = max(n, int(a.ID)+1)
	}
	if n == 0 {
		return nil, nil, nil, fmt.Errorf("tokenizer.json: empty vocabulary")
	}
	if n > 1<<24 {
		return nil, nil, nil, fmt.Errorf("tokenizer.json: token id %d is too large", n-1)
	}
	tokens := make([]string, n)
	types := make([]uint8, n)
	for i := range types {
		types[i] = typeUnused
	}
	for text, id := range tj.Model.Vocab {
		tokens[id] = text
		types[id] = typeNormal
		if _, isByte := parseByteToken(text); isByte && tj.Model.ByteFallback {
			types[id] = typeByte
		}
	}
	for _, a := range added {
		tokens[a.ID] = a.Content
		types[a.ID] = typeUserDefined
		if a.Special {
			types[a.ID] = typeControl
		}
	}
	return tokens, types, added, nil
}

// readSpecials sets BOS, EOS and unknown from tokenizer_config.json, and
// whether Encode adds BOS/EOS: the config's add_bos_token/add_eos_token,
// else the post-processor's template, else BOS for Llama 3 style and
// SentencePiece-style vocabularies, as llama.cpp does for their GGUF twins.
func (t *Tokenizer) readSpecials(tj *hfTokenizerJSON, cfg *hfConfig) error {
	lookup := func(field string, raw json.RawMessage, dst *int32) error {
		name, err := tokenName(raw)
		if err != nil {
			return fmt.Errorf("tokenizer_config.json: %s: %w", field, err)
		}
		if id, ok := t.vocab[name]; ok && name != "" {
			*dst = id
		}
		return nil
	}
	if err := lookup("bos_token", cfg.BOS, &t.bos); err != nil {
		return err
	}
	if err := lookup("eos_token", cfg.EOS, &t.eos); err != nil {
		return err
	}
	if err := lookup("unk_token", cfg.UNK, &t.unk); err != nil {
		return err
	}
	if t.unk < 0 && tj.Model.UnkToken != nil {
		if id, ok := t.vocab[*tj.Model.UnkToken]; ok {
			t.unk = id
		}
	}
	prefix, suffix, hasTemplate := templateSpecials(tj.PostProcessor)
	if hasTemplate {
		if len(prefix) > 0 {
			t.addBOS = true
			if t.bos < 0 {
				t.bos = prefix[0]
			}
		}
		if len(suffix) > 0 {
			t.addEOS = true
			if t.eos < 0 {
				t.eos = suffix[len(suffix)-1]
			}
		}
	} else {
		t.addBOS = t.bos >= 0 && (t.split.style == styleLlama3 || t.metaspace)
	}
	if cfg.AddBOS != nil {
		t.addBOS = *cfg.AddBOS
	}
	if cfg.AddEOS != nil {
		t.addEOS = *cfg.AddEOS
	}
	if t.bos < 0 && t.addBOS {
		return fmt.Errorf("tokenizer_config.json: BOS is to be added but no bos_token is in the vocabulary")
	}
	if t.eos < 0 && t.addEOS {
		return fmt.Errorf("tokenizer_config.json: EOS is to be added but no eos_token is in the vocabulary")
	}
	return nil
}

// templateSpecials reads a TemplateProcessing post-processor (possibly in a
// Sequence): the ids of the special tokens before and after the text of a
// single sequence.
func templateSpecials(p *hfPostProcessor) (prefix, suffix []int32, ok bool) {
	if p == nil {
		return nil, nil, false
	}
	if p.Type == "Sequence" {
		for i := range p.Processors {
			if pre, suf, ok := templateSpecials(&p.Processors[i]); ok {
				return pre, suf, true
			}
		}
		return nil, nil, false
	}
	if p.Type != "TemplateProcessing" {
		return nil, nil, false
	}
	inText := false
	for _, item := range p.Single {
		switch {
		case item.Sequence != nil:
			inText = true
		case item.SpecialToken != nil:
			ids := p.SpecialTokens[item.SpecialToken.ID].IDs
			if inText {
				suffix = append(suffix, ids...)
			} else {
				prefix = append(prefix, ids...)
			}
		}
	}
	return prefix, suffix, true
}
