package grammar

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// SchemaError is a JSON Schema the compiler cannot turn into a grammar:
// Path names the part (the caller's prefix, then the schema's keywords).
type SchemaError struct {
	Path string
	Msg  string
}

func (e *SchemaError) Error() string {
	if e.Path == "" {
		return e.Msg
	}
	return e.Path + ": " + e.Msg
}

// Generated numbers are bounded in length, as llama.cpp does, so a
// generation cannot run on in digits.
const (
	maxIntDigits  = 16
	maxFracDigits = 16
)

// The primitives every schema grammar may use.
const jsonPrimitives = `sp ::= " "?
value ::= object | array | string | number | boolean | null
object ::= "{" sp ( string sp ":" sp value ( sp "," sp string sp ":" sp value )* sp )? "}"
array ::= "[" sp ( value ( sp "," sp value )* sp )? "]"
string ::= "\"" char* "\""
char ::= [^"\\\x00-\x1f] | "\\" ( ["\\/bfnrt] | "u" [0-9a-fA-F]{4} )
number ::= integer ( "." [0-9]{1,16} )? ( [eE] [-+]? [0-9]{1,3} )?
integer ::= "-"? nat
nat ::= "0" | [1-9] [0-9]{0,15}
boolean ::= "true" | "false"
null ::= "null"
`

// JSONObjectGrammar is the grammar of json_object mode: any JSON object.
func JSONObjectGrammar() *Grammar {
	return MustParseGBNF("root ::= object\n"+jsonPrimitives, "root")
}

// CompileSchema compiles a JSON Schema to GBNF (start rule "root"). path
// prefixes the location in errors (such as
// "response_format.json_schema.schema").
func CompileSchema(schema []byte, path string) (string, error) {
	b := NewBuilder()
	expr, err := b.Schema(schema, path)
	if err != nil {
		return "", err
	}
	b.Rule("root", expr)
	return b.Source(), nil
}

// SchemaGrammar compiles a JSON Schema to a Grammar.
func SchemaGrammar(schema []byte, path string) (*Grammar, error) {
	src, err := CompileSchema(schema, path)
	if err != nil {
		return nil, err
	}
	g, err := ParseGBNF(src, "root")
	if err != nil {
		return nil, &SchemaError{Path: path, Msg: err.Error()}
	}
	return g, nil
}

// Builder assembles one GBNF grammar from rules and JSON Schemas (several
// schemas may share it, each under its own rules). The JSON primitives
// (value, object, array, string, number, integer, boolean, null, char,
// sp) are always defined.
type Builder struct {
	c schemaCompiler
}

// NewBuilder starts an empty grammar.
func NewBuilder() *Builder {
	return &Builder{c: schemaCompiler{refs: map[string]string{}, names: map[string]int{}}}
}

// Schema compiles a JSON Schema and returns the GBNF expression of its
// values; path prefixes the location in errors.
func (b *Builder) Schema(schema []byte, path string) (string, error) {
	doc, err := decodeOrdered(schema)
	if err != nil {
		return "", &SchemaError{Path: path, Msg: fmt.Sprintf("not valid JSON: %v", err)}
	}
	c := &b.c
	c.doc, c.base = doc, path
	c.docN++
	return c.gen(doc, path, "root")
}

// Rule adds a rule (the caller picks names that do not start with "s-"
// or "fmt-", which generated rules use).
func (b *Builder) Rule(name, body string) {
	b.c.rules = append(b.c.rules, [2]string{name, body})
}

// Source is the grammar's GBNF text.
func (b *Builder) Source() string { return b.Rules() + jsonPrimitives }

// Rules is the GBNF text of the rules added, without the JSON primitives
// (for use beside a grammar that defines its own).
func (b *Builder) Rules() string {
	var s strings.Builder
	for _, r := range b.c.rules {
		fmt.Fprintf(&s, "%s ::= %s\n", r[0], r[1])
	}
	return s.String()
}

// Quote writes s as a GBNF string literal.
func Quote(s string) string { return gbnfQuote(s) }

type schemaCompiler struct {
	doc   any
	docN  int // documents compiled: $ref names are per document
	base  string
	rules [][2]string
	refs  map[string]string
	names map[string]int
	// typeMemo holds the type sets of the schemas oneOf looked at.
	typeMemo map[*object]map[string]bool
}

func (c *schemaCompiler) fail(path, format string, args ...any) error {
	return &SchemaError{Path: path, Msg: fmt.Sprintf(format, args...)}
}

// rule adds a named rule and returns its name.
func (c *schemaCompiler) rule(hint, body string) string {
	name := c.newName(hint)
	c.rules = append(c.rules, [2]string{name, body})
	return name
}

