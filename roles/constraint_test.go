package roles

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
)

// post sends a JSON body and returns the status and the raw answer.
func post(t *testing.T, url string, body any) (int, []byte) {
	t.Helper()
	data, _ := json.Marshal(body)
	req, _ := http.NewRequest("POST", url, bytes.NewReader(data))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("anthropic-version", "2023-06-01")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

// sseData returns the data lines of an SSE body, decoded.
func sseData(t *testing.T, body []byte) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok || line == "[DONE]" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("event %s: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

type call struct{ name, args string }

// anthropicCalls reads the tool_use blocks of a Messages answer,
// streamed or not, and the stop reason.
func anthropicCalls(t *testing.T, body []byte, stream bool) ([]call, string) {
	t.Helper()
	if !stream {
		var m struct {
			Content []struct {
				Type  string          `json:"type"`
				Name  string          `json:"name"`
				Input json.RawMessage `json:"input"`
			} `json:"content"`
			StopReason string `json:"stop_reason"`
		}
		if err := json.Unmarshal(body, &m); err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		var calls []call
		for _, b := range m.Content {
			if b.Type == "tool_use" {
				calls = append(calls, call{b.Name, string(b.Input)})
			}
		}
		return calls, m.StopReason
	}
	var calls []call
	stop := ""
	for _, ev := range sseData(t, body) {
		switch ev["type"] {
		case "content_block_start":
			if cb, _ := ev["content_block"].(map[string]any); cb["type"] == "tool_use" {
				calls = append(calls, call{name: cb["name"].(string)})
			}
		case "content_block_delta":
			if d, _ := ev["delta"].(map[string]any); d["type"] == "input_json_delta" && len(calls) > 0 {
				calls[len(calls)-1].args += d["partial_json"].(string)
			}
		case "message_delta":
			if d, _ := ev["delta"].(map[string]any); d["stop_reason"] != nil {
				stop, _ = d["stop_reason"].(string)
			}
		}
	}
	return calls, stop
}

// chatCalls reads the tool calls of a chat completion, streamed or not.
func chatCalls(t *testing.T, body []byte, stream bool) ([]call, string, string) {
	t.Helper()
	if !stream {
		var r struct {
			Choices []struct {
				Message struct {
					Content   *string `json:"content"`
					ToolCalls []struct {
						Function struct{ Name, Arguments string } `json:"function"`
					} `json:"tool_calls"`
				} `json:"message"`
				FinishReason string `json:"finish_reason"`
			} `json:"choices"`
		}
		if err := json.Unmarshal(body, &r); err != nil || len(r.Choices) == 0 {
			t.Fatalf("%s: %v", body, err)
		}
		c := r.Choices[0]
		var calls []call
		for _, tc := range c.Message.ToolCalls {
			calls = append(calls, call{tc.Function.Name, tc.Function.Arguments})
		}
		content := ""
		if c.Message.Content != nil {
			content = *c.Message.Content
		}
		return calls, content, c.FinishReason
	}
	var calls []call
	var content strings.Builder
	finish := ""
	for _, ev := range sseData(t, body) {
		chs, _ := ev["choices"].([]any)
		for _, ch := range chs {
			c := ch.(map[string]any)
			if f, ok := c["finish_reason"].(string); ok {
				finish = f
			}
			d, _ := c["delta"].(map[string]any)
			if s, ok := d["content"].(string); ok {
				content.WriteString(s)
			}
			tcs, _ := d["tool_calls"].([]any)
			for _, tc := range tcs {
				fn := tc.(map[string]any)["function"].(map[string]any)
				if name, _ := fn["name"].(string); name != "" {
					calls = append(calls, call{name: name})
				}
				if a, _ := fn["arguments"].(string); a != "" && len(calls) > 0 {
					calls[len(calls)-1].args += a
				}
			}
		}
	}
	return calls, content.String(), finish
}

const qwenTools = `[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string","maxLength":8}},"required":["city"],"additionalProperties":false}}},
{"type":"function","function":{"name":"get_time","parameters":{"type":"object","properties":{"zone":{"type":"integer","minimum":-12,"maximum":14}},"required":["zone"],"additionalProperties":false}}}]`

// checkArgs checks a call's arguments against the tools' schemas (the
// fields the schemas ask for, with their types and bounds).
func checkArgs(t *testing.T, what string, c call) {
	t.Helper()
	var args map[string]any
	if err := json.Unmarshal([]byte(c.args), &args); err != nil {
		t.Fatalf("%s: arguments %q: %v", what, c.args, err)
	}
	switch c.name {
	case "get_weather":
		city, ok := args["city"].(string)
		if !ok || len([]rune(city)) > 8 || len(args) != 1 {
			t.Fatalf("%s: get_weather arguments %s", what, c.args)
		}
	case "get_time":
		z, ok := args["zone"].(float64)
		if !ok || z < -12 || z > 14 || z != float64(int(z)) || len(args) != 1 {
			t.Fatalf("%s: get_time arguments %s", what, c.args)
		}
	default:
		t.Fatalf("%s: unknown tool %q", what, c.name)
	}
}

// TestToolChoiceThroughGateway: every tool-choice form of the OpenAI and
// Anthropic dialects, streaming and not, reaches a Qwen3-template model
// (random weights) through the gateway and is enforced: the forced call
// comes back as the dialect's tool call with valid arguments; "none" and
// a disabled parallel use are honoured; structured output formats give
// JSON of the schema.
func TestToolChoiceThroughGateway(t *testing.T) {
	if testing.Short() {
		t.Skip("loads a 151k vocabulary")
	}
	gw, _ := runAll(t, "synth-qwen3-hf")
	var chatTools []map[string]any
	_ = json.Unmarshal([]byte(qwenTools), &chatTools)
	var antTools []map[string]any
	for _, ct := range chatTools {
		fn := ct["function"].(map[string]any)
		antTools = append(antTools, map[string]any{"name": fn["name"], "input_schema": fn["parameters"]})
	}
	for _, stream := range []bool{false, true} {
		// OpenAI chat.
		for _, choice := range []any{"required", map[string]any{"type": "function", "function": map[string]any{"name": "get_time"}}} {
			for _, parallel := range []bool{false, true} {
				what := fmt.Sprintf("chat stream=%v choice=%v parallel=%v", stream, choice, parallel)
				st, body := post(t, gw+"/v1/chat/completions", map[string]any{"model": "synth-qwen3-hf", "max_tokens": 120, "temperature": 0.8, "seed": 3,
					"stream": stream, "messages": []any{map[string]any{"role": "user", "content": "Weather?"}}, "tools": chatTools,
					"tool_choice": choice, "parallel_tool_calls": parallel, "chat_template_kwargs": map[string]any{"enable_thinking": false}})
				if st != 200 {
					t.Fatalf("%s: %d %s", what, st, body)
				}
				calls, _, finish := chatCalls(t, body, stream)
				if len(calls) == 0 || (!parallel && (len(calls) != 1 || finish != "tool_calls")) {
					t.Fatalf("%s: finish %q calls %+v", what, finish, calls)
				}
				for _, c := range calls {
					if _, named := choice.(map[string]any); named && c.name != "get_time" {
						t.Fatalf("%s: called %s", what, c.name)
					}
					checkArgs(t, what, c)
				}
			}
		}
		// Anthropic Messages.
		for _, choice := range []map[string]any{
			{"type": "any", "disable_parallel_tool_use": true},
			{"type": "tool", "name": "get_weather", "disable_parallel_tool_use": true},
			{"type": "any"},
		} {
			what := fmt.Sprintf("messages stream=%v choice=%v", stream, choice)
			st, body := post(t, gw+"/v1/messages", map[string]any{"model": "synth-qwen3-hf", "max_tokens": 120, "temperature": 0.8,
				"stream": stream, "thinking": map[string]any{"type": "disabled"}, "tools": antTools, "tool_choice": choice,
				"messages": []any{map[string]any{"role": "user", "content": "Weather?"}}})
			if st != 200 {
				t.Fatalf("%s: %d %s", what, st, body)
			}
			calls, stop := anthropicCalls(t, body, stream)
			single := choice["disable_parallel_tool_use"] == true
			if len(calls) == 0 || (single && (len(calls) != 1 || stop != "tool_use")) {
				t.Fatalf("%s: stop %q calls %+v", what, stop, calls)
			}
			for _, c := range calls {
				if choice["type"] == "tool" && c.name != "get_weather" {
					t.Fatalf("%s: called %s", what, c.name)
				}
				checkArgs(t, what, c)
			}
		}
		// tool_choice none: no call, whatever the model writes.
		st, body := post(t, gw+"/v1/messages", map[string]any{"model": "synth-qwen3-hf", "max_tokens": 20, "stream": stream,
			"thinking": map[string]any{"type": "disabled"}, "tools": antTools, "tool_choice": map[string]any{"type": "none"},
			"messages": []any{map[string]any{"role": "user", "content": "Weather?"}}})
		if calls, _ := anthropicCalls(t, body, stream); st != 200 || len(calls) != 0 {
			t.Fatalf("messages tool_choice none stream=%v: %d %+v", stream, st, calls)
		}
		// Structured output in each dialect.
		schema := map[string]any{"type": "object", "properties": map[string]any{"ok": map[string]any{"type": "boolean"}}, "required": []string{"ok"}, "additionalProperties": false}
		st, body = post(t, gw+"/v1/messages", map[string]any{"model": "synth-qwen3-hf", "max_tokens": 60, "stream": stream,
			"thinking": map[string]any{"type": "disabled"}, "output_config": map[string]any{"format": map[string]any{"type": "json_schema", "schema": schema}},
			"messages": []any{map[string]any{"role": "user", "content": "ok?"}}})
		if st != 200 {
			t.Fatalf("messages output_config.format: %d %s", st, body)
		}
		text := anthropicText(t, body, stream)
		checkOK(t, "messages output_config.format", text)
		st, body = post(t, gw+"/v1/chat/completions", map[string]any{"model": "synth-qwen3-hf", "max_tokens": 60, "stream": stream,
			"chat_template_kwargs": map[string]any{"enable_thinking": false}, "messages": []any{map[string]any{"role": "user", "content": "ok?"}},
			"response_format": map[string]any{"type": "json_schema", "json_schema": map[string]any{"name": "ok", "schema": schema}}})
		if st != 200 {
			t.Fatalf("chat response_format: %d %s", st, body)
		}
		_, text, _ = chatCalls(t, body, stream)
		checkOK(t, "chat response_format", text)
		st, body = post(t, gw+"/v1/responses", map[string]any{"model": "synth-qwen3-hf", "max_output_tokens": 60, "stream": stream,
			"reasoning": map[string]any{"effort": "none"}, "input": "ok?",
			"text": map[string]any{"format": map[string]any{"type": "json_schema", "name": "ok", "schema": schema}}})
		if st != 200 {
			t.Fatalf("responses text.format: %d %s", st, body)
		}
		checkOK(t, "responses text.format", responsesText(t, body, stream))
	}
}

func checkOK(t *testing.T, what, text string) {
	t.Helper()
	var v map[string]any
	if err := json.Unmarshal([]byte(text), &v); err != nil || len(v) != 1 {
		t.Fatalf("%s: %q (%v)", what, text, err)
	}
	if _, ok := v["ok"].(bool); !ok {
		t.Fatalf("%s: %q", what, text)
	}
}

func anthropicText(t *testing.T, body []byte, stream bool) string {
	t.Helper()
	if !stream {
		var m struct {
			Content []struct{ Type, Text string } `json:"content"`
		}
		_ = json.Unmarshal(body, &m)
		var b strings.Builder
		for _, c := range m.Content {
			if c.Type == "text" {
				b.WriteString(c.Text)
			}
		}
		return b.String()
	}
	var b strings.Builder
	for _, ev := range sseData(t, body) {
		if d, _ := ev["delta"].(map[string]any); ev["type"] == "content_block_delta" && d["type"] == "text_delta" {
			b.WriteString(d["text"].(string))
		}
	}
	return b.String()
}

func responsesText(t *testing.T, body []byte, stream bool) string {
	t.Helper()
	if !stream {
		var r struct {
			Output []struct {
				Type    string                        `json:"type"`
				Content []struct{ Type, Text string } `json:"content"`
			} `json:"output"`
		}
		_ = json.Unmarshal(body, &r)
		var b strings.Builder
		for _, o := range r.Output {
			for _, c := range o.Content {
				if c.Type == "output_text" {
					b.WriteString(c.Text)
				}
			}
		}
		return b.String()
	}
	var b strings.Builder
	for _, ev := range sseData(t, body) {
		if ev["type"] == "response.output_text.delta" {
			b.WriteString(ev["delta"].(string))
		}
	}
	return b.String()
}

// TestResponsesToolChoiceThroughGateway: the Responses API's tool_choice
// (required, a named function, allowed_tools) reaches the model through
// the gateway and comes back as function_call items, streaming and not.
func TestResponsesToolChoiceThroughGateway(t *testing.T) {
	if testing.Short() {
		t.Skip("loads a 151k vocabulary")
	}
	gw, _ := runAll(t, "synth-qwen3-hf")
	var chatTools []map[string]any
	_ = json.Unmarshal([]byte(qwenTools), &chatTools)
	var tools []map[string]any
	for _, ct := range chatTools {
		fn := ct["function"].(map[string]any)
		tools = append(tools, map[string]any{"type": "function", "name": fn["name"], "parameters": fn["parameters"]})
	}
	for _, stream := range []bool{false, true} {
		for _, choice := range []any{"required", map[string]any{"type": "function", "name": "get_weather"},
			map[string]any{"type": "allowed_tools", "mode": "required", "tools": []any{map[string]any{"type": "function", "name": "get_time"}}}} {
			what := fmt.Sprintf("responses stream=%v choice=%v", stream, choice)
			st, body := post(t, gw+"/v1/responses", map[string]any{"model": "synth-qwen3-hf", "max_output_tokens": 120, "stream": stream,
				"reasoning": map[string]any{"effort": "none"}, "input": "Weather?", "tools": tools, "tool_choice": choice, "parallel_tool_calls": false})
			if st != 200 {
				t.Fatalf("%s: %d %s", what, st, body)
			}
			calls := responsesCalls(t, body, stream)
			if len(calls) != 1 {
				t.Fatalf("%s: calls %+v", what, calls)
			}
			c := calls[0]
			switch ch := choice.(type) {
			case map[string]any:
				want := "get_weather"
				if ch["type"] == "allowed_tools" {
					want = "get_time"
				}
				if c.name != want {
					t.Fatalf("%s: called %s", what, c.name)
				}
			}
			checkArgs(t, what, c)
		}
	}
}

// responsesCalls reads the function_call items of a Responses answer.
func responsesCalls(t *testing.T, body []byte, stream bool) []call {
	t.Helper()
	var items []map[string]any
	if !stream {
		var r struct {
			Output []map[string]any `json:"output"`
		}
		if err := json.Unmarshal(body, &r); err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		items = r.Output
	} else {
		for _, ev := range sseData(t, body) {
			if ev["type"] == "response.output_item.done" {
				items = append(items, ev["item"].(map[string]any))
			}
		}
	}
	var calls []call
	for _, it := range items {
		if it["type"] == "function_call" {
			calls = append(calls, call{it["name"].(string), it["arguments"].(string)})
		}
	}
	return calls
}
