package grammar

import (
	"bytes"
	"math/bits"
	"slices"
	"sync"
)

// Vocab is a tokenizer's vocabulary as a trie of the tokens' output bytes,
// built once per model. Safe for concurrent use.
type Vocab struct {
	n int // token ids
	// nodes is the trie in preorder (one struct per node, for locality
	// in the walk), with a sentinel at the end; the tokens whose bytes
	// end at node i are toks[nodes[i].tok:nodes[i+1].tok].
	nodes []trieNode
	toks  []int32
	// below[i] holds every byte read in node i's subtree (its own
	// included): when a state keeps itself on all of them, every token
	// of the subtree is allowed without walking it.
	below []byteSet
	// height[i] is the length in bytes of the longest path from node i
	// (itself included) down its subtree.
	height []uint16
	// chars[i] is the most characters (a cut last one included) on a
	// path from node i down, counting the bytes that are not UTF-8
	// continuation bytes: the chain steps a subtree of characters needs.
	chars []uint16
	// utf8[i] has bit k set when every path from node i down is valid
	// UTF-8 (a last character may be cut short) from decoder state k
	// (see utf8Step); bit 0: node i starts a character.
	utf8 []uint8
	// eog are the end-of-generation tokens, allowed where the grammar
	// may end.
	eog []int32
	// maxDepth is the longest token, in bytes.
	maxDepth int
	// text holds every token's bytes: text[at[id]:at[id+1]].
	text []byte
	at   []int32

	// splits caches, per self-loop class of states (see loopSplit),
	// the tokens such a state allows without reading them and the trie
	// of the others.
	mu     sync.Mutex
	splits map[loopKey]*loopSplit
}

// loopKey names a class of states: those that keep themselves on the
// bytes of loop and, when utf8 is set, also on every non-ASCII character
// (see DFA.utf8Loops).
type loopKey struct {
	loop byteSet
	utf8 bool
}

// loopSplit divides the vocabulary for the states of one loopKey: base
// holds the tokens every such state allows (all their bytes keep the
// state, or, with utf8, they are valid UTF-8 from a character boundary
// whose ASCII bytes keep it), rest is the trie of every other token, the
// only ones a mask of such a state still has to walk.
type loopSplit struct {
	base Mask
	rest *Vocab
}

// Limits of the split cache: the states whose loops hold fewer bytes
// keep few tokens in base and walk the whole trie instead; a vocabulary
// keeps at most maxSplits splits (a grammar has few loop classes: JSON's
// string contents, its blanks, a pattern's classes).
const (
	minSplitLoop = 64
	maxSplits    = 32
)

// trieNode is one node of the token trie: it reads b at depth (1-based),
// and its subtree ends before node end.
type trieNode struct {
	b     byte
	depth uint16
	end   int32
	tok   int32
}

// NewVocab builds the trie. tokenBytes gives each token's output bytes;
// tokens with none (control tokens) are never allowed by a mask, except
// the end-of-generation tokens eog where the grammar may end.
func NewVocab(n int, tokenBytes func(id int32) []byte, eog []int32) *Vocab {
	v := &Vocab{n: n, eog: slices.Clone(eog)}
	list := make([]tok, 0, n)
	isEOG := map[int32]bool{}
	for _, id := range eog {
		isEOG[id] = true
	}
	v.at = make([]int32, n+1)
	for id := range int32(n) {
		b := tokenBytes(id)
		v.text = append(v.text, b...)
		v.at[id+1] = int32(len(v.text))
		if isEOG[id] {
			continue
		}
		if len(b) == 0 || len(b) > 0xffff {
			continue
		}
		list = append(list, tok{b, id})
	}
	slices.SortFunc(list, func(a, b tok) int {
		if c := bytes.Compare(a.b, b.b); c != 0 {
			return c
		}
		return int(a.id - b.id)
	})
	v.buildTrie(list)
	return v
}

// tok is a token of the trie: its bytes and id.
type tok struct {
	b  []byte
	id int32
}