func (c *schemaCompiler) newName(hint string) string {
	var b strings.Builder
	for _, r := range hint {
		if r < 128 && isWordByte(byte(r)) {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
	}
	n := strings.Trim(b.String(), "-")
	if n == "" || len(n) > 40 {
		n = "s" + n[max(0, len(n)-39):]
	}
	n = "s-" + n
	c.names[n]++
	return fmt.Sprintf("%s-%d", n, c.names[n])
}

// Keywords refused (they constrain, and the compiler cannot enforce them).
var unsupportedKeywords = []string{
	"patternProperties", "propertyNames", "dependentRequired", "dependentSchemas", "dependencies",
	"if", "then", "else", "not", "contains", "minContains", "maxContains", "multipleOf",
	"minProperties", "maxProperties", "unevaluatedProperties", "unevaluatedItems",
	"$dynamicRef", "$recursiveRef", "additionalItems",
}

// assertionKeywords are those that constrain a value (used to refuse them
// beside $ref and anyOf).
var assertionKeywords = []string{
	"type", "enum", "const", "properties", "required", "additionalProperties", "items", "prefixItems",
	"minItems", "maxItems", "uniqueItems", "minLength", "maxLength", "pattern", "format",
	"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "anyOf", "oneOf", "allOf", "$ref",
}

// gen compiles a schema to a GBNF expression.
func (c *schemaCompiler) gen(s any, path, hint string) (string, error) {
	switch x := s.(type) {
	case bool:
		if x {
			return "value", nil
		}
		return "", c.fail(path, "the schema false allows no value")
	case *object:
		return c.genObject(x, path, hint)
	}
	return "", c.fail(path, "a schema must be an object or a boolean")
}

func (c *schemaCompiler) genObject(s *object, path, hint string) (string, error) {
	for _, k := range unsupportedKeywords {
		if _, ok := s.get(k); ok {
			if k == "uniqueItems" {
				continue
			}
			return "", c.fail(path+"."+k, "keyword %q is not supported", k)
		}
	}
	if u, ok := s.get("uniqueItems"); ok && u == true {
		return "", c.fail(path+".uniqueItems", "keyword \"uniqueItems\" is not supported")
	}
	others := func(except ...string) string {
		for _, k := range assertionKeywords {
			if slices.Contains(except, k) {
				continue
			}
			if _, ok := s.get(k); ok {
				return k
			}
		}
		return ""
	}
	if ref, ok := s.get("$ref"); ok {
		r, _ := ref.(string)
		if k := others("$ref"); k != "" {
			return "", c.fail(path+"."+k, "keyword %q beside \"$ref\" is not supported", k)
		}
		return c.genRef(r, path+".$ref")
	}
	if v, ok := s.get("const"); ok {
		return literal(v), nil
	}
	if v, ok := s.get("enum"); ok {
		list, ok := v.([]any)
		if !ok || len(list) == 0 {
			return "", c.fail(path+".enum", "enum must be a non-empty list")
		}
		alts := make([]string, len(list))
		for i, e := range list {
			alts[i] = literal(e)
		}
		return "(" + strings.Join(alts, " | ") + ")", nil
	}
	for _, k := range []string{"anyOf", "oneOf", "allOf"} {
		v, ok := s.get(k)
		if !ok {
			continue
		}
		list, ok := v.([]any)
		if !ok || len(list) == 0 {
			return "", c.fail(path+"."+k, "%s must be a non-empty list of schemas", k)
		}
		if k == "allOf" && len(list) > 1 {
			return "", c.fail(path+"."+k, "keyword \"allOf\" with more than one schema is not supported")
		}
		if k == "oneOf" && !c.disjoint(list) {
			return "", c.fail(path+"."+k, "keyword \"oneOf\" with branches a value may match together is not supported (give them distinct types or a required property with distinct const values, or use anyOf)")
		}
		if o := others(k); o != "" {
			return "", c.fail(path+"."+o, "keyword %q beside %q is not supported", o, k)
		}
		alts := make([]string, len(list))
		for i, e := range list {
			body, err := c.gen(e, fmt.Sprintf("%s.%s[%d]", path, k, i), fmt.Sprintf("%s-%d", hint, i))
			if err != nil {
				return "", err
			}
			alts[i] = body
		}
		return "(" + strings.Join(alts, " | ") + ")", nil
	}
	types, err := c.types(s, path)
	if err != nil {
		return "", err
	}
	var alts []string
	for _, t := range types {
		body, err := c.genType(t, s, path, hint)
		if err != nil {
			return "", err
		}
		alts = append(alts, body)
	}
	if len(alts) == 1 {
		return alts[0], nil
	}
	return "(" + strings.Join(alts, " | ") + ")", nil
}

// disjoint reports whether no value can match two of the schemas (so
// generating any one of them satisfies oneOf): their types differ, or
// they are objects with a required property of distinct constants.
func (c *schemaCompiler) disjoint(list []any) bool {
	for i := range list {
		for j := i + 1; j < len(list); j++ {
			ti, tj := c.typeSet(list[i], 0), c.typeSet(list[j], 0)
			overlap := false
			for t := range ti {
				if tj[t] || (t == "integer" && tj["number"]) || (t == "number" && tj["integer"]) {
					overlap = true
				}
			}
			if !overlap {
				continue
			}
			if len(ti) != 1 || !ti["object"] || len(tj) != 1 || !tj["object"] || !c.discriminated(list[i], list[j]) {
				return false
			}
		}
	}
	return true
}

// typeSet is the set of JSON types a schema's values may have (memoised
// per schema; a schema met again while its set is computed counts as
// any type).
func (c *schemaCompiler) typeSet(s any, depth int) map[string]bool {
	all := map[string]bool{"null": true, "boolean": true, "object": true, "array": true, "number": true, "integer": true, "string": true}
	o, ok := s.(*object)
	if !ok || depth > 16 {
		return all
	}
	if t, ok := c.typeMemo[o]; ok {
		return t
	}
	if c.typeMemo == nil {
		c.typeMemo = map[*object]map[string]bool{}
	}
	c.typeMemo[o] = all
	t := c.typeSetOf(o, depth, all)
	c.typeMemo[o] = t
	return t
}

func (c *schemaCompiler) typeSetOf(o *object, depth int, all map[string]bool) map[string]bool {
	if ref, ok := o.get("$ref"); ok {
		if t := c.resolve(ref); t != nil {
			return c.typeSet(t, depth+1)
		}
		return all
	}
	var vals []any
	if v, ok := o.get("const"); ok {
		vals = []any{v}
	} else if v, ok := o.get("enum"); ok {
		vals, _ = v.([]any)
	}
	if vals != nil {
		out := map[string]bool{}
		for _, v := range vals {
			out[jsonType(v)] = true
		}
		return out
	}
	for _, k := range []string{"anyOf", "oneOf"} {
		if v, ok := o.get(k); ok {
			out := map[string]bool{}
			list, _ := v.([]any)
			for _, e := range list {
				for t := range c.typeSet(e, depth+1) {
					out[t] = true
				}
			}
			return out
		}
	}
	ts, err := c.types(o, "")
	if err != nil || (len(ts) == 1 && ts[0] == "any") {
		return all
	}
	out := map[string]bool{}
	for _, t := range ts {
		out[t] = true
	}
	return out
}

func jsonType(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case json.Number:
		return "number"
	case string:
		return "string"
	case []any:
		return "array"
	}
	return "object"
}

