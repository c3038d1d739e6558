// Package chattmpl renders model chat templates: the Jinja templates that
// models ship (GGUF tokenizer.chat_template, tokenizer_config.json's
// chat_template, chat_template.jinja) to turn a conversation into a prompt.
//
// The interpreter follows Python jinja2 as Hugging Face transformers
// configures it: trim_blocks and lstrip_blocks on, the loop-controls
// extension (break, continue), transformers' tojson (no ASCII escaping,
// indent=, separators=, sort_keys=), raise_exception(msg),
// strftime_now(fmt), the {% generation %} block, namespace(), jinja2's
// lenient Undefined, and values that print as Python prints them (None,
// True, 1.0, ['a', 1], {'k': 'v'}). Messages and tools arrive as JSON and
// keep their key order, so tojson writes keys in the order the client sent
// them, and JSON integers stay distinct from floats (2 vs 2.0).
//
// Deliberate differences from jinja2: range() and dict.keys()/values()/
// items() give lists (they print as lists, not as range(0, 4) or
// dict_items([...])); a fromjson (alias from_json) filter exists; include,
// extends, import and recursive loops are not supported. One render is
// bounded: expressions and blocks nest at most 200 deep, at most 10M loop
// iterations and macro calls, 64 MiB of output, ranges of 1M items.
package chattmpl

import (
	"encoding/json"
	"errors"
	"fmt"
	"runtime/debug"
	"sort"
	"strings"
	"time"
)

// Template is a parsed chat template. It is immutable and safe for
// concurrent use by many goroutines.
type Template struct {
	nodes []node
}

// Input is what a chat template is rendered with.
type Input struct {
	// Messages is a JSON array of message objects, passed through as-is
	// (role, content as a string or parts, tool_calls, tool_call_id, name,
	// reasoning_content, …).
	Messages json.RawMessage
	// Tools is a JSON array of tool definitions, or nil (the template then
	// sees tools = None, as transformers passes it).
	Tools               json.RawMessage
	AddGenerationPrompt bool
	BOSToken, EOSToken  string
	// Extra holds extra keyword arguments (e.g. enable_thinking,
	// documents), with values as encoding/json produces them (Go ints and
	// json.RawMessage are accepted too). The fields above take precedence
	// over keys of the same name.
	Extra map[string]any
}

// RaiseError is the error a template raises with raise_exception(msg).
// Message is the template's text exactly.
type RaiseError struct{ Message string }

func (e *RaiseError) Error() string { return e.Message }

// ChatML is the fallback template for models that ship none.
const ChatML = `{%- for message in messages -%}
{{- '<|im_start|>' + message['role'] + '\n' -}}
{%- if message['content'] is string -%}
{{- message['content'] -}}
{%- elif message['content'] is iterable -%}
{%- for part in message['content'] if part['type'] == 'text' -%}{{- part['text'] -}}{%- endfor -%}
{%- endif -%}
{{- '<|im_end|>\n' -}}
{%- endfor -%}
{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\n' -}}{%- endif -%}`

// Parse parses a template. A syntax error names the line it is on.
func Parse(src string) (t *Template, err error) {
	defer func() {
		if r := recover(); r != nil {
			t, err = nil, fmt.Errorf("chat template: internal error while parsing: %v", r)
		}
	}()
	toks, err := lex(src)
	if err != nil {
		return nil, fmt.Errorf("chat template: %w", err)
	}
	p := &parser{toks: toks}
	nodes, _, err := p.parseBody()
	if err != nil {
		return nil, fmt.Errorf("chat template: %w", err)
	}
	return &Template{nodes: nodes}, nil
}

// Render renders the template for a conversation. It is safe for
// concurrent use.
func (t *Template) Render(in Input) (string, error) {
	vars := make(map[string]any, 8+len(in.Extra))
	for k, v := range in.Extra {
		c, err := FromGo(v)
		if err != nil {
			return "", fmt.Errorf("chat template: extra argument %s: %w", k, err)
		}
		vars[k] = c
	}
	msgs, err := decodeArray(in.Messages, "messages")
	if err != nil {
		return "", err
	}
	if msgs == nil {
		msgs = &List{Items: []any{}}
	}
	vars["messages"] = msgs
	tools, err := decodeArray(in.Tools, "tools")
	if err != nil {
		return "", err
	}
	if tools != nil {
		vars["tools"] = tools
	} else {
		vars["tools"] = nil
	}
	if _, ok := vars["documents"]; !ok {
		vars["documents"] = nil // as transformers passes it; Extra may set it
	}
	vars["add_generation_prompt"] = in.AddGenerationPrompt
	vars["bos_token"] = in.BOSToken
	vars["eos_token"] = in.EOSToken
	return t.render(vars)
}

func decodeArray(raw json.RawMessage, what string) (*List, error) {
	if len(strings.TrimSpace(string(raw))) == 0 {
		return nil, nil
	}
	v, err := DecodeJSON(raw)
	if err != nil {
		return nil, fmt.Errorf("chat template: decoding %s: %w", what, err)
	}
	switch x := v.(type) {
	case nil:
		return nil, nil
	case *List:
		return x, nil
	}
	return nil, fmt.Errorf("chat template: %s must be a JSON array, got %s", what, typeName(v))
}

