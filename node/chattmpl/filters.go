package chattmpl

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

type filterFunc func(ev *evaluator, v any, args []any, kwargs map[string]any) (any, error)

var filters map[string]filterFunc

func init() {
	filters = map[string]filterFunc{
		"abs":         fAbs,
		"attr":        fAttr,
		"batch":       fBatch,
		"capitalize":  fCapitalize,
		"center":      fCenter,
		"count":       fLength,
		"d":           fDefault,
		"default":     fDefault,
		"dictsort":    fDictsort,
		"e":           fEscape,
		"escape":      fEscape,
		"first":       fFirst,
		"float":       fFloat,
		"forceescape": fEscape,
		"format":      fFormat,
		"groupby":     fGroupby,
		"from_json":   fFromJSON,
		"fromjson":    fFromJSON,
		"indent":      fIndent,
		"int":         fInt,
		"items":       fItems,
		"join":        fJoin,
		"last":        fLast,
		"length":      fLength,
		"list":        fList,
		"lower":       fLower,
		"map":         fMap,
		"max":         fMax,
		"min":         fMin,
		"pprint":      func(_ *evaluator, v any, _ []any, _ map[string]any) (any, error) { return repr(v), nil },
		"reject":      fSelectFn(false),
		"rejectattr":  fSelectAttr(false),
		"replace":     fReplace,
		"reverse":     fReverse,
		"round":       fRound,
		"safe":        fString,
		"select":      fSelectFn(true),
		"selectattr":  fSelectAttr(true),
		"sort":        fSort,
		"string":      fString,
		"striptags":   fStriptags,
		"sum":         fSum,
		"title":       fTitle,
		"tojson":      fToJSON,
		"trim":        fTrim,
		"truncate":    fTruncate,
		"unique":      fUnique,
		"upper":       fUpper,
		"wordcount":   fWordcount,
	}
}

func (ev *evaluator) callFilter(name string, v any, args []any, kwargs map[string]any, line int) (any, error) {
	f, ok := filters[name]
	if !ok {
		return nil, fmt.Errorf("line %d: %w", line, &unknownError{kind: "filter", name: name})
	}
	out, err := f(ev, v, args, kwargs)
	if err != nil {
		var re *RaiseError
		if errors.As(err, &re) {
			return nil, err
		}
		return nil, fmt.Errorf("line %d: filter %s: %w", line, name, err)
	}
	return out, nil
}

// arg returns positional argument i, else keyword name, else def.
func arg(args []any, kwargs map[string]any, i int, name string, def any) any {
	if i >= 0 && i < len(args) {
		return args[i]
	}
	if v, ok := kwargs[name]; ok {
		return v
	}
	return def
}

func strArg(args []any, kwargs map[string]any, i int, name, def string) (string, error) {
	v := arg(args, kwargs, i, name, def)
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("argument %s must be a string, not %s", name, typeName(v))
	}
	return s, nil
}

func intArg(args []any, kwargs map[string]any, i int, name string, def int64) (int64, error) {
	v := arg(args, kwargs, i, name, def)
	n, ok := asInt(v)
	if !ok {
		return 0, fmt.Errorf("argument %s must be an integer, not %s", name, typeName(v))
	}
	return n, nil
}

func fLength(_ *evaluator, v any, _ []any, _ map[string]any) (any, error) {
	switch x := v.(type) {
	case string:
		return int64(utf8.RuneCountInString(x)), nil
	case *List:
		return int64(len(x.Items)), nil
	case *Dict:
		return int64(x.Len()), nil
	case *Namespace:
		return int64(x.d.Len()), nil
	case Undefined:
		return int64(0), nil
	}
	return nil, fmt.Errorf("object of type '%s' has no len()", typeName(v))
}

func fTrim(_ *evaluator, v any, args []any, kwargs map[string]any) (any, error) {
	s := toStr(v)
	chars := arg(args, kwargs, 0, "chars", nil)
	if c, ok := chars.(string); ok {
		return strings.Trim(s, c), nil
	}
	return strings.TrimFunc(s, unicode.IsSpace), nil
}

