package node

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestUnsupportedOptionsRefused: options the neuron does not enforce (or
// cannot enforce as given) are a 400 naming the parameter, never silently
// ignored; the ones real
// clients send that it honours keep working.
func TestUnsupportedOptionsRefused(t *testing.T) {
	n := startNeuron(t, testConfig(modelsDir(t, "stories260K.gguf")), (&synthEngine{}).hooks())
	n.load(t, "stories260K", 128)
	tools := []any{map[string]any{"type": "function", "function": map[string]any{"name": "f", "parameters": map[string]any{"type": "object"}}}}
	chat := func(extra map[string]any) map[string]any {
		b := map[string]any{"model": "stories260K", "max_tokens": 4, "messages": []any{map[string]any{"role": "user", "content": "Once"}}}
		for k, v := range extra {
			b[k] = v
		}
		return b
	}
	for _, c := range []struct {
		param string
		extra map[string]any
	}{
		{"response_format", map[string]any{"response_format": map[string]any{"type": "yaml"}}},
		{"response_format", map[string]any{"response_format": map[string]any{"type": "json_schema", "json_schema": map[string]any{"name": "x", "schema": map[string]any{"not": map[string]any{}}}}}},
		{"tool_choice", map[string]any{"tools": tools, "tool_choice": map[string]any{"type": "function", "function": map[string]any{"name": "g"}}}},
		{"tool_choice", map[string]any{"tool_choice": "required"}},
		{"tool_choice", map[string]any{"tools": tools, "tool_choice": "sometimes"}},
		{"functions", map[string]any{"functions": []any{map[string]any{"name": "f"}}}},
		{"function_call", map[string]any{"function_call": "auto"}},
		{"audio", map[string]any{"audio": map[string]any{"voice": "x", "format": "wav"}}},
		{"modalities", map[string]any{"modalities": []string{"text", "audio"}}},
	} {
		var e errEnvelope
		if st := n.do(t, "POST", "/v1/chat/completions", chat(c.extra), &e); st != 400 || param(e) != c.param {
			t.Fatalf("%v: %d %+v, want 400 naming %s", c.extra, st, e, c.param)
		}
	}
	for _, c := range []struct {
		param string
		extra map[string]any
	}{
		{"echo", map[string]any{"echo": true}}, {"suffix", map[string]any{"suffix": "x"}}, {"best_of", map[string]any{"best_of": 3}},
	} {
		body := map[string]any{"model": "stories260K", "prompt": "Once", "max_tokens": 4}
		for k, v := range c.extra {
			body[k] = v
		}
		var e errEnvelope
		if st := n.do(t, "POST", "/v1/completions", body, &e); st != 400 || param(e) != c.param {
			t.Fatalf("%v: %d %+v, want 400 naming %s", c.extra, st, e, c.param)
		}
	}
	// What clients send and the neuron honours.
	for _, extra := range []map[string]any{
		{"tools": tools, "tool_choice": "auto", "parallel_tool_calls": true},
		{"tools": tools, "tool_choice": "none", "parallel_tool_calls": false},
		{"tools": tools, "parallel_tool_calls": false},
		{"tools": tools, "tool_choice": "required"},
		{"tools": tools, "tool_choice": map[string]any{"type": "function", "function": map[string]any{"name": "f"}}},
		{"response_format": map[string]any{"type": "json_object"}},
		{"response_format": map[string]any{"type": "json_schema", "json_schema": map[string]any{"name": "x", "schema": map[string]any{}}}},
		{"parallel_tool_calls": false}, // no tools: nothing to run in parallel
		{"response_format": map[string]any{"type": "text"}},
		{"response_format": nil, "tool_choice": nil, "modalities": []string{"text"}, "reasoning_effort": "low", "best_of": 1, "user": "u"},
	} {
		var r chatResponse
		if st := n.do(t, "POST", "/v1/chat/completions", chat(extra), &r); st != 200 {
			t.Fatalf("%v: %d", extra, st)
		}
	}
	// The chat bodies made from the real clients' captures pass.
	for _, body := range clientChatBodies(t) {
		body["model"], body["max_tokens"] = "stories260K", 2
		delete(body, "stream")
		var e errEnvelope
		if st := n.do(t, "POST", "/v1/chat/completions", body, &e); st != 200 && code(e) != "context_length_exceeded" {
			t.Fatalf("client body: %d %+v", st, e)
		}
	}
}

// TestImagesNameTheMissingCapability: an image part is a 400 that names
// the model's missing capability, which /models never claims.
func TestImagesNameTheMissingCapability(t *testing.T) {
	n := startNeuron(t, testConfig(modelsDir(t, "stories260K.gguf")), (&synthEngine{}).hooks())
	n.load(t, "stories260K", 128)
	for _, part := range []map[string]any{
		{"type": "image_url", "image_url": map[string]any{"url": "data:image/png;base64,iVBORw0KGgo="}},
		{"type": "input_image", "image_url": "https://example.com/cat.png"},
	} {
		body := map[string]any{"model": "stories260K", "messages": []any{map[string]any{"role": "user", "content": []any{
			map[string]any{"type": "text", "text": "What is this?"}, part}}}}
		var e errEnvelope
		if st := n.do(t, "POST", "/v1/chat/completions", body, &e); st != 400 || code(e) != "model_lacks_capability" ||
			!strings.Contains(e.Error.Message, `"vision"`) || !strings.Contains(e.Error.Message, "stories260K") {
			t.Fatalf("image part: %d %+v", st, e)
		}
	}
	var list struct {
		Data []modelEntry `json:"data"`
	}
	n.do(t, "GET", "/models", nil, &list)
	for _, m := range list.Data {
		if slices.Contains(m.Capabilities, "vision") {
			t.Fatalf("%s claims vision: %v", m.ID, m.Capabilities)
		}
	}
	waitIdle(t, n.instanceOf(t, "stories260K"))
}

// clientChatBodies builds chat completions bodies from the messages of
// the real client captures (they speak other dialects): the text of each
// turn, with the Codex capture's tool options.
func clientChatBodies(t testing.TB) []map[string]any {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(sharedDir(t), "clients", "*.json"))
	var out []map[string]any
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var capture struct {
			Body map[string]any `json:"body"`
		}
		if err := json.Unmarshal(data, &capture); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		b := capture.Body
		var msgs []any
		if sys, ok := b["system"]; ok {
			msgs = append(msgs, map[string]any{"role": "system", "content": textOf(sys)})
		}
		turns, _ := b["messages"].([]any)
		if in, ok := b["input"].([]any); ok {
			turns = append(turns, in...)
		}
		for _, m := range turns {
			mm, _ := m.(map[string]any)
			role, _ := mm["role"].(string)
			if role == "developer" {
				role = "system"
			}
			if role == "" {
				continue
			}
			msgs = append(msgs, map[string]any{"role": role, "content": textOf(mm["content"])})
		}
		body := map[string]any{"messages": msgs}
		for _, k := range []string{"tool_choice", "parallel_tool_calls", "stream", "max_tokens"} {
			if v, ok := b[k]; ok {
				body[k] = v
			}
		}
		var tools []any
		list, _ := b["tools"].([]any)
		for _, x := range list {
			tm, _ := x.(map[string]any)
			name, _ := tm["name"].(string)
			if name == "" {
				continue
			}
			params := tm["parameters"]
			if params == nil {
				params = tm["input_schema"]
			}
			tools = append(tools, map[string]any{"type": "function", "function": map[string]any{"name": name, "description": tm["description"], "parameters": params}})
		}
		if len(tools) > 0 {
			body["tools"] = tools
		}
		out = append(out, body)
	}
	return out
}

// textOf flattens a content value of any dialect to its text.
func textOf(v any) string {
	switch c := v.(type) {
	case string:
		return c
	case []any:
		var b strings.Builder
		for _, p := range c {
			if pm, ok := p.(map[string]any); ok {
				if s, ok := pm["text"].(string); ok {
					b.WriteString(s)
				}
			}
		}
		return b.String()
	}
	return ""
}
