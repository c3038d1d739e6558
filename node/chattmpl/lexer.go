package chattmpl

import (
	"fmt"
	"strings"
)

type tokKind uint8

const (
	tEOF tokKind = iota
	tText
	tVarBegin   // {{
	tVarEnd     // }}
	tBlockBegin // {%
	tBlockEnd   // %}
	tName
	tString
	tInt
	tFloat
	tOp
)

type token struct {
	kind tokKind
	val  string // text, name, operator, decoded string literal, number text
	line int
}

func (t token) String() string {
	switch t.kind {
	case tEOF:
		return "end of template"
	case tText:
		return "text"
	case tVarBegin:
		return "'{{'"
	case tVarEnd:
		return "'}}'"
	case tBlockBegin:
		return "'{%'"
	case tBlockEnd:
		return "'%}'"
	case tString:
		return fmt.Sprintf("string %q", t.val)
	}
	return fmt.Sprintf("'%s'", t.val)
}

// segment is a piece of the source: text, or a tag with its tokens.
type segment struct {
	kind         byte // 't' text, 'v' {{ }}, 'b' {% %}, 'c' {# #}
	text         string
	start        int // offset in the source of the text
	toks         []token
	line         int
	trimL, plusL bool // "-" or "+" after the opening delimiter
	trimR, plusR bool // "-" or "+" before the closing delimiter
}

// lex splits src into tokens, applying jinja2's whitespace control as
// transformers configures it: trim_blocks, lstrip_blocks, "-" and "+"
// modifiers, and no trailing newline kept.
func lex(src string) ([]token, error) {
	src = strings.ReplaceAll(src, "\r\n", "\n")
	src = strings.ReplaceAll(src, "\r", "\n")
	src = strings.TrimSuffix(src, "\n")
	segs, err := splitSegments(src)
	if err != nil {
		return nil, err
	}
	var toks []token
	for i, s := range segs {
		if s.kind != 't' {
			switch s.kind {
			case 'v':
				toks = append(toks, token{kind: tVarBegin, line: s.line})
				toks = append(toks, s.toks...)
				toks = append(toks, token{kind: tVarEnd, line: s.line})
			case 'b':
				toks = append(toks, token{kind: tBlockBegin, line: s.line})
				toks = append(toks, s.toks...)
				toks = append(toks, token{kind: tBlockEnd, line: s.line})
			}
			continue
		}
		text, pos := s.text, s.start
		if i > 0 {
			p := segs[i-1]
			if p.trimR {
				t := strings.TrimLeft(text, " \t\n\r\f\v")
				pos += len(text) - len(t)
				text = t
			} else if (p.kind == 'b' || p.kind == 'c') && !p.plusR && strings.HasPrefix(text, "\n") {
				text = text[1:]
				pos++
			}
		}
		if i+1 < len(segs) {
			n := segs[i+1]
			if n.trimL {
				text = strings.TrimRight(text, " \t\n\r\f\v")
			} else if (n.kind == 'b' || n.kind == 'c') && !n.plusL {
				nl := strings.LastIndexByte(text, '\n')
				lineStart := nl >= 0 || pos == 0 || src[pos-1] == '\n'
				if lineStart && strings.Trim(text[nl+1:], " \t") == "" {
					text = text[:nl+1]
				}
			}
		}
		if text != "" {
			toks = append(toks, token{kind: tText, val: text, line: s.line})
		}
	}
	toks = append(toks, token{kind: tEOF, line: strings.Count(src, "\n") + 1})
	return toks, nil
}