func fJoin(ev *evaluator, v any, args []any, kwargs map[string]any) (any, error) {
	sep, err := strArg(args, kwargs, 0, "d", "")
	if err != nil {
		return nil, err
	}
	items, err := iterate(v)
	if err != nil {
		return nil, err
	}
	attr := arg(args, kwargs, 1, "attribute", nil)
	var b strings.Builder
	for i, it := range items {
		if i > 0 {
			b.WriteString(sep)
		}
		if attr != nil {
			if it, err = attrPath(it, attr); err != nil {
				return nil, err
			}
		}
		b.WriteString(toStr(it))
	}
	return b.String(), nil
}

// attrPath resolves jinja2's attribute="a.b" or attribute=0 lookups.
func attrPath(v, attr any) (any, error) {
	if i, ok := attr.(int64); ok {
		return getItem(v, i)
	}
	s, ok := attr.(string)
	if !ok {
		return nil, fmt.Errorf("attribute must be a string")
	}
	for _, part := range strings.Split(s, ".") {
		var err error
		if n, convErr := strconv.Atoi(part); convErr == nil {
			v, err = getItem(v, int64(n))
		} else {
			v, err = getItem(v, part)
		}
		if err != nil {
			return nil, err
		}
	}
	return v, nil
}

func fFirst(_ *evaluator, v any, _ []any, _ map[string]any) (any, error) {
	items, err := iterate(v)
	if err != nil {
		return nil, err
	}
	if len(items) == 0 {
		return Undefined{hint: "No first item, sequence was empty."}, nil
	}
	return items[0], nil
}

func fLast(_ *evaluator, v any, _ []any, _ map[string]any) (any, error) {
	items, err := iterate(v)
	if err != nil {
		return nil, err
	}
	if len(items) == 0 {
		return Undefined{hint: "No last item, sequence was empty."}, nil
	}
	return items[len(items)-1], nil
}

func fList(_ *evaluator, v any, _ []any, _ map[string]any) (any, error) {
	items, err := iterate(v)
	if err != nil {
		return nil, err
	}
	return &List{Items: append([]any{}, items...)}, nil
}

func fDefault(_ *evaluator, v any, args []any, kwargs map[string]any) (any, error) {
	def := arg(args, kwargs, 0, "default_value", "")
	boolean := truthy(arg(args, kwargs, 1, "boolean", false))
	if _, undef := v.(Undefined); undef || boolean && !truthy(v) {
		return def, nil
	}
	return v, nil
}

func fString(_ *evaluator, v any, _ []any, _ map[string]any) (any, error) { return toStr(v), nil }

func fUpper(_ *evaluator, v any, _ []any, _ map[string]any) (any, error) {
	return pyUpper(toStr(v)), nil
}

// pyUpper is strings.ToUpper plus Python's one-to-many mapping of "ß".
func pyUpper(s string) string {
	return strings.ReplaceAll(strings.ToUpper(s), "ß", "SS")
}

func fLower(_ *evaluator, v any, _ []any, _ map[string]any) (any, error) {
	return strings.ToLower(toStr(v)), nil
}

func fCapitalize(_ *evaluator, v any, _ []any, _ map[string]any) (any, error) {
	return pyCapitalize(toStr(v)), nil
}

var wordBeginning = regexp.MustCompile(`([-\s({\[<]+)`)

// fTitle is jinja2's title filter: words begin after whitespace, "-" and
// opening brackets.
func fTitle(_ *evaluator, v any, _ []any, _ map[string]any) (any, error) {
	s := toStr(v)
	var b strings.Builder
	last := 0
	for _, m := range wordBeginning.FindAllStringIndex(s, -1) {
		b.WriteString(pyCapitalize(s[last:m[0]]))
		b.WriteString(s[m[0]:m[1]])
		last = m[1]
	}
	b.WriteString(pyCapitalize(s[last:]))
	return b.String(), nil
}

func fCenter(_ *evaluator, v any, args []any, kwargs map[string]any) (any, error) {
	w, err := intArg(args, kwargs, 0, "width", 80)
	if err != nil {
		return nil, err
	}
	return pyCenter(toStr(v), int(w), " "), nil
}

