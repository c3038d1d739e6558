package toolcall

import (
	"bytes"
	"encoding/json"
	"io"
	"strings"
)

// jsonCall is the JSON shape of one call: Hermes and Mistral write
// "arguments", Llama 3 writes "parameters".
type jsonCall struct {
	Name       string          `json:"name"`
	Arguments  json.RawMessage `json:"arguments"`
	Parameters json.RawMessage `json:"parameters"`
}

// parseJSONCall parses one complete JSON object as a call.
func parseJSONCall(s string) (Call, bool) {
	dec := json.NewDecoder(strings.NewReader(s))
	var jc jsonCall
	if err := dec.Decode(&jc); err != nil {
		return Call{}, false
	}
	if _, err := dec.Token(); err != io.EOF {
		return Call{}, false // trailing text
	}
	return jc.call()
}

func (jc jsonCall) call() (Call, bool) {
	if strings.TrimSpace(jc.Name) == "" {
		return Call{}, false
	}
	raw := jc.Arguments
	if len(raw) == 0 {
		raw = jc.Parameters
	}
	args, ok := argumentsText(raw)
	if !ok {
		return Call{}, false
	}
	return Call{Name: jc.Name, Arguments: args}, true
}

// argumentsText turns the arguments value into the text of a JSON object:
// an object is compacted; a string holding an object is unwrapped;
// nothing gives "{}".
func argumentsText(raw json.RawMessage) (string, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return "{}", true
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", false
		}
		raw = json.RawMessage(strings.TrimSpace(s))
		if len(raw) == 0 {
			return "{}", true
		}
	}
	if raw[0] != '{' {
		return "", false
	}
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return "", false
	}
	return b.String(), true
}

// parseJSONSeq parses calls written as JSON objects one after another,
// optionally separated by ";" (Llama 3 after <|python_tag|>), or one
// JSON array of them.
func parseJSONSeq(s string) ([]Call, bool) {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "[") {
		return parseJSONArray(s)
	}
	var calls []Call
	for {
		s = strings.TrimLeft(s, " \t\r\n;")
		if s == "" {
			break
		}
		n := jsonEnd(s)
		if n <= 0 {
			return nil, false
		}
		c, ok := parseJSONCall(s[:n])
		if !ok {
			return nil, false
		}
		calls = append(calls, c)
		s = s[n:]
	}
	return calls, len(calls) > 0
}

func parseJSONArray(s string) ([]Call, bool) {
	dec := json.NewDecoder(strings.NewReader(s))
	var jcs []jsonCall
	if err := dec.Decode(&jcs); err != nil {
		return nil, false
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, false
	}
	var calls []Call
	for _, jc := range jcs {
		c, ok := jc.call()
		if !ok {
			return nil, false
		}
		calls = append(calls, c)
	}
	return calls, len(calls) > 0
}

// parseMistral parses what follows [TOOL_CALLS]: a JSON array (or object)
// of calls, or NAME[ARGS]{…} segments separated by further [TOOL_CALLS].
func parseMistral(s string) ([]Call, bool) {
	t := strings.TrimSpace(s)
	if strings.HasPrefix(t, "[") || strings.HasPrefix(t, "{") {
		return parseJSONSeq(t)
	}
	var calls []Call
	for _, seg := range strings.Split(t, mistralCalls) {
		seg = strings.TrimSpace(seg)
		name, args, ok := strings.Cut(seg, mistralArgs)
		name = strings.TrimSpace(name)
		if !ok || name == "" || strings.ContainsAny(name, " \t\r\n{}[]\"") {
			return nil, false
		}
		args = strings.TrimSpace(args)
		if jsonEnd(args) != len(args) {
			return nil, false
		}
		a, ok := argumentsText(json.RawMessage(args))
		if !ok {
			return nil, false
		}
		calls = append(calls, Call{Name: name, Arguments: a})
	}
	return calls, len(calls) > 0
}