// buildTrie builds the trie of list, sorted by bytes then id.
func (v *Vocab) buildTrie(list []tok) {
	// path[d] is the node at depth d+1 on the current path.
	var path []int32
	var prev []byte
	for _, t := range list {
		lcp := 0
		for lcp < len(prev) && lcp < len(t.b) && prev[lcp] == t.b[lcp] {
			lcp++
		}
		// Close the nodes below the common prefix.
		for len(path) > lcp {
			v.nodes[path[len(path)-1]].end = int32(len(v.nodes))
			path = path[:len(path)-1]
		}
		for d := lcp; d < len(t.b); d++ {
			path = append(path, int32(len(v.nodes)))
			v.nodes = append(v.nodes, trieNode{b: t.b[d], depth: uint16(d + 1), tok: int32(len(v.toks))})
		}
		// t's node is the last one: its tokens run to the next node's
		// start.
		v.toks = append(v.toks, t.id)
		v.maxDepth = max(v.maxDepth, len(t.b))
		prev = t.b
	}
	for _, p := range path {
		v.nodes[p].end = int32(len(v.nodes))
	}
	v.nodes = append(v.nodes, trieNode{tok: int32(len(v.toks))}) // sentinel
	// Preorder: a node's parent is the last node one level up before
	// it; folding from the end gives each node its subtree's bytes.
	nn := len(v.nodes) - 1
	v.below = make([]byteSet, nn)
	par := make([]int32, nn)
	path = path[:0]
	for i := range nn {
		nd := v.nodes[i]
		path = append(path[:nd.depth-1], int32(i))
		par[i] = -1
		if nd.depth > 1 {
			par[i] = path[nd.depth-2]
		}
		v.below[i].add(nd.b, nd.b)
	}
	v.height = make([]uint16, nn)
	v.chars = make([]uint16, nn)
	v.utf8 = make([]uint8, nn)
	kids := make([]uint8, nn) // the AND of the children's utf8
	for i := range kids {
		kids[i] = 0xff
	}
	for i := nn - 1; i >= 0; i-- {
		v.height[i] = max(v.height[i], 1)
		if v.nodes[i].b&0xc0 != 0x80 {
			v.chars[i]++
		}
		ok := uint8(0)
		for k := range uint8(8) {
			if next, valid := utf8Step(v.nodes[i].b, k); valid && kids[i]&(1<<next) != 0 {
				ok |= 1 << k
			}
		}
		v.utf8[i] = ok
		if p := par[i]; p >= 0 {
			kids[p] &= ok
			for w := range 4 {
				v.below[p][w] |= v.below[i][w]
			}
			v.height[p] = max(v.height[p], v.height[i]+1)
			v.chars[p] = max(v.chars[p], v.chars[i])
		}
	}
}

// utf8Step is a strict UTF-8 decoder (no overlong forms, surrogates or
// code points past U+10FFFF): from state k it reads b and returns the
// next state and whether b is valid. States: 0 between characters; 1, 2,
// 3 that many continuation bytes (80–BF) due; 4 after E0 (A0–BF, then
// one), 5 after ED (80–9F, then one), 6 after F0 (90–BF, then two), 7
// after F4 (80–8F, then two).
func utf8Step(b byte, k uint8) (uint8, bool) {
	in := func(lo, hi byte) bool { return b >= lo && b <= hi }
	switch k {
	case 0:
		switch {
		case b < 0x80:
			return 0, true
		case in(0xc2, 0xdf):
			return 1, true
		case b == 0xe0:
			return 4, true
		case b == 0xed:
			return 5, true
		case in(0xe1, 0xef):
			return 2, true
		case b == 0xf0:
			return 6, true
		case b == 0xf4:
			return 7, true
		case in(0xf1, 0xf3):
			return 3, true
		}
		return 0, false
	case 1, 2, 3:
		return k - 1, in(0x80, 0xbf)
	case 4:
		return 1, in(0xa0, 0xbf)
	case 5:
		return 1, in(0x80, 0x9f)
	case 6:
		return 2, in(0x90, 0xbf)
	case 7:
		return 2, in(0x80, 0x8f)
	}
	return 0, false
}

// Bytes returns the output bytes of a token (not to be modified).
func (v *Vocab) Bytes(id int32) []byte {
	if id < 0 || int(id) >= v.n {
		return nil
	}
	return v.text[v.at[id]:v.at[id+1]:v.at[id+1]]
}

// IsEOG reports whether id ends the generation.
func (v *Vocab) IsEOG(id int32) bool { return slices.Contains(v.eog, id) }

