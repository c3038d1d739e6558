// Package tokenizer turns text into token ids and back for the vocabularies
// helexa serves:
//
//   - SentencePiece-style vocabularies (GGUF "llama"): score-driven merging,
//     ▁ for spaces, <0xXX> byte fallback;
//   - byte-level BPE (GGUF "gpt2", Hugging Face tokenizer.json of type BPE):
//     merge ranks over the GPT-2 byte alphabet after a pre-tokenizer — the
//     gpt-2, llama3 and qwen2 splitters are written by hand (Go's regexp has
//     no lookahead), other tokenizer.json regexes run through Go's regexp
//     with the trailing '\s+(?!\S)' rule handled by hand;
//   - SentencePiece-style tokenizer.json (BPE over ▁-escaped text with byte
//     fallback, as Llama 2 and Mistral folders ship);
//   - WordPiece (GGUF "bert": BERT-family embedding models), greedy longest
//     match after BERT's normalizer and punctuation split (wordpiece.go).
//
// Special tokens are matched in the input before the model runs: user-defined
// ones always, control ones when the caller asks to parse special text. The
// end-of-generation set holds EOS, EOT/EOM and the usual end-of-turn tokens
// found by their text. A Tokenizer is immutable once built: every method is
// safe for concurrent use; per-call buffers come from a pool and per-word
// results are kept in a bounded cache.
package tokenizer

import (
	"slices"
	"strings"
	"sync"
	"unicode/utf8"
)

// Token types, numbered as GGUF's tokenizer.ggml.token_type.
const (
	typeNormal      uint8 = 1
	typeUnknown     uint8 = 2
	typeControl     uint8 = 3
	typeUserDefined uint8 = 4
	typeUnused      uint8 = 5
	typeByte        uint8 = 6
)

type modelKind uint8

const (
	kindSPM modelKind = iota + 1 // SentencePiece scores, ▁ for spaces, <0xXX> byte tokens
	kindBPE                      // BPE with merge ranks (byte-level, or ▁-escaped when metaspace)
	kindWPM                      // WordPiece (BERT): greedy longest match, ▁ before a word's first piece
)

// merge is the result of merging one adjacent pair of BPE tokens.
type merge struct {
	rank int32
	id   int32
}

// special is a token matched as a whole in the input before the model runs:
// control tokens (only when special text is parsed) and user-defined tokens
// (always).
type special struct {
	text           string
	id             int32
	control        bool // matched only when parseSpecial
	lstrip, rstrip bool // swallow the whitespace to the left / right
}

// Tokenizer encodes and decodes one vocabulary. Build it with FromGGUF,
// FromHF or FromHFJSON. Safe for concurrent use.
type Tokenizer struct {
	kind      modelKind
	tokens    []string  // raw vocabulary entries, by id
	types     []uint8   // token type, by id
	scores    []float32 // SPM merge scores, by id
	pieceData []byte    // output bytes of all tokens, back to back
	pieceEnd  []uint32  // pieceEnd[id] is where token id's output ends in pieceData
	vocab     map[string]int32

	// BPE
	merges       map[uint64]merge // (left id << 32 | right id) → merge
	split        splitter
	ignoreMerges bool // a whole pre-token found in the vocabulary is emitted as is
	prefixSpace  bool // ByteLevel add_prefix_space: a space before each fragment that starts without one
	nfc          bool // NFC-normalize text first
	cache        *wordCache

	// SPM, and BPE over ▁-escaped text (metaspace)
	metaspace      bool       // BPE: spaces are ▁, no byte-level alphabet, <0xXX> byte fallback
	addSpacePrefix bool       // "▁" before text at the start and after special tokens
	spmWords       bool       // no token has ▁ after another character: encode word by word
	prefixFirst    bool       // metaspace: "▁" only before the start of the input
	prefixMissing  bool       // metaspace: "▁" only when the text does not start with one
	splitMeta      bool       // metaspace: split words before each ▁
	byteTok        [256]int32 // token of each byte value for byte fallback; -1 when absent

	specials     []special    // sorted by length, longest first
	specialsBy   [256][]int32 // indices into specials, by first byte
	specialFirst [256]bool    // first bytes of specials' texts
	userFirst    [256]bool    // first bytes of non-control specials' texts

	// WordPiece
	lowercase    bool // lowercase the text
	stripAccents bool // NFD, then drop non-spacing marks
	maxTokenLen  int  // longest vocabulary entry, in bytes
	sep          int32
	addSep       bool // Encode with addSpecial ends with sep

	bos, eos, unk  int32
	addBOS, addEOS bool
	eog            []int32 // sorted
	chatTemplate   string

	scratch sync.Pool // *scratch
}

