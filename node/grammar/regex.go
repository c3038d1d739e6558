package grammar

import (
	"fmt"
	"regexp/syntax"
	"strings"
	"unicode"
)

// regexGrammar compiles a JSON Schema pattern (the subset of ECMA-262
// regular expressions that Go's syntax also reads) to a GBNF expression
// of the JSON string contents (between the quotes) it matches. A pattern
// matches anywhere in the string unless anchored with ^ and $.
func regexGrammar(pattern string) (string, error) {
	re, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil {
		return "", fmt.Errorf("pattern %q: %v", pattern, err)
	}
	re = re.Simplify()
	// Anchors are honoured at the ends of the pattern only.
	start, end := false, false
	parts := []*syntax.Regexp{re}
	if re.Op == syntax.OpConcat {
		parts = re.Sub
	}
	for len(parts) > 0 && (parts[0].Op == syntax.OpBeginText || parts[0].Op == syntax.OpBeginLine) {
		start = true
		parts = parts[1:]
	}
	for len(parts) > 0 && (parts[len(parts)-1].Op == syntax.OpEndText || parts[len(parts)-1].Op == syntax.OpEndLine) {
		end = true
		parts = parts[:len(parts)-1]
	}
	var seq []string
	if !start {
		seq = append(seq, "char*")
	}
	for _, p := range parts {
		s, err := regexNode(p)
		if err != nil {
			return "", fmt.Errorf("pattern %q: %v", pattern, err)
		}
		seq = append(seq, s)
	}
	if !end {
		seq = append(seq, "char*")
	}
	if len(seq) == 0 {
		return `""`, nil
	}
	return "( " + strings.Join(seq, " ") + " )", nil
}

func regexNode(re *syntax.Regexp) (string, error) {
	switch re.Op {
	case syntax.OpEmptyMatch:
		return `""`, nil
	case syntax.OpNoMatch:
		return "", fmt.Errorf("it matches nothing")
	case syntax.OpLiteral:
		var parts []string
		for _, r := range re.Rune {
			if re.Flags&syntax.FoldCase != 0 && unicode.SimpleFold(r) != r {
				pairs := []rune{r, r}
				for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
					pairs = append(pairs, f, f)
				}
				parts = append(parts, jsonClass(pairs))
				continue
			}
			parts = append(parts, jsonRune(r))
		}
		return "( " + strings.Join(parts, " ") + " )", nil
	case syntax.OpCharClass:
		return jsonClass(re.Rune), nil
	case syntax.OpAnyCharNotNL:
		return `[^"\\\x00-\x1f]`, nil
	case syntax.OpAnyChar:
		return "char", nil
	case syntax.OpCapture:
		return regexNode(re.Sub[0])
	case syntax.OpConcat, syntax.OpAlternate:
		var parts []string
		for _, s := range re.Sub {
			p, err := regexNode(s)
			if err != nil {
				return "", err
			}
			parts = append(parts, p)
		}
		sep := " "
		if re.Op == syntax.OpAlternate {
			sep = " | "
		}
		return "( " + strings.Join(parts, sep) + " )", nil
	case syntax.OpStar, syntax.OpPlus, syntax.OpQuest:
		p, err := regexNode(re.Sub[0])
		if err != nil {
			return "", err
		}
		return p + map[syntax.Op]string{syntax.OpStar: "*", syntax.OpPlus: "+", syntax.OpQuest: "?"}[re.Op], nil
	case syntax.OpRepeat:
		p, err := regexNode(re.Sub[0])
		if err != nil {
			return "", err
		}
		if re.Max < 0 {
			return fmt.Sprintf("%s{%d,}", p, re.Min), nil
		}
		return fmt.Sprintf("%s{%d,%d}", p, re.Min, re.Max), nil
	case syntax.OpBeginLine, syntax.OpBeginText, syntax.OpEndLine, syntax.OpEndText:
		return "", fmt.Errorf("anchors (^, $) are supported only at the start and end of the pattern")
	case syntax.OpWordBoundary, syntax.OpNoWordBoundary:
		return "", fmt.Errorf(`word boundaries (\b, \B) are not supported`)
	}
	return "", fmt.Errorf("%v is not supported", re.Op)
}

// jsonRune is the GBNF of one character as it appears inside a JSON
// string.
func jsonRune(r rune) string {
	switch r {
	case '"':
		return `"\\\""`
	case '\\':
		return `"\\\\"`
	case '\n':
		return `"\\n"`
	case '\t':
		return `"\\t"`
	case '\r':
		return `"\\r"`
	}
	if r < 0x20 {
		return fmt.Sprintf(`"\\u%04x"`, r)
	}
	return gbnfQuote(string(r))
}

// jsonClass is the GBNF of a character class (pairs of rune ranges) as the
// characters appear inside a JSON string: plain where JSON allows them,
// escaped otherwise.
func jsonClass(pairs []rune) string {
	var plain strings.Builder
	var escaped []string
	n := 0
	for i := 0; i+1 < len(pairs); i += 2 {
		lo, hi := pairs[i], pairs[i+1]
		for _, r := range []rune{'"', '\\', '\n', '\t', '\r'} {
			if lo <= r && r <= hi {
				escaped = append(escaped, jsonRune(r))
			}
		}
		// The plain part: [lo, hi] without controls, " and \.
		cuts := []struct{ a, b rune }{{0, 0x1f}, {'"', '"'}, {'\\', '\\'}}
		segs := []struct{ a, b rune }{{lo, hi}}
		for _, c := range cuts {
			var next []struct{ a, b rune }
			for _, s := range segs {
				if s.b < c.a || s.a > c.b {
					next = append(next, s)
					continue
				}
				if s.a < c.a {
					next = append(next, struct{ a, b rune }{s.a, c.a - 1})
				}
				if s.b > c.b {
					next = append(next, struct{ a, b rune }{c.b + 1, s.b})
				}
			}
			segs = next
		}
		for _, s := range segs {
			plain.WriteString(classRune(s.a))
			if s.b != s.a {
				plain.WriteByte('-')
				plain.WriteString(classRune(s.b))
			}
			n++
		}
	}
	var alts []string
	if n > 0 {
		alts = append(alts, "["+plain.String()+"]")
	}
	alts = append(alts, escaped...)
	if len(alts) == 0 {
		return `[^\x00-\U0010ffff]` // nothing
	}
	return "( " + strings.Join(alts, " | ") + " )"
}

// classRune writes a rune for a GBNF character class.
func classRune(r rune) string {
	switch {
	case r == ']' || r == '[' || r == '-' || r == '^' || r == '\\':
		return `\` + string(r)
	case r < 0x20 || r == 0x7f:
		return fmt.Sprintf(`\x%02x`, r)
	case r > 0xffff:
		return fmt.Sprintf(`\U%08x`, r)
	case r >= 0xd800 && r <= 0xdfff:
		return fmt.Sprintf(`\u%04x`, r)
	}
	return string(r)
}