// resolve finds a local reference's target (nil when it cannot).
func (c *schemaCompiler) resolve(ref any) any {
	r, _ := ref.(string)
	if r == "#" {
		return c.doc
	}
	if !strings.HasPrefix(r, "#/") {
		return nil
	}
	t := c.doc
	for _, part := range strings.Split(r[2:], "/") {
		o, ok := t.(*object)
		if !ok {
			return nil
		}
		if t, ok = o.get(strings.ReplaceAll(strings.ReplaceAll(part, "~1", "/"), "~0", "~")); !ok {
			return nil
		}
	}
	return t
}

// discriminated reports whether two object schemas share a required
// property whose constants (const or enum) differ.
func (c *schemaCompiler) discriminated(a, b any) bool {
	consts := func(s any) map[string]map[string]bool {
		o, _ := s.(*object)
		if r, ok := o.get("$ref"); ok {
			o, _ = c.resolve(r).(*object)
		}
		if o == nil {
			return nil
		}
		req := map[string]bool{}
		if rv, ok := o.get("required"); ok {
			list, _ := rv.([]any)
			for _, e := range list {
				if k, ok := e.(string); ok {
					req[k] = true
				}
			}
		}
		out := map[string]map[string]bool{}
		pv, _ := o.get("properties")
		props, _ := pv.(*object)
		if props == nil {
			return out
		}
		for _, k := range props.keys {
			p, _ := props.vals[k].(*object)
			if !req[k] || p == nil {
				continue
			}
			var vals []any
			if v, ok := p.get("const"); ok {
				vals = []any{v}
			} else if v, ok := p.get("enum"); ok {
				vals, _ = v.([]any)
			}
			if vals == nil {
				continue
			}
			set := map[string]bool{}
			for _, v := range vals {
				var b bytes.Buffer
				marshalCanonical(&b, v)
				set[b.String()] = true
			}
			out[k] = set
		}
		return out
	}
	ca, cb := consts(a), consts(b)
	for k, sa := range ca {
		sb, ok := cb[k]
		if !ok {
			continue
		}
		shared := false
		for v := range sa {
			if sb[v] {
				shared = true
			}
		}
		if !shared {
			return true
		}
	}
	return false
}

// types lists the schema's types: given, or inferred from its keywords,
// or every type.
func (c *schemaCompiler) types(s *object, path string) ([]string, error) {
	if t, ok := s.get("type"); ok {
		var list []string
		switch x := t.(type) {
		case string:
			list = []string{x}
		case []any:
			for _, e := range x {
				str, ok := e.(string)
				if !ok {
					return nil, c.fail(path+".type", "type must be a string or a list of strings")
				}
				list = append(list, str)
			}
		default:
			return nil, c.fail(path+".type", "type must be a string or a list of strings")
		}
		for _, x := range list {
			switch x {
			case "string", "number", "integer", "boolean", "null", "object", "array":
			default:
				return nil, c.fail(path+".type", "unknown type %q", x)
			}
		}
		if len(list) == 0 {
			return nil, c.fail(path+".type", "type must not be an empty list")
		}
		return list, nil
	}
	has := func(ks ...string) bool {
		for _, k := range ks {
			if _, ok := s.get(k); ok {
				return true
			}
		}
		return false
	}
	var list []string
	if has("properties", "required", "additionalProperties") {
		list = append(list, "object")
	}
	if has("items", "prefixItems", "minItems", "maxItems") {
		list = append(list, "array")
	}
	if has("minLength", "maxLength", "pattern", "format") {
		list = append(list, "string")
	}
	if has("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum") {
		list = append(list, "number")
	}
	if len(list) == 0 {
		return []string{"any"}, nil
	}
	return list, nil
}

