package chattmpl

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// strMethod returns the bound string method name, or nil.
func strMethod(s, name string) builtinFunc {
	var fn func(args []any, kwargs map[string]any) (any, error)
	switch name {
	case "strip", "lstrip", "rstrip":
		fn = func(args []any, kwargs map[string]any) (any, error) {
			chars := arg(args, kwargs, 0, "chars", nil)
			if chars == nil {
				switch name {
				case "strip":
					return strings.TrimFunc(s, unicode.IsSpace), nil
				case "lstrip":
					return strings.TrimLeftFunc(s, unicode.IsSpace), nil
				}
				return strings.TrimRightFunc(s, unicode.IsSpace), nil
			}
			c, ok := chars.(string)
			if !ok {
				return nil, fmt.Errorf("%s arg must be None or str", name)
			}
			switch name {
			case "strip":
				return strings.Trim(s, c), nil
			case "lstrip":
				return strings.TrimLeft(s, c), nil
			}
			return strings.TrimRight(s, c), nil
		}
	case "split", "rsplit":
		fn = func(args []any, kwargs map[string]any) (any, error) {
			sep := arg(args, kwargs, 0, "sep", nil)
			n, err := intArg(args, kwargs, 1, "maxsplit", -1)
			if err != nil {
				return nil, err
			}
			var parts []string
			if sep == nil {
				parts = splitWhitespace(s, int(n), name == "rsplit")
			} else {
				sp, ok := sep.(string)
				if !ok || sp == "" {
					return nil, errors.New("empty or non-string separator")
				}
				switch {
				case n < 0:
					parts = strings.Split(s, sp)
				case name == "split":
					parts = strings.SplitN(s, sp, int(n)+1)
				default:
					parts = rsplitN(s, sp, int(n))
				}
			}
			l := &List{Items: make([]any, len(parts))}
			for i, p := range parts {
				l.Items[i] = p
			}
			return l, nil
		}
	case "splitlines":
		fn = func(args []any, kwargs map[string]any) (any, error) {
			keep := truthy(arg(args, kwargs, 0, "keepends", false))
			l := &List{Items: []any{}}
			rest := s
			for rest != "" {
				i := strings.IndexAny(rest, "\n\r")
				if i < 0 {
					l.Items = append(l.Items, rest)
					break
				}
				end := i + 1
				if rest[i] == '\r' && end < len(rest) && rest[end] == '\n' {
					end++
				}
				if keep {
					l.Items = append(l.Items, rest[:end])
				} else {
					l.Items = append(l.Items, rest[:i])
				}
				rest = rest[end:]
			}
			return l, nil
		}
	case "replace":
		fn = func(args []any, kwargs map[string]any) (any, error) {
			return fReplace(nil, s, args, kwargs)
		}
	case "upper":
		fn = func([]any, map[string]any) (any, error) { return pyUpper(s), nil }
	case "lower":
		fn = func([]any, map[string]any) (any, error) { return strings.ToLower(s), nil }
	case "title":
		fn = func([]any, map[string]any) (any, error) { return pyTitle(s), nil }
	case "capitalize":
		fn = func([]any, map[string]any) (any, error) { return pyCapitalize(s), nil }
	case "startswith", "endswith":
		fn = func(args []any, kwargs map[string]any) (any, error) {
			if len(args) == 0 {
				return nil, fmt.Errorf("%s needs an argument", name)
			}
			var cands []any
			switch x := args[0].(type) {
			case string:
				cands = []any{x}
			case *List:
				cands = x.Items
			default:
				return nil, fmt.Errorf("%s first arg must be str or a tuple of str, not %s", name, typeName(args[0]))
			}
			for _, c := range cands {
				p, ok := c.(string)
				if !ok {
					return nil, fmt.Errorf("%s: tuple items must be str", name)
				}
				if name == "startswith" && strings.HasPrefix(s, p) || name == "endswith" && strings.HasSuffix(s, p) {
					return true, nil
				}
			}
			return false, nil
		}
	case "find", "rfind", "index", "rindex", "count":
		fn = func(args []any, kwargs map[string]any) (any, error) {
			sub, err := strArg(args, kwargs, 0, "sub", "")
			if err != nil {
				return nil, err
			}
			if name == "count" {
				if sub == "" {
					return int64(utf8.RuneCountInString(s) + 1), nil
				}
				return int64(strings.Count(s, sub)), nil
			}
			var i int
			if name == "find" || name == "index" {
				i = strings.Index(s, sub)
			} else {
				i = strings.LastIndex(s, sub)
			}
			if i < 0 {
				if name == "index" || name == "rindex" {
					return nil, errors.New("substring not found")
				}
				return int64(-1), nil
			}
			return int64(utf8.RuneCountInString(s[:i])), nil
		}
	case "join":
		fn = func(args []any, kwargs map[string]any) (any, error) {
			if len(args) != 1 {
				return nil, errors.New("join takes one argument")
			}
			items, err := iterate(args[0])
			if err != nil {
				return nil, err
			}
			parts := make([]string, len(items))
			for i, it := range items {
				p, ok := it.(string)
				if !ok {
					return nil, fmt.Errorf("sequence item %d: expected str instance, %s found", i, typeName(it))
				}
				parts[i] = p
			}
			return strings.Join(parts, s), nil
		}
	case "format":
		fn = func(args []any, kwargs map[string]any) (any, error) { return strFormat(s, args, kwargs) }
	case "isdigit", "isnumeric", "isdecimal", "isalpha", "isalnum", "isspace", "isupper", "islower":
		fn = func([]any, map[string]any) (any, error) { return strIs(s, name), nil }
	case "zfill":
		fn = func(args []any, kwargs map[string]any) (any, error) {
			w, err := intArg(args, kwargs, 0, "width", 0)
			if err != nil {
				return nil, err
			}
			n := utf8.RuneCountInString(s)
			if int(w) <= n {
				return s, nil
			}
			pad := strings.Repeat("0", int(w)-n)
			if s != "" && (s[0] == '-' || s[0] == '+') {
				return s[:1] + pad + s[1:], nil
			}
			return pad + s, nil
		}
	case "center", "ljust", "rjust":
		fn = func(args []any, kwargs map[string]any) (any, error) {
			w, err := intArg(args, kwargs, 0, "width", 0)
			if err != nil {
				return nil, err
			}
			fill, err := strArg(args, kwargs, 1, "fillchar", " ")
			if err != nil {
				return nil, err
			}
			if w > 1<<20 {
				return nil, errors.New("width too large")
			}
			n := utf8.RuneCountInString(s)
			if int(w) <= n {
				return s, nil
			}
			switch name {
			case "ljust":
				return s + strings.Repeat(fill, int(w)-n), nil
			case "rjust":
				return strings.Repeat(fill, int(w)-n) + s, nil
			}
			return pyCenter(s, int(w), fill), nil
		}
	case "partition", "rpartition":
		fn = func(args []any, kwargs map[string]any) (any, error) {
			sep, err := strArg(args, kwargs, 0, "sep", "")
			if err != nil || sep == "" {
				return nil, errors.New("empty separator")
			}
			var i int
			if name == "partition" {
				i = strings.Index(s, sep)
			} else {
				i = strings.LastIndex(s, sep)
			}
			if i < 0 {
				if name == "partition" {
					return &List{Items: []any{s, "", ""}, Tuple: true}, nil
				}
				return &List{Items: []any{"", "", s}, Tuple: true}, nil
			}
			return &List{Items: []any{s[:i], sep, s[i+len(sep):]}, Tuple: true}, nil
		}
	case "removeprefix":
		fn = func(args []any, kwargs map[string]any) (any, error) {
			p, err := strArg(args, kwargs, 0, "prefix", "")
			return strings.TrimPrefix(s, p), err
		}
	case "removesuffix":
		fn = func(args []any, kwargs map[string]any) (any, error) {
			p, err := strArg(args, kwargs, 0, "suffix", "")
			return strings.TrimSuffix(s, p), err
		}
	case "swapcase":
		fn = func([]any, map[string]any) (any, error) {
			return strings.Map(func(r rune) rune {
				if unicode.IsUpper(r) {
					return unicode.ToLower(r)
				}
				return unicode.ToUpper(r)
			}, s), nil
		}
	case "encode", "decode":
		fn = func([]any, map[string]any) (any, error) { return s, nil }
	default:
		return nil
	}
	return func(_ *evaluator, args []any, kwargs map[string]any) (any, error) { return fn(args, kwargs) }
}