// RenderContext renders t with an arbitrary JSON object as its variables.
func RenderContext(t *Template, ctx json.RawMessage) (string, error) {
	v, err := DecodeJSON(ctx)
	if err != nil {
		return "", fmt.Errorf("chat template: decoding context: %w", err)
	}
	d, ok := v.(*Dict)
	if !ok {
		return "", fmt.Errorf("chat template: context must be a JSON object, got %s", typeName(v))
	}
	vars := make(map[string]any, d.Len())
	for i, k := range d.keys {
		vars[k.(string)] = d.vals[i]
	}
	return t.render(vars)
}

func (t *Template) render(vars map[string]any) (out string, err error) {
	defer func() {
		if r := recover(); r != nil {
			out, err = "", fmt.Errorf("chat template: internal error: %v\n%s", r, debug.Stack())
		}
	}()
	ev := &evaluator{}
	f := &frame{more: vars, parent: &frame{more: globals}}
	var b strings.Builder
	if err := ev.exec(t.nodes, f, &b); err != nil {
		if err == errBreak || err == errContinue {
			return "", fmt.Errorf("chat template: %w", err)
		}
		var re *RaiseError
		if errors.As(err, &re) {
			return "", re
		}
		return "", fmt.Errorf("chat template: %w", err)
	}
	return b.String(), nil
}

// timeNow is what strftime_now reads; tests replace it.
var timeNow = time.Now

// globals are the functions every template can call. Read-only.
var globals = map[string]any{
	"raise_exception": builtinFunc(func(_ *evaluator, args []any, _ map[string]any) (any, error) {
		msg := ""
		if len(args) > 0 {
			msg = toStr(args[0])
		}
		return nil, &RaiseError{Message: msg}
	}),
	"strftime_now": builtinFunc(func(_ *evaluator, args []any, _ map[string]any) (any, error) {
		if len(args) != 1 {
			return nil, errors.New("strftime_now takes one format argument")
		}
		f, ok := args[0].(string)
		if !ok {
			return nil, errors.New("strftime_now format must be a string")
		}
		return strftime(f, timeNow()), nil
	}),
	"namespace": builtinFunc(func(ev *evaluator, args []any, kwargs map[string]any) (any, error) {
		d := NewDict()
		for _, a := range args {
			src, ok := a.(*Dict)
			if !ok {
				return nil, errors.New("namespace takes a mapping or keyword arguments")
			}
			for i, k := range src.keys {
				d.Set(k, src.vals[i])
			}
		}
		for _, k := range ev.kwargNames(kwargs) {
			d.Set(k, kwargs[k])
		}
		return &Namespace{d: d}, nil
	}),
	"dict": builtinFunc(func(ev *evaluator, args []any, kwargs map[string]any) (any, error) {
		d := NewDict()
		for _, a := range args {
			switch src := a.(type) {
			case *Dict:
				for i, k := range src.keys {
					d.Set(k, src.vals[i])
				}
			case *List:
				for _, it := range src.Items {
					pair, ok := it.(*List)
					if !ok || len(pair.Items) != 2 {
						return nil, errors.New("dict needs key/value pairs")
					}
					if !hashable(pair.Items[0]) {
						return nil, fmt.Errorf("unhashable type: '%s'", typeName(pair.Items[0]))
					}
					d.Set(pair.Items[0], pair.Items[1])
				}
			default:
				return nil, fmt.Errorf("'%s' object is not iterable", typeName(a))
			}
		}
		for _, k := range ev.kwargNames(kwargs) {
			d.Set(k, kwargs[k])
		}
		return d, nil
	}),
	"range": builtinFunc(func(_ *evaluator, args []any, _ map[string]any) (any, error) {
		var start, stop, step int64 = 0, 0, 1
		ints := make([]int64, len(args))
		for i, a := range args {
			n, ok := asInt(a)
			if !ok {
				return nil, fmt.Errorf("'%s' object cannot be interpreted as an integer", typeName(a))
			}
			ints[i] = n
		}
		switch len(ints) {
		case 1:
			stop = ints[0]
		case 2:
			start, stop = ints[0], ints[1]
		case 3:
			start, stop, step = ints[0], ints[1], ints[2]
		default:
			return nil, errors.New("range expects 1 to 3 arguments")
		}
		if step == 0 {
			return nil, errors.New("range() arg 3 must not be zero")
		}
		n := int64(0)
		if step > 0 && stop > start {
			n = (stop - start + step - 1) / step
		} else if step < 0 && start > stop {
			n = (start - stop - step - 1) / -step
		}
		if n > 1<<20 {
			return nil, fmt.Errorf("range of %d items is too large", n)
		}
		l := &List{Items: make([]any, n)}
		for i := range l.Items {
			l.Items[i] = start + int64(i)*step
		}
		return l, nil
	}),
	"joiner": builtinFunc(func(_ *evaluator, args []any, _ map[string]any) (any, error) {
		sep := ", "
		if len(args) > 0 {
			sep = toStr(args[0])
		}
		used := false
		return builtinFunc(func(*evaluator, []any, map[string]any) (any, error) {
			if !used {
				used = true
				return "", nil
			}
			return sep, nil
		}), nil
	}),
}

// kwargNames returns the names of kwargs in call order when known, else
// sorted.
func (ev *evaluator) kwargNames(kwargs map[string]any) []string {
	if len(ev.kwOrder) == len(kwargs) {
		ok := true
		for _, k := range ev.kwOrder {
			if _, in := kwargs[k]; !in {
				ok = false
				break
			}
		}
		if ok {
			return append([]string(nil), ev.kwOrder...)
		}
	}
	keys := make([]string, 0, len(kwargs))
	for k := range kwargs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