func fInt(_ *evaluator, v any, args []any, kwargs map[string]any) (any, error) {
	def := arg(args, kwargs, 0, "default", int64(0))
	switch x := v.(type) {
	case Undefined:
		return nil, x.err()
	case int64:
		return x, nil
	case bool:
		i, _ := asInt(x)
		return i, nil
	case float64:
		if math.IsInf(x, 0) || math.IsNaN(x) {
			return def, nil
		}
		return int64(x), nil
	case string:
		base, err := intArg(args, kwargs, 1, "base", 10)
		if err != nil {
			return nil, err
		}
		s := strings.TrimSpace(strings.ReplaceAll(x, "_", ""))
		digits := strings.TrimLeft(s, "+-")
		if len(digits) > 2 && digits[0] == '0' {
			if p := strings.ToLower(digits[:2]); p == "0x" && base == 16 || p == "0o" && base == 8 || p == "0b" && base == 2 {
				s = s[:len(s)-len(digits)] + digits[2:]
			}
		}
		if base >= 2 && base <= 36 {
			if i, err := strconv.ParseInt(s, int(base), 64); err == nil {
				return i, nil
			}
		}
		if f, err := strconv.ParseFloat(s, 64); err == nil && !math.IsInf(f, 0) && !math.IsNaN(f) {
			return int64(f), nil
		}
	}
	return def, nil
}

func fFloat(_ *evaluator, v any, args []any, kwargs map[string]any) (any, error) {
	def := arg(args, kwargs, 0, "default", 0.0)
	switch x := v.(type) {
	case Undefined:
		return nil, x.err()
	case int64:
		return float64(x), nil
	case bool:
		f, _ := asNumber(x)
		return f, nil
	case float64:
		return x, nil
	case string:
		if f, err := strconv.ParseFloat(strings.TrimSpace(x), 64); err == nil {
			return f, nil
		}
	}
	return def, nil
}

func fAbs(_ *evaluator, v any, _ []any, _ map[string]any) (any, error) {
	switch x := v.(type) {
	case int64:
		if x < 0 {
			return -x, nil
		}
		return x, nil
	case float64:
		return math.Abs(x), nil
	case bool:
		i, _ := asInt(x)
		return i, nil
	}
	return nil, fmt.Errorf("bad operand type for abs(): '%s'", typeName(v))
}

func fRound(_ *evaluator, v any, args []any, kwargs map[string]any) (any, error) {
	prec, err := intArg(args, kwargs, 0, "precision", 0)
	if err != nil {
		return nil, err
	}
	method, err := strArg(args, kwargs, 1, "method", "common")
	if err != nil {
		return nil, err
	}
	f, ok := asNumber(v)
	if !ok {
		return nil, fmt.Errorf("cannot round %s", typeName(v))
	}
	if i, isInt := asInt(v); isInt && method == "common" && prec >= 0 {
		return i, nil // Python's round keeps an int an int
	}
	p := math.Pow(10, float64(prec))
	switch method {
	case "common":
		return math.Round(f*p) / p, nil
	case "ceil":
		return math.Ceil(f*p) / p, nil
	case "floor":
		return math.Floor(f*p) / p, nil
	}
	return nil, errors.New("method must be common, ceil or floor")
}

func fIndent(_ *evaluator, v any, args []any, kwargs map[string]any) (any, error) {
	pad := "    "
	switch w := arg(args, kwargs, 0, "width", int64(4)).(type) {
	case string:
		pad = w
	default:
		n, ok := asInt(w)
		if !ok || n < 0 || n > 1<<16 {
			return nil, errors.New("width must be a non-negative integer or a string")
		}
		pad = strings.Repeat(" ", int(n))
	}
	first := truthy(arg(args, kwargs, 1, "first", false))
	blank := truthy(arg(args, kwargs, 2, "blank", false))
	var s string
	switch x := v.(type) {
	case Undefined:
		return nil, x.err()
	case string:
		s = x
	default:
		return nil, fmt.Errorf("unsupported operand type(s) for +=: '%s' and 'str'", typeName(v))
	}
	s += "\n" // jinja2 appends a newline and strips it again at the end
	lines := strings.Split(s, "\n")
	lines = lines[:len(lines)-1]
	var b strings.Builder
	for i, l := range lines {
		if i > 0 {
			b.WriteByte('\n')
		}
		if (i > 0 || first) && (blank || l != "") {
			b.WriteString(pad)
		}
		b.WriteString(l)
	}
	return b.String(), nil
}