// scratch holds per-call buffers.
type scratch struct {
	ends []int
	word []byte
	syms []symbol
	heap []candidate
}

type symbol struct {
	id         int32 // BPE: token id, -1 when not in the vocabulary, -2 when merged away
	start, n   int32 // byte span in the word
	prev, next int32
}

// candidate is a pair of adjacent symbols that may merge.
type candidate struct {
	key         uint64 // merge order, lowest first: priority << 32 | left
	left, right int32
	lid, rid    int32 // BPE: ids the pair had when queued
	id          int32 // BPE: merged id
	size        int32 // SPM: byte length of the merged text
}

// newTokenizer sets up the id-indexed tables shared by all vocabularies.
func newTokenizer(kind modelKind, tokens []string, types []uint8, scores []float32) *Tokenizer {
	t := &Tokenizer{
		kind:   kind,
		tokens: tokens,
		types:  types,
		scores: scores,
		vocab:  make(map[string]int32, len(tokens)),
		bos:    -1, eos: -1, unk: -1, sep: -1,
	}
	for i, s := range tokens {
		if s == "" {
			continue
		}
		if _, dup := t.vocab[s]; !dup {
			t.vocab[s] = int32(i)
		}
	}
	return t
}

// finish derives the output pieces, byte-fallback table, special-token
// matcher and end-of-generation set once ids, types and flags are known.
func (t *Tokenizer) finish() {
	t.findEOG()
	t.pieceData = make([]byte, 0, 8*len(t.tokens))
	t.pieceEnd = make([]uint32, len(t.tokens))
	for i := range t.byteTok {
		t.byteTok[i] = -1
	}
	for id, text := range t.tokens {
		typ := t.types[id]
		switch typ {
		case typeByte:
			if b, ok := parseByteToken(text); ok {
				t.pieceData = append(t.pieceData, b)
				if t.byteTok[b] < 0 {
					t.byteTok[b] = int32(id)
				}
			}
		case typeNormal:
			if t.kind == kindSPM || t.kind == kindWPM || t.metaspace {
				t.pieceData = append(t.pieceData, strings.ReplaceAll(text, "▁", " ")...)
			} else {
				t.pieceData = byteLevelDecode(t.pieceData, text)
			}
		case typeUserDefined:
			if t.kind == kindSPM || t.metaspace {
				t.pieceData = append(t.pieceData, strings.ReplaceAll(text, "▁", " ")...)
			} else {
				t.pieceData = append(t.pieceData, text...)
			}
		case typeUnknown:
			t.pieceData = append(t.pieceData, "\u2585"...)
		}
		t.pieceEnd[id] = uint32(len(t.pieceData))
		if typ == typeControl || typ == typeUserDefined || typ == typeUnknown {
			if text != "" {
				t.specials = append(t.specials, special{text: text, id: int32(id), control: typ != typeUserDefined})
			}
		}
	}
	if t.kind == kindSPM || t.metaspace {
		t.spmWords = true
		for _, text := range t.tokens {
			if strings.Contains(strings.TrimLeft(text, "▁"), "▁") {
				t.spmWords = false
				break
			}
		}
		if t.spmWords && t.cache == nil {
			t.cache = newWordCache(1 << 16)
		}
	}
	if t.kind == kindWPM {
		for _, text := range t.tokens {
			t.maxTokenLen = max(t.maxTokenLen, len(text))
		}
	}
	if t.kind == kindBPE && !t.metaspace {
		// byte-level BPE: the byte's own alphabet character is its token
		for b := 0; b < 256; b++ {
			if id, ok := t.vocab[byteChars[b]]; ok && t.byteTok[b] < 0 {
				t.byteTok[b] = id
			}
		}
	}
	slices.SortStableFunc(t.specials, func(a, b special) int { return len(b.text) - len(a.text) })
	for i, s := range t.specials {
		t.specialsBy[s.text[0]] = append(t.specialsBy[s.text[0]], int32(i))
		t.specialFirst[s.text[0]] = true
		if !s.control {
			t.userFirst[s.text[0]] = true
		}
	}
	t.scratch.New = func() any { return new(scratch) }
}