func (c *schemaCompiler) genType(t string, s *object, path, hint string) (string, error) {
	switch t {
	case "any":
		return "value", nil
	case "null":
		return "null", nil
	case "boolean":
		return "boolean", nil
	case "integer", "number":
		return c.genNumber(t == "integer", s, path)
	case "string":
		return c.genString(s, path, hint)
	case "array":
		return c.genArray(s, path, hint)
	case "object":
		return c.genObjectType(s, path, hint)
	}
	return "", c.fail(path+".type", "unknown type %q", t)
}

func (c *schemaCompiler) genRef(ref, path string) (string, error) {
	key := fmt.Sprintf("%d:%s", c.docN, ref)
	if name, ok := c.refs[key]; ok {
		return name, nil
	}
	if ref != "#" && !strings.HasPrefix(ref, "#/") {
		return "", c.fail(path, "only references within the schema (\"#/...\") are supported, got %q", ref)
	}
	target := c.doc
	if ref != "#" {
		for _, part := range strings.Split(ref[2:], "/") {
			part = strings.ReplaceAll(strings.ReplaceAll(part, "~1", "/"), "~0", "~")
			switch x := target.(type) {
			case *object:
				v, ok := x.get(part)
				if !ok {
					return "", c.fail(path, "reference %q points at nothing", ref)
				}
				target = v
			case []any:
				i, err := strconv.Atoi(part)
				if err != nil || i < 0 || i >= len(x) {
					return "", c.fail(path, "reference %q points at nothing", ref)
				}
				target = x[i]
			default:
				return "", c.fail(path, "reference %q points at nothing", ref)
			}
		}
	}
	name := c.newName("ref-" + ref[1:])
	c.refs[key] = name
	idx := len(c.rules)
	c.rules = append(c.rules, [2]string{name, ""})
	tpath := c.base
	if ref != "#" {
		tpath += "." + strings.ReplaceAll(ref[2:], "/", ".")
	}
	body, err := c.gen(target, tpath, name)
	if err != nil {
		return "", err
	}
	c.rules[idx][1] = body
	return name, nil
}

// literal is the GBNF literal of a JSON value's canonical text.
func literal(v any) string {
	var b bytes.Buffer
	marshalCanonical(&b, v)
	return gbnfQuote(b.String())
}

// gbnfQuote writes s as a GBNF string literal.
func gbnfQuote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// number reads a numeric keyword.
func (c *schemaCompiler) number(s *object, k, path string) (float64, bool, error) {
	v, ok := s.get(k)
	if !ok {
		return 0, false, nil
	}
	n, ok := v.(json.Number)
	if !ok {
		return 0, false, c.fail(path+"."+k, "%s must be a number", k)
	}
	f, err := n.Float64()
	if err != nil || math.IsNaN(f) {
		return 0, false, c.fail(path+"."+k, "%s must be a number", k)
	}
	return f, true, nil
}

// count reads a non-negative integer keyword.
func (c *schemaCompiler) count(s *object, k, path string) (int, bool, error) {
	f, ok, err := c.number(s, k, path)
	if err != nil || !ok {
		return 0, ok, err
	}
	if f < 0 || f != math.Trunc(f) {
		return 0, false, c.fail(path+"."+k, "%s must be a non-negative integer", k)
	}
	if f > maxRepeat {
		return 0, false, c.fail(path+"."+k, "%s over %d is not supported", k, maxRepeat)
	}
	return int(f), true, nil
}

// numBounds are minimum/maximum and their exclusive forms.
type numBounds struct {
	lo, hi     float64 // -Inf/+Inf when absent
	exLo, exHi bool
}