func fItems(_ *evaluator, v any, _ []any, _ map[string]any) (any, error) {
	switch x := v.(type) {
	case *Dict:
		return dictItems(x), nil
	case Undefined:
		return &List{Items: []any{}}, nil
	}
	//lint:ignore ST1005 jinja2's message
	return nil, errors.New("Can only get item pairs from a mapping.")
}

func dictItems(d *Dict) *List {
	l := &List{Items: make([]any, len(d.keys))}
	for i, k := range d.keys {
		l.Items[i] = &List{Items: []any{k, d.vals[i]}, Tuple: true}
	}
	return l
}

func fDictsort(_ *evaluator, v any, args []any, kwargs map[string]any) (any, error) {
	d, ok := v.(*Dict)
	if u, undef := v.(Undefined); undef {
		return nil, u.err()
	}
	if !ok {
		return nil, fmt.Errorf("dictsort needs a mapping, not %s", typeName(v))
	}
	caseSensitive := truthy(arg(args, kwargs, 0, "case_sensitive", false))
	by, err := strArg(args, kwargs, 1, "by", "key")
	if err != nil {
		return nil, err
	}
	reverse := truthy(arg(args, kwargs, 2, "reverse", false))
	items := dictItems(d).Items
	pos := 0
	if by == "value" {
		pos = 1
	}
	var sortErr error
	sort.SliceStable(items, func(i, j int) bool {
		a := sortKey(items[i].(*List).Items[pos], caseSensitive)
		b := sortKey(items[j].(*List).Items[pos], caseSensitive)
		c, err := order(a, b, "<")
		if err != nil {
			sortErr = err
		}
		if reverse {
			return c > 0
		}
		return c < 0
	})
	if sortErr != nil {
		return nil, sortErr
	}
	return &List{Items: items}, nil
}

func sortKey(v any, caseSensitive bool) any {
	if s, ok := v.(string); ok && !caseSensitive {
		return strings.ToLower(s)
	}
	return v
}

func fSort(_ *evaluator, v any, args []any, kwargs map[string]any) (any, error) {
	items, err := iterate(v)
	if err != nil {
		return nil, err
	}
	reverse := truthy(arg(args, kwargs, 0, "reverse", false))
	caseSensitive := truthy(arg(args, kwargs, 1, "case_sensitive", false))
	attr := arg(args, kwargs, 2, "attribute", nil)
	out := append([]any{}, items...)
	keys := make([]any, len(out))
	for i, it := range out {
		k := it
		if attr != nil {
			if k, err = attrPath(it, attr); err != nil {
				return nil, err
			}
		}
		keys[i] = sortKey(k, caseSensitive)
	}
	idx := make([]int, len(out))
	for i := range idx {
		idx[i] = i
	}
	var sortErr error
	sort.SliceStable(idx, func(i, j int) bool {
		c, err := order(keys[idx[i]], keys[idx[j]], "<")
		if err != nil {
			sortErr = err
		}
		if reverse {
			return c > 0
		}
		return c < 0
	})
	if sortErr != nil {
		return nil, sortErr
	}
	sorted := make([]any, len(out))
	for i, j := range idx {
		sorted[i] = out[j]
	}
	return &List{Items: sorted}, nil
}

func fReverse(_ *evaluator, v any, _ []any, _ map[string]any) (any, error) {
	if s, ok := v.(string); ok {
		r := []rune(s)
		for i, j := 0, len(r)-1; i < j; i, j = i+1, j-1 {
			r[i], r[j] = r[j], r[i]
		}
		return string(r), nil
	}
	items, err := iterate(v)
	if err != nil {
		return nil, err
	}
	out := make([]any, len(items))
	for i, it := range items {
		out[len(items)-1-i] = it
	}
	return &List{Items: out}, nil
}

