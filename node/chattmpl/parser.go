package chattmpl

import (
	"fmt"
)

type parser struct {
	toks  []token
	pos   int
	depth int // nesting of expressions and blocks being parsed
}

// maxNesting bounds how deeply expressions and blocks may nest, so that a
// hostile template cannot exhaust the stack.
const maxNesting = 200

func (p *parser) enter() error {
	p.depth++
	if p.depth > maxNesting {
		return p.errf("template nested more than %d levels deep", maxNesting)
	}
	return nil
}

func (p *parser) leave() { p.depth-- }

func (p *parser) peek() token { return p.toks[p.pos] }

func (p *parser) peekAt(n int) token {
	if p.pos+n < len(p.toks) {
		return p.toks[p.pos+n]
	}
	return p.toks[len(p.toks)-1]
}

func (p *parser) next() token {
	t := p.toks[p.pos]
	if p.pos < len(p.toks)-1 {
		p.pos++
	}
	return t
}

func (p *parser) isOp(v string) bool {
	t := p.peek()
	return t.kind == tOp && t.val == v
}

func (p *parser) isName(v string) bool {
	t := p.peek()
	return t.kind == tName && t.val == v
}

func (p *parser) errf(format string, a ...any) error {
	return fmt.Errorf("line %d: %s", p.peek().line, fmt.Sprintf(format, a...))
}

func (p *parser) expectOp(v string) error {
	if !p.isOp(v) {
		return p.errf("expected '%s', got %s", v, p.peek())
	}
	p.next()
	return nil
}

func (p *parser) expectName() (string, error) {
	t := p.peek()
	if t.kind != tName {
		return "", p.errf("expected a name, got %s", t)
	}
	p.next()
	return t.val, nil
}

func (p *parser) expectBlockEnd() error {
	if p.peek().kind != tBlockEnd {
		return p.errf("expected end of tag, got %s", p.peek())
	}
	p.next()
	return nil
}

// parseBody parses nodes until a {% name %} tag whose name is in stop,
// and returns the nodes and that name (the tag's name token is consumed;
// the rest of the tag is left for the caller).
func (p *parser) parseBody(stop ...string) ([]node, string, error) {
	if err := p.enter(); err != nil {
		return nil, "", err
	}
	defer p.leave()
	var nodes []node
	for {
		t := p.peek()
		switch t.kind {
		case tEOF:
			if len(stop) > 0 {
				return nil, "", p.errf("unexpected end of template, expected {%% %s %%}", stop[0])
			}
			return nodes, "", nil
		case tText:
			p.next()
			nodes = append(nodes, &textNode{s: t.val})
		case tVarBegin:
			p.next()
			e, err := p.parseTuple()
			if err != nil {
				return nil, "", err
			}
			if p.peek().kind != tVarEnd {
				return nil, "", p.errf("expected '}}', got %s", p.peek())
			}
			p.next()
			nodes = append(nodes, &outputNode{e: e, line: t.line})
		case tBlockBegin:
			p.next()
			kw := p.peek()
			if kw.kind != tName {
				return nil, "", p.errf("expected a statement name, got %s", kw)
			}
			for _, s := range stop {
				if kw.val == s {
					p.next()
					return nodes, s, nil
				}
			}
			n, err := p.parseStatement()
			if err != nil {
				return nil, "", err
			}
			if n != nil {
				nodes = append(nodes, n)
			}
		default:
			return nil, "", p.errf("unexpected %s", t)
		}
	}
}