func (c *schemaCompiler) genNumber(integer bool, s *object, path string) (string, error) {
	b := numBounds{lo: math.Inf(-1), hi: math.Inf(1)}
	if v, ok, err := c.number(s, "minimum", path); err != nil {
		return "", err
	} else if ok {
		b.lo = v
	}
	if v, ok, err := c.number(s, "maximum", path); err != nil {
		return "", err
	} else if ok {
		b.hi = v
	}
	if v, ok := s.get("exclusiveMinimum"); ok {
		if _, isBool := v.(bool); isBool {
			return "", c.fail(path+".exclusiveMinimum", "boolean exclusiveMinimum (draft 4) is not supported; give the bound as a number")
		}
		x, _, err := c.number(s, "exclusiveMinimum", path)
		if err != nil {
			return "", err
		}
		if x >= b.lo {
			b.lo, b.exLo = x, true
		}
	}
	if v, ok := s.get("exclusiveMaximum"); ok {
		if _, isBool := v.(bool); isBool {
			return "", c.fail(path+".exclusiveMaximum", "boolean exclusiveMaximum (draft 4) is not supported; give the bound as a number")
		}
		x, _, err := c.number(s, "exclusiveMaximum", path)
		if err != nil {
			return "", err
		}
		if x <= b.hi {
			b.hi, b.exHi = x, true
		}
	}
	const big = 1e15
	// Integers allowed: [ilo, ihi].
	ilo, ihi := b.lo, b.hi
	if b.exLo {
		ilo = math.Floor(ilo) + 1
	} else {
		ilo = math.Ceil(ilo)
	}
	if b.exHi {
		ihi = math.Ceil(ihi) - 1
	} else {
		ihi = math.Floor(ihi)
	}
	bounded := !math.IsInf(b.lo, 0) || !math.IsInf(b.hi, 0)
	if !bounded {
		if integer {
			return "integer", nil
		}
		return "number", nil
	}
	if (!math.IsInf(b.lo, 0) && math.Abs(b.lo) > big) || (!math.IsInf(b.hi, 0) && math.Abs(b.hi) > big) {
		return "", c.fail(path, "numeric bounds beyond ±1e15 are not supported")
	}
	var alts []string
	if ilo <= ihi {
		alts = append(alts, intRange(ilo, ihi))
	}
	if !integer {
		frac := `"." [0-9]{0,15} [1-9]`
		// k.f with k >= 0 lies in (k, k+1): k in [ceil(lo), floor(hi)-1].
		plo, phi := math.Max(0, math.Ceil(b.lo)), math.Floor(b.hi)-1
		if plo <= phi {
			alts = append(alts, "("+natRange(plo, phi)+" "+frac+")")
		}
		// -k.f lies in (-k-1, -k): k in [max(0, ceil(-hi)), floor(-lo)-1].
		nlo, nhi := math.Max(0, math.Ceil(-b.hi)), math.Floor(-b.lo)-1
		if nlo <= nhi {
			alts = append(alts, `("-" `+natRange(nlo, nhi)+" "+frac+")")
		}
	}
	if len(alts) == 0 {
		if integer {
			return "", c.fail(path, "no integer lies within the bounds")
		}
		return "", c.fail(path, "the bounds allow no number this compiler can write (fractional parts are generated only between integral bounds)")
	}
	return "(" + strings.Join(alts, " | ") + ")", nil
}

// intRange is the grammar of the integers in [lo, hi] (either may be
// infinite).
func intRange(lo, hi float64) string {
	var alts []string
	if lo < 0 {
		// negatives: -k for k in [max(1, -hi), -lo]
		klo := math.Max(1, -hi)
		if klo <= -lo {
			alts = append(alts, `"-" `+natRange(klo, -lo))
		}
	}
	if hi >= 0 {
		alts = append(alts, natRange(math.Max(0, lo), hi))
	}
	if len(alts) == 1 {
		return alts[0]
	}
	return "(" + strings.Join(alts, " | ") + ")"
}

// natRange is the grammar of the naturals in [lo, hi] without leading
// zeros (hi may be +Inf: up to maxIntDigits digits).
func natRange(lo, hi float64) string {
	maxNat := math.Pow(10, maxIntDigits) - 1
	if math.IsInf(hi, 1) || hi > maxNat {
		hi = maxNat
	}
	a, b := strconv.FormatFloat(lo, 'f', 0, 64), strconv.FormatFloat(hi, 'f', 0, 64)
	var alts []string
	for l := len(a); l <= len(b); l++ {
		from, to := a, b
		if l > len(a) {
			from = "1" + strings.Repeat("0", l-1)
		}
		if l < len(b) {
			to = strings.Repeat("9", l)
		}
		alts = append(alts, digitRange(from, to)...)
	}
	if len(alts) == 1 {
		return alts[0]
	}
	return "(" + strings.Join(alts, " | ") + ")"
}

// digitRange is the alternatives for the same-length digit strings in
// [a, b].
func digitRange(a, b string) []string {
	if a == b {
		return []string{`"` + a + `"`}
	}
	n := len(a)
	if n == 1 {
		return []string{fmt.Sprintf("[%c-%c]", a[0], b[0])}
	}
	tailAll := func(k int) string {
		if k == 0 {
			return ""
		}
		if k == 1 {
			return " [0-9]"
		}
		return fmt.Sprintf(" [0-9]{%d}", k)
	}
	if strings.Trim(a[1:], "0") == "" && strings.Trim(b[1:], "9") == "" {
		return []string{fmt.Sprintf("[%c-%c]%s", a[0], b[0], tailAll(n-1))}
	}
	if a[0] == b[0] {
		var out []string
		for _, t := range digitRange(a[1:], b[1:]) {
			out = append(out, fmt.Sprintf(`"%c" %s`, a[0], t))
		}
		return out
	}
	var out []string
	for _, t := range digitRange(a[1:], strings.Repeat("9", n-1)) {
		out = append(out, fmt.Sprintf(`"%c" %s`, a[0], t))
	}
	if a[0]+1 <= b[0]-1 {
		out = append(out, fmt.Sprintf("[%c-%c]%s", a[0]+1, b[0]-1, tailAll(n-1)))
	}
	for _, t := range digitRange(strings.Repeat("0", n-1), b[1:]) {
		out = append(out, fmt.Sprintf(`"%c" %s`, b[0], t))
	}
	return out
}

