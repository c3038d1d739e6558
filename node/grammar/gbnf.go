// Package grammar constrains generation to a formal language: a grammar in
// llama.cpp's GBNF syntax, or a JSON Schema compiled to one.
//
// A Grammar is compiled to bytes: string literals and character classes
// become sequences of byte sets over their UTF-8 encodings, so a token that
// ends inside a multi-byte character is matched like any other. A Matcher
// follows the set of parse stacks (a pushdown automaton) as bytes arrive;
// the sets it meets are interned and their transitions memoised (a lazy
// DFA over stack sets), so a Vocab can walk its token trie with one table
// lookup per trie node and cache the mask of every state it has seen.
//
// A Grammar and a Vocab are safe for concurrent use once built; a Matcher
// (and the DFA cache it owns) serves one sequence.
package grammar

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// ErrSyntax is wrapped by every grammar parse error.
var ErrSyntax = errors.New("grammar syntax error")

// Limits on what one grammar may hold.
const (
	maxRepeat = 10000  // largest {m,n} bound
	maxElems  = 400000 // elements after expansion
)

// element kinds.
const (
	kEnd uint8 = iota // end of an alternative
	kRef              // a rule reference
	kSet              // a byte set
)

type elem struct {
	kind uint8
	arg  int32 // rule (kRef) or set index (kSet)
}

// byteSet is a set of bytes.
type byteSet [4]uint64

func (s *byteSet) add(lo, hi byte) {
	for b := int(lo); b <= int(hi); b++ {
		s[b>>6] |= 1 << (b & 63)
	}
}

func (s *byteSet) has(b byte) bool { return s[b>>6]&(1<<(b&63)) != 0 }

// Grammar is a compiled grammar. Safe for concurrent use.
type Grammar struct {
	elems []elem    // alternatives, each a run of elements ending in kEnd
	rules [][]int32 // rule -> start positions of its alternatives
	names []string  // rule names (generated rules have derived names)
	sets  []byteSet
	root  int32
	// classOf maps a byte to its equivalence class: bytes no set tells
	// apart share a class (the DFA's alphabet).
	classOf  [256]uint8
	nClasses int
	classRep []byte // a byte of each class
}

// Root returns the name of the start rule.
func (g *Grammar) Root() string { return g.names[g.root] }

// ParseGBNF parses a grammar in llama.cpp's GBNF syntax; root is the start
// rule ("root" when empty).
func ParseGBNF(src, root string) (*Grammar, error) {
	if root == "" {
		root = "root"
	}
	p := &parser{src: src, ids: map[string]int32{}, defined: map[int32]bool{}, classes: map[string]int32{}, classSyms: map[string]sym{}}
	if err := p.parse(); err != nil {
		return nil, err
	}
	g := &p.g
	for id, name := range g.names {
		if !p.defined[int32(id)] && !strings.Contains(name, "~") {
			return nil, fmt.Errorf("%w: rule %q is used but not defined", ErrSyntax, name)
		}
	}
	r, ok := p.ids[root]
	if !ok || !p.defined[r] {
		return nil, fmt.Errorf("%w: no %q rule", ErrSyntax, root)
	}
	g.root = r
	if len(g.elems) > maxElems {
		return nil, fmt.Errorf("%w: the grammar expands to %d elements, more than %d", ErrSyntax, len(g.elems), maxElems)
	}
	if err := g.checkLeftRecursion(); err != nil {
		return nil, err
	}
	g.computeClasses()
	return g, nil
}

// MustParseGBNF is ParseGBNF for grammars known to be valid (BUG on error).
func MustParseGBNF(src, root string) *Grammar {
	g, err := ParseGBNF(src, root)
	if err != nil {
		panic("BUG: " + err.Error())
	}
	return g
}

// sym is one element of a sequence being built.
type sym = elem

type parser struct {
	src       string
	pos       int
	g         Grammar
	ids       map[string]int32
	defined   map[int32]bool
	classes   map[string]int32 // byte set key -> set index
	classSyms map[string]sym   // class key -> its element
	gen       int
}

