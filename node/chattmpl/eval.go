package chattmpl

import (
	"errors"
	"fmt"
	"math"
	"strings"
)

var (
	errBreak    = errors.New("break outside a loop")
	errContinue = errors.New("continue outside a loop")
)

const (
	maxCallDepth = 256
	maxOutput    = 64 << 20 // bytes one render may produce
)

// maxSteps bounds the loop iterations and macro calls of one render; a
// variable so tests can lower it.
var maxSteps = 10 << 20

type frame struct {
	vars   map[string]any
	parent *frame
}

func newFrame(parent *frame) *frame { return &frame{vars: make(map[string]any, 4), parent: parent} }

func (f *frame) lookup(name string) (any, bool) {
	for ; f != nil; f = f.parent {
		if v, ok := f.vars[name]; ok {
			return v, true
		}
	}
	return nil, false
}

// evaluator holds the state of one Render.
type evaluator struct {
	depth int
	size  int
	steps int
	// kwOrder is the order of the keyword arguments of the call being
	// made; dict() and namespace() keep it, as Python does.
	kwOrder []string
}

// macroValue is a macro bound to the frame it was defined in.
type macroValue struct {
	m      *macro
	def    *frame
	caller any
}

// builtinFunc is a global function or bound method.
type builtinFunc func(ev *evaluator, args []any, kwargs map[string]any) (any, error)

// loopState is the "loop" variable inside a for loop.
type loopState struct {
	index0 int
	items  []any
}

func (ev *evaluator) exec(nodes []node, f *frame, out *strings.Builder) error {
	for _, n := range nodes {
		if err := ev.execNode(n, f, out); err != nil {
			return err
		}
	}
	return nil
}

func (ev *evaluator) step() error {
	ev.steps++
	if ev.steps > maxSteps {
		return fmt.Errorf("template does more than %d loop iterations and macro calls", maxSteps)
	}
	return nil
}

func (ev *evaluator) write(out *strings.Builder, s string) error {
	ev.size += len(s)
	if ev.size > maxOutput {
		return fmt.Errorf("output exceeds %d bytes", maxOutput)
	}
	out.WriteString(s)
	return nil
}

func (ev *evaluator) execNode(n node, f *frame, out *strings.Builder) error {
	switch n := n.(type) {
	case *textNode:
		return ev.write(out, n.s)
	case *outputNode:
		v, err := ev.eval(n.e, f)
		if err != nil {
			return err
		}
		return ev.write(out, toStr(v))
	case *ifNode:
		for i, c := range n.conds {
			v, err := ev.eval(c, f)
			if err != nil {
				return err
			}
			if truthy(v) {
				return ev.exec(n.bodies[i], f, out)
			}
		}
		return ev.exec(n.els, f, out)
	case *forNode:
		return ev.execFor(n, f, out)
	case *setNode:
		v, err := ev.eval(n.e, f)
		if err != nil {
			return err
		}
		if n.attrOf != "" {
			obj, _ := f.lookup(n.attrOf)
			ns, ok := obj.(*Namespace)
			if !ok {
				return fmt.Errorf("line %d: cannot assign attribute on non-namespace object %s", n.line, n.attrOf)
			}
			ns.d.Set(n.targets[0], v)
			return nil
		}
		return assign(f, n.targets, v, n.line)
	case *setBlockNode:
		var b strings.Builder
		if err := ev.exec(n.body, newFrame(f), &b); err != nil {
			return err
		}
		var v any = b.String()
		v, err := ev.applyFilters(n.filters, v, f)
		if err != nil {
			return err
		}
		f.vars[n.name] = v
		return nil
	case *macroNode:
		f.vars[n.m.name] = &macroValue{m: n.m, def: f}
		return nil
	case *callBlockNode:
		fn, err := ev.eval(n.call.fn, f)
		if err != nil {
			return err
		}
		mv, ok := fn.(*macroValue)
		if !ok {
			return fmt.Errorf("line %d: call block needs a macro", n.call.line)
		}
		args, kwargs, err := ev.evalArgs(n.call.args, n.call.kwargs, f)
		if err != nil {
			return err
		}
		bound := &macroValue{m: mv.m, def: mv.def, caller: &macroValue{m: n.caller, def: f}}
		v, err := ev.callMacro(bound, args, kwargs)
		if err != nil {
			return err
		}
		return ev.write(out, toStr(v))
	case *filterBlockNode:
		var b strings.Builder
		if err := ev.exec(n.body, newFrame(f), &b); err != nil {
			return err
		}
		v, err := ev.applyFilters(n.filters, b.String(), f)
		if err != nil {
			return err
		}
		return ev.write(out, toStr(v))
	case *withNode:
		fr := newFrame(f)
		for i, name := range n.names {
			v, err := ev.eval(n.vals[i], f)
			if err != nil {
				return err
			}
			fr.vars[name] = v
		}
		return ev.exec(n.body, fr, out)
	case *breakNode:
		return errBreak
	case *continueNode:
		return errContinue
	}
	return fmt.Errorf("unknown node %T", n)
}

