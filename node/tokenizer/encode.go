package tokenizer

import (
	"math"
	"strings"
	"sync"
	"unicode/utf8"
)

// Encode returns the token ids of text. addSpecial adds BOS/EOS as the
// vocabulary asks (AddBOS, AddEOS). parseSpecial lets control-token text in
// the input (such as "<|eot_id|>") become that token; user-defined tokens are
// always matched. Safe for concurrent use.
func (t *Tokenizer) Encode(text string, addSpecial, parseSpecial bool) []int32 {
	out := make([]int32, 0, len(text)/3+2)
	if addSpecial && t.addBOS && t.bos >= 0 {
		out = append(out, t.bos)
	}
	s := t.scratch.Get().(*scratch)
	defer t.scratch.Put(s)

	first := true     // the next text fragment starts the input
	afterSpec := true // the next text fragment follows a special token (or the start)
	pos := 0
	for pos < len(text) {
		start, sp := t.findSpecial(text, pos, parseSpecial)
		end := len(text)
		if sp != nil {
			end = start
		}
		frag := text[pos:end]
		if sp != nil && sp.lstrip {
			frag = strings.TrimRight(frag, " \t\n\v\f\r")
		}
		if frag != "" {
			out = t.encodeFragment(out, frag, afterSpec, first, s)
			afterSpec, first = false, false
		}
		if sp == nil {
			break
		}
		out = append(out, sp.id)
		afterSpec, first = true, false
		pos = start + len(sp.text)
		if sp.rstrip {
			for pos < len(text) && strings.IndexByte(" \t\n\v\f\r", text[pos]) >= 0 {
				pos++
			}
		}
	}
	if addSpecial && t.addEOS && t.eos >= 0 {
		out = append(out, t.eos)
	}
	if addSpecial && t.addSep && t.sep >= 0 {
		out = append(out, t.sep)
	}
	return out
}

// findSpecial returns the leftmost (then longest) special token in text at
// or after from, or nil.
func (t *Tokenizer) findSpecial(text string, from int, parseSpecial bool) (int, *special) {
	first := &t.userFirst
	if parseSpecial {
		first = &t.specialFirst
	}
	for i := from; i < len(text); i++ {
		if !first[text[i]] {
			continue
		}
		for _, k := range t.specialsBy[text[i]] {
			sp := &t.specials[k]
			if sp.control && !parseSpecial {
				continue
			}
			if strings.HasPrefix(text[i:], sp.text) {
				return i, sp
			}
		}
	}
	return -1, nil
}

// encodeFragment encodes text that holds no special tokens.
func (t *Tokenizer) encodeFragment(out []int32, frag string, afterSpecial, atStart bool, s *scratch) []int32 {
	if t.kind == kindWPM {
		return t.encodeWordPiece(out, frag, s)
	}
	if t.kind == kindSPM {
		text := strings.ReplaceAll(frag, " ", "▁")
		if t.addSpacePrefix && afterSpecial {
			text = "▁" + text
		}
		if !t.spmWords {
			return t.encodeSPM(out, text, s)
		}
		// no token holds a ▁ after another character, so no merge crosses
		// the start of a ▁-led word: encode word by word
		for start := 0; start < len(text); {
			end := nextWord(text, start, false)
			s.word = append(s.word[:0], text[start:end]...)
			if ids, ok := t.cache.get(s.word); ok {
				out = append(out, ids...)
			} else {
				mark := len(out)
				out = t.encodeSPM(out, text[start:end], s)
				t.cache.put(s.word, out[mark:])
			}
			start = end
		}
		return out
	}
	if t.nfc {
		frag = nfc(frag)
	}
	if t.metaspace {
		text := strings.ReplaceAll(frag, " ", "▁")
		if t.addSpacePrefix && (atStart || afterSpecial && !t.prefixFirst) && !(t.prefixMissing && strings.HasPrefix(text, "▁")) {
			text = "▁" + text
		}
		if !t.splitMeta && !t.spmWords {
			s.word = append(s.word[:0], text...)
			return t.encodeWord(out, s.word, s)
		}
		for start := 0; start < len(text); {
			end := nextWord(text, start, t.splitMeta)
			s.word = append(s.word[:0], text[start:end]...)
			out = t.encodeWord(out, s.word, s)
			start = end
		}
		return out
	}
	if t.prefixSpace && !strings.HasPrefix(frag, " ") {
		frag = " " + frag
	}
	s.ends = t.split.split(frag, s.ends[:0])
	start := 0
	for _, end := range s.ends {
		s.word = byteLevelEncode(s.word[:0], frag[start:end])
		out = t.encodeWord(out, s.word, s)
		start = end
	}
	return out
}

