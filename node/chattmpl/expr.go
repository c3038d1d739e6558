package chattmpl

import (
	"errors"
	"fmt"
	"strings"
)

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
			if !hashable(k) {
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
			fr.set(m.params[i], a)
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
			if _, dup := fr.get(k); dup {
				return nil, fmt.Errorf("macro %s got multiple values for argument '%s'", m.name, k)
			}
			fr.set(k, v)
		} else {
			extra.Set(k, v)
		}
	}
	for i, p := range m.params {
		if _, ok := fr.get(p); ok {
			continue
		}
		if m.defaults[i] == nil {
			fr.set(p, Undefined{hint: fmt.Sprintf("parameter '%s' was not provided", p)})
			continue
		}
		v, err := ev.eval(m.defaults[i], fr)
		if err != nil {
			return nil, err
		}
		fr.set(p, v)
	}
	fr.set("varargs", &List{Items: varargs, Tuple: true})
	fr.set("kwargs", extra)
	if mv.caller != nil {
		fr.set("caller", mv.caller)
	}
	var b strings.Builder
	if err := ev.exec(m.body, fr, &b); err != nil {
		return nil, err
	}
	return b.String(), nil
}
