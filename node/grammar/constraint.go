package grammar

import (
	"fmt"
)

// maskCacheBytes bounds the masks one Matcher keeps.
const maskCacheBytes = 32 << 20

// Matcher follows one generation through a grammar over a vocabulary:
// Mask gives the tokens allowed next, Accept moves on by a token. Not safe
// for concurrent use.
type Matcher struct {
	v      *Vocab
	d      *DFA
	s      State
	masks  map[State]Mask
	maxN   int
	states []State
}

// NewMatcher starts a matcher at the grammar's root.
func NewMatcher(g *Grammar, v *Vocab) (*Matcher, error) {
	d, err := NewDFA(g)
	if err != nil {
		return nil, err
	}
	words := (v.n + 63) / 64
	return &Matcher{v: v, d: d, s: d.Start(), masks: map[State]Mask{},
		maxN: max(4, maskCacheBytes/(8*max(words, 1))), states: make([]State, v.maxDepth+1)}, nil
}

// Mask returns the tokens allowed now. The mask is the matcher's (cached
// per state): the caller must not modify or keep it past the next Accept.
func (m *Matcher) Mask() (Mask, error) {
	if mk, ok := m.masks[m.s]; ok {
		return mk, nil
	}
	if len(m.masks) >= m.maxN {
		clear(m.masks)
	}
	mk := NewMask(m.v.n)
	if err := m.v.fill(m.d, m.s, mk, m.states); err != nil {
		return nil, err
	}
	m.masks[m.s] = mk
	return mk, nil
}

// Accept moves on by token id. A token the grammar does not allow is an
// error (the mask was not applied), and the matcher stays where it was.
func (m *Matcher) Accept(id int32) error {
	if m.v.IsEOG(id) {
		if !m.d.Accepts(m.s) {
			return fmt.Errorf("end of generation where the grammar cannot end")
		}
		return nil
	}
	b := m.v.Bytes(id)
	if len(b) == 0 {
		return fmt.Errorf("token %d has no text the grammar can read", id)
	}
	return m.AcceptBytes(b)
}

// AcceptBytes moves on by raw bytes.
func (m *Matcher) AcceptBytes(b []byte) error {
	s, err := m.d.Advance(m.s, b)
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
func (m *Matcher) CanEnd() bool { return m.d.Accepts(m.s) }

// Done reports whether the sentence is complete and nothing can follow.
func (m *Matcher) Done() bool { return m.d.Final(m.s) }