func fUnique(_ *evaluator, v any, args []any, kwargs map[string]any) (any, error) {
	items, err := iterate(v)
	if err != nil {
		return nil, err
	}
	caseSensitive := truthy(arg(args, kwargs, 0, "case_sensitive", false))
	attr := arg(args, kwargs, 1, "attribute", nil)
	var out, seen []any
	for _, it := range items {
		k := it
		if attr != nil {
			if k, err = attrPath(it, attr); err != nil {
				return nil, err
			}
		}
		k = sortKey(k, caseSensitive)
		dup := false
		for _, s := range seen {
			if equal(s, k) {
				dup = true
				break
			}
		}
		if !dup {
			seen = append(seen, k)
			out = append(out, it)
		}
	}
	return &List{Items: append([]any{}, out...)}, nil
}

func fReplace(_ *evaluator, v any, args []any, kwargs map[string]any) (any, error) {
	old, err := strArg(args, kwargs, 0, "old", "")
	if err != nil {
		return nil, err
	}
	repl, err := strArg(args, kwargs, 1, "new", "")
	if err != nil {
		return nil, err
	}
	n, err := intArg(args, kwargs, 2, "count", -1)
	if err != nil {
		return nil, err
	}
	return strings.Replace(toStr(v), old, repl, int(n)), nil
}

func fMap(ev *evaluator, v any, args []any, kwargs map[string]any) (any, error) {
	if !truthy(v) { // jinja2 yields nothing for a false sequence
		return &List{Items: []any{}}, nil
	}
	items, err := iterate(v)
	if err != nil {
		return nil, err
	}
	out := &List{Items: make([]any, 0, len(items))}
	if attr, ok := kwargs["attribute"]; ok {
		def, hasDef := kwargs["default"]
		for _, it := range items {
			x, err := attrPath(it, attr)
			if err != nil {
				return nil, err
			}
			if _, undef := x.(Undefined); undef && hasDef {
				x = def
			}
			out.Items = append(out.Items, x)
		}
		return out, nil
	}
	if len(args) == 0 {
		return nil, errors.New("map needs a filter name or attribute=")
	}
	name, ok := args[0].(string)
	if !ok {
		return nil, errors.New("map: filter name must be a string")
	}
	for _, it := range items {
		x, err := ev.callFilter(name, it, args[1:], kwargs, 0)
		if err != nil {
			return nil, err
		}
		out.Items = append(out.Items, x)
	}
	return out, nil
}

func fSelectFn(keep bool) filterFunc {
	return func(ev *evaluator, v any, args []any, _ map[string]any) (any, error) {
		if !truthy(v) { // jinja2 yields nothing for a false sequence
			return &List{Items: []any{}}, nil
		}
		items, err := iterate(v)
		if err != nil {
			return nil, err
		}
		out := &List{Items: []any{}}
		for _, it := range items {
			ok := truthy(it)
			if len(args) > 0 {
				name, isStr := args[0].(string)
				if !isStr {
					return nil, errors.New("test name must be a string")
				}
				if ok, err = ev.runTest(name, it, args[1:], nil); err != nil {
					return nil, err
				}
			}
			if ok == keep {
				out.Items = append(out.Items, it)
			}
		}
		return out, nil
	}
}

func fSelectAttr(keep bool) filterFunc {
	return func(ev *evaluator, v any, args []any, _ map[string]any) (any, error) {
		if !truthy(v) { // jinja2 yields nothing for a false sequence
			return &List{Items: []any{}}, nil
		}
		items, err := iterate(v)
		if err != nil {
			return nil, err
		}
		if len(args) == 0 {
			return nil, errors.New("missing attribute name")
		}
		out := &List{Items: []any{}}
		for _, it := range items {
			x, err := attrPath(it, args[0])
			if err != nil {
				return nil, err
			}
			ok := truthy(x)
			if len(args) > 1 {
				name, isStr := args[1].(string)
				if !isStr {
					return nil, errors.New("test name must be a string")
				}
				if ok, err = ev.runTest(name, x, args[2:], nil); err != nil {
					return nil, err
				}
			}
			if ok == keep {
				out.Items = append(out.Items, it)
			}
		}
		return out, nil
	}
}

func fAttr(_ *evaluator, v any, args []any, _ map[string]any) (any, error) {
	if len(args) != 1 {
		return nil, errors.New("attr needs one name")
	}
	name, ok := args[0].(string)
	if !ok {
		return nil, errors.New("attribute name must be a string")
	}
	return getAttr(v, name)
}