// nextWord returns where the ▁-led word starting at start ends: before the
// next ▁ (every one when each is set, else only one after another character).
func nextWord(text string, start int, each bool) int {
	i := start + 1
	for {
		k := strings.Index(text[i:], "▁")
		if k < 0 {
			return len(text)
		}
		i += k
		if each || !strings.HasSuffix(text[:i], "▁") {
			return i
		}
		i += len("▁")
	}
}

// encodeSPM merges the characters of text (spaces already written as ▁) by
// the highest vocabulary score first, as SentencePiece's BPE mode does;
// characters left without a token become byte tokens.
func (t *Tokenizer) encodeSPM(out []int32, text string, s *scratch) []int32 {
	syms := s.syms[:0]
	for i := 0; i < len(text); {
		n := utf8LenOfLead(text[i])
		if i+n > len(text) {
			n = len(text) - i
		}
		idx := int32(len(syms))
		next := idx + 1
		if i+n == len(text) {
			next = -1
		}
		syms = append(syms, symbol{start: int32(i), n: int32(n), prev: idx - 1, next: next})
		i += n
	}
	h := candidateHeap{items: s.heap[:0]}
	try := func(l, r int32) {
		if l < 0 || r < 0 {
			return
		}
		a, b := syms[l], syms[r]
		id, ok := t.vocab[text[a.start:a.start+a.n+b.n]]
		if !ok {
			return
		}
		h.push(candidate{key: uint64(descending(t.scores[id]))<<32 | uint64(l), left: l, right: r, size: a.n + b.n})
	}
	for i := int32(1); i < int32(len(syms)); i++ {
		try(i-1, i)
	}
	for len(h.items) > 0 {
		c := h.pop()
		l, r := &syms[c.left], &syms[c.right]
		if l.n == 0 || r.n == 0 || l.n+r.n != c.size {
			continue
		}
		l.n += r.n
		r.n = 0
		l.next = r.next
		if r.next >= 0 {
			syms[r.next].prev = c.left
		}
		try(l.prev, c.left)
		try(c.left, l.next)
	}
	for i := int32(0); i >= 0 && len(syms) > 0; i = syms[i].next {
		sym := syms[i]
		piece := text[sym.start : sym.start+sym.n]
		if id, ok := t.vocab[piece]; ok {
			out = append(out, id)
			continue
		}
		for j := 0; j < len(piece); j++ {
			out = t.appendByte(out, piece[j])
		}
	}
	s.syms, s.heap = syms, h.items
	return out
}

// appendByte appends the byte-fallback token of b (unknown when missing).
func (t *Tokenizer) appendByte(out []int32, b byte) []int32 {
	if id := t.byteTok[b]; id >= 0 {
		return append(out, id)
	}
	if t.unk >= 0 {
		return append(out, t.unk)
	}
	return out
}

func utf8LenOfLead(c byte) int {
	switch {
	case c < 0x80:
		return 1
	case c>>5 == 0x6:
		return 2
	case c>>4 == 0xE:
		return 3
	case c>>3 == 0x1E:
		return 4
	}
	return 1
}