func assign(f *frame, targets []string, v any, line int) error {
	if len(targets) == 1 {
		f.vars[targets[0]] = v
		return nil
	}
	items, err := iterate(v)
	if err != nil {
		return fmt.Errorf("line %d: cannot unpack: %w", line, err)
	}
	if len(items) != len(targets) {
		if len(items) > len(targets) {
			return fmt.Errorf("line %d: too many values to unpack (expected %d)", line, len(targets))
		}
		return fmt.Errorf("line %d: not enough values to unpack (expected %d, got %d)", line, len(targets), len(items))
	}
	for i, t := range targets {
		f.vars[t] = items[i]
	}
	return nil
}

func (ev *evaluator) applyFilters(fs []*filterExpr, v any, f *frame) (any, error) {
	for _, fe := range fs {
		args, kwargs, err := ev.evalArgs(fe.args, fe.kwargs, f)
		if err != nil {
			return nil, err
		}
		if v, err = ev.callFilter(fe.name, v, args, kwargs, fe.line); err != nil {
			return nil, err
		}
	}
	return v, nil
}

func (ev *evaluator) execFor(n *forNode, f *frame, out *strings.Builder) error {
	it, err := ev.eval(n.iter, f)
	if err != nil {
		return err
	}
	items, err := iterate(it)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.line, err)
	}
	if n.cond != nil {
		var kept []any
		for _, item := range items {
			fr := newFrame(f)
			if err := assign(fr, n.targets, item, n.line); err != nil {
				return err
			}
			c, err := ev.eval(n.cond, fr)
			if err != nil {
				return err
			}
			if truthy(c) {
				kept = append(kept, item)
			}
		}
		items = kept
	}
	// As in jinja2, the else block also runs when every iteration ended in
	// break or continue: only an iteration that reaches its end counts.
	completed := false
	for i, item := range items {
		if err := ev.step(); err != nil {
			return err
		}
		fr := newFrame(f)
		fr.vars["loop"] = &loopState{index0: i, items: items}
		if err := assign(fr, n.targets, item, n.line); err != nil {
			return err
		}
		err := ev.exec(n.body, fr, out)
		if err == errBreak {
			break
		}
		if err == nil {
			completed = true
		} else if err != errContinue {
			return err
		}
	}
	if !completed && n.els != nil {
		return ev.exec(n.els, newFrame(f), out) // its own scope, as in jinja2
	}
	return nil
}

// iterate lists the items a for loop visits.
func iterate(v any) ([]any, error) {
	switch x := v.(type) {
	case *List:
		return x.Items, nil
	case *Dict:
		return append([]any(nil), x.keys...), nil
	case string:
		items := make([]any, 0, len(x))
		for _, r := range x {
			items = append(items, string(r))
		}
		return items, nil
	case Undefined:
		return nil, nil
	case *Namespace:
		return nil, fmt.Errorf("'Namespace' object is not iterable")
	}
	return nil, fmt.Errorf("'%s' object is not iterable", typeName(v))
}

func (ev *evaluator) evalArgs(argExprs []expr, kwExprs []kwarg, f *frame) ([]any, map[string]any, error) {
	var args []any
	if len(argExprs) > 0 {
		args = make([]any, len(argExprs))
		for i, a := range argExprs {
			v, err := ev.eval(a, f)
			if err != nil {
				return nil, nil, err
			}
			args[i] = v
		}
	}
	var kwargs map[string]any
	if len(kwExprs) > 0 {
		kwargs = make(map[string]any, len(kwExprs))
		for _, k := range kwExprs {
			v, err := ev.eval(k.e, f)
			if err != nil {
				return nil, nil, err
			}
			kwargs[k.name] = v
		}
	}
	ev.kwOrder = ev.kwOrder[:0]
	for _, k := range kwExprs {
		ev.kwOrder = append(ev.kwOrder, k.name)
	}
	return args, kwargs, nil
}