// setStrip marks the special token id to swallow whitespace on its sides.
func (t *Tokenizer) setStrip(id int32, lstrip, rstrip bool) {
	for i := range t.specials {
		if t.specials[i].id == id {
			t.specials[i].lstrip, t.specials[i].rstrip = lstrip, rstrip
		}
	}
}

// parseByteToken reads "<0xXX>".
func parseByteToken(s string) (byte, bool) {
	if len(s) != 6 || s[:3] != "<0x" || s[5] != '>' {
		return 0, false
	}
	hex := func(c byte) (byte, bool) {
		switch {
		case '0' <= c && c <= '9':
			return c - '0', true
		case 'a' <= c && c <= 'f':
			return c - 'a' + 10, true
		case 'A' <= c && c <= 'F':
			return c - 'A' + 10, true
		}
		return 0, false
	}
	hi, ok1 := hex(s[3])
	lo, ok2 := hex(s[4])
	return hi<<4 | lo, ok1 && ok2
}

// eogTexts are the end-of-turn and end-of-text tokens recognised by their
// text, as models rarely list them all in their metadata.
var eogTexts = map[string]bool{
	"<|eot_id|>": true, "<|im_end|>": true, "<|end|>": true, "<end_of_turn>": true,
	"<|endoftext|>": true, "</s>": true, "<|eom_id|>": true, "<EOT>": true, "_<EOT>": true,
	"<|end_of_text|>": true, "<end_of_utterance>": true, "<|return|>": true, "<|call|>": true,
	"<｜end▁of▁sentence｜>": true, "<eos>": true,
}

// findEOG adds eos and every control-looking end token found by text to the
// end-of-generation set (eot/eom ids from metadata are already in t.eog),
// and makes those tokens control tokens as llama.cpp does.
func (t *Tokenizer) findEOG() {
	set := map[int32]bool{}
	for _, id := range t.eog {
		if t.valid(id) {
			set[id] = true
		}
	}
	if t.eos >= 0 {
		set[t.eos] = true
	}
	for text := range eogTexts {
		if id, ok := t.vocab[text]; ok {
			set[id] = true
			t.types[id] = typeControl
		}
	}
	// gpt-oss style vocabularies end a turn with <|return|>/<|call|>, where
	// <|end|> only closes a message.
	if id, ok := t.vocab["<|end|>"]; ok {
		_, ret := t.vocab["<|return|>"]
		_, call := t.vocab["<|call|>"]
		if ret && call {
			delete(set, id)
		}
	}
	t.eog = t.eog[:0]
	for id := range set {
		t.eog = append(t.eog, id)
	}
	slices.Sort(t.eog)
}

func (t *Tokenizer) valid(id int32) bool { return id >= 0 && int(id) < len(t.tokens) }

// VocabSize returns the number of token ids.
func (t *Tokenizer) VocabSize() int { return len(t.tokens) }

// BOS returns the beginning-of-sequence token, or -1.
func (t *Tokenizer) BOS() int32 { return t.bos }

// EOS returns the end-of-sequence token, or -1.
func (t *Tokenizer) EOS() int32 { return t.eos }

// AddBOS reports whether Encode with addSpecial puts BOS first.
func (t *Tokenizer) AddBOS() bool { return t.addBOS }

// AddEOS reports whether Encode with addSpecial puts EOS last.
func (t *Tokenizer) AddEOS() bool { return t.addEOS }

// IsEOG reports whether generating id ends the generation.
func (t *Tokenizer) IsEOG(id int32) bool {
	_, ok := slices.BinarySearch(t.eog, id)
	return ok
}

// EOGs returns the end-of-generation tokens, sorted. The slice is a copy.
func (t *Tokenizer) EOGs() []int32 { return slices.Clone(t.eog) }

// TokenText returns the raw vocabulary entry of id ("" when out of range).
func (t *Tokenizer) TokenText(id int32) string {
	if !t.valid(id) {
		return ""
	}
	return t.tokens[id]
}

// Lookup returns the id of a raw vocabulary entry.
func (t *Tokenizer) Lookup(text string) (int32, bool) {
	id, ok := t.vocab[text]
	return id, ok
}

// IsControl reports whether id is a control token (BOS, EOS, chat markers…),
// which contributes nothing to decoded text.
func (t *Tokenizer) IsControl(id int32) bool { return t.valid(id) && t.types[id] == typeControl }