// parseXMLCalls parses Qwen3-Coder calls:
//
//	<function=NAME>
//	<parameter=KEY>
//	VALUE
//	</parameter>
//	</function>
//
// one or more, possibly each wrapped in <tool_call>…</tool_call>.
func parseXMLCalls(s string, types ParamTypes) ([]Call, bool) {
	var calls []Call
	for {
		s = strings.TrimSpace(s)
		s = strings.TrimSpace(strings.TrimPrefix(s, toolCallOpen))
		if s == "" {
			break
		}
		if !strings.HasPrefix(s, functionOpen) {
			return nil, false
		}
		s = s[len(functionOpen):]
		gt := strings.IndexByte(s, '>')
		if gt <= 0 {
			return nil, false
		}
		name := strings.TrimSpace(s[:gt])
		if name == "" || strings.ContainsAny(name, "<>\n") {
			return nil, false
		}
		s = s[gt+1:]
		end := strings.Index(s, functionClose)
		if end < 0 {
			return nil, false
		}
		inner := s[:end]
		s = s[end+len(functionClose):]
		s = strings.TrimSpace(s)
		s = strings.TrimPrefix(s, toolCallClose)
		args, ok := xmlParams(inner, types[name])
		if !ok {
			return nil, false
		}
		calls = append(calls, Call{Name: name, Arguments: args})
	}
	return calls, len(calls) > 0
}

// xmlParams turns <parameter=K>V</parameter> elements into a JSON object,
// keeping their order. A parameter the tool's schema types as a string is
// a string; otherwise a value that is valid JSON (a number, true, an
// object…) is kept as such, and anything else is a string.
func xmlParams(inner string, types map[string]string) (string, bool) {
	var b strings.Builder
	b.WriteByte('{')
	n := 0
	for {
		inner = strings.TrimSpace(inner)
		if inner == "" {
			break
		}
		if !strings.HasPrefix(inner, parameterOpen) {
			return "", false
		}
		inner = inner[len(parameterOpen):]
		gt := strings.IndexByte(inner, '>')
		if gt <= 0 {
			return "", false
		}
		key := strings.TrimSpace(inner[:gt])
		if key == "" || strings.ContainsAny(key, "<>\n") {
			return "", false
		}
		inner = inner[gt+1:]
		var val string
		if end := strings.Index(inner, parameterClose); end >= 0 {
			val, inner = inner[:end], inner[end+len(parameterClose):]
		} else if next := strings.Index(inner, parameterOpen); next >= 0 {
			val, inner = inner[:next], inner[next:]
		} else {
			val, inner = inner, ""
		}
		val = strings.TrimPrefix(val, "\n")
		val = strings.TrimSuffix(val, "\n")
		if n > 0 {
			b.WriteByte(',')
		}
		n++
		k, _ := json.Marshal(key)
		b.Write(k)
		b.WriteByte(':')
		if tv := strings.TrimSpace(val); types[key] != "string" && tv != "" && json.Valid([]byte(tv)) {
			var c bytes.Buffer
			_ = json.Compact(&c, []byte(tv))
			b.Write(c.Bytes())
		} else {
			v, _ := json.Marshal(val)
			b.Write(v)
		}
	}
	b.WriteByte('}')
	return b.String(), true
}

// ParamTypes maps a tool's name to its parameters' JSON schema types.
type ParamTypes map[string]map[string]string

// ToolParamTypes reads the parameter types from an OpenAI tools list
// ([{"type":"function","function":{"name","parameters":{"properties":…}}}]);
// unreadable entries are skipped.
func ToolParamTypes(tools json.RawMessage) ParamTypes {
	var list []struct {
		Function struct {
			Name       string `json:"name"`
			Parameters struct {
				Properties map[string]struct {
					Type any `json:"type"`
				} `json:"properties"`
			} `json:"parameters"`
		} `json:"function"`
	}
	if json.Unmarshal(tools, &list) != nil {
		return nil
	}
	out := ParamTypes{}
	for _, t := range list {
		m := map[string]string{}
		for k, p := range t.Function.Parameters.Properties {
			if s, ok := p.Type.(string); ok {
				m[k] = s
			}
		}
		out[t.Function.Name] = m
	}
	return out
}

// jsonEnd returns the length of the JSON object or array at the start of
// s (after no leading space), 0 when s does not start with one, and -1 when
// it is not finished yet. Only brackets and strings are tracked; the
// result is then parsed for real.
func jsonEnd(s string) int {
	if s == "" || (s[0] != '{' && s[0] != '[') {
		return 0
	}
	depth := 0
	inStr, esc := false, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if inStr {
			switch {
			case esc:
				esc = false
			case c == '\\':
				esc = true
			case c == '"':
				inStr = false
			}
			continue
		}
		switch c {
		case '"':
			inStr = true
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth == 0 {
				return i + 1
			}
		}
	}
	return -1
}
