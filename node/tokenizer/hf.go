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
	"strings"
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

type hfAddedToken struct {
	ID      int32  `json:"id"`
	Content string `json:"content"`
	Special bool   `json:"special"`
	LStrip  bool   `json:"lstrip"`
	RStrip  bool   `json:"rstrip"`
}

type hfPreTokenizer struct {
	Type          string           `json:"type"`
	Pretokenizers []hfPreTokenizer `json:"pretokenizers"`
	Pattern       *struct {
		Regex  *string `json:"Regex"`
		String *string `json:"String"`
	} `json:"pattern"`
	Behavior       string `json:"behavior"`
	Invert         bool   `json:"invert"`
	AddPrefixSpace *bool  `json:"add_prefix_space"`
	UseRegex       *bool  `json:"use_regex"`
	Replacement    string `json:"replacement"`
	PrependScheme  string `json:"prepend_scheme"`
	Split          *bool  `json:"split"`
}

type hfNormalizer struct {
	Type        string         `json:"type"`
	Normalizers []hfNormalizer `json:"normalizers"`
	Prepend     string         `json:"prepend"`
	Content     string         `json:"content"`
	Pattern     *struct {
		String *string `json:"String"`
	} `json:"pattern"`
}

type hfPostProcessor struct {
	Type       string            `json:"type"`
	Processors []hfPostProcessor `json:"processors"`
	Single     []struct {
		SpecialToken *struct {
			ID string `json:"id"`
		} `json:"SpecialToken"`
		Sequence *struct {
			ID string `json:"id"`
		} `json:"Sequence"`
	} `json:"single"`
	SpecialTokens map[string]struct {
		IDs []int32 `json:"ids"`
	} `json:"special_tokens"`
}

type hfTokenizerJSON struct {
	AddedTokens   []hfAddedToken   `json:"added_tokens"`
	Normalizer    *hfNormalizer    `json:"normalizer"`
	PreTokenizer  *hfPreTokenizer  `json:"pre_tokenizer"`
	PostProcessor *hfPostProcessor `json:"post_processor"`
	Model         struct {
		Type         string           `json:"type"`
		Vocab        map[string]int32 `json:"vocab"`
		Merges       json.RawMessage  `json:"merges"`
		IgnoreMerges bool             `json:"ignore_merges"`
		ByteFallback bool             `json:"byte_fallback"`
		UnkToken     *string          `json:"unk_token"`
	} `json:"model"`
}

type hfConfig struct {
	BOS            json.RawMessage `json:"bos_token"`
	EOS            json.RawMessage `json:"eos_token"`
	UNK            json.RawMessage `json:"unk_token"`
	AddBOS         *bool           `json:"add_bos_token"`
	AddEOS         *bool           `json:"add_eos_token"`
	AddPrefixSpace *bool           `json:"add_prefix_space"`
	ChatTemplate   json.RawMessage `json:"chat_template"`
	AddedDecoder   map[string]struct {
		Content string `json:"content"`
		Special bool   `json:"special"`
		LStrip  bool   `json:"lstrip"`
		RStrip  bool   `json:"rstrip"`
	} `json:"added_tokens_decoder"`
}

// tokenName reads a special-token entry of tokenizer_config.json: a string,
// an AddedToken object with "content", or null.
func tokenName(raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	if raw[0] == '"' {
		var s string
		err := json.Unmarshal(raw, &s)
		return s, err
	}
	var o struct {
		Content string `json:"content"`
	}
	err := json.Unmarshal(raw, &o)
	return o.Content, err
}

// chatTemplate reads tokenizer_config.json's chat_template: a string, or a
// list of {name, template} of which "default" is taken.
func chatTemplate(raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	if raw[0] == '"' {
		var s string
		err := json.Unmarshal(raw, &s)
		return s, err
	}
	var list []struct {
		Name     string `json:"name"`
		Template string `json:"template"`
	}
	if err := json.Unmarshal(raw, &list); err != nil {
		return "", err
	}
	for _, e := range list {
		if e.Name == "default" {
			return e.Template, nil
		}
	}
	if len(list) > 0 {
		return list[0].Template, nil
	}
	return "", nil
}

