package grammar

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
)

// ErrTooComplex is returned when following a grammar needs more states or
// stacks than a matcher allows (a very ambiguous or deeply nested grammar).
var ErrTooComplex = errors.New("grammar too complex to follow")

// Limits of one matcher.
const (
	maxStates     = 100000  // interned stack sets
	maxStored     = 8 << 20 // stack positions held by all states
	maxStacks     = 4096    // stacks in one set
	maxStackDepth = 2048    // positions in one stack
)

// checkLeftRecursion refuses rules that can reach themselves without
// reading a byte: a matcher would expand them forever.
func (g *Grammar) checkLeftRecursion() error {
	n := len(g.rules)
	nullable := make([]bool, n)
	for changed := true; changed; {
		changed = false
		for r, alts := range g.rules {
			if nullable[r] {
				continue
			}
			for _, a := range alts {
				if g.seqNullable(a, nullable) {
					nullable[r], changed = true, true
					break
				}
			}
		}
	}
	// first[r]: rules r can start with.
	state := make([]uint8, n) // 0 new, 1 on the path, 2 done
	var visit func(r int32) error
	visit = func(r int32) error {
		state[r] = 1
		for _, a := range g.rules[r] {
			for p := a; g.elems[p].kind != kEnd; p++ {
				e := g.elems[p]
				if e.kind == kSet {
					break
				}
				switch state[e.arg] {
				case 1:
					return fmt.Errorf("%w: rule %q is left-recursive (reaches itself before reading anything)", ErrSyntax, g.names[e.arg])
				case 0:
					if err := visit(e.arg); err != nil {
						return err
					}
				}
				if !nullable[e.arg] {
					break
				}
			}
		}
		state[r] = 2
		return nil
	}
	for r := range n {
		if state[r] == 0 {
			if err := visit(int32(r)); err != nil {
				return err
			}
		}
	}
	return nil
}

func (g *Grammar) seqNullable(p int32, nullable []bool) bool {
	for ; g.elems[p].kind != kEnd; p++ {
		e := g.elems[p]
		if e.kind == kSet || !nullable[e.arg] {
			return false
		}
	}
	return true
}

// asciiSubsetOf reports whether the set's bytes below 0x80 are in o.
func (s *byteSet) asciiSubsetOf(o *byteSet) bool {
	return s[0]&^o[0] == 0 && s[1]&^o[1] == 0
}

func (s *byteSet) subsetOf(o *byteSet) bool {
	return s[0]&^o[0] == 0 && s[1]&^o[1] == 0 && s[2]&^o[2] == 0 && s[3]&^o[3] == 0
}

// computeClasses partitions the bytes by the sets that hold them.
func (g *Grammar) computeClasses() {
	sig := map[string]uint8{}
	key := make([]byte, (len(g.sets)+7)/8)
	for b := range 256 {
		clear(key)
		for i := range g.sets {
			if g.sets[i].has(byte(b)) {
				key[i/8] |= 1 << (i % 8)
			}
		}
		c, ok := sig[string(key)]
		if !ok {
			c = uint8(len(sig))
			sig[string(key)] = c
			g.classRep = append(g.classRep, byte(b))
		}
		g.classOf[b] = c
	}
	g.nClasses = len(sig)
}

// State is an interned set of parse stacks of one DFA.
type State int32

// Dead is the state that accepts nothing more.
const Dead State = 0

// DFA interns the stack sets of a grammar and memoises their transitions.
// Not safe for concurrent use: each sequence has its own.
type DFA struct {
	g      *Grammar
	states []dfaState
	index  map[string]State
	trans  []int32 // state*nClasses+class -> next state, -1 unknown
	start  State

	key     []byte
	scratch [][]int32
	stored  int // stack positions held by the states
	// chains memoises chain by state and length.
	chains map[uint64]*chainSet
}

type dfaState struct {
	// loops are the bytes that lead back to this state (nil until
	// computed, see selfLoops).
	loops *byteSet
	// mainTo is the state most bytes lead to, mainSet those bytes (see
	// main).
	mainTo   State
	mainSet  byteSet
	mainDone bool
	// utf8: 0 unknown, 1 every non-ASCII character (strict UTF-8) read
	// from this state leads to utf8To, its prefixes alive; 2 not.
	utf8   uint8
	utf8To State
	stacks [][]int32
	accept bool // the empty stack is in the set: the input may end here
	final  bool // nothing more can be read
}

// NewDFA starts following g from its root rule.
func NewDFA(g *Grammar) (*DFA, error) {
	d := &DFA{g: g, index: map[string]State{}}
	d.intern(nil) // Dead
	var out [][]int32
	for _, a := range g.rules[g.root] {
		var err error
		if out, err = d.expand([]int32{a}, out); err != nil {
			return nil, err
		}
	}
	s, err := d.intern(out)
	if err != nil {
		return nil, err
	}
	d.start = s
	return d, nil
}

// Start is the state before any input.
func (d *DFA) Start() State { return d.start }