func (p *parser) errf(format string, args ...any) error {
	line := 1 + strings.Count(p.src[:p.pos], "\n")
	return fmt.Errorf("%w at line %d: %s", ErrSyntax, line, fmt.Sprintf(format, args...))
}

func (p *parser) ruleID(name string) int32 {
	if id, ok := p.ids[name]; ok {
		return id
	}
	id := int32(len(p.g.names))
	p.ids[name] = id
	p.g.names = append(p.g.names, name)
	p.g.rules = append(p.g.rules, nil)
	return id
}

// newRule makes a generated rule with the given alternatives.
func (p *parser) newRule(base string, alts [][]sym) int32 {
	p.gen++
	id := p.ruleID(fmt.Sprintf("%s~%d", base, p.gen))
	p.setRule(id, alts)
	return id
}

func (p *parser) setRule(id int32, alts [][]sym) {
	p.defined[id] = true
	for _, a := range alts {
		p.g.rules[id] = append(p.g.rules[id], int32(len(p.g.elems)))
		p.g.elems = append(p.g.elems, a...)
		p.g.elems = append(p.g.elems, elem{kind: kEnd})
	}
}

// skip passes spaces and comments; newlines too when nl is set.
func (p *parser) skip(nl bool) {
	for p.pos < len(p.src) {
		c := p.src[p.pos]
		switch {
		case c == ' ' || c == '\t' || c == '\r':
			p.pos++
		case c == '\n' && nl:
			p.pos++
		case c == '#':
			for p.pos < len(p.src) && p.src[p.pos] != '\n' {
				p.pos++
			}
		default:
			return
		}
	}
}

func isWordByte(c byte) bool {
	return c == '-' || c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
}

func (p *parser) name() string {
	s := p.pos
	for p.pos < len(p.src) && isWordByte(p.src[p.pos]) {
		p.pos++
	}
	return p.src[s:p.pos]
}

// atRuleStart reports whether a "name ::=" starts at the position.
func (p *parser) atRuleStart() bool {
	save := p.pos
	defer func() { p.pos = save }()
	if p.name() == "" {
		return false
	}
	p.skip(false)
	return strings.HasPrefix(p.src[p.pos:], "::=")
}

func (p *parser) parse() error {
	for {
		p.skip(true)
		if p.pos >= len(p.src) {
			return nil
		}
		name := p.name()
		if name == "" {
			return p.errf("expected a rule name, found %q", p.peekText())
		}
		p.skip(false)
		if !strings.HasPrefix(p.src[p.pos:], "::=") {
			return p.errf("expected ::= after %q", name)
		}
		p.pos += 3
		id := p.ruleID(name)
		if p.defined[id] {
			return p.errf("rule %q is defined twice", name)
		}
		p.defined[id] = true // before the body: references to itself are fine
		alts, err := p.alternatives(name, false)
		if err != nil {
			return err
		}
		p.setRule(id, alts)
	}
}

func (p *parser) peekText() string {
	end := min(p.pos+12, len(p.src))
	return p.src[p.pos:end]
}

// alternatives parses "seq | seq ..." up to a newline starting a new rule
// (top level) or a closing parenthesis (nested).
func (p *parser) alternatives(base string, nested bool) ([][]sym, error) {
	var alts [][]sym
	for {
		seq, err := p.sequence(base, nested)
		if err != nil {
			return nil, err
		}
		alts = append(alts, seq)
		p.skip(nested)
		if p.pos < len(p.src) && p.src[p.pos] == '|' {
			p.pos++
			p.skip(true)
			continue
		}
		return alts, nil
	}
}

