package chattmpl

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
)

// Template values are plain Go values of these types:
//
//	nil          Python None
//	Undefined    a name or attribute that does not exist
//	bool, int64, float64, string
//	*List        list (or tuple, when Tuple is set)
//	*Dict        dict with insertion-ordered keys
//	*Namespace   the object namespace() returns
//	callables    builtins, macros and bound methods
//
// Values decoded from JSON never alias the caller's memory.

// List is a Python list or tuple.
type List struct {
	Items []any
	Tuple bool
	group bool // a (grouper, list) pair from groupby, with those attributes
}

// Dict is a dict whose keys keep their insertion order, as Python's do.
// Keys are strings, int64, float64, bool or nil. Not safe for concurrent
// mutation; a Dict built for one Render is owned by that Render.
type Dict struct {
	keys  []any
	vals  []any       // vals[i] belongs to keys[i]
	index map[any]int // key → position, built once the dict outgrows a scan
}

// dictScanMax is the size up to which lookups scan the keys; chat messages
// have a handful of keys, and a scan beats hashing there.
const dictScanMax = 8

// NewDict returns an empty ordered dict.
func NewDict() *Dict { return &Dict{} }

// Len returns the number of keys.
func (d *Dict) Len() int { return len(d.keys) }

// Keys returns the keys in insertion order. The slice must not be modified.
func (d *Dict) Keys() []any { return d.keys }

func (d *Dict) find(key any) int {
	if d.index != nil {
		if i, ok := d.index[key]; ok {
			return i
		}
		return -1
	}
	for i, k := range d.keys {
		if k == key {
			return i
		}
	}
	return -1
}

// Get returns the value stored under key.
func (d *Dict) Get(key any) (any, bool) {
	key = normKey(key)
	if !hashable(key) {
		return nil, false
	}
	if i := d.find(key); i >= 0 {
		return d.vals[i], true
	}
	return nil, false
}

// Set stores v under key; a new key goes to the end, an existing key keeps
// its place. Keys must be hashable (strings, numbers, bools, None).
func (d *Dict) Set(key, v any) {
	key = normKey(key)
	if i := d.find(key); i >= 0 {
		d.vals[i] = v
		return
	}
	d.keys = append(d.keys, key)
	d.vals = append(d.vals, v)
	if d.index != nil {
		d.index[key] = len(d.keys) - 1
	} else if len(d.keys) > dictScanMax {
		d.index = make(map[any]int, 2*len(d.keys))
		for i, k := range d.keys {
			d.index[k] = i
		}
	}
}

// hashable reports whether k can be a dict key.
func hashable(k any) bool {
	switch k.(type) {
	case nil, string, int64, float64, bool, bigInt:
		return true
	}
	return false
}

// normKey maps keys that compare equal in Python onto one Go value
// (1 == 1.0 == True).
func normKey(k any) any {
	switch x := k.(type) {
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1<<62 {
			return int64(x)
		}
	case bool:
		if x {
			return int64(1)
		}
		return int64(0)
	case int:
		return int64(x)
	}
	return k
}

// bigInt is an integer literal from JSON too large for int64. It prints
// and encodes with all its digits; arithmetic treats it as a float.
type bigInt string

// Namespace is the mutable object made by namespace(...).
type Namespace struct{ d *Dict }

// Undefined is the value of a missing variable, attribute or item. It
// prints as nothing, is false, iterates as empty, and fails any other use
// with its hint.
type Undefined struct{ hint string }

func (u Undefined) err() error {
	if u.hint == "" {
		return errors.New("value is undefined")
	}
	return errors.New(u.hint)
}

func undefName(name string) Undefined { return Undefined{hint: fmt.Sprintf("'%s' is undefined", name)} }

const maxJSONDepth = 512

func numberValue(s string) (any, error) {
	if !strings.ContainsAny(s, ".eE") {
		if i, err := strconv.ParseInt(s, 10, 64); err == nil {
			return i, nil
		}
		return bigInt(s), nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return nil, fmt.Errorf("bad number %q: %w", s, err)
	}
	return f, nil
}

// FromGo converts values as encoding/json produces them (map[string]any,
// []any, float64, json.Number, string, bool, nil), Go ints, and
// json.RawMessage into template values; other values go through their JSON
// form. Map keys are sorted, since Go maps have no order; a float64 with an
// integral value becomes an int.
func FromGo(v any) (any, error) {
	switch x := v.(type) {
	case nil, string, bool, int64, Undefined, *List, *Dict, *Namespace:
		return x, nil
	case int:
		return int64(x), nil
	case int32:
		return int64(x), nil
	case uint32:
		return int64(x), nil
	case float32:
		return FromGo(float64(x))
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1<<53 {
			return int64(x), nil
		}
		return x, nil
	case json.Number:
		return numberValue(string(x))
	case json.RawMessage:
		return DecodeJSON(x)
	case []string:
		l := &List{Items: make([]any, len(x))}
		for i, s := range x {
			l.Items[i] = s
		}
		return l, nil
	case []any:
		l := &List{Items: make([]any, len(x))}
		for i, e := range x {
			c, err := FromGo(e)
			if err != nil {
				return nil, err
			}
			l.Items[i] = c
		}
		return l, nil
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		d := NewDict()
		for _, k := range keys {
			c, err := FromGo(x[k])
			if err != nil {
				return nil, err
			}
			d.Set(k, c)
		}
		return d, nil
	}
	// Anything else (typed slices and maps, structs) goes through its JSON
	// form.
	data, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("unsupported value of type %T: %w", v, err)
	}
	return DecodeJSON(data)
}