func (ev *evaluator) eval(e expr, f *frame) (any, error) {
	switch e := e.(type) {
	case *constExpr:
		return e.v, nil
	case *nameExpr:
		if v, ok := f.lookup(e.name); ok {
			return v, nil
		}
		return undefName(e.name), nil
	case *attrExpr:
		obj, err := ev.eval(e.obj, f)
		if err != nil {
			return nil, err
		}
		v, err := getAttr(obj, e.name)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", e.line, err)
		}
		return v, nil
	case *itemExpr:
		obj, err := ev.eval(e.obj, f)
		if err != nil {
			return nil, err
		}
		key, err := ev.eval(e.key, f)
		if err != nil {
			return nil, err
		}
		v, err := getItem(obj, key)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", e.line, err)
		}
		return v, nil
	case *sliceExpr:
		return ev.evalSlice(e, f)
	case *callExpr:
		fn, err := ev.eval(e.fn, f)
		if err != nil {
			return nil, err
		}
		args, kwargs, err := ev.evalArgs(e.args, e.kwargs, f)
		if err != nil {
			return nil, err
		}
		v, err := ev.call(fn, args, kwargs)
		if err != nil {
			var re *RaiseError
			if errors.As(err, &re) {
				return nil, err
			}
			return nil, fmt.Errorf("line %d: %w", e.line, err)
		}
		return v, nil
	case *filterExpr:
		v, err := ev.eval(e.e, f)
		if err != nil {
			return nil, err
		}
		args, kwargs, err := ev.evalArgs(e.args, e.kwargs, f)
		if err != nil {
			return nil, err
		}
		return ev.callFilter(e.name, v, args, kwargs, e.line)
	case *testExpr:
		v, err := ev.eval(e.e, f)
		if err != nil {
			return nil, err
		}
		args, _, err := ev.evalArgs(e.args, nil, f)
		if err != nil {
			return nil, err
		}
		ok, err := ev.runTest(e.name, v, args, f)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", e.line, err)
		}
		return ok != e.negate, nil
	case *unaryExpr:
		x, err := ev.eval(e.x, f)
		if err != nil {
			return nil, err
		}
		if e.op == "not" {
			return !truthy(x), nil
		}
		v, err := unary(e.op, x)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", e.line, err)
		}
		return v, nil
	case *binExpr:
		l, err := ev.eval(e.l, f)
		if err != nil {
			return nil, err
		}
		switch e.op {
		case "and":
			if !truthy(l) {
				return l, nil
			}
			return ev.eval(e.r, f)
		case "or":
			if truthy(l) {
				return l, nil
			}
			return ev.eval(e.r, f)
		}
		r, err := ev.eval(e.r, f)
		if err != nil {
			return nil, err
		}
		v, err := binary(e.op, l, r)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", e.line, err)
		}
		return v, nil
	case *compareExpr:
		l, err := ev.eval(e.first, f)
		if err != nil {
			return nil, err
		}
		for i, op := range e.ops {
			r, err := ev.eval(e.rest[i], f)
			if err != nil {
				return nil, err
			}
			ok, err := compare(op, l, r)
			if err != nil {
				return nil, fmt.Errorf("line %d: %w", e.line, err)
			}
			if !ok {
				return false, nil
			}
			l = r
		}
		return true, nil
	case *condExpr:
		c, err := ev.eval(e.cond, f)
		if err != nil {
			return nil, err
		}
		if truthy(c) {
			return ev.eval(e.yes, f)
		}
		if e.no == nil {
			return Undefined{hint: "the inline if-expression evaluated to false and no else section was defined."}, nil
		}
		return ev.eval(e.no, f)
	case *listExpr:
		l := &List{Items: make([]any, len(e.items)), Tuple: e.tuple}
		for i, x := range e.items {
			v, err := ev.eval(x, f)
			if err != nil {
				return nil, err
			}
			l.Items[i] = v
		}
		return l, nil
	case *dictExpr:
		d := NewDict()
		for i := range e.keys {
			k, err := ev.eval(e.keys[i], f)
			if err != nil {
				return nil, err
			}
			switch k.(type) {
			case string, int64, float64, bool, nil:
			default:
				return nil, fmt.Errorf("unhashable type: '%s'", typeName(k))
			}
			v, err := ev.eval(e.vals[i], f)
			if err != nil {
				return nil, err
			}
			d.Set(k, v)
		}
		return d, nil
	}
	return nil, fmt.Errorf("unknown expression %T", e)
}