// Formats the compiler enforces; others are annotations (as JSON Schema
// 2020-12 treats format by default) and leave the string free.
var formats = map[string]string{
	"date":      `[0-9]{4} "-" ( "0" [1-9] | "1" [0-2] ) "-" ( "0" [1-9] | [12] [0-9] | "3" [01] )`,
	"time":      `( [01] [0-9] | "2" [0-3] ) ":" [0-5] [0-9] ":" [0-5] [0-9] ( "." [0-9]{1,6} )? ( "Z" | [+-] ( [01] [0-9] | "2" [0-3] ) ":" [0-5] [0-9] )`,
	"uuid":      `[0-9a-f]{8} "-" [0-9a-f]{4} "-" [0-9a-f]{4} "-" [0-9a-f]{4} "-" [0-9a-f]{12}`,
	"ipv4":      `oct "." oct "." oct "." oct`,
	"email":     `[a-zA-Z0-9_.+-]{1,64} "@" [a-zA-Z0-9-]{1,63} ( "." [a-zA-Z0-9-]{1,63} ){1,4}`,
	"date-time": `fmt-date "T" fmt-time`,
}

func (c *schemaCompiler) formatRule(f string) string {
	name := "fmt-" + f
	if _, ok := c.refs["format:"+f]; ok {
		return name
	}
	c.refs["format:"+f] = name
	body := formats[f]
	switch f {
	case "ipv4":
		c.rules = append(c.rules, [2]string{"oct", `"25" [0-5] | "2" [0-4] [0-9] | "1" [0-9] [0-9] | [1-9] [0-9] | [0-9]`})
	case "date-time":
		c.formatRule("date")
		c.formatRule("time")
	}
	c.rules = append(c.rules, [2]string{name, body})
	return name
}

func (c *schemaCompiler) genString(s *object, path, hint string) (string, error) {
	minL, _, err := c.count(s, "minLength", path)
	if err != nil {
		return "", err
	}
	maxL, hasMax, err := c.count(s, "maxLength", path)
	if err != nil {
		return "", err
	}
	if hasMax && maxL < minL {
		return "", c.fail(path+".maxLength", "maxLength %d is below minLength %d", maxL, minL)
	}
	_, hasMin := s.get("minLength")
	if p, ok := s.get("pattern"); ok {
		ps, ok := p.(string)
		if !ok {
			return "", c.fail(path+".pattern", "pattern must be a string")
		}
		if hasMin || hasMax {
			return "", c.fail(path+".pattern", "pattern together with minLength or maxLength is not supported")
		}
		if _, err := regexp.Compile(ps); err != nil {
			return "", c.fail(path+".pattern", "pattern %q is not a regular expression this compiler reads: %v", ps, err)
		}
		body, err := regexGrammar(ps)
		if err != nil {
			return "", c.fail(path+".pattern", "%v", err)
		}
		return c.rule(hint+"-pattern", `"\"" `+body+` "\""`), nil
	}
	if f, ok := s.get("format"); ok {
		fs, _ := f.(string)
		if _, known := formats[fs]; known {
			if hasMin || hasMax {
				return "", c.fail(path+".format", "format together with minLength or maxLength is not supported")
			}
			return `"\"" ` + c.formatRule(fs) + ` "\""`, nil
		}
	}
	if !hasMin && !hasMax {
		return "string", nil
	}
	rep := fmt.Sprintf("char{%d,%d}", minL, maxL)
	if !hasMax {
		rep = fmt.Sprintf("char{%d,}", minL)
	}
	return c.rule(hint+"-str", `"\"" `+rep+` "\""`), nil
}