// truthy is Python's bool(v).
func truthy(v any) bool {
	switch x := v.(type) {
	case nil, Undefined:
		return false
	case bool:
		return x
	case int64:
		return x != 0
	case bigInt:
		return true
	case float64:
		return x != 0
	case string:
		return x != ""
	case *List:
		return len(x.Items) > 0
	case *Dict:
		return x.Len() > 0
	}
	return true
}

// typeName is Python's type(v).__name__, as error messages print it.
func typeName(v any) string {
	switch x := v.(type) {
	case nil:
		return "NoneType"
	case Undefined:
		return "Undefined"
	case bool:
		return "bool"
	case int64, bigInt:
		return "int"
	case float64:
		return "float"
	case string:
		return "str"
	case *List:
		if x.Tuple {
			return "tuple"
		}
		return "list"
	case *Dict:
		return "dict"
	case *Namespace:
		return "Namespace"
	case *loopState:
		return "LoopContext"
	}
	return "function"
}

// toStr is Python's str(v) as {{ v }} prints it; Undefined prints as "".
func toStr(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case Undefined:
		return ""
	}
	var b strings.Builder
	writeRepr(&b, v, 0)
	return b.String()
}

// repr is Python's repr(v).
func repr(v any) string {
	var b strings.Builder
	writeRepr(&b, v, 0)
	return b.String()
}

func writeRepr(b *strings.Builder, v any, depth int) {
	if depth > 200 {
		b.WriteString("...")
		return
	}
	switch x := v.(type) {
	case nil:
		b.WriteString("None")
	case Undefined:
		b.WriteString("")
	case bool:
		if x {
			b.WriteString("True")
		} else {
			b.WriteString("False")
		}
	case int64:
		b.WriteString(strconv.FormatInt(x, 10))
	case bigInt:
		b.WriteString(string(x))
	case float64:
		b.WriteString(pyFloat(x))
	case string:
		writeStrRepr(b, x)
	case *List:
		open, close := "[", "]"
		if x.Tuple {
			open, close = "(", ")"
		}
		b.WriteString(open)
		for i, e := range x.Items {
			if i > 0 {
				b.WriteString(", ")
			}
			writeRepr(b, e, depth+1)
		}
		if x.Tuple && len(x.Items) == 1 {
			b.WriteString(",")
		}
		b.WriteString(close)
	case *Dict:
		b.WriteString("{")
		for i, k := range x.keys {
			if i > 0 {
				b.WriteString(", ")
			}
			writeRepr(b, k, depth+1)
			b.WriteString(": ")
			writeRepr(b, x.vals[i], depth+1)
		}
		b.WriteString("}")
	case *Namespace:
		b.WriteString("<Namespace ")
		writeRepr(b, x.d, depth+1)
		b.WriteString(">")
	case *loopState:
		b.WriteString("<LoopContext>")
	default:
		b.WriteString("<function>")
	}
}

// writeStrRepr writes a string the way Python's repr quotes it.
func writeStrRepr(b *strings.Builder, s string) {
	q := byte('\'')
	if strings.IndexByte(s, '\'') >= 0 && strings.IndexByte(s, '"') < 0 {
		q = '"'
	}
	b.WriteByte(q)
	for _, r := range s {
		switch {
		case r == rune(q) || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(b, `\x%02x`, r)
		case r >= 0x80 && r < 0xa0:
			fmt.Fprintf(b, `\x%02x`, r)
		case r == 0xfffd:
			b.WriteRune(r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte(q)
}

// pyFloat formats f as Python's repr(float) does: the shortest digits that
// round-trip, exponent form below 1e-4 and from 1e16 on, and ".0" on
// integral values.
func pyFloat(f float64) string {
	switch {
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	case math.IsNaN(f):
		return "nan"
	}
	e := strconv.FormatFloat(f, 'e', -1, 64) // -d.ddde±XX
	mant, expStr, _ := strings.Cut(e, "e")
	exp, _ := strconv.Atoi(expStr)
	if exp >= -4 && exp < 16 {
		s := strconv.FormatFloat(f, 'f', -1, 64)
		if !strings.ContainsAny(s, ".") {
			s += ".0"
		}
		return s
	}
	sign := "+"
	if exp < 0 {
		sign = "-"
		exp = -exp
	}
	return fmt.Sprintf("%se%s%02d", mant, sign, exp)
}

// equal is Python's ==.
func equal(a, b any) bool {
	if ai, ok := a.(int64); ok {
		if bi, ok := b.(int64); ok {
			return ai == bi
		}
	}
	if an, ok := asNumber(a); ok {
		if bn, ok := asNumber(b); ok {
			return an == bn
		}
		return false
	}
	switch x := a.(type) {
	case nil:
		return b == nil
	case Undefined:
		_, ok := b.(Undefined)
		return ok
	case string:
		y, ok := b.(string)
		return ok && x == y
	case *List:
		y, ok := b.(*List)
		if !ok || len(x.Items) != len(y.Items) || x.Tuple != y.Tuple {
			return false
		}
		for i := range x.Items {
			if !equal(x.Items[i], y.Items[i]) {
				return false
			}
		}
		return true
	case *Dict:
		y, ok := b.(*Dict)
		if !ok || x.Len() != y.Len() {
			return false
		}
		for i, k := range x.keys {
			yv, ok := y.Get(k)
			if !ok || !equal(x.vals[i], yv) {
				return false
			}
		}
		return true
	}
	return a == b
}

// asNumber returns v as float64 when v is a Python number (bool included).
func asNumber(v any) (float64, bool) {
	switch x := v.(type) {
	case int64:
		return float64(x), true
	case bigInt:
		f, _ := strconv.ParseFloat(string(x), 64)
		return f, true
	case float64:
		return x, true
	case bool:
		if x {
			return 1, true
		}
		return 0, true
	}
	return 0, false
}