// Accepts reports whether the input may end in s.
func (d *DFA) Accepts(s State) bool { return d.states[s].accept }

// Final reports whether s accepts and can read nothing more.
func (d *DFA) Final(s State) bool { return d.states[s].final }

// Size is the number of states interned so far.
func (d *DFA) Size() int { return len(d.states) }

// Grammar returns the DFA's grammar.
func (d *DFA) Grammar() *Grammar { return d.g }

// expand resolves the stack's top until it is a byte set (or the stack is
// empty), appending every resulting stack to out. stack is not kept.
func (d *DFA) expand(stack []int32, out [][]int32) ([][]int32, error) {
	g := d.g
	if len(stack) > maxStackDepth {
		return out, fmt.Errorf("%w: nesting deeper than %d", ErrTooComplex, maxStackDepth)
	}
	if len(stack) == 0 {
		return append(out, nil), nil
	}
	top := stack[len(stack)-1]
	e := g.elems[top]
	switch e.kind {
	case kSet:
		return append(out, slices.Clone(stack)), nil
	case kEnd:
		return d.expand(stack[:len(stack)-1], out)
	}
	// A reference: the continuation replaces the top (dropped when the
	// alternative ends there: a tail call), then each alternative of the
	// rule is pushed.
	base := slices.Clone(stack[:len(stack)-1])
	if g.elems[top+1].kind != kEnd {
		base = append(base, top+1)
	}
	var err error
	for _, a := range g.rules[e.arg] {
		next := append(base[:len(base):len(base)], a)
		if out, err = d.expand(next, out); err != nil {
			return out, err
		}
		if len(out) > maxStacks {
			return out, fmt.Errorf("%w: more than %d parses at once", ErrTooComplex, maxStacks)
		}
	}
	return out, nil
}

// intern returns the state of a set of stacks (deduplicated and sorted).
func (d *DFA) intern(stacks [][]int32) (State, error) {
	slices.SortFunc(stacks, slices.Compare)
	stacks = slices.CompactFunc(stacks, slices.Equal)
	d.key = d.key[:0]
	for _, s := range stacks {
		d.key = binary.AppendUvarint(d.key, uint64(len(s)))
		for _, p := range s {
			d.key = binary.AppendUvarint(d.key, uint64(p))
		}
	}
	if s, ok := d.index[string(d.key)]; ok {
		return s, nil
	}
	n := 0
	for _, k := range stacks {
		n += len(k)
	}
	if len(d.states) >= maxStates || d.stored+n > maxStored {
		return Dead, fmt.Errorf("%w: more than %d states", ErrTooComplex, len(d.states))
	}
	d.stored += n
	s := State(len(d.states))
	st := dfaState{stacks: slices.Clone(stacks)}
	st.final = len(stacks) > 0
	for _, k := range stacks {
		if len(k) == 0 {
			st.accept = true
		} else {
			st.final = false
		}
	}
	if len(stacks) == 0 && s != Dead {
		return Dead, nil
	}
	d.states = append(d.states, st)
	d.index[string(d.key)] = s
	for range d.g.nClasses {
		d.trans = append(d.trans, -1)
	}
	return s, nil
}

// selfLoops returns the bytes on which s stays s (computed once per
// state; nil when there are none or computing them failed).
func (d *DFA) selfLoops(s State) *byteSet {
	st := &d.states[s]
	if st.loops != nil {
		if *st.loops == (byteSet{}) {
			return nil
		}
		return st.loops
	}
	var set byteSet
	for c := range d.g.nClasses {
		t, err := d.stepClass(s, uint8(c))
		if err != nil {
			break
		}
		if t == s && s != Dead {
			for b := range 256 {
				if d.g.classOf[b] == uint8(c) {
					set.add(byte(b), byte(b))
				}
			}
		}
	}
	st = &d.states[s] // stepClass may have grown the slice
	st.loops = &set
	if set == (byteSet{}) {
		return nil
	}
	return st.loops
}

// utf8Loops reports whether every non-ASCII character (strict UTF-8, see
// utf8Step) read from s leads back to s through live states, so that a
// token of such characters cut anywhere is allowed.
func (d *DFA) utf8Loops(s State) bool {
	t, ok := d.utf8Target(s)
	return ok && t == s
}

// utf8Target returns the one state every non-ASCII character (strict
// UTF-8) read from s leads to, through live states; ok is false when
// characters lead to different states or die (computed once a state).
func (d *DFA) utf8Target(s State) (State, bool) {
	if st := &d.states[s]; st.utf8 != 0 {
		return st.utf8To, st.utf8 == 1
	}
	target := State(-1)
	seen := map[[2]int32]bool{}
	var check func(t State, k uint8) bool
	check = func(t State, k uint8) bool {
		key := [2]int32{int32(t), int32(k)}
		if seen[key] {
			return true
		}
		seen[key] = true
		for b := 0x80; b < 0x100; b++ {
			next, valid := utf8Step(byte(b), k)
			if !valid {
				continue
			}
			u, err := d.Step(t, byte(b))
			if err != nil || u == Dead {
				return false
			}
			if next != 0 {
				if !check(u, next) {
					return false
				}
				continue
			}
			if target < 0 {
				target = u
			}
			if u != target {
				return false
			}
		}
		return true
	}
	ok := check(s, 0) && target >= 0
	st := &d.states[s]
	st.utf8, st.utf8To = 2, Dead
	if ok {
		st.utf8, st.utf8To = 1, target
	}
	return st.utf8To, ok
}