func strIs(s, name string) bool {
	if s == "" {
		return false
	}
	hasCased := false
	for _, r := range s {
		switch name {
		case "isdigit", "isnumeric", "isdecimal":
			if !unicode.IsDigit(r) {
				return false
			}
		case "isalpha":
			if !unicode.IsLetter(r) {
				return false
			}
		case "isalnum":
			if !unicode.IsLetter(r) && !unicode.IsDigit(r) {
				return false
			}
		case "isspace":
			if !unicode.IsSpace(r) {
				return false
			}
		case "isupper":
			if unicode.IsLower(r) {
				return false
			}
			hasCased = hasCased || unicode.IsUpper(r)
		case "islower":
			if unicode.IsUpper(r) {
				return false
			}
			hasCased = hasCased || unicode.IsLower(r)
		}
	}
	if name == "isupper" || name == "islower" {
		return hasCased
	}
	return true
}

func splitWhitespace(s string, n int, fromRight bool) []string {
	fields := strings.FieldsFunc(s, unicode.IsSpace)
	if n < 0 || len(fields) <= n+1 {
		return fields
	}
	if !fromRight {
		// The first n fields, then the rest of s from the (n+1)th field on.
		rest := s
		out := make([]string, 0, n+1)
		for i := 0; i < n; i++ {
			rest = strings.TrimLeftFunc(rest, unicode.IsSpace)
			j := strings.IndexFunc(rest, unicode.IsSpace)
			out = append(out, rest[:j])
			rest = rest[j:]
		}
		return append(out, strings.TrimLeftFunc(rest, unicode.IsSpace))
	}
	rest := s
	out := make([]string, n+1)
	for i := n; i > 0; i-- {
		rest = strings.TrimRightFunc(rest, unicode.IsSpace)
		j := strings.LastIndexFunc(rest, unicode.IsSpace)
		out[i] = rest[j+1:]
		rest = rest[:j+1]
	}
	out[0] = strings.TrimRightFunc(rest, unicode.IsSpace)
	return out
}