func fMinMax(v any, args []any, kwargs map[string]any, want int) (any, error) {
	items, err := iterate(v)
	if err != nil {
		return nil, err
	}
	if len(items) == 0 {
		return Undefined{hint: "No aggregated item, sequence was empty."}, nil
	}
	caseSensitive := truthy(arg(args, kwargs, 0, "case_sensitive", false))
	attr := arg(args, kwargs, 1, "attribute", nil)
	best, bestKey := items[0], any(nil)
	for i, it := range items {
		k := it
		if attr != nil {
			if k, err = attrPath(it, attr); err != nil {
				return nil, err
			}
		}
		k = sortKey(k, caseSensitive)
		if i == 0 {
			bestKey = k
			continue
		}
		c, err := order(k, bestKey, "<")
		if err != nil {
			return nil, err
		}
		if c*want > 0 {
			best, bestKey = it, k
		}
	}
	return best, nil
}

func fMax(_ *evaluator, v any, args []any, kwargs map[string]any) (any, error) {
	return fMinMax(v, args, kwargs, 1)
}

func fMin(_ *evaluator, v any, args []any, kwargs map[string]any) (any, error) {
	return fMinMax(v, args, kwargs, -1)
}

func fSum(_ *evaluator, v any, args []any, kwargs map[string]any) (any, error) {
	items, err := iterate(v)
	if err != nil {
		return nil, err
	}
	attr := arg(args, kwargs, 0, "attribute", nil)
	var total any = arg(args, kwargs, 1, "start", int64(0))
	for _, it := range items {
		if attr != nil {
			if it, err = attrPath(it, attr); err != nil {
				return nil, err
			}
		}
		if total, err = binary("+", total, it); err != nil {
			return nil, err
		}
	}
	return total, nil
}

func fBatch(_ *evaluator, v any, args []any, kwargs map[string]any) (any, error) {
	items, err := iterate(v)
	if err != nil {
		return nil, err
	}
	n, err := intArg(args, kwargs, 0, "linecount", 1)
	if err != nil {
		return nil, err
	}
	if n <= 0 {
		return nil, errors.New("batch size must be positive")
	}
	fill, hasFill := kwargs["fill_with"]
	if len(args) > 1 {
		fill, hasFill = args[1], true
	}
	out := &List{Items: []any{}}
	for i := 0; i < len(items); i += int(n) {
		end := min(i+int(n), len(items))
		chunk := append([]any{}, items[i:end]...)
		for hasFill && len(chunk) < int(n) {
			chunk = append(chunk, fill)
		}
		out.Items = append(out.Items, &List{Items: chunk})
	}
	return out, nil
}

var wordRe = regexp.MustCompile(`[\p{L}\p{N}_]+`)

func fWordcount(_ *evaluator, v any, _ []any, _ map[string]any) (any, error) {
	return int64(len(wordRe.FindAllStringIndex(toStr(v), -1))), nil
}

func fEscape(_ *evaluator, v any, _ []any, _ map[string]any) (any, error) {
	r := strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&#34;", "'", "&#39;")
	return r.Replace(toStr(v)), nil
}

var tagRe = regexp.MustCompile(`(?s)<!--.*?-->|<[^>]*>`)

func fStriptags(_ *evaluator, v any, _ []any, _ map[string]any) (any, error) {
	return strings.Join(strings.Fields(tagRe.ReplaceAllString(toStr(v), "")), " "), nil
}

func fTruncate(ev *evaluator, v any, args []any, kwargs map[string]any) (any, error) {
	n, err := intArg(args, kwargs, 0, "length", 255)
	if err != nil {
		return nil, err
	}
	killwords := truthy(arg(args, kwargs, 1, "killwords", false))
	end, err := strArg(args, kwargs, 2, "end", "...")
	if err != nil {
		return nil, err
	}
	leeway, err := intArg(args, kwargs, 3, "leeway", 5)
	if err != nil {
		return nil, err
	}
	str, isStr := v.(string)
	if !isStr {
		l, err := fLength(ev, v, nil, nil)
		if err != nil {
			return nil, err
		}
		if l.(int64) <= n+leeway {
			return v, nil
		}
		return nil, fmt.Errorf("cannot truncate a %s", typeName(v))
	}
	s := []rune(str)
	if int64(len(s)) <= n+leeway {
		return string(s), nil
	}
	cut := max(int(n)-utf8.RuneCountInString(end), 0)
	if killwords {
		return string(s[:cut]) + end, nil
	}
	t := string(s[:cut])
	if i := strings.LastIndexByte(t, ' '); i >= 0 {
		t = t[:i]
	}
	return t + end, nil
}

