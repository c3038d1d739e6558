package chattmpl

import (
	"fmt"
	"strconv"
)

// Statement nodes.
type (
	node interface{}

	textNode   struct{ s string }
	outputNode struct {
		e    expr
		line int
	}
	ifNode struct {
		conds  []expr
		bodies [][]node
		els    []node
	}
	forNode struct {
		targets []string
		iter    expr
		cond    expr // optional "if" filter
		body    []node
		els     []node
		line    int
	}
	setNode struct {
		targets []string // one name, or several for tuple unpacking
		attrOf  string   // set ns.attr = …: the namespace variable
		e       expr
		line    int
	}
	setBlockNode struct {
		name    string
		body    []node
		filters []*filterExpr // applied to the captured text, innermost first
	}
	macroNode struct {
		m *macro
	}
	filterBlockNode struct {
		filters []*filterExpr
		body    []node
	}
	callBlockNode struct {
		call   *callExpr
		caller *macro
	}
	withNode struct {
		names []string
		vals  []expr
		body  []node
	}
	breakNode    struct{}
	continueNode struct{}
)

// Expression nodes.
type (
	expr interface{}

	constExpr struct{ v any }
	nameExpr  struct {
		name string
		line int
	}
	attrExpr struct {
		obj  expr
		name string
		line int
	}
	itemExpr struct {
		obj, key expr
		line     int
	}
	sliceExpr struct {
		obj, start, stop, step expr // nil when omitted
		line                   int
	}
	callExpr struct {
		fn     expr
		args   []expr
		kwargs []kwarg
		line   int
	}
	kwarg struct {
		name string
		e    expr
	}
	filterExpr struct {
		e      expr // nil inside a filter block or set block
		name   string
		args   []expr
		kwargs []kwarg
		line   int
	}
	testExpr struct {
		e      expr
		name   string
		args   []expr
		negate bool
		line   int
	}
	unaryExpr struct {
		op   string // "not", "-", "+"
		x    expr
		line int
	}
	binExpr struct {
		op   string // arithmetic, "~", "and", "or"
		l, r expr
		line int
	}
	compareExpr struct {
		first expr
		ops   []string // "==", "!=", "<", ">", "<=", ">=", "in", "notin"
		rest  []expr
		line  int
	}
	condExpr struct {
		cond, yes, no expr // no may be nil
	}
	listExpr struct {
		items []expr
		tuple bool
	}
	dictExpr struct {
		keys, vals []expr
	}
)

type macro struct {
	name     string
	params   []string
	defaults []expr // aligned with params; nil when required
	body     []node
}

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

// parseTuple parses an expression, or a tuple without parentheses.
func (p *parser) parseTuple() (expr, error) { return p.parseTupleWith(p.parseExpr) }

func (p *parser) parseTupleNoCond() (expr, error) { return p.parseTupleWith(p.parseOr) }

func (p *parser) parseTupleWith(parse func() (expr, error)) (expr, error) {
	first, err := parse()
	if err != nil {
		return nil, err
	}
	if !p.isOp(",") {
		return first, nil
	}
	items := []expr{first}
	for p.isOp(",") {
		p.next()
		t := p.peek()
		if t.kind == tBlockEnd || t.kind == tVarEnd || p.isOp("=") || p.isName("if") {
			break
		}
		e, err := parse()
		if err != nil {
			return nil, err
		}
		items = append(items, e)
	}
	return &listExpr{items: items, tuple: true}, nil
}

func (p *parser) parseExpr() (expr, error) {
	if err := p.enter(); err != nil {
		return nil, err
	}
	defer p.leave()
	e, err := p.parseOr()
	if err != nil {
		return nil, err
	}
	for p.isName("if") {
		p.next()
		cond, err := p.parseOr()
		if err != nil {
			return nil, err
		}
		c := &condExpr{cond: cond, yes: e}
		if p.isName("else") {
			p.next()
			if c.no, err = p.parseExpr(); err != nil {
				return nil, err
			}
		}
		e = c
	}
	return e, nil
}

func (p *parser) parseOr() (expr, error) {
	l, err := p.parseAnd()
	if err != nil {
		return nil, err
	}
	for p.isName("or") {
		line := p.next().line
		r, err := p.parseAnd()
		if err != nil {
			return nil, err
		}
		l = &binExpr{op: "or", l: l, r: r, line: line}
	}
	return l, nil
}

func (p *parser) parseAnd() (expr, error) {
	l, err := p.parseNot()
	if err != nil {
		return nil, err
	}
	for p.isName("and") {
		line := p.next().line
		r, err := p.parseNot()
		if err != nil {
			return nil, err
		}
		l = &binExpr{op: "and", l: l, r: r, line: line}
	}
	return l, nil
}

func (p *parser) parseNot() (expr, error) {
	if err := p.enter(); err != nil {
		return nil, err
	}
	defer p.leave()
	if p.isName("not") {
		line := p.next().line
		x, err := p.parseNot()
		if err != nil {
			return nil, err
		}
		return &unaryExpr{op: "not", x: x, line: line}, nil
	}
	return p.parseCompare()
}