// Size is the number of token ids the vocabulary covers.
func (v *Vocab) Size() int { return v.n }

// Nodes is the number of trie nodes.
func (v *Vocab) Nodes() int { return len(v.nodes) - 1 }

// Mask is a bitmap of allowed token ids.
type Mask []uint64

// NewMask makes an empty mask for n tokens.
func NewMask(n int) Mask { return make(Mask, (n+63)/64) }

// Has reports whether id is allowed.
func (m Mask) Has(id int32) bool { return m[id>>6]&(1<<(id&63)) != 0 }

func (m Mask) set(id int32) { m[id>>6] |= 1 << (id & 63) }

func (s *byteSet) count() int {
	return bits.OnesCount64(s[0]) + bits.OnesCount64(s[1]) + bits.OnesCount64(s[2]) + bits.OnesCount64(s[3])
}

// Count is the number of allowed tokens.
func (m Mask) Count() int {
	n := 0
	for _, w := range m {
		n += bits.OnesCount64(w)
	}
	return n
}

// chainMinTokens is the smallest subtree for which fill tries a chain.
const chainMinTokens = 16

// split returns the loopSplit of k, built on first use (a pass over the
// tokens and a trie of those outside base).
func (v *Vocab) split(k loopKey) *loopSplit {
	v.mu.Lock()
	defer v.mu.Unlock()
	if sp, ok := v.splits[k]; ok {
		return sp
	}
	// In id order (the bytes in sequence) into base; the others in
	// the trie's order (sorted, as the rest's trie wants them).
	base := NewMask(v.n)
	tab := k.table()
	for id := range int32(v.n) {
		if b := v.Bytes(id); len(b) > 0 && len(b) <= 0xffff && tab.allows(b) {
			base.set(id)
		}
	}
	// An end-of-generation token is not in the trie: base must not
	// hold it either (fill sets it where the state accepts).
	for _, id := range v.eog {
		if id >= 0 && int(id) < v.n {
			base[id>>6] &^= 1 << (id & 63)
		}
	}
	var list []tok
	for _, id := range v.toks {
		if !base.Has(id) {
			list = append(list, tok{v.Bytes(id), id})
		}
	}
	// The rest's trie only walks: it needs no token texts.
	sub := &Vocab{n: v.n}
	sub.buildTrie(list)
	sp := &loopSplit{base: base, rest: sub}
	if v.splits == nil || len(v.splits) >= maxSplits {
		v.splits = map[loopKey]*loopSplit{}
	}
	v.splits[k] = sp
	return sp
}

// table is k's test as a table.
func (k *loopKey) table() *loopTable {
	t := &loopTable{utf8: k.utf8}
	for c := range 256 {
		t.in[c] = k.loop.has(byte(c))
	}
	return t
}

// loopTable is a loopKey's test: in[c] when byte c keeps the state.
type loopTable struct {
	in   [256]bool
	utf8 bool
}

// allows reports whether every state of the key allows the token b
// without reading it: its bytes all keep the state, or (utf8) it is
// valid UTF-8 from a character boundary, a last character possibly cut
// short, and its ASCII bytes keep the state. This is the test fill makes
// on a whole subtree.
func (t *loopTable) allows(b []byte) bool {
	all := true
	for _, c := range b {
		if !t.in[c] {
			all = false
			break
		}
	}
	if all {
		return true
	}
	if !t.utf8 {
		return false
	}
	st := uint8(0)
	for _, c := range b {
		next, valid := utf8Step(c, st)
		if !valid || (c < 0x80 && !t.in[c]) {
			return false
		}
		st = next
	}
	return true
}

// fill writes into m the tokens allowed in state s of d: those whose
// bytes all advance the DFA, and the end-of-generation tokens when s
// accepts. states is scratch of maxDepth+1.
func (v *Vocab) fill(d *DFA, s State, m Mask, states []State) error {
	clear(m)
	if d.Accepts(s) {
		for _, id := range v.eog {
			m.set(id)
		}
	}
	if s == Dead {
		return nil
	}
	if loop := d.selfLoops(s); loop != nil && loop.count() >= minSplitLoop {
		// A state that keeps itself on many bytes (a string's
		// contents): the tokens made of them come from the split of
		// its loop class, and only the others are walked.
		sp := v.split(loopKey{loop: *loop, utf8: d.utf8Loops(s)})
		for w, x := range sp.base {
			m[w] |= x
		}
		return sp.rest.walk(d, s, m, states)
	}
	return v.walk(d, s, m, states)
}

