package grammar

import (
	"fmt"
)

// maskCacheBytes bounds the masks one Compiled keeps.
const maskCacheBytes = 16 << 20

// Compiled is a grammar followed over one vocabulary: its DFA and the
// masks of the states met so far, shared by the matchers of every
// generation under the same grammar. Not safe for concurrent use: the
// matchers sharing it must run on one goroutine.
type Compiled struct {
	v      *Vocab
	d      *DFA
	masks  map[State]Mask
	maxN   int
	states []State
}

// Compile prepares g for masks over v.
func Compile(g *Grammar, v *Vocab) (*Compiled, error) {
	d, err := NewDFA(g)
	if err != nil {
		return nil, err
	}
	words := (v.n + 63) / 64
	return &Compiled{v: v, d: d, masks: map[State]Mask{},
		maxN: max(4, maskCacheBytes/(8*max(words, 1))), states: make([]State, v.maxDepth+1)}, nil
}

// Size is the number of grammar states met so far (they and their masks
// stay until the Compiled is dropped).
func (c *Compiled) Size() int { return c.d.Size() }

// Matcher starts a generation at the grammar's root.
func (c *Compiled) Matcher() *Matcher { return &Matcher{c: c, s: c.d.Start()} }

// mask returns the mask of s, from the cache or by walking the trie.
func (c *Compiled) mask(s State) (Mask, error) {
	if mk, ok := c.masks[s]; ok {
		return mk, nil
	}
	if len(c.masks) >= c.maxN {
		clear(c.masks)
	}
	mk := NewMask(c.v.n)
	if err := c.v.fill(c.d, s, mk, c.states); err != nil {
		return nil, err
	}
	c.masks[s] = mk
	return mk, nil
}

// Matcher follows one generation through a grammar: Mask gives the tokens
// allowed next, Accept moves on by a token. Not safe for concurrent use.
type Matcher struct {
	c *Compiled
	s State
}

// NewMatcher compiles g over v and starts a matcher (for one-off use;
// generations under the same grammar share a Compiled).
func NewMatcher(g *Grammar, v *Vocab) (*Matcher, error) {
	c, err := Compile(g, v)
	if err != nil {
		return nil, err
	}
	return c.Matcher(), nil
}

// Mask returns the tokens allowed now. The mask is shared (cached per
// state): the caller must not modify it or keep it past the next Accept.
func (m *Matcher) Mask() (Mask, error) { return m.c.mask(m.s) }

// Accept moves on by token id. A token the grammar does not allow is an
// error (the mask was not applied), and the matcher stays where it was.
func (m *Matcher) Accept(id int32) error {
	if m.c.v.IsEOG(id) {
		if !m.c.d.Accepts(m.s) {
			return fmt.Errorf("end of generation where the grammar cannot end")
		}
		return nil
	}
	b := m.c.v.Bytes(id)
	if len(b) == 0 {
		return fmt.Errorf("token %d has no text the grammar can read", id)
	}
	return m.AcceptBytes(b)
}

// AcceptBytes moves on by raw bytes.
func (m *Matcher) AcceptBytes(b []byte) error {
	s, err := m.c.d.Advance(m.s, b)
	if err != nil {
		return err
	}
	if s == Dead {
		return fmt.Errorf("the grammar does not allow %q here", b)
	}
	m.s = s
	return nil
}

// CanEnd reports whether the input so far is a complete sentence.
func (m *Matcher) CanEnd() bool { return m.c.d.Accepts(m.s) }

// Done reports whether the sentence is complete and nothing can follow.
func (m *Matcher) Done() bool { return m.c.d.Final(m.s) }