func splitSegments(src string) ([]segment, error) {
	var segs []segment
	pos, line := 0, 1
	for pos < len(src) {
		i := nextTagStart(src, pos)
		if i < 0 {
			segs = append(segs, segment{kind: 't', text: src[pos:], start: pos, line: line})
			break
		}
		if i > pos {
			segs = append(segs, segment{kind: 't', text: src[pos:i], start: pos, line: line})
			line += strings.Count(src[pos:i], "\n")
		}
		s := segment{kind: map[byte]byte{'{': 'v', '%': 'b', '#': 'c'}[src[i+1]], line: line}
		p := i + 2
		if p < len(src) && (src[p] == '-' || src[p] == '+') {
			s.trimL, s.plusL = src[p] == '-', src[p] == '+'
			p++
		}
		if s.kind == 'c' {
			end := strings.Index(src[p:], "#}")
			if end < 0 {
				return nil, fmt.Errorf("line %d: unclosed comment", line)
			}
			body := src[p : p+end]
			if strings.HasSuffix(body, "-") {
				s.trimR = true
			} else if strings.HasSuffix(body, "+") {
				s.plusR = true
			}
			line += strings.Count(src[i:p+end+2], "\n")
			pos = p + end + 2
			segs = append(segs, s)
			continue
		}
		toks, end, err := lexTag(src, p, s.kind, &line)
		if err != nil {
			return nil, err
		}
		s.toks = toks
		if src[end] == '-' {
			s.trimR = true
		} else if src[end] == '+' {
			s.plusR = true
		}
		pos = end + 2
		if s.trimR || s.plusR {
			pos++
		}
		segs = append(segs, s)
		if s.kind == 'b' && len(toks) == 1 && toks[0].kind == tName && toks[0].val == "raw" && !s.plusR {
			// Everything up to {% endraw %} is text.
			body, endTag, next, ok := findEndRaw(src, pos)
			if !ok {
				return nil, fmt.Errorf("line %d: missing endraw", line)
			}
			segs[len(segs)-1].toks = nil // the raw tag itself renders nothing
			segs[len(segs)-1].kind = 'c'
			segs[len(segs)-1].plusR = true // no trim_blocks after {% raw %}
			segs = append(segs, segment{kind: 't', text: body, start: pos, line: line})
			line += strings.Count(src[pos:next], "\n")
			endTag.line = line
			segs = append(segs, endTag)
			pos = next
		}
	}
	return segs, nil
}

func nextTagStart(src string, pos int) int {
	for {
		i := strings.IndexByte(src[pos:], '{')
		if i < 0 || pos+i+1 >= len(src) {
			return -1
		}
		c := src[pos+i+1]
		if c == '{' || c == '%' || c == '#' {
			return pos + i
		}
		pos += i + 1
	}
}

// findEndRaw finds "{% endraw %}" (with optional modifiers) from pos.
func findEndRaw(src string, pos int) (body string, tag segment, next int, ok bool) {
	for p := pos; ; {
		i := strings.Index(src[p:], "{%")
		if i < 0 {
			return "", segment{}, 0, false
		}
		j := p + i + 2
		s := segment{kind: 'c'}
		if j < len(src) && (src[j] == '-' || src[j] == '+') {
			s.trimL, s.plusL = src[j] == '-', src[j] == '+'
			j++
		}
		k := j
		for k < len(src) && isSpace(src[k]) {
			k++
		}
		if strings.HasPrefix(src[k:], "endraw") {
			k += len("endraw")
			for k < len(src) && isSpace(src[k]) {
				k++
			}
			if k < len(src) && (src[k] == '-' || src[k] == '+') {
				s.trimR, s.plusR = src[k] == '-', src[k] == '+'
				k++
			}
			if strings.HasPrefix(src[k:], "%}") {
				return src[pos : p+i], s, k + 2, true
			}
		}
		p = p + i + 2
	}
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'
}

