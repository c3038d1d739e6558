package grammar

import (
	"bytes"
	"math/bits"
	"slices"
)

// Vocab is a tokenizer's vocabulary as a trie of the tokens' output bytes,
// built once per model. Safe for concurrent use.
type Vocab struct {
	n int // token ids
	// The trie in preorder: node i reads byte[i] at depth[i] (1-based);
	// its subtree ends before end[i]; the tokens whose bytes end at it
	// are toks[tokAt[i]:tokAt[i+1]].
	byte_ []byte
	depth []uint16
	end   []int32
	tokAt []int32
	toks  []int32
	// eog are the end-of-generation tokens, allowed where the grammar
	// may end.
	eog []int32
	// maxDepth is the longest token, in bytes.
	maxDepth int
	// text holds every token's bytes: text[at[id]:at[id+1]].
	text []byte
	at   []int32
}

// NewVocab builds the trie. tokenBytes gives each token's output bytes;
// tokens with none (control tokens) are never allowed by a mask, except
// the end-of-generation tokens eog where the grammar may end.
func NewVocab(n int, tokenBytes func(id int32) []byte, eog []int32) *Vocab {
	v := &Vocab{n: n, eog: slices.Clone(eog)}
	type tok struct {
		b  []byte
		id int32
	}
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
	// path[d] is the node at depth d+1 on the current path.
	var path []int32
	var prev []byte
	v.tokAt = append(v.tokAt, 0)
	for _, t := range list {
		lcp := 0
		for lcp < len(prev) && lcp < len(t.b) && prev[lcp] == t.b[lcp] {
			lcp++
		}
		// Close the nodes below the common prefix.
		for len(path) > lcp {
			v.end[path[len(path)-1]] = int32(len(v.byte_))
			path = path[:len(path)-1]
		}
		for d := lcp; d < len(t.b); d++ {
			path = append(path, int32(len(v.byte_)))
			v.byte_ = append(v.byte_, t.b[d])
			v.depth = append(v.depth, uint16(d+1))
			v.end = append(v.end, 0)
			v.tokAt = append(v.tokAt, int32(len(v.toks)))
		}
		v.toks = append(v.toks, t.id)
		v.tokAt[len(v.tokAt)-1] = int32(len(v.toks))
		v.maxDepth = max(v.maxDepth, len(t.b))
		prev = t.b
	}
	for _, p := range path {
		v.end[p] = int32(len(v.byte_))
	}
	return v
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
func (v *Vocab) Nodes() int { return len(v.byte_) }

// Mask is a bitmap of allowed token ids.
type Mask []uint64

// NewMask makes an empty mask for n tokens.
func NewMask(n int) Mask { return make(Mask, (n+63)/64) }

// Has reports whether id is allowed.
func (m Mask) Has(id int32) bool { return m[id>>6]&(1<<(id&63)) != 0 }

func (m Mask) set(id int32) { m[id>>6] |= 1 << (id & 63) }

// Count is the number of allowed tokens.
func (m Mask) Count() int {
	n := 0
	for _, w := range m {
		n += bits.OnesCount64(w)
	}
	return n
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
	g := d.g
	nc := g.nClasses
	states[0] = s
	for i := 0; i < len(v.byte_); {
		dep := v.depth[i]
		from := states[dep-1]
		c := g.classOf[v.byte_[i]]
		t := d.trans[int(from)*nc+int(c)]
		if t < 0 {
			ns, err := d.stepClass(from, c)
			if err != nil {
				return err
			}
			t = int32(ns)
		}
		if t == 0 {
			i = int(v.end[i])
			continue
		}
		states[dep] = State(t)
		for _, id := range v.toks[v.tokAt[i]:v.tokAt[i+1]] {
			m.set(id)
		}
		i++
	}
	return nil
}