func (ev *evaluator) evalSlice(e *sliceExpr, f *frame) (any, error) {
	obj, err := ev.eval(e.obj, f)
	if err != nil {
		return nil, err
	}
	var bounds [3]any
	for i, x := range []expr{e.start, e.stop, e.step} {
		if x == nil {
			bounds[i] = nil
			continue
		}
		if bounds[i], err = ev.eval(x, f); err != nil {
			return nil, err
		}
	}
	v, err := slice(obj, bounds[0], bounds[1], bounds[2])
	if err != nil {
		return nil, fmt.Errorf("line %d: %w", e.line, err)
	}
	return v, nil
}

// sliceIndex converts a slice bound; nil means "omitted".
func sliceIndex(v any) (int, bool, error) {
	switch x := v.(type) {
	case nil:
		return 0, false, nil
	case int64:
		return int(x), true, nil
	case bool:
		if x {
			return 1, true, nil
		}
		return 0, true, nil
	}
	return 0, false, fmt.Errorf("slice indices must be integers or None, not %s", typeName(v))
}

// slice is Python's seq[start:stop:step].
func slice(obj, start, stop, step any) (any, error) {
	st, hasStep, err := sliceIndex(step)
	if err != nil {
		return nil, err
	}
	if !hasStep {
		st = 1
	}
	if st == 0 {
		return nil, errors.New("slice step cannot be zero")
	}
	var n int
	var runes []rune
	switch x := obj.(type) {
	case *List:
		n = len(x.Items)
	case string:
		runes = []rune(x)
		n = len(runes)
	case Undefined:
		return nil, x.err()
	default:
		return nil, fmt.Errorf("'%s' object is not subscriptable", typeName(obj))
	}
	lo, hasLo, err := sliceIndex(start)
	if err != nil {
		return nil, err
	}
	hi, hasHi, err := sliceIndex(stop)
	if err != nil {
		return nil, err
	}
	clamp := func(i, def int, has bool) int {
		if !has {
			return def
		}
		if i < 0 {
			i += n
			if i < 0 {
				if st < 0 {
					return -1
				}
				return 0
			}
		}
		if i >= n {
			if st < 0 {
				return n - 1
			}
			return n
		}
		return i
	}
	var idx []int
	if st > 0 {
		lo, hi = clamp(lo, 0, hasLo), clamp(hi, n, hasHi)
		for i := lo; i < hi; i += st {
			idx = append(idx, i)
		}
	} else {
		lo, hi = clamp(lo, n-1, hasLo), clamp(hi, -1, hasHi)
		for i := lo; i > hi; i += st {
			idx = append(idx, i)
		}
	}
	if runes != nil || obj == "" {
		var b strings.Builder
		for _, i := range idx {
			b.WriteRune(runes[i])
		}
		return b.String(), nil
	}
	l := obj.(*List)
	out := &List{Items: make([]any, len(idx)), Tuple: l.Tuple}
	for j, i := range idx {
		out.Items[j] = l.Items[i]
	}
	return out, nil
}

// getAttr is jinja2's obj.name: an attribute (method) first, then an item.
func getAttr(obj any, name string) (any, error) {
	switch x := obj.(type) {
	case Undefined:
		return nil, x.err()
	case *Dict:
		if m := dictMethod(x, name); m != nil {
			return m, nil
		}
		if v, ok := x.m[name]; ok {
			return v, nil
		}
		return Undefined{hint: fmt.Sprintf("'dict object' has no attribute '%s'", name)}, nil
	case *Namespace:
		if v, ok := x.d.m[name]; ok {
			return v, nil
		}
		return Undefined{hint: fmt.Sprintf("'Namespace' object has no attribute '%s'", name)}, nil
	case *loopState:
		return x.attr(name)
	case string:
		if m := strMethod(x, name); m != nil {
			return m, nil
		}
	case *List:
		if x.group && (name == "grouper" || name == "list") {
			if name == "grouper" {
				return x.Items[0], nil
			}
			return x.Items[1], nil
		}
		if m, err := listMethod(x, name); m != nil || err != nil {
			return m, err
		}
	case nil:
		return Undefined{hint: fmt.Sprintf("'None' has no attribute '%s'", name)}, nil
	}
	return Undefined{hint: fmt.Sprintf("'%s object' has no attribute '%s'", typeName(obj), name)}, nil
}