func isNameStart(c byte) bool { return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// lexTag tokenizes the inside of a {{ }} or {% %} tag starting at p and
// returns the tokens and the offset of the closing delimiter (at its "-" or
// "+" modifier when there is one).
func lexTag(src string, p int, kind byte, line *int) ([]token, int, error) {
	closer := "}}"
	if kind == 'b' {
		closer = "%}"
	}
	var toks []token
	depth := 0
	for {
		for p < len(src) && isSpace(src[p]) {
			if src[p] == '\n' {
				*line++
			}
			p++
		}
		if p >= len(src) {
			return nil, 0, fmt.Errorf("line %d: unclosed tag, expected %q", *line, closer)
		}
		if depth == 0 {
			if strings.HasPrefix(src[p:], closer) {
				return toks, p, nil
			}
			if (src[p] == '-' || src[p] == '+' && kind == 'b') && strings.HasPrefix(src[p+1:], closer) {
				return toks, p, nil
			}
		}
		c := src[p]
		switch {
		case isNameStart(c):
			q := p + 1
			for q < len(src) && (isNameStart(src[q]) || isDigit(src[q])) {
				q++
			}
			toks = append(toks, token{kind: tName, val: src[p:q], line: *line})
			p = q
		case isDigit(c):
			q, isFloat := scanNumber(src, p)
			k := tInt
			if isFloat {
				k = tFloat
			}
			toks = append(toks, token{kind: k, val: strings.ReplaceAll(src[p:q], "_", ""), line: *line})
			p = q
		case c == '"' || c == '\'':
			s, q, err := scanString(src, p)
			if err != nil {
				return nil, 0, fmt.Errorf("line %d: %w", *line, err)
			}
			*line += strings.Count(src[p:q], "\n")
			toks = append(toks, token{kind: tString, val: s, line: *line})
			p = q
		default:
			op := ""
			for _, o := range []string{"//", "**", "==", "!=", "<=", ">="} {
				if strings.HasPrefix(src[p:], o) {
					op = o
					break
				}
			}
			if op == "" {
				if !strings.ContainsRune("+-*/%~<>=()[]{},.:|;", rune(c)) {
					return nil, 0, fmt.Errorf("line %d: unexpected character %q", *line, c)
				}
				op = string(c)
			}
			switch op {
			case "(", "[", "{":
				depth++
			case ")", "]", "}":
				if depth > 0 {
					depth--
				}
			}
			toks = append(toks, token{kind: tOp, val: op, line: *line})
			p += len(op)
		}
	}
}

func scanNumber(src string, p int) (int, bool) {
	q := p
	isFloat := false
	for q < len(src) && (isDigit(src[q]) || src[q] == '_') {
		q++
	}
	if q+1 < len(src) && src[q] == '.' && isDigit(src[q+1]) {
		isFloat = true
		q++
		for q < len(src) && (isDigit(src[q]) || src[q] == '_') {
			q++
		}
	}
	if q < len(src) && (src[q] == 'e' || src[q] == 'E') {
		r := q + 1
		if r < len(src) && (src[r] == '+' || src[r] == '-') {
			r++
		}
		if r < len(src) && isDigit(src[r]) {
			isFloat = true
			q = r
			for q < len(src) && isDigit(src[q]) {
				q++
			}
		}
	}
	return q, isFloat
}

// scanString decodes a quoted literal with Python's escapes.
func scanString(src string, p int) (string, int, error) {
	q := src[p]
	var b strings.Builder
	i := p + 1
	for i < len(src) {
		c := src[i]
		if c == q {
			return b.String(), i + 1, nil
		}
		if c != '\\' || i+1 >= len(src) {
			b.WriteByte(c)
			i++
			continue
		}
		e := src[i+1]
		i += 2
		switch e {
		case 'n':
			b.WriteByte('\n')
		case 't':
			b.WriteByte('\t')
		case 'r':
			b.WriteByte('\r')
		case '0':
			b.WriteByte(0)
		case 'a':
			b.WriteByte(7)
		case 'b':
			b.WriteByte(8)
		case 'f':
			b.WriteByte(12)
		case 'v':
			b.WriteByte(11)
		case '\\', '\'', '"':
			b.WriteByte(e)
		case '\n':
		case 'x', 'u', 'U':
			n := map[byte]int{'x': 2, 'u': 4, 'U': 8}[e]
			if i+n > len(src) {
				return "", 0, fmt.Errorf("truncated \\%c escape", e)
			}
			var r rune
			for _, h := range src[i : i+n] {
				d := hexVal(byte(h))
				if d < 0 {
					return "", 0, fmt.Errorf("bad \\%c escape", e)
				}
				r = r<<4 | rune(d)
			}
			b.WriteRune(r)
			i += n
		default:
			b.WriteByte('\\')
			b.WriteByte(e)
		}
	}
	return "", 0, fmt.Errorf("unterminated string")
}

func hexVal(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}
