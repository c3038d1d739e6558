package node

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/rs/zerolog"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"helexa/node/grammar"
	"helexa/node/toolcall"
)

// validator compiles a JSON Schema with a real JSON Schema validator
// library (not the grammar), for checking what constrained generation
// writes.
func validator(t testing.TB, schema string) *jsonschema.Schema {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(strings.NewReader(schema))
	if err != nil {
		t.Fatalf("schema %s: %v", schema, err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("schema.json", doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile("schema.json")
	if err != nil {
		t.Fatalf("schema %s: %v", schema, err)
	}
	return s
}

func validate(t testing.TB, s *jsonschema.Schema, text string) error {
	t.Helper()
	v, err := jsonschema.UnmarshalJSON(strings.NewReader(text))
	if err != nil {
		return fmt.Errorf("not JSON: %v", err)
	}
	return s.Validate(v)
}

// streamOutput posts a streaming request and returns the concatenated
// content (chat) or text (completions) and the finish reason.
func streamOutput(t *testing.T, url string, body map[string]any) (string, string) {
	t.Helper()
	body["stream"] = true
	data, _ := json.Marshal(body)
	path := "/v1/completions"
	if _, ok := body["messages"]; ok {
		path = "/v1/chat/completions"
	}
	resp, err := http.Post(url+path, "application/json", bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("stream: %d", resp.StatusCode)
	}
	var text, finish strings.Builder
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok || line == "[DONE]" {
			continue
		}
		var ch struct {
			Choices []struct {
				Text  string `json:"text"`
				Delta struct {
					Content string `json:"content"`
				} `json:"delta"`
				FinishReason *string `json:"finish_reason"`
			} `json:"choices"`
		}
		if err := json.Unmarshal([]byte(line), &ch); err != nil {
			t.Fatalf("chunk %s: %v", line, err)
		}
		for _, c := range ch.Choices {
			text.WriteString(c.Text + c.Delta.Content)
			if c.FinishReason != nil {
				finish.WriteString(*c.FinishReason)
			}
		}
	}
	return text.String(), finish.String()
}

// TestResponseFormatEnforced: json_object and json_schema on chat and
// completions, streaming and not, give output that validates and ends
// with "stop" when the grammar completes.
func TestResponseFormatEnforced(t *testing.T) {
	n := startNeuron(t, testConfig(modelsDir(t, "stories260K.gguf")), (&synthEngine{}).hooks())
	n.load(t, "stories260K", 512)
	schema := `{"type":"object","properties":{"name":{"type":"string","maxLength":12},"age":{"type":"integer","minimum":0,"maximum":120},"tags":{"type":"array","items":{"enum":["a","b"]},"maxItems":3}},"required":["name","age","tags"],"additionalProperties":false}`
	v := validator(t, schema)
	formats := map[string]any{
		"json_schema": map[string]any{"type": "json_schema", "json_schema": map[string]any{"name": "p", "strict": true, "schema": json.RawMessage(schema)}},
		"json_object": map[string]any{"type": "json_object"},
	}
	for name, rf := range formats {
		for _, route := range []string{"chat", "completions"} {
			for _, stream := range []bool{false, true} {
				for seed := range 3 {
					body := map[string]any{"model": "stories260K", "max_tokens": 400, "temperature": 1, "seed": seed, "response_format": rf}
					if route == "chat" {
						body["messages"] = []any{map[string]any{"role": "user", "content": "Describe someone."}}
					} else {
						body["prompt"] = "Once upon a time"
					}
					var text, finish string
					if stream {
						text, finish = streamOutput(t, n.srv.URL, body)
					} else {
						var out struct {
							Choices []struct {
								Text    string `json:"text"`
								Message struct {
									Content string `json:"content"`
								} `json:"message"`
								FinishReason string `json:"finish_reason"`
							} `json:"choices"`
						}
						if st := n.do(t, "POST", "/v1/"+map[string]string{"chat": "chat/completions", "completions": "completions"}[route], body, &out); st != 200 {
							t.Fatalf("%s %s: %d", name, route, st)
						}
						text, finish = out.Choices[0].Text+out.Choices[0].Message.Content, out.Choices[0].FinishReason
					}
					if finish != "stop" {
						t.Fatalf("%s %s stream=%v seed %d: finish %q, text %q", name, route, stream, seed, finish, text)
					}
					var obj map[string]any
					if err := json.Unmarshal([]byte(text), &obj); err != nil {
						t.Fatalf("%s %s stream=%v: %q is not a JSON object: %v", name, route, stream, text, err)
					}
					if name == "json_schema" {
						if err := validate(t, v, text); err != nil {
							t.Fatalf("%s %s stream=%v: %q: %v", name, route, stream, text, err)
						}
					}
				}
			}
		}
	}
}

// TestGrammarField: a raw GBNF grammar on both routes.
func TestGrammarField(t *testing.T) {
	n := startNeuron(t, testConfig(modelsDir(t, "stories260K.gguf")), (&synthEngine{}).hooks())
	n.load(t, "stories260K", 256)
	g := `root ::= ("yes" | "no") ", because " [a-z ]{3,10} "."`
	for seed := range 4 {
		var out completionResponse
		if st := n.do(t, "POST", "/v1/completions", map[string]any{"model": "stories260K", "prompt": "Q", "grammar": g, "temperature": 1, "seed": seed, "max_tokens": 100}, &out); st != 200 {
			t.Fatalf("%d", st)
		}
		txt := out.Choices[0].Text
		if !(strings.HasPrefix(txt, "yes, because ") || strings.HasPrefix(txt, "no, because ")) || !strings.HasSuffix(txt, ".") || *out.Choices[0].FinishReason != "stop" {
			t.Fatalf("%q (%s)", txt, *out.Choices[0].FinishReason)
		}
	}
}

// TestConstraintErrors: what cannot be enforced is a 400 naming it.
func TestConstraintErrors(t *testing.T) {
	n := startNeuron(t, testConfig(modelsDir(t, "stories260K.gguf")), (&synthEngine{}).hooks())
	n.load(t, "stories260K", 256)
	f := func(route string, extra map[string]any, wantParam, wantMsg string) {
		t.Helper()
		body := map[string]any{"model": "stories260K", "max_tokens": 4}
		if route == "chat" {
			body["messages"] = []any{map[string]any{"role": "user", "content": "x"}}
		} else {
			body["prompt"] = "x"
		}
		for k, v := range extra {
			body[k] = v
		}
		var e errEnvelope
		st := n.do(t, "POST", "/v1/"+map[string]string{"chat": "chat/completions", "completions": "completions"}[route], body, &e)
		if st != 400 || param(e) != wantParam || e.Error.Type != "invalid_request_error" || !strings.Contains(e.Error.Message, wantMsg) {
			t.Errorf("%v: %d %+v, want 400 %s containing %q", extra, st, e, wantParam, wantMsg)
		}
	}
	schema := map[string]any{"type": "object", "properties": map[string]any{"x": map[string]any{"type": "object", "patternProperties": map[string]any{}}}}
	for _, route := range []string{"chat", "completions"} {
		f(route, map[string]any{"response_format": map[string]any{"type": "json_schema", "json_schema": map[string]any{"name": "s", "schema": schema}}},
			"response_format", `response_format.json_schema.schema.properties.x.patternProperties: keyword "patternProperties" is not supported`)
		f(route, map[string]any{"grammar": `root ::= "a`}, "grammar", "unterminated")
		f(route, map[string]any{"grammar": `root ::= "a"`, "response_format": map[string]any{"type": "json_object"}}, "grammar", "only one")
		f(route, map[string]any{"response_format": map[string]any{"type": "json_schema", "json_schema": map[string]any{"name": "s", "schema": map[string]any{"type": "string", "pattern": `\bx`}}}},
			"response_format", "word boundaries")
	}
	tools := []any{map[string]any{"type": "function", "function": map[string]any{"name": "f", "parameters": map[string]any{"type": "object", "properties": map[string]any{"a": map[string]any{"if": true}}}}}}
	f("chat", map[string]any{"tools": tools, "tool_choice": "required"}, "tools", `tools[0].function.parameters.properties.a.if: keyword "if" is not supported`)
}

// toolChoiceCase runs one chat request with tools and returns the
// message's tool calls and content.
func toolChoiceCase(t *testing.T, url string, body map[string]any) ([]toolCallOut, string, string) {
	t.Helper()
	data, _ := json.Marshal(body)
	resp, err := http.Post(url+"/v1/chat/completions", "application/json", bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out chatResponse
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != 200 {
		t.Fatalf("%d %v", resp.StatusCode, err)
	}
	m := out.Choices[0].Message
	content := ""
	if m.Content != nil {
		content = *m.Content
	}
	return m.ToolCalls, content, *out.Choices[0].FinishReason
}

var weatherTools = `[
 {"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string","maxLength":10},"unit":{"enum":["c","f"]}},"required":["city","unit"],"additionalProperties":false}}},
 {"type":"function","function":{"name":"get_time","parameters":{"type":"object","properties":{"zone":{"type":"integer","minimum":-12,"maximum":14}},"required":["zone"],"additionalProperties":false}}}
]`

// TestToolChoiceForms: required and named tool choice force a call in
// each tool-call format (Hermes/Qwen, Qwen3-Coder templates, Llama 3 JSON,
// Mistral), which the
// format's parser reads back, with arguments valid against the tool's
// schema; parallel_tool_calls false allows one call.
func TestToolChoiceForms(t *testing.T) {
	n := startNeuron(t, testConfig(modelsDir(t, "stories260K.gguf")), (&synthEngine{}).hooks())
	n.load(t, "stories260K", 1024)
	var tools []map[string]any
	_ = json.Unmarshal([]byte(weatherTools), &tools)
	schemas := map[string]string{}
	for _, tl := range tools {
		fn := tl["function"].(map[string]any)
		b, _ := json.Marshal(fn["parameters"])
		schemas[fn["name"].(string)] = string(b)
	}
	for _, format := range []toolcall.Format{toolcall.Hermes, toolcall.Qwen3Coder | toolcall.Hermes, toolcall.Llama3JSON, toolcall.Mistral} {
		n.s.mu.Lock()
		n.s.models["stories260K"].inst.tools.Tools = format
		n.s.mu.Unlock()
		for _, choice := range []any{"required", map[string]any{"type": "function", "function": map[string]any{"name": "get_time"}}} {
			for _, parallel := range []bool{false, true} {
				for seed := range 3 {
					body := map[string]any{"model": "stories260K", "max_tokens": 300, "temperature": 1, "seed": seed,
						"messages": []any{map[string]any{"role": "user", "content": "Weather?"}}, "tools": tools,
						"tool_choice": choice, "parallel_tool_calls": parallel}
					calls, content, finish := toolChoiceCase(t, n.srv.URL, body)
					what := fmt.Sprintf("format %d choice %v parallel %v seed %d", format, choice, parallel, seed)
					// A random model may go on calling in parallel
					// until max_tokens, ending in a partial block.
					cut := parallel && finish == "length"
					if (finish != "tool_calls" && !cut) || len(calls) == 0 || (strings.TrimSpace(content) != "" && !cut) {
						t.Fatalf("%s: finish %q, calls %+v, content %q", what, finish, calls, content)
					}
					if !parallel && len(calls) != 1 {
						t.Fatalf("%s: %d calls", what, len(calls))
					}
					for _, c := range calls {
						if _, named := choice.(map[string]any); named && c.Function.Name != "get_time" {
							t.Fatalf("%s: called %q", what, c.Function.Name)
						}
						s, ok := schemas[c.Function.Name]
						if !ok {
							t.Fatalf("%s: unknown function %q", what, c.Function.Name)
						}
						if err := validate(t, validator(t, s), c.Function.Arguments); err != nil {
							t.Fatalf("%s: arguments %s: %v", what, c.Function.Arguments, err)
						}
					}
				}
			}
		}
		// auto with parallel_tool_calls false: at most one call.
		for seed := range 3 {
			body := map[string]any{"model": "stories260K", "max_tokens": 200, "temperature": 1, "seed": seed,
				"messages": []any{map[string]any{"role": "user", "content": "Weather?"}}, "tools": tools, "parallel_tool_calls": false}
			if calls, _, _ := toolChoiceCase(t, n.srv.URL, body); len(calls) > 1 {
				t.Fatalf("format %d auto, parallel false: %d calls", format, len(calls))
			}
		}
		// auto with a response_format: the format, or calls.
		for seed := range 3 {
			body := map[string]any{"model": "stories260K", "max_tokens": 300, "temperature": 1, "seed": seed,
				"messages": []any{map[string]any{"role": "user", "content": "Weather?"}}, "tools": tools, "parallel_tool_calls": false,
				"response_format": map[string]any{"type": "json_schema", "json_schema": map[string]any{"name": "a", "schema": map[string]any{"enum": []any{"sunny", "rain"}}}}}
			calls, content, finish := toolChoiceCase(t, n.srv.URL, body)
			if !(len(calls) == 1 && finish == "tool_calls") && content != `"sunny"` && content != `"rain"` {
				t.Fatalf("format %d auto with response_format: finish %q, calls %+v, content %q", format, finish, calls, content)
			}
		}
	}
}

// TestConstraintAfterReasoning: a reasoning block stays free and the
// grammar applies to the text after </think>, whether the template
// opened the block or the model does; a prompt that closed the block
// (thinking off) constrains from the start.
func TestConstraintAfterReasoning(t *testing.T) {
	for _, mode := range []thinkMode{thinkOpened, thinkOptional} {
		c, err := buildConstraint(constraintInput{responseFormat: json.RawMessage(`{"type":"json_object"}`), think: mode})
		if err != nil {
			t.Fatal(err)
		}
		yes := []string{`some thoughts, {"not": json</think>` + "\n\n" + `{"a": 1}`}
		if mode == thinkOptional {
			yes = []string{`{"a": 1}`, "<think>hmm</think>\n" + `{"a": 1}`}
		}
		for _, s := range yes {
			if ok, _ := c.g.Matches([]byte(s)); !ok {
				t.Errorf("mode %d: should match %q", mode, s)
			}
		}
		for _, s := range []string{`x</think>y{}`, `</think>{"a":1}</think>`, `<think>x</think>hello`} {
			if ok, _ := c.g.Matches([]byte(s)); ok {
				t.Errorf("mode %d: should not match %q", mode, s)
			}
		}
	}
	cfg := toolcall.Config{Reasoning: true}
	if m := thinkModeOf(cfg, "<|im_start|>assistant\n<think>\n\n</think>\n\n"); m != thinkNone {
		t.Errorf("thinking off: mode %d", m)
	}
	if m := thinkModeOf(cfg, "<|im_start|>assistant\n"); m != thinkOptional {
		t.Errorf("thinking on: mode %d", m)
	}
}

// TestRealModelToolChoice: a Qwen3 model (random weights, its real
// template and 151k vocabulary) under tool_choice writes Qwen's
// <tool_call> blocks, which parse into calls valid against the tools'
// schemas, with thinking on (the block is the model's to open) and off;
// a Llama 3 model on the real engine too.
func TestRealModelToolChoice(t *testing.T) {
	if testing.Short() {
		t.Skip("loads a 151k vocabulary")
	}
	cfg := testConfig(modelsDir(t, "synth-qwen3-hf", "synth-hf-llama3"))
	s, err := newServer(cfg, zerolog.New(io.Discard), realEngine())
	if err != nil {
		t.Fatal(err)
	}
	n := &testNeuron{s: s, srv: newHTTPTest(t, s), dir: cfg.ModelsDirs[0]}
	n.load(t, "synth-qwen3-hf", 1024)
	var tools []map[string]any
	_ = json.Unmarshal([]byte(weatherTools), &tools)
	for _, thinking := range []bool{false, true} {
		for _, choice := range []any{"required", map[string]any{"type": "function", "function": map[string]any{"name": "get_weather"}}} {
			for seed := range 2 {
				body := map[string]any{"model": "synth-qwen3-hf", "max_tokens": 200, "temperature": 0.7, "seed": seed,
					"messages": []any{map[string]any{"role": "user", "content": "Weather?"}}, "tools": tools,
					"tool_choice": choice, "parallel_tool_calls": false, "chat_template_kwargs": map[string]any{"enable_thinking": thinking}}
				if thinking {
					// A random model may think past any budget: the
					// reasoning is capped by max_tokens, so only a
					// finished answer is checked.
					body["max_tokens"] = 400
				}
				calls, _, finish := toolChoiceCase(t, n.srv.URL, body)
				what := fmt.Sprintf("thinking %v choice %v seed %d", thinking, choice, seed)
				if thinking && finish == "length" {
					continue
				}
				if finish != "tool_calls" || len(calls) != 1 {
					t.Fatalf("%s: finish %q, calls %+v", what, finish, calls)
				}
				fn := calls[0].Function
				if fn.Name != "get_weather" && choice != "required" {
					t.Fatalf("%s: called %q", what, fn.Name)
				}
				for _, tl := range tools {
					if f := tl["function"].(map[string]any); f["name"] == fn.Name {
						ps, _ := json.Marshal(f["parameters"])
						if err := validate(t, validator(t, string(ps)), fn.Arguments); err != nil {
							t.Fatalf("%s: arguments %s: %v", what, fn.Arguments, err)
						}
					}
				}
			}
		}
	}
	// A Llama 3 model whose template shows no tool-call format: a forced
	// call is written (and parsed) in the Hermes format.
	n.load(t, "synth-hf-llama3", 512)
	for seed := range 2 {
		body := map[string]any{"model": "synth-hf-llama3", "max_tokens": 120, "temperature": 0.7, "seed": seed,
			"messages": []any{map[string]any{"role": "user", "content": "Weather?"}}, "tools": tools,
			"tool_choice": map[string]any{"type": "function", "function": map[string]any{"name": "get_time"}}, "parallel_tool_calls": false}
		calls, _, finish := toolChoiceCase(t, n.srv.URL, body)
		if finish != "tool_calls" || len(calls) != 1 || calls[0].Function.Name != "get_time" {
			t.Fatalf("llama3 seed %d: finish %q calls %+v", seed, finish, calls)
		}
		var args struct{ Zone *int }
		if err := json.Unmarshal([]byte(calls[0].Function.Arguments), &args); err != nil || args.Zone == nil || *args.Zone < -12 || *args.Zone > 14 {
			t.Fatalf("llama3 seed %d: arguments %s", seed, calls[0].Function.Arguments)
		}
	}
	// response_format on the same model.
	schema := `{"type":"object","properties":{"ok":{"type":"boolean"},"n":{"type":"integer","minimum":1,"maximum":9}},"required":["ok","n"],"additionalProperties":false}`
	body := map[string]any{"model": "synth-qwen3-hf", "max_tokens": 100, "temperature": 0.7, "chat_template_kwargs": map[string]any{"enable_thinking": false},
		"messages":        []any{map[string]any{"role": "user", "content": "x"}},
		"response_format": map[string]any{"type": "json_schema", "json_schema": map[string]any{"name": "s", "schema": json.RawMessage(schema)}}}
	var out chatResponse
	if st := n.do(t, "POST", "/v1/chat/completions", body, &out); st != 200 || *out.Choices[0].FinishReason != "stop" {
		t.Fatalf("%d %+v", st, out)
	}
	if err := validate(t, validator(t, schema), *out.Choices[0].Message.Content); err != nil {
		t.Fatalf("%q: %v", *out.Choices[0].Message.Content, err)
	}
}

// TestGrammarCache: generations under the same grammar share one compiled
// grammar; the cache keeps the most recent ones, and one grown past its
// bound starts afresh.
func TestGrammarCache(t *testing.T) {
	v := grammar.NewVocab(4, func(id int32) []byte { return []byte{"ab"[id%2]} }, nil)
	mk := func(src string) *constraint {
		g, err := grammar.ParseGBNF(src, "root")
		if err != nil {
			t.Fatal(err)
		}
		return &constraint{g: g, key: src}
	}
	var gc grammarCache
	a := mk(`root ::= "a"+`)
	ca, _ := gc.get(a, v)
	if again, _ := gc.get(a, v); again != ca {
		t.Fatal("the same grammar compiled twice")
	}
	for i := range grammarCacheSize {
		gc.get(mk(fmt.Sprintf(`root ::= "b"{%d}`, i+1)), v)
	}
	if again, _ := gc.get(a, v); again == ca || len(gc.list) != grammarCacheSize {
		t.Fatalf("the oldest grammar stayed (%d entries)", len(gc.list))
	}
	// A grammar whose states keep growing is replaced.
	deep := mk(`root ::= "a"{0,10000} "b"{0,10000}`)
	cd, _ := gc.get(deep, v)
	m := cd.Matcher()
	for i := range grammarRefresh {
		if err := m.AcceptBytes([]byte{"ab"[i/10000]}); err != nil {
			t.Fatal(err)
		}
	}
	if again, _ := gc.get(deep, v); again == cd || len(gc.list) != grammarCacheSize {
		t.Fatalf("a grammar of %d states was kept", cd.Size())
	}
}

// TestLogprobsUnderGrammar: logprobs are those of the masked
// distribution: the listed alternatives are tokens the grammar allows
// (never a masked one, which has no probability), on both routes.
func TestLogprobsUnderGrammar(t *testing.T) {
	n := startNeuron(t, testConfig(modelsDir(t, "stories260K.gguf")), (&synthEngine{}).hooks())
	n.load(t, "stories260K", 256)
	g := `root ::= ("yes" | "no") "."`
	var chat struct {
		Choices []struct {
			Message  struct{ Content string } `json:"message"`
			Logprobs struct {
				Content []logprobEntry `json:"content"`
			} `json:"logprobs"`
		} `json:"choices"`
	}
	if st := n.do(t, "POST", "/v1/chat/completions", map[string]any{"model": "stories260K", "grammar": g, "logprobs": true, "top_logprobs": 20,
		"messages": []any{map[string]any{"role": "user", "content": "?"}}}, &chat); st != 200 {
		t.Fatalf("chat: %d", st)
	}
	c := chat.Choices[0]
	if c.Message.Content != "yes." && c.Message.Content != "no." {
		t.Fatalf("content %q", c.Message.Content)
	}
	first := c.Logprobs.Content[0]
	if len(first.TopLogprobs) == 0 || len(first.TopLogprobs) == 20 {
		t.Fatalf("first token's alternatives: %d (the grammar allows a few)", len(first.TopLogprobs))
	}
	for _, alt := range first.TopLogprobs {
		text := alt.Token
		var b byte
		if _, err := fmt.Sscanf(text, "<0x%02X>", &b); err == nil {
			text = string([]byte{b}) // a byte token
		}
		if text == "" || (!strings.HasPrefix("yes.", text) && !strings.HasPrefix("no.", text)) {
			t.Errorf("masked token %q listed", alt.Token)
		}
	}
	var cmpl completionResponse
	if st := n.do(t, "POST", "/v1/completions", map[string]any{"model": "stories260K", "prompt": "x", "grammar": g, "logprobs": 20}, &cmpl); st != 200 {
		t.Fatalf("completions: %d", st)
	}
	if lp := cmpl.Choices[0].Logprobs; lp == nil || len(lp.TopLogprobs[0]) == 0 || len(lp.TopLogprobs[0]) == 20 {
		t.Fatalf("completions logprobs: %+v", lp)
	}
}

// TestLlama3SingleCallGrammar: with tool_choice auto and
// parallel_tool_calls false, a Llama 3 model may write text or one call
// (a bare object at the start, or after <|python_tag|>), never two.
func TestLlama3SingleCallGrammar(t *testing.T) {
	tools, err := parseTools(json.RawMessage(weatherTools))
	if err != nil {
		t.Fatal(err)
	}
	c, err := buildConstraint(constraintInput{tools: tools, choice: toolChoice{mode: "auto"}, format: toolcall.Llama3JSON})
	if err != nil {
		t.Fatal(err)
	}
	call := `{"name": "get_time", "parameters": {"zone": 3}}`
	for _, s := range []string{"", "Hello there", "It is {maybe} sunny", " \n" + call, call, "<|python_tag|>" + call, "<b>bold</b>"} {
		if ok, _ := c.g.Matches([]byte(s)); !ok {
			t.Errorf("should allow %q", s)
		}
	}
	for _, s := range []string{call + call, call + " and more", "hi <|python_tag|>" + call, "<|python_tag|>" + call + ";" + call, `{"name": "nope", "parameters": {}}`} {
		if ok, _ := c.g.Matches([]byte(s)); ok {
			t.Errorf("should refuse %q", s)
		}
	}
}

// TestMistralCallForms: both Mistral call spellings are written as the
// template shows them and read back by the parser.
func TestMistralCallForms(t *testing.T) {
	tools, err := parseTools(json.RawMessage(weatherTools))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args     bool
		parallel bool
		yes, no  []string
	}{
		{false, true, []string{`[TOOL_CALLS][{"name": "get_time", "arguments": {"zone": 1}}]`, `[TOOL_CALLS] [{"name":"get_time","arguments":{"zone":1}}, {"name":"get_time","arguments":{"zone":2}}]`},
			[]string{`[TOOL_CALLS]get_time[ARGS]{"zone":1}`}},
		{true, true, []string{`[TOOL_CALLS]get_time[ARGS]{"zone": 1}`, `[TOOL_CALLS]get_time[ARGS]{"zone":1}[TOOL_CALLS]get_weather[ARGS]{"city":"Rome","unit":"c"}`},
			[]string{`[TOOL_CALLS][{"name": "get_time", "arguments": {"zone": 1}}]`}},
		{true, false, []string{`[TOOL_CALLS]get_time[ARGS]{"zone": 1}`},
			[]string{`[TOOL_CALLS]get_time[ARGS]{"zone":1}[TOOL_CALLS]get_time[ARGS]{"zone":1}`}},
	} {
		cons, err := buildConstraint(constraintInput{tools: tools, choice: toolChoice{mode: "required"}, parallel: c.parallel,
			format: toolcall.Mistral, mistralArgs: c.args})
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range c.yes {
			if ok, _ := cons.g.Matches([]byte(s)); !ok {
				t.Errorf("args=%v: should allow %q", c.args, s)
			}
			p := toolcall.NewParser(toolcall.Config{Tools: toolcall.Mistral})
			p.Add(s)
			p.Finish()
			if r := p.Result(); len(r.Calls) == 0 || r.Content != "" {
				t.Errorf("args=%v: %q parses as %+v", c.args, s, r)
			}
		}
		for _, s := range c.no {
			if ok, _ := cons.g.Matches([]byte(s)); ok {
				t.Errorf("args=%v: should refuse %q", c.args, s)
			}
		}
	}
}