func (c *schemaCompiler) genArray(s *object, path, hint string) (string, error) {
	minI, _, err := c.count(s, "minItems", path)
	if err != nil {
		return "", err
	}
	maxI, hasMax, err := c.count(s, "maxItems", path)
	if err != nil {
		return "", err
	}
	if !hasMax {
		maxI = -1
	} else if maxI < minI {
		return "", c.fail(path+".maxItems", "maxItems %d is below minItems %d", maxI, minI)
	}
	var prefix []string
	item := "value"
	itemsV, hasItems := s.get("items")
	if pv, ok := s.get("prefixItems"); ok {
		list, ok := pv.([]any)
		if !ok {
			return "", c.fail(path+".prefixItems", "prefixItems must be a list of schemas")
		}
		for i, e := range list {
			b, err := c.gen(e, fmt.Sprintf("%s.prefixItems[%d]", path, i), fmt.Sprintf("%s-p%d", hint, i))
			if err != nil {
				return "", err
			}
			prefix = append(prefix, b)
		}
	} else if _, ok := itemsV.([]any); ok {
		return "", c.fail(path+".items", "items as a list (tuple validation before 2020-12) is not supported; use prefixItems")
	}
	if hasItems {
		if itemsV == false {
			item = ""
		} else {
			b, err := c.gen(itemsV, path+".items", hint+"-item")
			if err != nil {
				return "", err
			}
			item = b
		}
	}
	if item == "" {
		if maxI < 0 || maxI > len(prefix) {
			maxI = len(prefix)
		}
		if minI > maxI {
			return "", c.fail(path+".minItems", "minItems %d is more than the %d items allowed", minI, maxI)
		}
	}
	// Explicit positions (prefixItems), then the rest.
	return c.rule(hint+"-arr", `"[" sp `+c.tail(0, prefix, item, minI, maxI)+` sp "]"`), nil
}

// tail is the grammar of array elements from index i on (each after the
// first preceded by a comma).
func (c *schemaCompiler) tail(i int, prefix []string, item string, minI, maxI int) string {
	if maxI >= 0 && i >= maxI {
		return ""
	}
	sep := ""
	if i > 0 {
		sep = `sp "," sp `
	}
	if i >= len(prefix) {
		if item == "" {
			return ""
		}
		need := max(minI-i, 0)
		if i == 0 {
			// first element without a comma, then the others
			restMax := "" // unbounded
			if maxI >= 0 {
				restMax = strconv.Itoa(maxI - 1)
			}
			rest := fmt.Sprintf(`( sp "," sp %s ){%d,%s}`, item, max(need-1, 0), restMax)
			if need == 0 {
				return fmt.Sprintf("( %s %s )?", item, rest)
			}
			return fmt.Sprintf("%s %s", item, rest)
		}
		restMax := ""
		if maxI >= 0 {
			restMax = strconv.Itoa(maxI - i)
		}
		return fmt.Sprintf(`( sp "," sp %s ){%d,%s}`, item, need, restMax)
	}
	e := sep + prefix[i]
	if t := c.tail(i+1, prefix, item, minI, maxI); t != "" {
		e += " " + t
	}
	if i < minI {
		return e
	}
	return "( " + e + " )?"
}

func (c *schemaCompiler) genObjectType(s *object, path, hint string) (string, error) {
	type prop struct {
		name, body string
		required   bool
	}
	var props []prop
	required := map[string]bool{}
	if rv, ok := s.get("required"); ok {
		list, ok := rv.([]any)
		if !ok {
			return "", c.fail(path+".required", "required must be a list of strings")
		}
		for _, e := range list {
			str, ok := e.(string)
			if !ok {
				return "", c.fail(path+".required", "required must be a list of strings")
			}
			required[str] = true
		}
	}
	known := map[string]bool{}
	if pv, ok := s.get("properties"); ok {
		po, ok := pv.(*object)
		if !ok {
			return "", c.fail(path+".properties", "properties must be an object")
		}
		for _, k := range po.keys {
			body, err := c.gen(po.vals[k], path+".properties."+k, hint+"-"+k)
			if err != nil {
				return "", err
			}
			props = append(props, prop{name: k, body: body, required: required[k]})
			known[k] = true
		}
	}
	// Additional properties: allowed (any value) unless false.
	addl := "value"
	if av, ok := s.get("additionalProperties"); ok {
		if av == false {
			addl = ""
		} else if av != true {
			b, err := c.gen(av, path+".additionalProperties", hint+"-addl")
			if err != nil {
				return "", err
			}
			addl = b
		}
	}
	// Required names without a property schema take the additional
	// properties' schema.
	names := make([]string, 0, len(required))
	for k := range required {
		if !known[k] {
			names = append(names, k)
		}
	}
	slices.Sort(names)
	for _, k := range names {
		if addl == "" {
			return "", c.fail(path+".required", "property %q is required but additionalProperties is false and properties does not define it", k)
		}
		props = append(props, prop{name: k, body: addl, required: true})
		known[k] = true
	}
	addkv := ""
	if addl != "" {
		key, err := c.otherKey(known, path+".properties")
		if err != nil {
			return "", err
		}
		addkv = c.rule(hint+"-kv", key+` sp ":" sp `+addl)
	}
	// first(i): properties i.. when none was written yet; next(i): when
	// one was (each is then preceded by a comma).
	n := len(props)
	firstN := make([]string, n+1)
	nextN := make([]string, n+1)
	for i := range n + 1 {
		firstN[i] = c.newName(hint + "-f")
		nextN[i] = c.newName(hint + "-n")
	}
	for i := n; i >= 0; i-- {
		var fb, nb string
		if i == n {
			if addkv == "" {
				fb, nb = `""`, `""`
			} else {
				fb = fmt.Sprintf(`( %s ( sp "," sp %s )* )?`, addkv, addkv)
				nb = fmt.Sprintf(`( sp "," sp %s )*`, addkv)
			}
		} else {
			kv := gbnfQuote(jsonQuote(props[i].name)) + ` sp ":" sp ` + props[i].body
			if props[i].required {
				fb = kv + " " + nextN[i+1]
				nb = `sp "," sp ` + kv + " " + nextN[i+1]
			} else {
				fb = fmt.Sprintf("%s %s | %s", kv, nextN[i+1], firstN[i+1])
				nb = fmt.Sprintf(`( sp "," sp %s )? %s`, kv, nextN[i+1])
			}
		}
		c.rules = append(c.rules, [2]string{firstN[i], fb}, [2]string{nextN[i], nb})
	}
	return c.rule(hint+"-obj", `"{" sp `+firstN[0]+` sp "}"`), nil
}

