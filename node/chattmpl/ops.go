package chattmpl

import (
	"errors"
	"fmt"
	"math"
	"strings"
)

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
		if v, ok := x.Get(name); ok {
			return v, nil
		}
		return Undefined{hint: fmt.Sprintf("'dict object' has no attribute '%s'", name)}, nil
	case *Namespace:
		if v, ok := x.d.Get(name); ok {
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