// main returns the state most bytes lead to from s (not Dead), and those
// bytes; ok is false when every byte is refused.
func (d *DFA) main(s State) (State, *byteSet, bool, error) {
	st := &d.states[s]
	if st.mainDone {
		return st.mainTo, &st.mainSet, st.mainTo != Dead, nil
	}
	count := map[State]int{}
	targets := make([]State, d.g.nClasses)
	for c := range d.g.nClasses {
		t, err := d.stepClass(s, uint8(c))
		if err != nil {
			return Dead, nil, false, err
		}
		targets[c] = t
		if t == Dead {
			continue
		}
		for b := range 256 {
			if d.g.classOf[b] == uint8(c) {
				count[t]++
			}
		}
	}
	best, n := Dead, 0
	for t, k := range count {
		if k > n || (k == n && t < best) {
			best, n = t, k
		}
	}
	var set byteSet
	if best != Dead {
		for b := range 256 {
			if targets[d.g.classOf[b]] == best {
				set.add(byte(b), byte(b))
			}
		}
	}
	st = &d.states[s] // stepClass may have grown the slice
	st.mainTo, st.mainSet, st.mainDone = best, set, true
	return best, &st.mainSet, best != Dead, nil
}

// chainSet is what chain finds: the bytes that keep to the main
// transitions, and whether every non-ASCII character does too.
type chainSet struct {
	bytes byteSet
	utf8  bool
}

// chain returns the bytes that keep to the main transitions for h steps
// from s: any string of at most h of them, read from s, follows s,
// main(s), main(main(s)), … and stays alive; utf8 is set when every
// non-ASCII character also takes each of those states to the next, so
// strings of at most h characters mixing both keep to the chain. nil when
// nothing does.
func (d *DFA) chain(s State, h int) (*chainSet, error) {
	key := uint64(s)<<16 | uint64(min(h, 0xffff))
	if c, ok := d.chains[key]; ok {
		return c, nil
	}
	t, set, ok, err := d.main(s)
	if err != nil {
		return nil, err
	}
	var out *chainSet
	if ok {
		c := chainSet{bytes: *set}
		u, uok := d.utf8Target(s)
		c.utf8 = uok && u == t
		if h > 1 {
			rest, err := d.chain(t, h-1)
			if err != nil {
				return nil, err
			}
			if rest == nil {
				c = chainSet{}
			} else {
				for w := range 4 {
					c.bytes[w] &= rest.bytes[w]
				}
				c.utf8 = c.utf8 && rest.utf8
			}
		}
		if c.bytes != (byteSet{}) {
			out = &c
		}
	}
	if d.chains == nil {
		d.chains = map[uint64]*chainSet{}
	}
	d.chains[key] = out
	return out, nil
}

// Step returns the state after reading byte b in s (Dead when b is not
// allowed).
func (d *DFA) Step(s State, b byte) (State, error) {
	return d.stepClass(s, d.g.classOf[b])
}

func (d *DFA) stepClass(s State, c uint8) (State, error) {
	i := int(s)*d.g.nClasses + int(c)
	if t := d.trans[i]; t >= 0 {
		return State(t), nil
	}
	if s == Dead {
		d.trans[i] = 0
		return Dead, nil
	}
	b := d.g.classRep[c]
	out := d.scratch[:0]
	var err error
	for _, st := range d.states[s].stacks {
		if len(st) == 0 {
			continue
		}
		top := st[len(st)-1]
		if !d.g.sets[d.g.elems[top].arg].has(b) {
			continue
		}
		next := append(st[:len(st)-1:len(st)-1], top+1)
		if out, err = d.expand(next, out); err != nil {
			return Dead, err
		}
	}
	n, err := d.intern(out)
	d.scratch = out[:0]
	if err != nil {
		return Dead, err
	}
	d.trans[i] = int32(n)
	return n, nil
}

// Advance reads bytes from s; it returns Dead as soon as one is refused.
func (d *DFA) Advance(s State, bs []byte) (State, error) {
	var err error
	for _, b := range bs {
		if s, err = d.Step(s, b); err != nil || s == Dead {
			return Dead, err
		}
	}
	return s, nil
}

// Matches reports whether the whole input is a sentence of the grammar.
func (g *Grammar) Matches(input []byte) (bool, error) {
	d, err := NewDFA(g)
	if err != nil {
		return false, err
	}
	s, err := d.Advance(d.Start(), input)
	if err != nil {
		return false, err
	}
	return d.Accepts(s), nil
}
