package chattmpl

import (
	"errors"
	"fmt"
)

// runTest evaluates "v is name(args)".
func (ev *evaluator) runTest(name string, v any, args []any, f *frame) (bool, error) {
	a := func(i int) (any, error) {
		if i >= len(args) {
			return nil, fmt.Errorf("test %s needs %d argument(s)", name, i+1)
		}
		return args[i], nil
	}
	switch name {
	case "defined":
		_, u := v.(Undefined)
		return !u, nil
	case "undefined":
		_, u := v.(Undefined)
		return u, nil
	case "none":
		return v == nil, nil
	case "string":
		_, ok := v.(string)
		return ok, nil
	case "mapping":
		_, ok := v.(*Dict)
		return ok, nil
	case "iterable":
		switch v.(type) {
		case string, *List, *Dict, Undefined:
			return true, nil
		}
		return false, nil
	case "sequence":
		switch v.(type) {
		case string, *List, *Dict, Undefined:
			return true, nil
		}
		return false, nil
	case "number":
		switch v.(type) {
		case int64, bigInt, float64, bool:
			return true, nil
		}
		return false, nil
	case "integer":
		switch v.(type) {
		case int64, bigInt:
			return true, nil
		}
		return false, nil
	case "float":
		_, ok := v.(float64)
		return ok, nil
	case "boolean":
		_, ok := v.(bool)
		return ok, nil
	case "true":
		return v == true, nil
	case "false":
		return v == false, nil
	case "callable":
		switch v.(type) {
		case builtinFunc, *macroValue, Undefined:
			return true, nil
		}
		return false, nil
	case "odd", "even":
		m, err := binary("%", v, int64(2))
		if err != nil {
			return false, err
		}
		if name == "odd" {
			return equal(m, int64(1)), nil
		}
		return equal(m, int64(0)), nil
	case "divisibleby":
		x, err := a(0)
		if err != nil {
			return false, err
		}
		m, err := binary("%", v, x)
		if err != nil {
			return false, err
		}
		return equal(m, int64(0)), nil
	case "eq", "equalto", "==":
		x, err := a(0)
		return err == nil && equal(v, x), err
	case "ne", "!=":
		x, err := a(0)
		return err == nil && !equal(v, x), err
	case "lt", "lessthan", "<", "le", "<=", "gt", "greaterthan", ">", "ge", ">=":
		x, err := a(0)
		if err != nil {
			return false, err
		}
		op := map[string]string{"lt": "<", "lessthan": "<", "le": "<=", "gt": ">", "greaterthan": ">", "ge": ">="}[name]
		if op == "" {
			op = name
		}
		return compare(op, v, x)
	case "in":
		x, err := a(0)
		if err != nil {
			return false, err
		}
		return contains(x, v)
	case "sameas":
		x, err := a(0)
		if err != nil {
			return false, err
		}
		switch v.(type) {
		case *List, *Dict, *Namespace:
			return v == x, nil
		}
		return equal(v, x) && typeName(v) == typeName(x), nil
	case "lower":
		return strIs(toStr(v), "islower"), nil
	case "upper":
		return strIs(toStr(v), "isupper"), nil
	case "escaped":
		return false, nil
	case "filter":
		x, err := a(0)
		if err != nil {
			return false, err
		}
		s, _ := x.(string)
		_, ok := filters[s]
		return ok, nil
	case "test":
		x, err := a(0)
		if err != nil {
			return false, err
		}
		s, _ := x.(string)
		_, err = ev.runTest(s, nil, []any{nil}, f)
		var unknown *unknownError
		return !errors.As(err, &unknown), nil
	}
	return false, &unknownError{kind: "test", name: name}
}

// unknownError reports a filter or test the template names that does not
// exist, in jinja2's words.
type unknownError struct{ kind, name string }

func (e *unknownError) Error() string { return fmt.Sprintf("No %s named '%s'.", e.kind, e.name) }