// ChatTemplate returns the Hugging Face chat template ("" for GGUF
// vocabularies, whose template is read from tokenizer.chat_template).
func (t *Tokenizer) ChatTemplate() string { return t.chatTemplate }

// BOSText returns the text of the BOS token, or "".
func (t *Tokenizer) BOSText() string { return t.TokenText(t.bos) }

// EOSText returns the text of the EOS token, or "".
func (t *Tokenizer) EOSText() string { return t.TokenText(t.eos) }

// TokenBytes returns the bytes id contributes to decoded output: nothing for
// control tokens, the byte of a byte token, a space for SentencePiece's ▁.
// The slice is a copy.
func (t *Tokenizer) TokenBytes(id int32) []byte {
	if !t.valid(id) {
		return nil
	}
	return slices.Clone(t.piece(id))
}

// piece returns the output bytes of a valid id (not to be modified).
func (t *Tokenizer) piece(id int32) []byte {
	start := uint32(0)
	if id > 0 {
		start = t.pieceEnd[id-1]
	}
	return t.pieceData[start:t.pieceEnd[id]:t.pieceEnd[id]]
}

// stripsAfterBOS reports whether the first piece after a leading BOS loses
// the space the encoder put in front of the text.
func (t *Tokenizer) stripsAfterBOS() bool {
	return ((t.kind == kindSPM || t.metaspace) && t.addSpacePrefix || t.kind == kindWPM) && t.bos >= 0
}

// Decode returns the text of ids. Control tokens contribute nothing. When ids
// start with BOS, the space an SPM encoder adds in front of the text is
// removed again, so Decode(Encode(s, true, false)) == s; other sequences
// (such as a continuation) keep their leading space.
func (t *Tokenizer) Decode(ids []int32) string {
	n := 0
	for _, id := range ids {
		if t.valid(id) {
			n += len(t.piece(id))
		}
	}
	out := make([]byte, 0, n)
	strip := len(ids) > 0 && ids[0] == t.bos && t.stripsAfterBOS()
	for _, id := range ids {
		if !t.valid(id) {
			continue
		}
		p := t.piece(id)
		if strip && len(p) > 0 {
			strip = false
			if p[0] == ' ' {
				p = p[1:]
			}
		}
		out = append(out, p...)
	}
	return string(out)
}

// Decoder turns a stream of tokens into text without ever splitting a UTF-8
// character: bytes of an incomplete character wait for the next tokens. One
// Decoder serves one stream; it is not safe for concurrent use.
type Decoder struct {
	t       *Tokenizer
	pending []byte
	seen    bool
	strip   bool
}

// NewDecoder starts a streaming decoder. If its first token is BOS, the space
// an SPM encoder put in front of the text is removed from the next piece.
func (t *Tokenizer) NewDecoder() *Decoder { return &Decoder{t: t} }

// Add feeds one token and returns the text that became complete.
func (d *Decoder) Add(id int32) string {
	if !d.seen {
		d.seen = true
		d.strip = id == d.t.bos && d.t.stripsAfterBOS()
	}
	if !d.t.valid(id) {
		return ""
	}
	p := d.t.piece(id)
	if d.strip && len(p) > 0 {
		d.strip = false
		if p[0] == ' ' {
			p = p[1:]
		}
	}
	d.pending = append(d.pending, p...)
	k := completeUTF8(d.pending)
	if k == 0 {
		return ""
	}
	s := string(d.pending[:k])
	d.pending = append(d.pending[:0], d.pending[k:]...)
	return s
}

// Flush returns whatever is buffered (an incomplete character, as is) and
// resets the buffer.
func (d *Decoder) Flush() string {
	s := string(d.pending)
	d.pending = d.pending[:0]
	return s
}

// completeUTF8 returns the length of the longest prefix of b that does not
// end inside a UTF-8 sequence that more bytes could still complete.
func completeUTF8(b []byte) int {
	for i := len(b) - 1; i >= 0 && i >= len(b)-utf8.UTFMax; i-- {
		c := b[i]
		if c < 0x80 {
			return len(b) // ASCII: complete
		}
		if c >= 0xC0 { // lead byte
			if utf8.FullRune(b[i:]) {
				return len(b)
			}
			return i
		}
	}
	return len(b)
}
