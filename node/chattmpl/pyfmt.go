package chattmpl

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

type jsonOptions struct {
	itemSep, keySep string
	indent          string
	useIndent       bool
	sortKeys        bool
	ensureASCII     bool
}

// writeJSON encodes v as Python's json.dumps does with the given options
// (ensure_ascii=False unless asked): keys in insertion order, floats as
// Python prints them, non-ASCII text unescaped.
func writeJSON(b *strings.Builder, v any, o jsonOptions, depth int) error {
	if depth > maxJSONDepth {
		return errors.New("value nested too deeply for JSON")
	}
	newline := func(d int) {
		if o.useIndent {
			b.WriteByte('\n')
			for i := 0; i < d; i++ {
				b.WriteString(o.indent)
			}
		}
	}
	switch x := v.(type) {
	case nil:
		b.WriteString("null")
	case bool:
		if x {
			b.WriteString("true")
		} else {
			b.WriteString("false")
		}
	case int64:
		b.WriteString(strconv.FormatInt(x, 10))
	case bigInt:
		b.WriteString(string(x))
	case float64:
		switch {
		case math.IsNaN(x):
			b.WriteString("NaN")
		case math.IsInf(x, 1):
			b.WriteString("Infinity")
		case math.IsInf(x, -1):
			b.WriteString("-Infinity")
		default:
			b.WriteString(pyFloat(x))
		}
	case string:
		writeJSONString(b, x, o.ensureASCII)
	case *List:
		if len(x.Items) == 0 {
			b.WriteString("[]")
			return nil
		}
		b.WriteByte('[')
		for i, e := range x.Items {
			if i > 0 {
				b.WriteString(o.itemSep)
			}
			newline(depth + 1)
			if err := writeJSON(b, e, o, depth+1); err != nil {
				return err
			}
		}
		newline(depth)
		b.WriteByte(']')
	case *Dict:
		if x.Len() == 0 {
			b.WriteString("{}")
			return nil
		}
		keys := x.keys
		if o.sortKeys {
			keys = append([]any{}, keys...)
			var sortErr error
			sort.SliceStable(keys, func(i, j int) bool {
				c, err := order(keys[i], keys[j], "<")
				if err != nil {
					sortErr = err
				}
				return c < 0
			})
			if sortErr != nil {
				return sortErr
			}
		}
		b.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				b.WriteString(o.itemSep)
			}
			newline(depth + 1)
			var ks string
			switch kk := k.(type) {
			case string:
				ks = kk
			case nil:
				ks = "null"
			case bool:
				ks = strconv.FormatBool(kk)
			case int64:
				ks = strconv.FormatInt(kk, 10)
			case float64:
				ks = pyFloat(kk)
			default:
				return fmt.Errorf("keys must be str, int, float, bool or None, not %s", typeName(k))
			}
			writeJSONString(b, ks, o.ensureASCII)
			b.WriteString(o.keySep)
			v, _ := x.Get(k)
			if err := writeJSON(b, v, o, depth+1); err != nil {
				return err
			}
		}
		newline(depth)
		b.WriteByte('}')
	case *Namespace:
		return writeJSON(b, x.d, o, depth)
	default:
		//lint:ignore ST1005 Python's message
		return fmt.Errorf("Object of type %s is not JSON serializable", typeName(v))
	}
	return nil
}

func writeJSONString(b *strings.Builder, s string, ascii bool) {
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		default:
			switch {
			case r < 0x20:
				fmt.Fprintf(b, `\u%04x`, r)
			case ascii && r > 0x7e:
				if r > 0xffff {
					r -= 0x10000
					fmt.Fprintf(b, `\u%04x\u%04x`, 0xd800+(r>>10), 0xdc00+(r&0x3ff))
				} else {
					fmt.Fprintf(b, `\u%04x`, r)
				}
			default:
				b.WriteRune(r)
			}
		}
	}
	b.WriteByte('"')
}