func (p *parser) parseCompare() (expr, error) {
	first, err := p.parseMath1()
	if err != nil {
		return nil, err
	}
	c := &compareExpr{first: first, line: p.peek().line}
	for {
		t := p.peek()
		var op string
		switch {
		case t.kind == tOp && (t.val == "==" || t.val == "!=" || t.val == "<" || t.val == ">" || t.val == "<=" || t.val == ">="):
			op = t.val
			p.next()
		case p.isName("in"):
			op = "in"
			p.next()
		case p.isName("not") && p.peekAt(1).kind == tName && p.peekAt(1).val == "in":
			op = "notin"
			p.next()
			p.next()
		default:
			if len(c.ops) == 0 {
				return first, nil
			}
			return c, nil
		}
		r, err := p.parseMath1()
		if err != nil {
			return nil, err
		}
		c.ops = append(c.ops, op)
		c.rest = append(c.rest, r)
	}
}

func (p *parser) parseMath1() (expr, error) {
	l, err := p.parseConcat()
	if err != nil {
		return nil, err
	}
	for p.isOp("+") || p.isOp("-") {
		t := p.next()
		r, err := p.parseConcat()
		if err != nil {
			return nil, err
		}
		l = &binExpr{op: t.val, l: l, r: r, line: t.line}
	}
	return l, nil
}

func (p *parser) parseConcat() (expr, error) {
	l, err := p.parseMath2()
	if err != nil {
		return nil, err
	}
	for p.isOp("~") {
		t := p.next()
		r, err := p.parseMath2()
		if err != nil {
			return nil, err
		}
		l = &binExpr{op: "~", l: l, r: r, line: t.line}
	}
	return l, nil
}

func (p *parser) parseMath2() (expr, error) {
	l, err := p.parsePow()
	if err != nil {
		return nil, err
	}
	for p.isOp("*") || p.isOp("/") || p.isOp("//") || p.isOp("%") {
		t := p.next()
		r, err := p.parsePow()
		if err != nil {
			return nil, err
		}
		l = &binExpr{op: t.val, l: l, r: r, line: t.line}
	}
	return l, nil
}

func (p *parser) parsePow() (expr, error) {
	l, err := p.parseUnary(true)
	if err != nil {
		return nil, err
	}
	for p.isOp("**") {
		t := p.next()
		r, err := p.parseUnary(true)
		if err != nil {
			return nil, err
		}
		l = &binExpr{op: "**", l: l, r: r, line: t.line}
	}
	return l, nil
}

func (p *parser) parseUnary(withFilter bool) (expr, error) {
	if err := p.enter(); err != nil {
		return nil, err
	}
	defer p.leave()
	var e expr
	var err error
	if p.isOp("-") || p.isOp("+") {
		t := p.next()
		x, err := p.parseUnary(false)
		if err != nil {
			return nil, err
		}
		e = &unaryExpr{op: t.val, x: x, line: t.line}
	} else {
		if e, err = p.parsePrimary(); err != nil {
			return nil, err
		}
	}
	if e, err = p.parsePostfix(e); err != nil {
		return nil, err
	}
	if withFilter {
		return p.parseFilterExpr(e)
	}
	return e, nil
}

func (p *parser) parsePrimary() (expr, error) {
	t := p.peek()
	switch t.kind {
	case tName:
		p.next()
		switch t.val {
		case "true", "True":
			return &constExpr{v: true}, nil
		case "false", "False":
			return &constExpr{v: false}, nil
		case "none", "None":
			return &constExpr{v: nil}, nil
		}
		return &nameExpr{name: t.val, line: t.line}, nil
	case tString:
		p.next()
		s := t.val
		for p.peek().kind == tString { // adjacent literals concatenate
			s += p.next().val
		}
		return &constExpr{v: s}, nil
	case tInt:
		p.next()
		i, err := strconv.ParseInt(t.val, 10, 64)
		if err != nil {
			f, ferr := strconv.ParseFloat(t.val, 64)
			if ferr != nil {
				return nil, p.errf("bad integer %s", t.val)
			}
			return &constExpr{v: f}, nil
		}
		return &constExpr{v: i}, nil
	case tFloat:
		p.next()
		f, err := strconv.ParseFloat(t.val, 64)
		if err != nil {
			return nil, p.errf("bad number %s", t.val)
		}
		return &constExpr{v: f}, nil
	case tOp:
		switch t.val {
		case "(":
			p.next()
			if p.isOp(")") {
				p.next()
				return &listExpr{tuple: true}, nil
			}
			e, err := p.parseExpr()
			if err != nil {
				return nil, err
			}
			if p.isOp(",") {
				items := []expr{e}
				for p.isOp(",") {
					p.next()
					if p.isOp(")") {
						break
					}
					x, err := p.parseExpr()
					if err != nil {
						return nil, err
					}
					items = append(items, x)
				}
				e = &listExpr{items: items, tuple: true}
			}
			return e, p.expectOp(")")
		case "[":
			p.next()
			l := &listExpr{}
			for !p.isOp("]") {
				x, err := p.parseExpr()
				if err != nil {
					return nil, err
				}
				l.items = append(l.items, x)
				if !p.isOp(",") {
					break
				}
				p.next()
			}
			return l, p.expectOp("]")
		case "{":
			p.next()
			d := &dictExpr{}
			for !p.isOp("}") {
				k, err := p.parseExpr()
				if err != nil {
					return nil, err
				}
				if err := p.expectOp(":"); err != nil {
					return nil, err
				}
				v, err := p.parseExpr()
				if err != nil {
					return nil, err
				}
				d.keys = append(d.keys, k)
				d.vals = append(d.vals, v)
				if !p.isOp(",") {
					break
				}
				p.next()
			}
			return d, p.expectOp("}")
		}
	}
	return nil, p.errf("unexpected %s", t)
}