func (p *parser) sequence(base string, nested bool) ([]sym, error) {
	var seq []sym
	for {
		p.skip(nested)
		if !nested && p.pos < len(p.src) && p.src[p.pos] == '\n' {
			// A rule goes on over a line break unless the next
			// line starts a rule (or the text ends).
			save := p.pos
			p.skip(true)
			if p.pos >= len(p.src) || p.atRuleStart() {
				p.pos = save
				return seq, nil
			}
			if p.src[p.pos] == '|' {
				return seq, nil // alternatives goes on
			}
		}
		if p.pos >= len(p.src) {
			return seq, nil
		}
		c := p.src[p.pos]
		var item []sym
		switch {
		case c == '"':
			lit, err := p.literal()
			if err != nil {
				return nil, err
			}
			for i := 0; i < len(lit); i++ {
				item = append(item, p.setSym(lit[i], lit[i]))
			}
			if len(lit) == 0 {
				item = []sym{}
			}
		case c == '[':
			s, err := p.class()
			if err != nil {
				return nil, err
			}
			item = []sym{s}
		case c == '.':
			p.pos++
			item = []sym{p.classSym([]runeRange{{0, utf8.MaxRune}}, false)}
		case c == '(':
			p.pos++
			p.skip(true)
			alts, err := p.alternatives(base, true)
			if err != nil {
				return nil, err
			}
			p.skip(true)
			if p.pos >= len(p.src) || p.src[p.pos] != ')' {
				return nil, p.errf("expected )")
			}
			p.pos++
			if len(alts) == 1 {
				item = alts[0]
			} else {
				item = []sym{{kind: kRef, arg: p.newRule(base, alts)}}
			}
		case isWordByte(c):
			if p.atRuleStart() {
				return seq, nil
			}
			n := p.name()
			item = []sym{{kind: kRef, arg: p.ruleID(n)}}
		default:
			return seq, nil
		}
		item, err := p.postfix(base, item)
		if err != nil {
			return nil, err
		}
		seq = append(seq, item...)
	}
}

// postfix applies a repetition operator after an item, if any.
func (p *parser) postfix(base string, item []sym) ([]sym, error) {
	if p.pos >= len(p.src) {
		return item, nil
	}
	lo, hi := -1, -1
	switch p.src[p.pos] {
	case '*':
		lo, hi = 0, -1
		p.pos++
	case '+':
		lo, hi = 1, -1
		p.pos++
	case '?':
		lo, hi = 0, 1
		p.pos++
	case '{':
		p.pos++
		p.skip(false)
		var err error
		lo, err = p.number()
		if err != nil {
			return nil, err
		}
		p.skip(false)
		hi = lo
		if p.pos < len(p.src) && p.src[p.pos] == ',' {
			p.pos++
			p.skip(false)
			hi = -1
			if p.pos < len(p.src) && p.src[p.pos] != '}' {
				if hi, err = p.number(); err != nil {
					return nil, err
				}
				p.skip(false)
			}
		}
		if p.pos >= len(p.src) || p.src[p.pos] != '}' {
			return nil, p.errf("expected } closing a repetition")
		}
		p.pos++
		if hi >= 0 && hi < lo {
			return nil, p.errf("repetition {%d,%d}: the maximum is below the minimum", lo, hi)
		}
	default:
		return item, nil
	}
	if lo > maxRepeat || hi > maxRepeat {
		return nil, p.errf("repetition bound over %d", maxRepeat)
	}
	return p.repeat(base, item, lo, hi), nil
}

// repeat expands item{lo,hi} (hi < 0: unbounded) into rules.
func (p *parser) repeat(base string, item []sym, lo, hi int) []sym {
	var one sym
	if len(item) == 1 {
		one = item[0]
	} else {
		one = sym{kind: kRef, arg: p.newRule(base, [][]sym{item})}
	}
	var out []sym
	for range lo {
		out = append(out, one)
	}
	if hi < 0 {
		// star ::= one star | ""
		p.gen++
		id := p.ruleID(fmt.Sprintf("%s~%d", base, p.gen))
		p.setRule(id, [][]sym{{one, {kind: kRef, arg: id}}, {}})
		return append(out, sym{kind: kRef, arg: id})
	}
	// opt_k ::= one opt_{k-1} | "" ; opt_1 ::= one | ""
	if hi == lo {
		return out
	}
	prev := int32(-1)
	for k := 1; k <= hi-lo; k++ {
		alt := []sym{one}
		if prev >= 0 {
			alt = append(alt, sym{kind: kRef, arg: prev})
		}
		prev = p.newRule(base, [][]sym{alt, {}})
	}
	return append(out, sym{kind: kRef, arg: prev})
}