// fToJSON is transformers' tojson: json.dumps(x, ensure_ascii=False,
// indent=None, separators=None, sort_keys=False), arguments in that order.
func fToJSON(_ *evaluator, v any, args []any, kwargs map[string]any) (any, error) {
	opt := jsonOptions{itemSep: ", ", keySep: ": "}
	opt.ensureASCII = truthy(arg(args, kwargs, 0, "ensure_ascii", false))
	if ind := arg(args, kwargs, 1, "indent", nil); ind != nil {
		switch x := ind.(type) {
		case string:
			opt.indent, opt.useIndent = x, true
		default:
			n, ok := asInt(x)
			if !ok || n > 1<<10 {
				return nil, errors.New("indent must be an integer or a string")
			}
			opt.indent, opt.useIndent = strings.Repeat(" ", int(max(n, 0))), true
		}
		opt.itemSep = ","
	}
	if seps := arg(args, kwargs, 2, "separators", nil); seps != nil {
		l, ok := seps.(*List)
		if !ok || len(l.Items) != 2 {
			return nil, errors.New("separators must be a pair of strings")
		}
		a, ok1 := l.Items[0].(string)
		b, ok2 := l.Items[1].(string)
		if !ok1 || !ok2 {
			return nil, errors.New("separators must be a pair of strings")
		}
		opt.itemSep, opt.keySep = a, b
	}
	opt.sortKeys = truthy(arg(args, kwargs, 3, "sort_keys", false))
	var b strings.Builder
	if err := writeJSON(&b, v, opt, 0); err != nil {
		return nil, err
	}
	return b.String(), nil
}

// fFormat is jinja2's "fmt" | format(args…): printf-style formatting.
func fFormat(ev *evaluator, v any, args []any, kwargs map[string]any) (any, error) {
	s, ok := v.(string)
	if !ok {
		s = toStr(v)
	}
	if len(args) > 0 && len(kwargs) > 0 {
		return nil, errors.New("can't handle positional and keyword arguments at the same time")
	}
	if len(kwargs) > 0 {
		d := NewDict()
		for _, k := range ev.kwargNames(kwargs) {
			d.Set(k, kwargs[k])
		}
		return percentFormat(s, d)
	}
	return percentFormat(s, &List{Items: args, Tuple: true})
}

// fGroupby is jinja2's groupby(attribute): (grouper, items) pairs sorted by
// the attribute.
func fGroupby(ev *evaluator, v any, args []any, kwargs map[string]any) (any, error) {
	attr := arg(args, kwargs, 0, "attribute", nil)
	if attr == nil {
		return nil, errors.New("groupby needs an attribute")
	}
	def, hasDef := kwargs["default"]
	caseSensitive := truthy(arg(args, kwargs, 2, "case_sensitive", false))
	sorted, err := fSort(ev, v, nil, map[string]any{"attribute": attr, "case_sensitive": caseSensitive})
	if err != nil {
		return nil, err
	}
	out := &List{Items: []any{}}
	var cur *List
	var curKey any
	for _, it := range sorted.(*List).Items {
		k, err := attrPath(it, attr)
		if err != nil {
			return nil, err
		}
		if _, undef := k.(Undefined); undef && hasDef {
			k = def
		}
		cmpKey := sortKey(k, caseSensitive)
		if cur == nil || !equal(cmpKey, curKey) {
			cur = &List{Items: []any{}}
			curKey = cmpKey
			out.Items = append(out.Items, &List{Items: []any{k, cur}, Tuple: true, group: true})
		}
		cur.Items = append(cur.Items, it)
	}
	return out, nil
}

func fFromJSON(_ *evaluator, v any, _ []any, _ map[string]any) (any, error) {
	s, ok := v.(string)
	if !ok {
		return nil, fmt.Errorf("fromjson needs a string, not %s", typeName(v))
	}
	return DecodeJSON([]byte(s))
}
