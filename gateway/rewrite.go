package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"unicode/utf8"
)

// The OpenAI routes forward the client's body as it came: the gateway never
// decodes and re-encodes it. This file holds a small scanner over the top
// level of a JSON object and the byte-level edits built on it: rewriting the
// "model" value (alias → id) and asking the neuron for usage when streaming.

// errNotObject is returned for a body that is valid JSON but not an object.
var errNotObject = errors.New("request body must be a JSON object")

// field is one top-level member of a JSON object: the raw key (without its
// quotes, escapes as written) and the byte span of its value.
type field struct {
	key        []byte
	valStart   int
	valEnd     int
	keyEscaped bool
}

// name is the key with escapes resolved. Most keys carry none and come back
// without allocating.
func (f field) is(name string) bool {
	if !f.keyEscaped {
		return string(f.key) == name
	}
	var s string
	q := make([]byte, 0, len(f.key)+2)
	q = append(q, '"')
	q = append(q, f.key...)
	q = append(q, '"')
	if json.Unmarshal(q, &s) != nil {
		return false
	}
	return s == name
}

// scanObject calls fn for every top-level member of the JSON object b, in
// order, stopping when fn returns false. Anything but an object gives
// errNotObject. It does not validate: on valid JSON (json.Valid) the spans
// are exact; on broken input (a neuron's chunk) it never reads out of
// bounds, stops at the first structural error and returns errNotObject.
func scanObject(b []byte, fn func(f field) bool) error {
	i := skipWS(b, 0)
	if i >= len(b) || b[i] != '{' {
		return errNotObject
	}
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == '}' {
		return nil
	}
	for i < len(b) {
		if b[i] != '"' {
			return errNotObject
		}
		end, escaped := stringEnd(b, i)
		if end < 0 {
			return errNotObject
		}
		key := b[i+1 : end-1]
		i = skipWS(b, end)
		if i >= len(b) || b[i] != ':' {
			return errNotObject
		}
		vs := skipWS(b, i+1)
		ve := valueEnd(b, vs)
		if ve <= vs {
			return errNotObject
		}
		if !fn(field{key: key, valStart: vs, valEnd: ve, keyEscaped: escaped}) {
			return nil
		}
		i = skipWS(b, ve)
		if i >= len(b) {
			return errNotObject
		}
		if b[i] == '}' {
			return nil
		}
		if b[i] != ',' {
			return errNotObject
		}
		i = skipWS(b, i+1)
	}
	return errNotObject
}

func skipWS(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// stringEnd returns the index just past the closing quote of the string that
// opens at b[i], and whether it holds an escape; -1 when it is not closed.
func stringEnd(b []byte, i int) (int, bool) {
	escaped := false
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			escaped = true
			j++
		case '"':
			return j + 1, escaped
		}
	}
	return -1, escaped
}

// valueEnd returns the index just past the value that starts at b[i]; -1
// when the value is not closed.
func valueEnd(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '"':
		e, _ := stringEnd(b, i)
		return e
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				e, _ := stringEnd(b, j)
				if e < 0 {
					return -1
				}
				j = e - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1
				}
			}
		}
		return -1
	default:
		for j := i; j < len(b); j++ {
			switch b[j] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return j
			}
		}
		return len(b)
	}
}

// reqFacts is what the gateway reads from an OpenAI request body without
// decoding it.
type reqFacts struct {
	Model     string // the "model" value (last one wins, as in encoding/json)
	HasModel  bool
	ModelBad  bool // "model" present but not a string
	Stream    bool
	HasSO     bool // "stream_options" present (even as null)
	WantUsage bool // stream_options.include_usage is true
}

// inspect reads the facts of a valid JSON request body.
func inspect(b []byte) (reqFacts, error) {
	var r reqFacts
	err := scanObject(b, func(f field) bool {
		v := b[f.valStart:f.valEnd]
		switch {
		case f.is("model"):
			r.HasModel = true
			s, ok := jsonString(v)
			r.Model, r.ModelBad = s, !ok
		case f.is("stream"):
			r.Stream = string(v) == "true"
		case f.is("stream_options"):
			r.HasSO = true
			r.WantUsage = false
			if v[0] == '{' {
				_ = scanObject(v, func(g field) bool {
					if g.is("include_usage") {
						r.WantUsage = string(v[g.valStart:g.valEnd]) == "true"
					}
					return true
				})
			}
		}
		return true
	})
	return r, err
}

// jsonString decodes a JSON string value; ok is false for any other value.
func jsonString(v []byte) (string, bool) {
	if len(v) < 2 || v[0] != '"' {
		return "", false
	}
	inner := v[1 : len(v)-1]
	if bytes.IndexByte(inner, '\\') < 0 {
		return string(inner), true
	}
	var s string
	if json.Unmarshal(v, &s) != nil {
		return "", false
	}
	return s, true
}

// usageOption is what the gateway writes into a streaming request so that
// the neuron reports usage.
const usageOption = `"stream_options":{"include_usage":true}`