func (p *parser) number() (int, error) {
	s := p.pos
	for p.pos < len(p.src) && p.src[p.pos] >= '0' && p.src[p.pos] <= '9' {
		p.pos++
	}
	if s == p.pos {
		return 0, p.errf("expected a number in a repetition")
	}
	n, err := strconv.Atoi(p.src[s:p.pos])
	if err != nil || n > maxRepeat {
		return 0, p.errf("repetition bound %s is over %d", p.src[s:p.pos], maxRepeat)
	}
	return n, nil
}

func (p *parser) setSym(lo, hi byte) sym {
	var s byteSet
	s.add(lo, hi)
	return p.internSet(s)
}

func (p *parser) internSet(s byteSet) sym {
	key := fmt.Sprintf("set:%x", s)
	if id, ok := p.classes[key]; ok {
		return sym{kind: kSet, arg: id}
	}
	id := int32(len(p.g.sets))
	p.g.sets = append(p.g.sets, s)
	p.classes[key] = id
	return sym{kind: kSet, arg: id}
}

// escape reads one escaped or plain character inside a literal or class.
func (p *parser) char() (rune, error) {
	if p.pos >= len(p.src) {
		return 0, p.errf("unexpected end of grammar")
	}
	c := p.src[p.pos]
	if c != '\\' {
		r, n := utf8.DecodeRuneInString(p.src[p.pos:])
		if r == utf8.RuneError && n <= 1 {
			return 0, p.errf("invalid UTF-8")
		}
		p.pos += n
		return r, nil
	}
	p.pos++
	if p.pos >= len(p.src) {
		return 0, p.errf("unexpected end of grammar after \\")
	}
	c = p.src[p.pos]
	p.pos++
	switch c {
	case 'n':
		return '\n', nil
	case 'r':
		return '\r', nil
	case 't':
		return '\t', nil
	case '0':
		return 0, nil
	case '\\', '"', '[', ']', '-', '^', '\'', '.', '/', '(', ')', '|', '*', '+', '?', '{', '}':
		return rune(c), nil
	case 'x', 'u', 'U':
		n := map[byte]int{'x': 2, 'u': 4, 'U': 8}[c]
		if p.pos+n > len(p.src) {
			return 0, p.errf("short \\%c escape", c)
		}
		v, err := strconv.ParseUint(p.src[p.pos:p.pos+n], 16, 32)
		if err != nil || v > utf8.MaxRune {
			return 0, p.errf("bad \\%c escape %q", c, p.src[p.pos:p.pos+n])
		}
		p.pos += n
		return rune(v), nil
	}
	return 0, p.errf("unknown escape \\%c", c)
}

// literal reads a "..." string and returns its UTF-8 bytes.
func (p *parser) literal() (string, error) {
	p.pos++ // "
	var b strings.Builder
	for {
		if p.pos >= len(p.src) {
			return "", p.errf("unterminated string literal")
		}
		if p.src[p.pos] == '"' {
			p.pos++
			return b.String(), nil
		}
		r, err := p.char() // escapes name code points, as in llama.cpp
		if err != nil {
			return "", err
		}
		b.WriteRune(r)
	}
}

type runeRange struct{ lo, hi rune }

// class reads a [...] character class.
func (p *parser) class() (sym, error) {
	p.pos++ // [
	neg := false
	if p.pos < len(p.src) && p.src[p.pos] == '^' {
		neg = true
		p.pos++
	}
	var rs []runeRange
	for {
		if p.pos >= len(p.src) {
			return sym{}, p.errf("unterminated character class")
		}
		if p.src[p.pos] == ']' {
			p.pos++
			break
		}
		lo, err := p.char()
		if err != nil {
			return sym{}, err
		}
		hi := lo
		if p.pos+1 < len(p.src) && p.src[p.pos] == '-' && p.src[p.pos+1] != ']' {
			p.pos++
			if hi, err = p.char(); err != nil {
				return sym{}, err
			}
			if hi < lo {
				return sym{}, p.errf("character range %q-%q is reversed", lo, hi)
			}
		}
		rs = append(rs, runeRange{lo, hi})
	}
	return p.classSym(rs, neg), nil
}