func (p *parser) parseStatement() (node, error) {
	kw := p.next()
	switch kw.val {
	case "if":
		return p.parseIf()
	case "for":
		return p.parseFor(kw.line)
	case "set":
		return p.parseSet(kw.line)
	case "macro":
		return p.parseMacro()
	case "call":
		return p.parseCallBlock()
	case "filter":
		fs, err := p.parseFilterChain(nil)
		if err != nil {
			return nil, err
		}
		if err := p.expectBlockEnd(); err != nil {
			return nil, err
		}
		body, _, err := p.parseBody("endfilter")
		if err != nil {
			return nil, err
		}
		return &filterBlockNode{filters: fs, body: body}, p.expectBlockEnd()
	case "generation":
		// transformers' AssistantTracker marks assistant text; rendering
		// is unchanged.
		if err := p.expectBlockEnd(); err != nil {
			return nil, err
		}
		body, _, err := p.parseBody("endgeneration")
		if err != nil {
			return nil, err
		}
		return &ifNode{conds: []expr{&constExpr{v: true}}, bodies: [][]node{body}}, p.expectBlockEnd()
	case "with":
		return p.parseWith()
	case "break":
		return &breakNode{}, p.expectBlockEnd()
	case "continue":
		return &continueNode{}, p.expectBlockEnd()
	}
	return nil, fmt.Errorf("line %d: unknown or misplaced statement %q", kw.line, kw.val)
}

func (p *parser) parseIf() (node, error) {
	n := &ifNode{}
	for {
		cond, err := p.parseTuple()
		if err != nil {
			return nil, err
		}
		if err := p.expectBlockEnd(); err != nil {
			return nil, err
		}
		body, end, err := p.parseBody("elif", "else", "endif")
		if err != nil {
			return nil, err
		}
		n.conds = append(n.conds, cond)
		n.bodies = append(n.bodies, body)
		switch end {
		case "elif":
			continue
		case "else":
			if err := p.expectBlockEnd(); err != nil {
				return nil, err
			}
			n.els, _, err = p.parseBody("endif")
			if err != nil {
				return nil, err
			}
		}
		return n, p.expectBlockEnd()
	}
}

func (p *parser) parseFor(line int) (node, error) {
	n := &forNode{line: line}
	for {
		name, err := p.expectName()
		if err != nil {
			return nil, err
		}
		n.targets = append(n.targets, name)
		if !p.isOp(",") {
			break
		}
		p.next()
	}
	if !p.isName("in") {
		return nil, p.errf("expected 'in' in for loop, got %s", p.peek())
	}
	p.next()
	iter, err := p.parseTupleNoCond()
	if err != nil {
		return nil, err
	}
	n.iter = iter
	if p.isName("if") {
		p.next()
		if n.cond, err = p.parseExpr(); err != nil {
			return nil, err
		}
	}
	if p.isName("recursive") {
		return nil, p.errf("recursive loops are not supported")
	}
	if err := p.expectBlockEnd(); err != nil {
		return nil, err
	}
	body, end, err := p.parseBody("else", "endfor")
	if err != nil {
		return nil, err
	}
	n.body = body
	if end == "else" {
		if err := p.expectBlockEnd(); err != nil {
			return nil, err
		}
		if n.els, _, err = p.parseBody("endfor"); err != nil {
			return nil, err
		}
	}
	return n, p.expectBlockEnd()
}

func (p *parser) parseSet(line int) (node, error) {
	name, err := p.expectName()
	if err != nil {
		return nil, err
	}
	n := &setNode{targets: []string{name}, line: line}
	switch {
	case p.isOp("."):
		p.next()
		attr, err := p.expectName()
		if err != nil {
			return nil, err
		}
		n.attrOf, n.targets[0] = name, attr
	case p.isOp(","):
		for p.isOp(",") {
			p.next()
			if p.isOp("=") {
				break
			}
			nm, err := p.expectName()
			if err != nil {
				return nil, err
			}
			n.targets = append(n.targets, nm)
		}
	case p.peek().kind == tBlockEnd || p.isOp("|"):
		// {% set name %}…{% endset %}, optionally filtered.
		fs, err := p.parseFilterChain(nil)
		if err != nil {
			return nil, err
		}
		if err := p.expectBlockEnd(); err != nil {
			return nil, err
		}
		body, _, err := p.parseBody("endset")
		if err != nil {
			return nil, err
		}
		return &setBlockNode{name: name, body: body, filters: fs}, p.expectBlockEnd()
	}
	if err := p.expectOp("="); err != nil {
		return nil, err
	}
	if n.e, err = p.parseTuple(); err != nil {
		return nil, err
	}
	return n, p.expectBlockEnd()
}