// getItem is jinja2's obj[key]: an item first, then an attribute.
func getItem(obj, key any) (any, error) {
	switch x := obj.(type) {
	case Undefined:
		return nil, x.err()
	case *Dict:
		if v, ok := x.Get(key); ok {
			return v, nil
		}
		if s, ok := key.(string); ok {
			return getAttr(obj, s)
		}
		return Undefined{hint: fmt.Sprintf("'dict object' has no attribute %s", repr(key))}, nil
	case *List:
		if i, ok := key.(int64); ok {
			j := int(i)
			if j < 0 {
				j += len(x.Items)
			}
			if j < 0 || j >= len(x.Items) {
				return Undefined{hint: fmt.Sprintf("%s object has no element %d", typeName(obj), i)}, nil
			}
			return x.Items[j], nil
		}
	case string:
		if i, ok := key.(int64); ok {
			r := []rune(x)
			j := int(i)
			if j < 0 {
				j += len(r)
			}
			if j < 0 || j >= len(r) {
				return Undefined{hint: fmt.Sprintf("str object has no element %d", i)}, nil
			}
			return string(r[j]), nil
		}
	}
	if s, ok := key.(string); ok {
		return getAttr(obj, s)
	}
	return Undefined{hint: fmt.Sprintf("'%s object' has no element %s", typeName(obj), repr(key))}, nil
}

func (l *loopState) attr(name string) (any, error) {
	n := len(l.items)
	switch name {
	case "index":
		return int64(l.index0 + 1), nil
	case "index0":
		return int64(l.index0), nil
	case "revindex":
		return int64(n - l.index0), nil
	case "revindex0":
		return int64(n - l.index0 - 1), nil
	case "first":
		return l.index0 == 0, nil
	case "last":
		return l.index0 == n-1, nil
	case "length":
		return int64(n), nil
	case "depth":
		return int64(1), nil
	case "depth0":
		return int64(0), nil
	case "previtem":
		if l.index0 == 0 {
			return Undefined{hint: "there is no previous item"}, nil
		}
		return l.items[l.index0-1], nil
	case "nextitem":
		if l.index0 >= n-1 {
			return Undefined{hint: "there is no next item"}, nil
		}
		return l.items[l.index0+1], nil
	case "cycle":
		i := l.index0
		return builtinFunc(func(_ *evaluator, args []any, _ map[string]any) (any, error) {
			if len(args) == 0 {
				return nil, errors.New("no items for cycling given")
			}
			return args[i%len(args)], nil
		}), nil
	}
	return Undefined{hint: fmt.Sprintf("'LoopContext' object has no attribute '%s'", name)}, nil
}

func (ev *evaluator) call(fn any, args []any, kwargs map[string]any) (any, error) {
	switch x := fn.(type) {
	case builtinFunc:
		return x(ev, args, kwargs)
	case *macroValue:
		return ev.callMacro(x, args, kwargs)
	case Undefined:
		return nil, x.err()
	}
	return nil, fmt.Errorf("'%s' object is not callable", typeName(fn))
}