// percentFormat is Python's "fmt % args" for the common conversions.
func percentFormat(format string, args any) (any, error) {
	var vals []any
	var named *Dict
	lenient := false // Python skips the "not all converted" check for mappings and lists
	switch x := args.(type) {
	case *List:
		if x.Tuple {
			vals = x.Items
		} else {
			vals, lenient = []any{x}, true
		}
	case *Dict:
		named = x
		vals = []any{x}
	default:
		vals = []any{x}
	}
	var b strings.Builder
	next := 0
	for i := 0; i < len(format); i++ {
		c := format[i]
		if c != '%' {
			b.WriteByte(c)
			continue
		}
		i++
		if i >= len(format) {
			return nil, errors.New("incomplete format")
		}
		var val any
		haveVal := false
		if format[i] == '(' {
			end := strings.IndexByte(format[i:], ')')
			if end < 0 || named == nil {
				return nil, errors.New("format requires a mapping")
			}
			v, ok := named.Get(format[i+1 : i+end])
			if !ok {
				return nil, fmt.Errorf("key %s not found", format[i+1:i+end])
			}
			val, haveVal = v, true
			i += end + 1
		}
		start := i
		for i < len(format) && strings.IndexByte("-+ #0123456789.", format[i]) >= 0 {
			i++
		}
		if i >= len(format) {
			return nil, errors.New("incomplete format")
		}
		spec, verb := format[start:i], format[i]
		if verb == '%' {
			b.WriteByte('%')
			continue
		}
		if !haveVal {
			if next >= len(vals) {
				return nil, errors.New("not enough arguments for format string")
			}
			val = vals[next]
			next++
		}
		var s string
		switch verb {
		case 's':
			s = fmt.Sprintf("%"+spec+"s", toStr(val))
		case 'r', 'a':
			s = fmt.Sprintf("%"+spec+"s", repr(val))
		case 'd', 'i', 'u':
			f, ok := asNumber(val)
			if !ok {
				return nil, fmt.Errorf("%%%c format: a real number is required, not %s", verb, typeName(val))
			}
			s = fmt.Sprintf("%"+spec+"d", int64(f))
		case 'f', 'F', 'e', 'E', 'g', 'G':
			f, ok := asNumber(val)
			if !ok {
				return nil, fmt.Errorf("must be real number, not %s", typeName(val))
			}
			if !strings.Contains(spec, ".") && verb != 'g' && verb != 'G' {
				spec += ".6"
			}
			s = fmt.Sprintf("%"+spec+string(verb), f)
		case 'x', 'X', 'o':
			n, ok := asInt(val)
			if !ok {
				return nil, fmt.Errorf("%%%c format: an integer is required, not %s", verb, typeName(val))
			}
			s = fmt.Sprintf("%"+spec+string(verb), n)
		case 'c':
			switch x := val.(type) {
			case int64:
				s = string(rune(x))
			case string:
				s = x
			}
		default:
			return nil, fmt.Errorf("unsupported format character '%c'", verb)
		}
		b.WriteString(s)
	}
	if named == nil && !lenient && next < len(vals) {
		return nil, errors.New("not all arguments converted during string formatting")
	}
	return b.String(), nil
}

// strFormat is Python's str.format for positional, numbered and named
// fields with simple format specs.
func strFormat(format string, args []any, kwargs map[string]any) (any, error) {
	var b strings.Builder
	auto, manual := 0, false
	usedAuto := false
	for i := 0; i < len(format); i++ {
		c := format[i]
		if c == '}' {
			if i+1 < len(format) && format[i+1] == '}' {
				i++
			}
			b.WriteByte('}')
			continue
		}
		if c != '{' {
			b.WriteByte(c)
			continue
		}
		if i+1 < len(format) && format[i+1] == '{' {
			b.WriteByte('{')
			i++
			continue
		}
		end := strings.IndexByte(format[i:], '}')
		if end < 0 {
			return nil, errors.New("single '{' encountered in format string")
		}
		field := format[i+1 : i+end]
		i += end
		name, spec, _ := strings.Cut(field, ":")
		name, conv, _ := strings.Cut(name, "!")
		var v any
		switch {
		case name == "":
			if manual {
				return nil, errors.New("cannot switch from manual field specification to automatic field numbering")
			}
			usedAuto = true
			if auto >= len(args) {
				return nil, fmt.Errorf("replacement index %d out of range for positional args tuple", auto)
			}
			v = args[auto]
			auto++
		case isDigit(name[0]):
			if usedAuto {
				return nil, errors.New("cannot switch from automatic field numbering to manual field specification")
			}
			manual = true
			n, err := strconv.Atoi(name)
			if err != nil || n >= len(args) {
				return nil, fmt.Errorf("replacement index %s out of range for positional args tuple", name)
			}
			v = args[n]
		default:
			base, rest, _ := strings.Cut(name, ".")
			x, ok := kwargs[base]
			if !ok {
				return nil, fmt.Errorf("KeyError: '%s'", base)
			}
			v = x
			for rest != "" {
				var part string
				part, rest, _ = strings.Cut(rest, ".")
				var err error
				if v, err = getAttr(v, part); err != nil {
					return nil, err
				}
			}
		}
		s := toStr(v)
		if conv == "r" {
			s = repr(v)
		}
		if spec != "" {
			var err error
			if s, err = applySpec(v, s, spec); err != nil {
				return nil, err
			}
		}
		b.WriteString(s)
	}
	return b.String(), nil
}