// parseMerges reads model.merges: strings "a b" or pairs ["a", "b"].
func parseMerges(raw json.RawMessage) ([][2]string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	inner := bytes.TrimSpace(bytes.TrimPrefix(raw, []byte("[")))
	if len(inner) > 0 && inner[0] == '[' {
		var pairs [][2]string
		err := json.Unmarshal(raw, &pairs)
		return pairs, err
	}
	var strs []string
	if err := json.Unmarshal(raw, &strs); err != nil {
		return nil, err
	}
	pairs := make([][2]string, len(strs))
	for i, s := range strs {
		a, b, ok := strings.Cut(s, " ")
		if !ok {
			return nil, fmt.Errorf("merge %d %q has no space", i, s)
		}
		pairs[i] = [2]string{a, b}
	}
	return pairs, nil
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

	// pre-tokenizer: optional Split regexes, then ByteLevel
	var splits []splitter
	byteLevel, prefixSpace := false, false
	var meta struct{ on, prefix, first, missing, split bool } // SentencePiece-style ▁ handling
	var walk func(p *hfPreTokenizer) error
	walk = func(p *hfPreTokenizer) error {
		switch p.Type {
		case "Sequence":
			for i := range p.Pretokenizers {
				if err := walk(&p.Pretokenizers[i]); err != nil {
					return err
				}
			}
		case "Metaspace":
			if p.Replacement != "▁" && p.Replacement != "" {
				return fmt.Errorf("%w: Metaspace replacement %q", ErrUnsupported, p.Replacement)
			}
			meta.on, meta.missing = true, true
			meta.prefix = p.PrependScheme != "never" && (p.AddPrefixSpace == nil || *p.AddPrefixSpace)
			meta.first = p.PrependScheme == "first"
			meta.split = p.Split == nil || *p.Split
		case "ByteLevel":
			byteLevel = true
			prefixSpace = p.AddPrefixSpace != nil && *p.AddPrefixSpace
			if p.UseRegex == nil || *p.UseRegex {
				splits = append(splits, splitter{style: styleGPT2})
			}
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
			splits = append(splits, s)
		default:
			return fmt.Errorf("%w: pre-tokenizer %q", ErrUnsupported, p.Type)
		}
		return nil
	}
	if tj.PreTokenizer != nil {
		if err := walk(tj.PreTokenizer); err != nil {
			return nil, fmt.Errorf("tokenizer.json: %w", err)
		}
	}

	var nfcNeeded bool
	var walkNorm func(n *hfNormalizer) error
	walkNorm = func(n *hfNormalizer) error {
		switch n.Type {
		case "Sequence":
			for i := range n.Normalizers {
				if err := walkNorm(&n.Normalizers[i]); err != nil {
					return err
				}
			}
		case "NFC":
			nfcNeeded = true
		case "Prepend":
			if n.Prepend != "▁" {
				return fmt.Errorf("%w: Prepend normalizer of %q", ErrUnsupported, n.Prepend)
			}
			meta.on, meta.prefix = true, true
		case "Replace":
			if n.Pattern == nil || n.Pattern.String == nil || *n.Pattern.String != " " || n.Content != "▁" {
				return fmt.Errorf("%w: Replace normalizer other than space to ▁", ErrUnsupported)
			}
			meta.on = true
		default:
			return fmt.Errorf("%w: normalizer %q", ErrUnsupported, n.Type)
		}
		return nil
	}
	if tj.Normalizer != nil {
		if err := walkNorm(tj.Normalizer); err != nil {
			return nil, fmt.Errorf("tokenizer.json: %w", err)
		}
	}

	if byteLevel == meta.on {
		return nil, fmt.Errorf("tokenizer.json: %w: need either a ByteLevel pre-tokenizer or SentencePiece-style ▁ spaces", ErrUnsupported)
	}

	// vocabulary: model vocab, then added tokens (tokenizer.json, then any
	// more in tokenizer_config.json's added_tokens_decoder)
	n := 0
	for _, id := range tj.Model.Vocab {
		if id < 0 {
			return nil, fmt.Errorf("tokenizer.json: negative token id %d", id)
		}
		n = max(n, int(id)+1)
	}
	added := tj.AddedTokens
	seen := map[int32]bool{}
	for _, a := range added {
		seen[a.ID] = true
	}
	for key, a := range cfg.AddedDecoder {
		var id int32
		if _, err := fmt.Sscan(key, &id); err != nil {
			return nil, fmt.Errorf("tokenizer_config.json: added_tokens_decoder key %q: %w", key, err)
		}
		if !seen[id] {
			added = append(added, hfAddedToken{ID: id, Content: a.Content, Special: a.Special, LStrip: a.LStrip, RStrip: a.RStrip})
		}
	}
	for _, a := range added {
		if a.ID < 0 {
			return nil, fmt.Errorf("tokenizer.json: negative added token id %d", a.ID)
		}
		n = max(n, int(a.ID)+1)
	}
	if n == 0 {
		return nil, fmt.Errorf("tokenizer.json: empty vocabulary")
	}
	if n > 1<<24 {
		return nil, fmt.Errorf("tokenizer.json: token id %d is too large", n-1)
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
	t := newTokenizer(kindBPE, tokens, types, make([]float32, n))
	pairs, err := parseMerges(tj.Model.Merges)
	if err != nil {
		return nil, fmt.Errorf("tokenizer.json: merges: %w", err)
	}
	t.setMerges(pairs)
	t.ignoreMerges = tj.Model.IgnoreMerges
	t.nfc = nfcNeeded
	t.prefixSpace = prefixSpace
	if cfg.AddPrefixSpace != nil {
		t.prefixSpace = *cfg.AddPrefixSpace
	}
	t.cache = newWordCache(1 << 16)
	if meta.on {
		t.metaspace = true
		t.addSpacePrefix, t.prefixFirst, t.prefixMissing, t.splitMeta = meta.prefix, meta.first, meta.missing, meta.split
	} else {
		if len(splits) == 0 {
			return nil, fmt.Errorf("tokenizer.json: %w: no pre-tokenizer regex", ErrUnsupported)
		}
		t.split = chain(splits)
	}

	// special tokens
	lookup := func(field string, raw json.RawMessage, dst *int32) error {
		name, err := tokenName(raw)
		if err != nil {
			return fmt.Errorf("tokenizer_config.json: %s: %w", field, err)
		}
		if name == "" {
			return nil
		}
		id, ok := t.vocab[name]
		if !ok {
			return fmt.Errorf("tokenizer_config.json: %s %q is not in the vocabulary", field, name)
		}
		*dst = id
		return nil
	}
	if err := lookup("bos_token", cfg.BOS, &t.bos); err != nil {
		return nil, err
	}
	if err := lookup("eos_token", cfg.EOS, &t.eos); err != nil {
		return nil, err
	}
	if err := lookup("unk_token", cfg.UNK, &t.unk); err != nil {
		return nil, err
	}
	if t.unk < 0 && tj.Model.UnkToken != nil {
		if id, ok := t.vocab[*tj.Model.UnkToken]; ok {
			t.unk = id
		}
	}

	// add_bos/add_eos: the config's flags, else the post-processor's
	// template, else BOS for llama3-style vocabularies as llama.cpp does
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
	if t.bos < 0 && t.addBOS || t.eos < 0 && t.addEOS {
		return nil, fmt.Errorf("tokenizer_config.json: add_bos_token/add_eos_token set without the token")
	}
	if tmpl, err := chatTemplate(cfg.ChatTemplate); err != nil {
		return nil, fmt.Errorf("tokenizer_config.json: chat_template: %w", err)
	} else {
		t.chatTemplate = tmpl
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
