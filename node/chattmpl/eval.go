package chattmpl

import (
	"errors"
	"fmt"
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

// frame is one scope. Its first few variables live inline (a loop
// iteration sets two or three), the rest in a map.
type frame struct {
	names  [4]string
	vals   [4]any
	n      int
	more   map[string]any
	parent *frame
}

func newFrame(parent *frame) *frame { return &frame{parent: parent} }

// get looks name up in this frame only.
func (f *frame) get(name string) (any, bool) {
	for i := 0; i < f.n; i++ {
		if f.names[i] == name {
			return f.vals[i], true
		}
	}
	v, ok := f.more[name]
	return v, ok
}

// set binds name in this frame.
func (f *frame) set(name string, v any) {
	for i := 0; i < f.n; i++ {
		if f.names[i] == name {
			f.vals[i] = v
			return
		}
	}
	if _, ok := f.more[name]; ok || f.n == len(f.names) {
		if f.more == nil {
			f.more = make(map[string]any)
		}
		f.more[name] = v
		return
	}
	f.names[f.n], f.vals[f.n] = name, v
	f.n++
}

// lookup finds name in this frame or an enclosing one.
func (f *frame) lookup(name string) (any, bool) {
	for ; f != nil; f = f.parent {
		if v, ok := f.get(name); ok {
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
		f.set(n.name, v)
		return nil
	case *macroNode:
		f.set(n.m.name, &macroValue{m: n.m, def: f})
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
			fr.set(name, v)
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
		f.set(targets[0], v)
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
		f.set(t, items[i])
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
		fr.set("loop", &loopState{index0: i, items: items})
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