func (ev *evaluator) callMacro(mv *macroValue, args []any, kwargs map[string]any) (any, error) {
	ev.depth++
	defer func() { ev.depth-- }()
	if err := ev.step(); err != nil {
		return nil, err
	}
	if ev.depth > maxCallDepth {
		return nil, fmt.Errorf("macro %s: recursion deeper than %d", mv.m.name, maxCallDepth)
	}
	m := mv.m
	fr := newFrame(mv.def)
	var varargs []any
	for i, a := range args {
		if i < len(m.params) {
			fr.vars[m.params[i]] = a
		} else {
			varargs = append(varargs, a)
		}
	}
	extra := NewDict()
	for k, v := range kwargs {
		known := false
		for _, p := range m.params {
			if p == k {
				known = true
				break
			}
		}
		if known {
			if _, dup := fr.vars[k]; dup {
				return nil, fmt.Errorf("macro %s got multiple values for argument '%s'", m.name, k)
			}
			fr.vars[k] = v
		} else {
			extra.Set(k, v)
		}
	}
	for i, p := range m.params {
		if _, ok := fr.vars[p]; ok {
			continue
		}
		if m.defaults[i] == nil {
			fr.vars[p] = Undefined{hint: fmt.Sprintf("parameter '%s' was not provided", p)}
			continue
		}
		v, err := ev.eval(m.defaults[i], fr)
		if err != nil {
			return nil, err
		}
		fr.vars[p] = v
	}
	fr.vars["varargs"] = &List{Items: varargs, Tuple: true}
	fr.vars["kwargs"] = extra
	if mv.caller != nil {
		fr.vars["caller"] = mv.caller
	}
	var b strings.Builder
	if err := ev.exec(m.body, fr, &b); err != nil {
		return nil, err
	}
	return b.String(), nil
}

func unary(op string, x any) (any, error) {
	switch v := x.(type) {
	case int64:
		if op == "-" {
			return -v, nil
		}
		return v, nil
	case float64:
		if op == "-" {
			return -v, nil
		}
		return v, nil
	case bool:
		i := int64(0)
		if v {
			i = 1
		}
		if op == "-" {
			return -i, nil
		}
		return i, nil
	case Undefined:
		return nil, v.err()
	}
	return nil, fmt.Errorf("bad operand type for unary %s: '%s'", op, typeName(x))
}

func asInt(v any) (int64, bool) {
	switch x := v.(type) {
	case int64:
		return x, true
	case bool:
		if x {
			return 1, true
		}
		return 0, true
	}
	return 0, false
}

func binary(op string, l, r any) (any, error) {
	if op == "~" {
		a, b := toStr(l), toStr(r)
		if len(a)+len(b) > maxOutput {
			return nil, errors.New("string too long")
		}
		return a + b, nil
	}
	if s, ok := l.(string); ok && op == "%" {
		return percentFormat(s, r)
	}
	if u, ok := l.(Undefined); ok {
		return nil, u.err()
	}
	if u, ok := r.(Undefined); ok {
		return nil, u.err()
	}
	li, lInt := asInt(l)
	ri, rInt := asInt(r)
	lf, lNum := asNumber(l)
	rf, rNum := asNumber(r)
	if lNum && rNum {
		both := lInt && rInt
		switch op {
		case "+":
			if both {
				return li + ri, nil
			}
			return lf + rf, nil
		case "-":
			if both {
				return li - ri, nil
			}
			return lf - rf, nil
		case "*":
			if both {
				return li * ri, nil
			}
			return lf * rf, nil
		case "/":
			if rf == 0 {
				return nil, errors.New("division by zero")
			}
			return lf / rf, nil
		case "//":
			if rf == 0 {
				return nil, errors.New("integer division or modulo by zero")
			}
			if both {
				q := li / ri
				if (li%ri != 0) && ((li < 0) != (ri < 0)) {
					q--
				}
				return q, nil
			}
			return math.Floor(lf / rf), nil
		case "%":
			if rf == 0 {
				return nil, errors.New("integer division or modulo by zero")
			}
			if both {
				m := li % ri
				if m != 0 && ((m < 0) != (ri < 0)) {
					m += ri
				}
				return m, nil
			}
			m := math.Mod(lf, rf)
			if m != 0 && ((m < 0) != (rf < 0)) {
				m += rf
			}
			return m, nil
		case "**":
			if both && ri >= 0 {
				res := int64(1)
				for i := int64(0); i < ri; i++ {
					res *= li
				}
				return res, nil
			}
			return math.Pow(lf, rf), nil
		}
	}
	switch op {
	case "+":
		switch x := l.(type) {
		case string:
			if y, ok := r.(string); ok {
				if len(x)+len(y) > maxOutput {
					return nil, errors.New("string too long")
				}
				return x + y, nil
			}
			return nil, fmt.Errorf("can only concatenate str (not \"%s\") to str", typeName(r))
		case *List:
			if y, ok := r.(*List); ok && x.Tuple == y.Tuple {
				if len(x.Items)+len(y.Items) > 1<<20 {
					return nil, errors.New("list too long")
				}
				items := make([]any, 0, len(x.Items)+len(y.Items))
				items = append(append(items, x.Items...), y.Items...)
				return &List{Items: items, Tuple: x.Tuple}, nil
			}
			return nil, fmt.Errorf("can only concatenate %s (not \"%s\") to %s", typeName(l), typeName(r), typeName(l))
		}
	case "*":
		if s, ok := l.(string); ok && rInt {
			return repeatStr(s, ri)
		}
		if s, ok := r.(string); ok && lInt {
			return repeatStr(s, li)
		}
		if x, ok := l.(*List); ok && rInt {
			return repeatList(x, ri)
		}
		if x, ok := r.(*List); ok && lInt {
			return repeatList(x, li)
		}
	case "%":
		if s, ok := l.(string); ok {
			return percentFormat(s, r)
		}
	}
	return nil, fmt.Errorf("unsupported operand type(s) for %s: '%s' and '%s'", op, typeName(l), typeName(r))
}