func jsonQuote(s string) string {
	var b bytes.Buffer
	writeJSONString(&b, s)
	return b.String()
}

// otherKey is the grammar of an object key (a JSON string) other than the
// known ones; it fails on known keys outside printable ASCII, which it
// cannot exclude exactly.
func (c *schemaCompiler) otherKey(known map[string]bool, path string) (string, error) {
	if len(known) == 0 {
		return "string", nil
	}
	// A trie of the known keys' texts.
	type node struct {
		kids map[byte]*node
		end  bool
	}
	root := &node{kids: map[byte]*node{}}
	for k := range known {
		for i := 0; i < len(k); i++ {
			if k[i] < 0x20 || k[i] >= 0x7f || k[i] == '"' || k[i] == '\\' {
				return "", c.fail(path, "property %q (outside printable ASCII, or with \" or \\) beside other properties allowed is not supported; set additionalProperties to false", k)
			}
		}
		n := root
		for i := 0; i < len(k); i++ {
			nx := n.kids[k[i]]
			if nx == nil {
				nx = &node{kids: map[byte]*node{}}
				n.kids[k[i]] = nx
			}
			n = nx
		}
		n.end = true
	}
	rest := c.rule("keyrest", `char* "\""`)
	var walk func(n *node) string
	walk = func(n *node) string {
		var alts []string
		if !n.end {
			alts = append(alts, `"\""`)
		}
		// a character other than the children's, then anything
		var kids []byte
		for b := range n.kids {
			kids = append(kids, b)
		}
		slices.Sort(kids)
		var cls strings.Builder
		cls.WriteString(`[^"\\\x00-\x1f`)
		for _, b := range kids {
			if b == ']' || b == '-' || b == '^' || b == '[' {
				cls.WriteByte('\\')
			}
			cls.WriteByte(b)
		}
		cls.WriteString("]")
		alts = append(alts, cls.String()+" "+rest, `"\\" ( ["\\/bfnrt] | "u" [0-9a-fA-F]{4} ) `+rest)
		for _, b := range kids {
			alts = append(alts, gbnfQuote(string([]byte{b}))+" "+walk(n.kids[b]))
		}
		return c.rule("key", strings.Join(alts, " | "))
	}
	return `"\"" ` + walk(root), nil
}

// TextWithout adds rules for any text that does not contain w (printable
// ASCII) and returns the expression of it. The text may end anywhere,
// also inside a prefix of w.
func (b *Builder) TextWithout(w string) string {
	c := &b.c
	// fail is the KMP failure function of w.
	fail := make([]int, len(w)+1)
	for i, k := 1, 0; i < len(w); i++ {
		for k > 0 && w[i] != w[k] {
			k = fail[k]
		}
		if w[i] == w[k] {
			k++
		}
		fail[i+1] = k
	}
	next := func(k int, ch byte) int {
		for k > 0 && w[k] != ch {
			k = fail[k]
		}
		if w[k] == ch {
			k++
		}
		return k
	}
	names := make([]string, len(w))
	for k := range names {
		names[k] = c.newName("text-without")
	}
	for k := range w {
		// Printable ASCII bytes that move away from state 0 (or to
		// the forbidden end) are listed; everything else returns to 0.
		to := map[int][]byte{}
		var special []byte
		for ch := byte(0x20); ch < 0x7f; ch++ {
			if j := next(k, ch); j != 0 {
				to[j] = append(to[j], ch)
				special = append(special, ch)
			}
		}
		alts := []string{`""`}
		var neg strings.Builder
		neg.WriteString("[^")
		for _, ch := range special {
			neg.WriteString(classRune(rune(ch)))
		}
		neg.WriteString("] " + names[0])
		alts = append(alts, neg.String())
		for j := 1; j < len(w); j++ {
			chs := to[j]
			if len(chs) == 0 {
				continue
			}
			var cls strings.Builder
			cls.WriteByte('[')
			for _, ch := range chs {
				cls.WriteString(classRune(rune(ch)))
			}
			cls.WriteString("] " + names[j])
			alts = append(alts, cls.String())
		}
		c.rules = append(c.rules, [2]string{names[k], strings.Join(alts, " | ")})
	}
	return names[0]
}