// mayChain reports whether node i's subtree may keep to the chain from
// state s: its bytes (or its ASCII bytes, when it is valid UTF-8) are
// among those of the chain's first link, and (for characters) its lead
// byte is not refused. It is a necessary condition,
// far cheaper than following the chain as deep as the subtree: the
// states of a JSON document between its strings read few bytes each,
// and following their chains would step through many states for
// nothing.
func (v *Vocab) mayChain(d *DFA, s State, i int) bool {
	_, set, ok, err := d.main(s)
	if err != nil || !ok {
		// An error comes back from chain, where fill reports it.
		return err != nil
	}
	if v.below[i].subsetOf(set) {
		return true
	}
	if v.utf8[i]&1 == 0 || !v.below[i].asciiSubsetOf(set) {
		return false
	}
	// Characters keep to the chain only when they take s on to a live
	// state: the node's own (lead) byte must not be refused.
	t, err := d.Step(s, v.nodes[i].b)
	return err != nil || t != Dead
}

// chainHolds reports whether every token of node i's subtree keeps to
// the chain from s: its bytes are the chain's for as many steps as its
// height, or it is valid UTF-8 from a character boundary whose characters
// keep to the chain for as many steps as it holds characters (fewer than
// its bytes where some are multi-byte).
func (v *Vocab) chainHolds(d *DFA, s State, i int) (bool, error) {
	ch, err := d.chain(s, int(v.height[i]))
	if err != nil {
		return false, err
	}
	if ch != nil && v.below[i].subsetOf(&ch.bytes) {
		return true, nil
	}
	if v.utf8[i]&1 == 0 {
		return false, nil
	}
	if v.chars[i] < v.height[i] {
		if ch, err = d.chain(s, int(v.chars[i])); err != nil {
			return false, err
		}
	}
	return ch != nil && ch.utf8 && v.below[i].asciiSubsetOf(&ch.bytes), nil
}

// walk adds to m the tokens of the trie allowed in state s (not Dead).
func (v *Vocab) walk(d *DFA, s State, m Mask, states []State) error {
	g := d.g
	nc := int32(g.nClasses)
	classOf := &g.classOf
	states[0] = s
	nodes := v.nodes
	n := len(nodes) - 1
	for i := 0; i < n; {
		nd := &nodes[i]
		from := states[nd.depth-1]
		loop := d.selfLoops(from)
		if loop != nil && (v.below[i].subsetOf(loop) ||
			(v.utf8[i]&1 != 0 && v.below[i].asciiSubsetOf(loop) && d.utf8Loops(from))) {
			// Every byte below keeps the state, or every character
			// below (valid UTF-8, its ASCII bytes keeping the state)
			// brings it back: the whole subtree is allowed.
			for j, e := nd.tok, nodes[nd.end].tok; j < e; j++ {
				id := v.toks[j]
				m[id>>6] |= 1 << (id & 63)
			}
			i = int(nd.end)
			continue
		}
		if loop == nil && nodes[nd.end].tok-nd.tok >= chainMinTokens && v.mayChain(d, from, i) {
			// In a state without loops, a larger subtree whose bytes
			// all follow one chain of states (a counted string's
			// characters) is allowed whole when the chain lives as
			// long as its longest token.
			ok, err := v.chainHolds(d, from, i)
			if err != nil {
				return err
			}
			if ok {
				for j, e := nd.tok, nodes[nd.end].tok; j < e; j++ {
					id := v.toks[j]
					m[id>>6] |= 1 << (id & 63)
				}
				i = int(nd.end)
				continue
			}
		}
		c := classOf[nd.b]
		t := d.trans[int32(from)*nc+int32(c)]
		if t < 0 {
			ns, err := d.stepClass(from, c)
			if err != nil {
				return err
			}
			t = int32(ns)
		}
		if t == 0 {
			i = int(nd.end)
			continue
		}
		states[nd.depth] = State(t)
		for j, e := nd.tok, nodes[i+1].tok; j < e; j++ {
			id := v.toks[j]
			m[id>>6] |= 1 << (id & 63)
		}
		i++
	}
	return nil
}