func (p *parser) parseWith() (node, error) {
	n := &withNode{}
	for p.peek().kind != tBlockEnd {
		name, err := p.expectName()
		if err != nil {
			return nil, err
		}
		if err := p.expectOp("="); err != nil {
			return nil, err
		}
		e, err := p.parseExpr()
		if err != nil {
			return nil, err
		}
		n.names = append(n.names, name)
		n.vals = append(n.vals, e)
		if !p.isOp(",") {
			break
		}
		p.next()
	}
	if err := p.expectBlockEnd(); err != nil {
		return nil, err
	}
	body, _, err := p.parseBody("endwith")
	if err != nil {
		return nil, err
	}
	n.body = body
	return n, p.expectBlockEnd()
}

func (p *parser) parseMacroSignature() (*macro, error) {
	m := &macro{}
	if err := p.expectOp("("); err != nil {
		return nil, err
	}
	for !p.isOp(")") {
		name, err := p.expectName()
		if err != nil {
			return nil, err
		}
		var def expr
		if p.isOp("=") {
			p.next()
			if def, err = p.parseExpr(); err != nil {
				return nil, err
			}
		}
		m.params = append(m.params, name)
		m.defaults = append(m.defaults, def)
		if !p.isOp(",") {
			break
		}
		p.next()
	}
	return m, p.expectOp(")")
}

func (p *parser) parseMacro() (node, error) {
	name, err := p.expectName()
	if err != nil {
		return nil, err
	}
	m, err := p.parseMacroSignature()
	if err != nil {
		return nil, err
	}
	m.name = name
	if err := p.expectBlockEnd(); err != nil {
		return nil, err
	}
	if m.body, _, err = p.parseBody("endmacro"); err != nil {
		return nil, err
	}
	if p.peek().kind == tName {
		p.next() // {% endmacro name %}
	}
	return &macroNode{m: m}, p.expectBlockEnd()
}

func (p *parser) parseCallBlock() (node, error) {
	caller := &macro{name: "caller"}
	if p.isOp("(") {
		var err error
		if caller, err = p.parseMacroSignature(); err != nil {
			return nil, err
		}
		caller.name = "caller"
	}
	e, err := p.parseExpr()
	if err != nil {
		return nil, err
	}
	call, ok := e.(*callExpr)
	if !ok {
		return nil, p.errf("expected a macro call in call block")
	}
	if err := p.expectBlockEnd(); err != nil {
		return nil, err
	}
	if caller.body, _, err = p.parseBody("endcall"); err != nil {
		return nil, err
	}
	return &callBlockNode{call: call, caller: caller}, p.expectBlockEnd()
}

// parseFilterChain parses "name(args) | name …" (the leading "|" optional
// when e is nil and the first token is a name).
func (p *parser) parseFilterChain(e expr) ([]*filterExpr, error) {
	var fs []*filterExpr
	first := true
	for {
		if p.isOp("|") {
			p.next()
		} else if !(first && p.peek().kind == tName) {
			return fs, nil
		}
		first = false
		f, err := p.parseFilter(e)
		if err != nil {
			return nil, err
		}
		fs = append(fs, f)
	}
}

func (p *parser) parseFilter(e expr) (*filterExpr, error) {
	line := p.peek().line
	name, err := p.expectName()
	if err != nil {
		return nil, err
	}
	for p.isOp(".") { // dotted filter names
		p.next()
		part, err := p.expectName()
		if err != nil {
			return nil, err
		}
		name += "." + part
	}
	f := &filterExpr{e: e, name: name, line: line}
	if p.isOp("(") {
		if f.args, f.kwargs, err = p.parseArgs(); err != nil {
			return nil, err
		}
	}
	return f, nil
}