func rsplitN(s, sep string, n int) []string {
	var out []string
	for n > 0 {
		i := strings.LastIndex(s, sep)
		if i < 0 {
			break
		}
		out = append(out, s[i+len(sep):])
		s = s[:i]
		n--
	}
	out = append(out, s)
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}

// pyCapitalize upper-cases the first character and lower-cases the rest.
func pyCapitalize(s string) string {
	if s == "" {
		return s
	}
	r, n := utf8.DecodeRuneInString(s)
	return string(unicode.ToUpper(r)) + strings.ToLower(s[n:])
}

// pyTitle is Python's str.title: a cased letter after an uncased
// character starts a word.
func pyTitle(s string) string {
	var b strings.Builder
	prevCased := false
	for _, r := range s {
		if prevCased {
			b.WriteRune(unicode.ToLower(r))
		} else {
			b.WriteRune(unicode.ToTitle(r))
		}
		prevCased = unicode.IsLetter(r)
	}
	return b.String()
}

func pyCenter(s string, w int, fill string) string {
	n := utf8.RuneCountInString(s)
	if w <= n || w > 1<<20 {
		return s
	}
	total := w - n
	left := total / 2
	if total%2 == 1 && w%2 == 1 {
		left++
	}
	return strings.Repeat(fill, left) + s + strings.Repeat(fill, total-left)
}

// dictMethod returns the bound dict method name, or nil.
func dictMethod(d *Dict, name string) builtinFunc {
	switch name {
	case "items":
		return func(*evaluator, []any, map[string]any) (any, error) { return dictItems(d), nil }
	case "keys":
		return func(*evaluator, []any, map[string]any) (any, error) {
			return &List{Items: append([]any{}, d.keys...)}, nil
		}
	case "values":
		return func(*evaluator, []any, map[string]any) (any, error) {
			l := &List{Items: make([]any, len(d.keys))}
			for i := range d.keys {
				l.Items[i] = d.vals[i]
			}
			return l, nil
		}
	case "get":
		return func(_ *evaluator, args []any, kwargs map[string]any) (any, error) {
			if len(args) == 0 {
				return nil, errors.New("get expected at least 1 argument")
			}
			if v, ok := d.Get(args[0]); ok {
				return v, nil
			}
			if len(args) > 1 {
				return args[1], nil
			}
			return nil, nil
		}
	case "copy":
		return func(*evaluator, []any, map[string]any) (any, error) {
			c := NewDict()
			for i, k := range d.keys {
				c.Set(k, d.vals[i])
			}
			return c, nil
		}
	case "update", "pop", "popitem", "setdefault", "clear":
		return func(*evaluator, []any, map[string]any) (any, error) {
			return nil, fmt.Errorf("access to attribute '%s' of 'dict' object is unsafe", name)
		}
	}
	return nil
}

// listMethod returns the bound list method name, or nil.
func listMethod(l *List, name string) (builtinFunc, error) {
	switch name {
	case "index", "count":
		return func(_ *evaluator, args []any, _ map[string]any) (any, error) {
			if len(args) == 0 {
				return nil, fmt.Errorf("%s expected an argument", name)
			}
			n := int64(0)
			for i, x := range l.Items {
				if equal(x, args[0]) {
					if name == "index" {
						return int64(i), nil
					}
					n++
				}
			}
			if name == "index" {
				return nil, fmt.Errorf("%s is not in list", repr(args[0]))
			}
			return n, nil
		}, nil
	case "append", "extend", "insert", "pop", "remove", "clear", "sort", "reverse":
		return func(*evaluator, []any, map[string]any) (any, error) {
			return nil, fmt.Errorf("access to attribute '%s' of '%s' object is unsafe", name, typeName(l))
		}, nil
	}
	return nil, nil
}