// applySpec handles [[fill]align][width][.precision][type] format specs.
func applySpec(v any, s, spec string) (string, error) {
	fill, align := " ", byte(0)
	if len(spec) >= 2 && strings.IndexByte("<>^", spec[1]) >= 0 {
		r, n := utf8.DecodeRuneInString(spec)
		if n == 1 {
			fill, align, spec = string(r), spec[1], spec[2:]
		}
	} else if spec != "" && strings.IndexByte("<>^", spec[0]) >= 0 {
		align, spec = spec[0], spec[1:]
	}
	i := 0
	for i < len(spec) && isDigit(spec[i]) {
		i++
	}
	width, _ := strconv.Atoi(spec[:i])
	spec = spec[i:]
	if strings.HasPrefix(spec, ".") {
		j := 1
		for j < len(spec) && isDigit(spec[j]) {
			j++
		}
		prec, _ := strconv.Atoi(spec[1:j])
		typ := spec[j:]
		if f, ok := asNumber(v); ok && (typ == "f" || typ == "" || typ == "e" || typ == "g") {
			if typ == "" {
				typ = "g"
			}
			s = strconv.FormatFloat(f, typ[0], prec, 64)
		} else if str, ok := v.(string); ok {
			if r := []rune(str); len(r) > prec {
				s = string(r[:prec])
			}
		}
	} else if spec == "d" {
		if n, ok := asInt(v); ok {
			s = strconv.FormatInt(n, 10)
		}
	}
	if width > 1<<16 {
		return "", errors.New("format width too large")
	}
	if n := utf8.RuneCountInString(s); n < width {
		if align == 0 {
			align = '<'
			if _, num := asNumber(v); num {
				align = '>'
			}
		}
		switch align {
		case '<':
			s += strings.Repeat(fill, width-n)
		case '>':
			s = strings.Repeat(fill, width-n) + s
		case '^':
			l := (width - n) / 2
			s = strings.Repeat(fill, l) + s + strings.Repeat(fill, width-n-l)
		}
	}
	return s, nil
}

// strftime formats t with C strftime directives (glibc's "%-d" style
// no-padding flag included).
func strftime(format string, t time.Time) string {
	var b strings.Builder
	for i := 0; i < len(format); i++ {
		c := format[i]
		if c != '%' || i+1 >= len(format) {
			b.WriteByte(c)
			continue
		}
		i++
		noPad := false
		if format[i] == '-' && i+1 < len(format) {
			noPad = true
			i++
		}
		num := func(n, width int) {
			if noPad {
				b.WriteString(strconv.Itoa(n))
			} else {
				fmt.Fprintf(&b, "%0*d", width, n)
			}
		}
		switch format[i] {
		case 'Y':
			b.WriteString(strconv.Itoa(t.Year()))
		case 'y':
			num(t.Year()%100, 2)
		case 'm':
			num(int(t.Month()), 2)
		case 'd':
			num(t.Day(), 2)
		case 'e':
			fmt.Fprintf(&b, "%2d", t.Day())
		case 'H':
			num(t.Hour(), 2)
		case 'I':
			h := t.Hour() % 12
			if h == 0 {
				h = 12
			}
			num(h, 2)
		case 'M':
			num(t.Minute(), 2)
		case 'S':
			num(t.Second(), 2)
		case 'f':
			fmt.Fprintf(&b, "%06d", t.Nanosecond()/1000)
		case 'p':
			if t.Hour() < 12 {
				b.WriteString("AM")
			} else {
				b.WriteString("PM")
			}
		case 'b', 'h':
			b.WriteString(t.Month().String()[:3])
		case 'B':
			b.WriteString(t.Month().String())
		case 'a':
			b.WriteString(t.Weekday().String()[:3])
		case 'A':
			b.WriteString(t.Weekday().String())
		case 'j':
			num(t.YearDay(), 3)
		case 'w':
			b.WriteString(strconv.Itoa(int(t.Weekday())))
		case 'Z':
			name, _ := t.Zone()
			b.WriteString(name)
		case 'z':
			b.WriteString(t.Format("-0700"))
		case 'F':
			b.WriteString(t.Format("2006-01-02"))
		case 'T':
			b.WriteString(t.Format("15:04:05"))
		case 'D':
			b.WriteString(t.Format("01/02/06"))
		case '%':
			b.WriteByte('%')
		default:
			b.WriteByte('%')
			b.WriteByte(format[i])
		}
	}
	return b.String()
}