func repeatStr(s string, n int64) (any, error) {
	if n <= 0 {
		return "", nil
	}
	if int64(len(s))*n > maxOutput {
		return nil, errors.New("repeated string too long")
	}
	return strings.Repeat(s, int(n)), nil
}

func repeatList(l *List, n int64) (any, error) {
	if n <= 0 {
		return &List{Items: []any{}, Tuple: l.Tuple}, nil
	}
	if int64(len(l.Items))*n > 1<<20 {
		return nil, errors.New("repeated list too long")
	}
	out := &List{Items: make([]any, 0, len(l.Items)*int(n)), Tuple: l.Tuple}
	for i := int64(0); i < n; i++ {
		out.Items = append(out.Items, l.Items...)
	}
	return out, nil
}

func compare(op string, l, r any) (bool, error) {
	switch op {
	case "==":
		return equal(l, r), nil
	case "!=":
		return !equal(l, r), nil
	case "in", "notin":
		ok, err := contains(r, l)
		if err != nil {
			return false, err
		}
		return ok == (op == "in"), nil
	}
	c, err := order(l, r, op)
	if err != nil {
		return false, err
	}
	switch op {
	case "<":
		return c < 0, nil
	case "<=":
		return c <= 0, nil
	case ">":
		return c > 0, nil
	}
	return c >= 0, nil
}

// order compares for <, <=, >, >=: numbers, strings, lists.
func order(l, r any, op string) (int, error) {
	if lf, ok := asNumber(l); ok {
		if rf, ok := asNumber(r); ok {
			switch {
			case lf < rf:
				return -1, nil
			case lf > rf:
				return 1, nil
			}
			return 0, nil
		}
	}
	switch x := l.(type) {
	case string:
		if y, ok := r.(string); ok {
			return strings.Compare(x, y), nil
		}
	case *List:
		if y, ok := r.(*List); ok {
			for i := 0; i < len(x.Items) && i < len(y.Items); i++ {
				if equal(x.Items[i], y.Items[i]) {
					continue
				}
				return order(x.Items[i], y.Items[i], op)
			}
			return len(x.Items) - len(y.Items), nil
		}
	case Undefined:
		return 0, x.err()
	}
	if u, ok := r.(Undefined); ok {
		return 0, u.err()
	}
	return 0, fmt.Errorf("'%s' not supported between instances of '%s' and '%s'", op, typeName(l), typeName(r))
}

// contains is Python's "needle in haystack".
func contains(haystack, needle any) (bool, error) {
	switch h := haystack.(type) {
	case string:
		n, ok := needle.(string)
		if !ok {
			return false, fmt.Errorf("'in <string>' requires string as left operand, not %s", typeName(needle))
		}
		return strings.Contains(h, n), nil
	case *List:
		for _, x := range h.Items {
			if equal(x, needle) {
				return true, nil
			}
		}
		return false, nil
	case *Dict:
		_, ok := h.Get(needle)
		return ok, nil
	case Undefined:
		return false, nil // iterates as empty
	}
	return false, fmt.Errorf("argument of type '%s' is not iterable", typeName(haystack))
}