// encodeWord encodes one pre-token, given in its byte-level form.
func (t *Tokenizer) encodeWord(out []int32, word []byte, s *scratch) []int32 {
	if t.ignoreMerges {
		if id, ok := t.vocab[string(word)]; ok {
			return append(out, id)
		}
	}
	if ids, ok := t.cache.get(word); ok {
		return append(out, ids...)
	}
	mark := len(out)
	syms := s.syms[:0]
	for i := 0; i < len(word); {
		_, n := utf8.DecodeRune(word[i:])
		id, ok := t.vocab[string(word[i:i+n])]
		if !ok {
			id = -1
		}
		idx := int32(len(syms))
		next := idx + 1
		if i+n == len(word) {
			next = -1
		}
		syms = append(syms, symbol{id: id, start: int32(i), n: int32(n), prev: idx - 1, next: next})
		i += n
	}
	h := candidateHeap{items: s.heap[:0]}
	try := func(l, r int32) {
		if l < 0 || r < 0 {
			return
		}
		a, b := syms[l].id, syms[r].id
		if a < 0 || b < 0 {
			return
		}
		m, ok := t.merges[uint64(a)<<32|uint64(b)]
		if !ok {
			return
		}
		h.push(candidate{key: uint64(m.rank)<<32 | uint64(l), left: l, right: r, lid: a, rid: b, id: m.id})
	}
	for i := int32(1); i < int32(len(syms)); i++ {
		try(i-1, i)
	}
	for len(h.items) > 0 {
		c := h.pop()
		l, r := &syms[c.left], &syms[c.right]
		if l.id != c.lid || r.id != c.rid || l.next != c.right {
			continue
		}
		l.id = c.id
		l.n += r.n
		r.id = -2
		l.next = r.next
		if r.next >= 0 {
			syms[r.next].prev = c.left
		}
		try(l.prev, c.left)
		try(c.left, l.next)
	}
	for i := int32(0); i >= 0 && len(syms) > 0; i = syms[i].next {
		sym := syms[i]
		if sym.id >= 0 {
			out = append(out, sym.id)
			continue
		}
		// not in the vocabulary: fall back to the bytes it stands for
		if t.metaspace {
			for _, b := range word[sym.start : sym.start+sym.n] {
				out = t.appendByte(out, b)
			}
			continue
		}
		for _, r := range string(word[sym.start : sym.start+sym.n]) {
			if b, ok := byteOfRune(r); ok {
				out = t.appendByte(out, b)
			} else if t.unk >= 0 {
				out = append(out, t.unk)
			}
		}
	}
	s.syms, s.heap = syms, h.items
	t.cache.put(word, out[mark:])
	return out
}

// descending maps a score to a key that sorts higher scores first.
func descending(f float32) uint32 {
	b := math.Float32bits(f)
	if b&(1<<31) != 0 {
		b = ^b // negative: larger magnitude sorts lower
	} else {
		b |= 1 << 31
	}
	return ^b
}

// candidateHeap is a binary min-heap of candidates by key.
type candidateHeap struct {
	items []candidate
}

func (h *candidateHeap) push(c candidate) {
	h.items = append(h.items, c)
	i := len(h.items) - 1
	for i > 0 {
		p := (i - 1) / 2
		if h.items[i].key >= h.items[p].key {
			break
		}
		h.items[i], h.items[p] = h.items[p], h.items[i]
		i = p
	}
}

func (h *candidateHeap) pop() candidate {
	top := h.items[0]
	last := len(h.items) - 1
	h.items[0] = h.items[last]
	h.items = h.items[:last]
	i := 0
	for {
		l, r, m := 2*i+1, 2*i+2, i
		if l < last && h.items[l].key < h.items[m].key {
			m = l
		}
		if r < last && h.items[r].key < h.items[m].key {
			m = r
		}
		if m == i {
			break
		}
		h.items[i], h.items[m] = h.items[m], h.items[i]
		i = m
	}
	return top
}

// wordCache remembers the ids of recent pre-tokens. Bounded: when full it
// starts over. Safe for concurrent use; a nil cache caches nothing.
type wordCache struct {
	mu  sync.RWMutex
	m   map[string][]int32
	max int
}

func newWordCache(max int) *wordCache {
	return &wordCache{m: make(map[string][]int32, max), max: max}
}

func (c *wordCache) get(word []byte) ([]int32, bool) {
	if c == nil {
		return nil, false
	}
	c.mu.RLock()
	ids, ok := c.m[string(word)]
	c.mu.RUnlock()
	return ids, ok
}

func (c *wordCache) put(word []byte, ids []int32) {
	if c == nil || len(word) > 64 {
		return
	}
	c.mu.Lock()
	if len(c.m) >= c.max {
		clear(c.m)
	}
	c.m[string(word)] = append([]int32(nil), ids...)
	c.mu.Unlock()
}
