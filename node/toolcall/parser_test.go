package toolcall

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func seqIDs() func() string {
	n := 0
	return func() string { n++; return fmt.Sprintf("call_%d", n) }
}

// run feeds text in pieces of size chunk (0: whole) and returns the Result
// and the Result rebuilt from the streamed deltas.
func run(cfg Config, text string, chunk int) (Result, Result) {
	cfg.NewID = seqIDs()
	p := NewParser(cfg)
	var streamed Result
	collect := func(ds []Delta) {
		for _, d := range ds {
			streamed.Content += d.Content
			streamed.Reasoning += d.Reasoning
			if c := d.Call; c != nil {
				if c.Index == len(streamed.Calls) {
					streamed.Calls = append(streamed.Calls, Call{ID: c.ID, Name: c.Name})
				}
				streamed.Calls[c.Index].Arguments += c.Arguments
			}
		}
	}
	if chunk <= 0 {
		chunk = len(text) + 1
	}
	for i := 0; i < len(text); i += chunk {
		collect(p.Add(text[i:min(i+chunk, len(text))]))
	}
	collect(p.Finish())
	if len(streamed.Calls) > 0 {
		streamed.Content = strings.TrimRight(streamed.Content, " \t\r\n")
	}
	return p.Result(), streamed
}

func TestParser(t *testing.T) {
	all := Config{Tools: Hermes | Qwen3Coder | Llama3JSON | Mistral, Reasoning: true}
	call := func(id int, name, args string) Call {
		return Call{ID: fmt.Sprintf("call_%d", id), Name: name, Arguments: args}
	}
	f := func(cfg Config, text string, want Result) {
		t.Helper()
		for _, chunk := range []int{0, 1, 2, 3, 7} {
			got, streamed := run(cfg, text, chunk)
			if d := cmp.Diff(want, got); d != "" {
				t.Fatalf("chunk %d, text %q: result (-want +got):\n%s", chunk, text, d)
			}
			if d := cmp.Diff(want, streamed); d != "" {
				t.Fatalf("chunk %d, text %q: streamed (-want +got):\n%s", chunk, text, d)
			}
		}
	}
	hermes := Config{Tools: Hermes}
	f(hermes, "Hello there.", Result{Content: "Hello there."})
	f(hermes, "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>",
		Result{Calls: []Call{call(1, "get_weather", `{"city":"Paris"}`)}})
	f(hermes, "Let me check.\n<tool_call>{\"name\":\"a\",\"arguments\":{}}</tool_call>\n<tool_call>{\"name\":\"b\",\"arguments\":\"{\\\"x\\\":1}\"}</tool_call>",
		Result{Content: "Let me check.", Calls: []Call{call(1, "a", "{}"), call(2, "b", `{"x":1}`)}})
	// looks like a call but is not JSON: stays text
	f(hermes, "<tool_call>not json</tool_call> ok", Result{Content: "<tool_call>not json</tool_call> ok"})
	// unterminated but complete JSON at the end parses; broken JSON is text
	f(hermes, "<tool_call>{\"name\":\"a\",\"arguments\":{\"k\":[1,2]}}", Result{Calls: []Call{call(1, "a", `{"k":[1,2]}`)}})
	f(hermes, "<tool_call>{\"name\":\"a\",", Result{Content: "<tool_call>{\"name\":\"a\","})
	// a marker prefix at the end is flushed as text
	f(hermes, "a <tool_", Result{Content: "a <tool_"})
	f(hermes, "x < y", Result{Content: "x < y"})
	// no tool formats: markers are plain text
	f(Config{}, "<tool_call>{\"name\":\"a\"}</tool_call>", Result{Content: "<tool_call>{\"name\":\"a\"}</tool_call>"})

	// reasoning
	think := Config{Reasoning: true, Tools: Hermes}
	f(think, "<think>\nhmm, 2+2</think>\n\nIt is 4.", Result{Reasoning: "\nhmm, 2+2", Content: "It is 4."})
	f(Config{Reasoning: true, StartInReasoning: true}, "thinking…</think>Answer", Result{Reasoning: "thinking…", Content: "Answer"})
	f(Config{Reasoning: true, StartInReasoning: true}, "never closed", Result{Reasoning: "never closed"})
	f(think, "<think>plan</think><tool_call>{\"name\":\"f\",\"arguments\":{\"a\":\"b\"}}</tool_call>",
		Result{Reasoning: "plan", Calls: []Call{call(1, "f", `{"a":"b"}`)}})
	// <think> only counts at the start
	f(think, "a <think> b", Result{Content: "a <think> b"})

	// Qwen3-Coder XML
	qc := Config{Tools: Hermes | Qwen3Coder}
	f(qc, "<tool_call>\n<function=get_weather>\n<parameter=city>\nParis\n</parameter>\n<parameter=days>\n3\n</parameter>\n</function>\n</tool_call>",
		Result{Calls: []Call{call(1, "get_weather", `{"city":"Paris","days":3}`)}})
	f(qc, "<function=run>\n<parameter=cmd>\nls -la\necho \"hi\"\n</parameter>\n</function>",
		Result{Calls: []Call{call(1, "run", `{"cmd":"ls -la\necho \"hi\""}`)}})
	f(qc, "<function=>\n</function> text", Result{Content: "<function=>\n</function> text"})
	// the schema says zip is a string: "12345" stays one
	typed := qc
	typed.ParamTypes = ToolParamTypes(json.RawMessage(`[{"type":"function","function":{"name":"geo","parameters":{"type":"object","properties":{"zip":{"type":"string"},"n":{"type":"integer"}}}}}]`))
	f(typed, "<function=geo>\n<parameter=zip>\n12345\n</parameter>\n<parameter=n>\n5\n</parameter>\n</function>",
		Result{Calls: []Call{call(1, "geo", `{"zip":"12345","n":5}`)}})

	// Llama 3 JSON
	ll := Config{Tools: Llama3JSON}
	f(ll, `{"name": "get_weather", "parameters": {"city": "Paris"}}`, Result{Calls: []Call{call(1, "get_weather", `{"city":"Paris"}`)}})
	f(ll, `<|python_tag|>{"name": "a", "parameters": {}}; {"name": "b", "parameters": {"x": "}"}}`,
		Result{Calls: []Call{call(1, "a", "{}"), call(2, "b", `{"x":"}"}`)}})
	f(ll, `{"answer": 42} is the JSON you asked for`, Result{Content: `{"answer": 42} is the JSON you asked for`})
	f(ll, `Here: {"name": "a", "parameters": {}}`, Result{Content: `Here: {"name": "a", "parameters": {}}`})

	// Mistral
	mi := Config{Tools: Mistral}
	f(mi, `[TOOL_CALLS][{"name": "a", "arguments": {"q": 1}}, {"name": "b", "arguments": {}}]`,
		Result{Calls: []Call{call(1, "a", `{"q":1}`), call(2, "b", "{}")}})
	f(mi, `[TOOL_CALLS]search[ARGS]{"q": "go"}[TOOL_CALLS]open[ARGS]{"id": 3}`,
		Result{Calls: []Call{call(1, "search", `{"q":"go"}`), call(2, "open", `{"id":3}`)}})
	f(mi, `[TOOL_CALLS] oops`, Result{Content: `[TOOL_CALLS] oops`})

	// every format at once
	f(all, "  \n<think>a</think>b", Result{Reasoning: "a", Content: "b"})
}