func (p *parser) parsePostfix(e expr) (expr, error) {
	for {
		t := p.peek()
		switch {
		case p.isOp("."):
			p.next()
			n := p.peek()
			switch n.kind {
			case tName:
				p.next()
				e = &attrExpr{obj: e, name: n.val, line: n.line}
			case tInt:
				p.next()
				i, _ := strconv.ParseInt(n.val, 10, 64)
				e = &itemExpr{obj: e, key: &constExpr{v: i}, line: n.line}
			default:
				return nil, p.errf("expected attribute name after '.', got %s", n)
			}
		case p.isOp("["):
			p.next()
			var err error
			if e, err = p.parseSubscript(e, t.line); err != nil {
				return nil, err
			}
		case p.isOp("("):
			args, kwargs, err := p.parseArgs()
			if err != nil {
				return nil, err
			}
			e = &callExpr{fn: e, args: args, kwargs: kwargs, line: t.line}
		default:
			return e, nil
		}
	}
}

func (p *parser) parseSubscript(obj expr, line int) (expr, error) {
	var parts [3]expr
	n, isSlice := 0, false
	for {
		if p.isOp(":") {
			isSlice = true
			n++
			if n > 2 {
				return nil, p.errf("too many ':' in slice")
			}
			p.next()
			continue
		}
		if p.isOp("]") {
			p.next()
			break
		}
		if parts[n] != nil {
			return nil, p.errf("expected ']' , got %s", p.peek())
		}
		e, err := p.parseTupleWith(p.parseExpr)
		if err != nil {
			return nil, err
		}
		parts[n] = e
	}
	if !isSlice {
		if parts[0] == nil {
			return nil, p.errf("empty subscript")
		}
		return &itemExpr{obj: obj, key: parts[0], line: line}, nil
	}
	return &sliceExpr{obj: obj, start: parts[0], stop: parts[1], step: parts[2], line: line}, nil
}

func (p *parser) parseArgs() ([]expr, []kwarg, error) {
	if err := p.expectOp("("); err != nil {
		return nil, nil, err
	}
	var args []expr
	var kwargs []kwarg
	for !p.isOp(")") {
		if p.peek().kind == tName && p.peekAt(1).kind == tOp && p.peekAt(1).val == "=" {
			name := p.next().val
			p.next()
			e, err := p.parseExpr()
			if err != nil {
				return nil, nil, err
			}
			kwargs = append(kwargs, kwarg{name: name, e: e})
		} else {
			if len(kwargs) > 0 {
				return nil, nil, p.errf("positional argument after keyword argument")
			}
			e, err := p.parseExpr()
			if err != nil {
				return nil, nil, err
			}
			args = append(args, e)
		}
		if !p.isOp(",") {
			break
		}
		p.next()
	}
	return args, kwargs, p.expectOp(")")
}

func (p *parser) parseFilterExpr(e expr) (expr, error) {
	for {
		switch {
		case p.isOp("|"):
			p.next()
			f, err := p.parseFilter(e)
			if err != nil {
				return nil, err
			}
			e = f
		case p.isName("is"):
			line := p.next().line
			t := &testExpr{e: e, line: line}
			if p.isName("not") {
				p.next()
				t.negate = true
			}
			name, err := p.expectName()
			if err != nil {
				return nil, err
			}
			t.name = name
			switch n := p.peek(); {
			case p.isOp("("):
				args, _, err := p.parseArgs()
				if err != nil {
					return nil, err
				}
				t.args = args
			case n.kind == tString || n.kind == tInt || n.kind == tFloat || p.isOp("[") || p.isOp("{") ||
				n.kind == tName && n.val != "else" && n.val != "or" && n.val != "and" && n.val != "if" && n.val != "is" && n.val != "in" && n.val != "not":
				a, err := p.parsePrimary()
				if err != nil {
					return nil, err
				}
				if a, err = p.parsePostfix(a); err != nil {
					return nil, err
				}
				t.args = []expr{a}
			}
			e = t
		case p.isOp("("):
			args, kwargs, err := p.parseArgs()
			if err != nil {
				return nil, err
			}
			e = &callExpr{fn: e, args: args, kwargs: kwargs, line: p.peek().line}
		default:
			return e, nil
		}
	}
}