// rewriteRequest appends to dst the body b with every top-level "model"
// value replaced by model and, when wantUsage is set, stream_options set to
// include usage (inserted when absent, replaced when it does not ask for
// usage). b must be a valid JSON object. When nothing needs to change it
// returns b itself and changed=false.
func rewriteRequest(dst, b []byte, model string, wantUsage bool) (out []byte, changed bool, err error) {
	f, err := inspect(b)
	if err != nil {
		return nil, false, err
	}
	needModel := f.HasModel && (f.ModelBad || f.Model != model)
	needSO := wantUsage && !f.WantUsage
	if !needModel && !needSO {
		return b, false, nil
	}
	out = dst[:0]
	last := 0
	if needSO && !f.HasSO {
		open := skipWS(b, 0) + 1
		out = append(out, b[:open]...)
		out = append(out, usageOption...)
		if j := skipWS(b, open); j < len(b) && b[j] != '}' {
			out = append(out, ',')
		}
		last = open
	}
	err = scanObject(b, func(fd field) bool {
		switch {
		case needModel && fd.is("model"):
			out = append(out, b[last:fd.valStart]...)
			out = appendJSONString(out, model)
			last = fd.valEnd
		case needSO && f.HasSO && fd.is("stream_options"):
			out = append(out, b[last:fd.valStart]...)
			out = append(out, `{"include_usage":true}`...)
			last = fd.valEnd
		}
		return true
	})
	if err != nil {
		return nil, false, err
	}
	out = append(out, b[last:]...)
	return out, true, nil
}

// appendJSONString appends s as a JSON string literal.
func appendJSONString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				dst = append(dst, '\\', c)
			case c < 0x20 || c == '<' || c == '>' || c == '&':
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				dst = append(dst, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			dst = append(dst, `\u202`...)
			dst = append(dst, hex[r&0xf])
		default:
			dst = append(dst, s[i:i+size]...)
		}
		i += size
	}
	return append(dst, '"')
}

// usageOf reads the "usage" member of an OpenAI response or stream chunk:
// prompt, completion and cached prompt tokens. ok is false when absent or
// null.
func usageOf(b []byte) (u usage, ok bool) {
	_ = scanObject(b, func(f field) bool {
		if !f.is("usage") {
			return true
		}
		v := b[f.valStart:f.valEnd]
		if len(v) == 0 || v[0] != '{' {
			return true
		}
		ok = true
		u = usage{}
		_ = scanObject(v, func(g field) bool {
			val := v[g.valStart:g.valEnd]
			switch {
			case g.is("prompt_tokens"):
				u.Prompt = atoi(val)
			case g.is("completion_tokens"):
				u.Completion = atoi(val)
			case g.is("prompt_tokens_details"):
				if len(val) > 0 && val[0] == '{' {
					_ = scanObject(val, func(h field) bool {
						if h.is("cached_tokens") {
							u.Cached = atoi(val[h.valStart:h.valEnd])
						}
						return true
					})
				}
			}
			return true
		})
		return true
	})
	return u, ok
}

// usage is the token accounting of one request.
type usage struct{ Prompt, Completion, Cached int }

// atoi reads a JSON number as an int; 0 when it is not one.
func atoi(b []byte) int {
	if n, err := strconv.Atoi(string(b)); err == nil {
		return n
	}
	if f, err := strconv.ParseFloat(string(b), 64); err == nil && f >= 0 && f < 1<<53 {
		return int(f)
	}
	return 0
}

// chunkKind classifies one streaming chunk of a chat completion: whether it
// carries choices (content) and whether it is the usage-only chunk.
func chunkKind(b []byte) (hasChoices, usageOnly bool) {
	var choicesEmpty, hasUsage, sawChoices bool
	_ = scanObject(b, func(f field) bool {
		v := b[f.valStart:f.valEnd]
		switch {
		case f.is("choices"):
			sawChoices = true
			inner := v
			if len(inner) >= 2 && inner[0] == '[' {
				j := skipWS(inner, 1)
				choicesEmpty = j < len(inner) && inner[j] == ']'
			}
		case f.is("usage"):
			hasUsage = string(v) != "null"
		}
		return true
	})
	hasChoices = sawChoices && !choicesEmpty
	usageOnly = hasUsage && !hasChoices
	return hasChoices, usageOnly
}

// decodeSpeed reads timings.predicted_n and timings.predicted_ms of a
// neuron's non-streaming answer: completion tokens per second of decoding.
// ok is false when the answer carries no timings.
func decodeSpeed(b []byte) (tps float64, ok bool) {
	_ = scanObject(b, func(f field) bool {
		if !f.is("timings") {
			return true
		}
		v := b[f.valStart:f.valEnd]
		if len(v) == 0 || v[0] != '{' {
			return false
		}
		var n, ms float64
		_ = scanObject(v, func(g field) bool {
			switch {
			case g.is("predicted_n"):
				n, _ = strconv.ParseFloat(string(v[g.valStart:g.valEnd]), 64)
			case g.is("predicted_ms"):
				ms, _ = strconv.ParseFloat(string(v[g.valStart:g.valEnd]), 64)
			}
			return true
		})
		if n > 0 && ms > 0 {
			tps, ok = n/(ms/1000), true
		}
		return false
	})
	return tps, ok
}