func TestDetect(t *testing.T) {
	f := func(tmpl string, vocab []string, want Config) {
		t.Helper()
		has := func(s string) bool {
			for _, v := range vocab {
				if v == s {
					return true
				}
			}
			return false
		}
		got := Detect(tmpl, has)
		if got.Tools != want.Tools || got.Reasoning != want.Reasoning {
			t.Fatalf("Detect(%q) = %+v, want %+v", tmpl, got, want)
		}
	}
	f("{{ '<tool_call>' }}{% if x %}<think>{% endif %}", nil, Config{Tools: Hermes, Reasoning: true})
	f("<tool_call>\n<function=NAME>\n<parameter=x>", nil, Config{Tools: Hermes | Qwen3Coder})
	f("<|start_header_id|>ipython<|end_header_id|>", nil, Config{Tools: Llama3JSON})
	f("plain", []string{"[TOOL_CALLS]", "<think>"}, Config{Tools: Mistral, Reasoning: true})
	f("plain", nil, Config{})
	if !OpenedThink("<|im_start|>assistant\n<think>\n") || OpenedThink("<think>x</think>") {
		t.Fatal("OpenedThink")
	}
}

// FuzzParser checks that chunking never changes the result, that the
// streamed deltas add up to the result, and that every call's arguments
// are a JSON object.
func FuzzParser(f *testing.F) {
	for _, s := range []string{
		"<tool_call>{\"name\":\"a\",\"arguments\":{}}</tool_call>",
		"<think>x</think>y",
		"{\"name\":\"a\",\"parameters\":{\"b\":\"}\"}}",
		"[TOOL_CALLS]a[ARGS]{}",
		"<function=f><parameter=p>1</parameter></function>",
		"<|python_tag|>{\"name\":\"a\"}",
		"text <tool_ <think> [TOOL",
	} {
		f.Add(s, uint8(3))
	}
	cfg := Config{Tools: Hermes | Qwen3Coder | Llama3JSON | Mistral, Reasoning: true}
	f.Fuzz(func(t *testing.T, text string, chunk uint8) {
		whole, s1 := run(cfg, text, 0)
		chunked, s2 := run(cfg, text, int(chunk%16)+1)
		if d := cmp.Diff(whole, chunked); d != "" {
			t.Fatalf("chunking changed the result for %q:\n%s", text, d)
		}
		if d := cmp.Diff(whole, s1); d != "" {
			t.Fatalf("stream differs from result for %q:\n%s", text, d)
		}
		if d := cmp.Diff(whole, s2); d != "" {
			t.Fatalf("chunked stream differs from result for %q:\n%s", text, d)
		}
		for _, c := range whole.Calls {
			if !strings.HasPrefix(c.Arguments, "{") || c.Name == "" {
				t.Fatalf("bad call %+v from %q", c, text)
			}
		}
		// Without any format the text comes back unchanged.
		plain, _ := run(Config{}, text, int(chunk%5)+1)
		if plain.Content != strings.TrimLeft(text, " \t\r\n") {
			t.Fatalf("plain parser changed %q into %q", text, plain.Content)
		}
	})
}
