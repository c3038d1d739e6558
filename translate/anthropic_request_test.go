package translate

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestAnthropicToChat(t *testing.T) {
	f := func(name, in, want string, wantInfo RequestInfo) {
		t.Helper()
		t.Run(name, func(t *testing.T) {
			got, info, err := AnthropicToChat([]byte(in))
			if err != nil {
				t.Fatalf("AnthropicToChat: %v", err)
			}
			jsonEq(t, got, want)
			if info != wantInfo {
				t.Fatalf("info = %+v, want %+v", info, wantInfo)
			}
		})
	}
	info := RequestInfo{Model: "m", MaxTokens: 100, WantsUsage: true}

	f("string content and sampling", `{"model":"m","max_tokens":100,"temperature":0.5,"top_p":0.9,"top_k":40,
		"stop_sequences":["END"],"messages":[{"role":"user","content":"hi"}]}`,
		`{"model":"m","max_tokens":100,"temperature":0.5,"top_p":0.9,"top_k":40,"stop":["END"],
		"messages":[{"role":"user","content":"hi"}]}`, info)

	f("system string", `{"model":"m","max_tokens":100,"system":"be brief","messages":[{"role":"user","content":"hi"}]}`,
		`{"model":"m","max_tokens":100,"messages":[{"role":"system","content":"be brief"},{"role":"user","content":"hi"}]}`, info)

	f("system blocks joined, cache_control ignored", `{"model":"m","max_tokens":100,
		"system":[{"type":"text","text":"a","cache_control":{"type":"ephemeral"}},{"type":"text","text":"b"}],
		"messages":[{"role":"user","content":[{"type":"text","text":"x","cache_control":{"type":"ephemeral"}},{"type":"text","text":"y"}]}]}`,
		`{"model":"m","max_tokens":100,"messages":[{"role":"system","content":"a\n\nb"},{"role":"user","content":"x\n\ny"}]}`, info)

	f("system message between turns joins the system prompt", `{"model":"m","max_tokens":100,"system":"s",
		"messages":[{"role":"user","content":"hi"},{"role":"system","content":[{"type":"text","text":"env"}]}]}`,
		`{"model":"m","max_tokens":100,"messages":[{"role":"system","content":"s\n\nenv"},{"role":"user","content":"hi"}]}`, info)

	f("images base64 and url", `{"model":"m","max_tokens":100,"messages":[{"role":"user","content":[
		{"type":"text","text":"what is this"},
		{"type":"image","source":{"type":"base64","media_type":"image/jpeg","data":"AAAA"}},
		{"type":"image","source":{"type":"url","url":"https://x/y.png"}}]}]}`,
		`{"model":"m","max_tokens":100,"messages":[{"role":"user","content":[
		{"type":"text","text":"what is this"},
		{"type":"image_url","image_url":{"url":"data:image/jpeg;base64,AAAA"}},
		{"type":"image_url","image_url":{"url":"https://x/y.png"}}]}]}`, info)

	f("tool use round trip", `{"model":"m","max_tokens":100,"messages":[
		{"role":"user","content":"weather?"},
		{"role":"assistant","content":[
			{"type":"thinking","thinking":"need the tool","signature":"sig"},
			{"type":"text","text":"Let me check."},
			{"type":"tool_use","id":"toolu_1","name":"get_weather","input":{"city": "Paris"}},
			{"type":"tool_use","id":"call_2","name":"get_time","input":{}}]},
		{"role":"user","content":[
			{"type":"tool_result","tool_use_id":"toolu_1","content":"sunny"},
			{"type":"tool_result","tool_use_id":"call_2","is_error":true,"content":[{"type":"text","text":"no clock"}]},
			{"type":"text","text":"and?"}]}]}`,
		`{"model":"m","max_tokens":100,"messages":[
		{"role":"user","content":"weather?"},
		{"role":"assistant","content":"Let me check.","reasoning_content":"need the tool","tool_calls":[
			{"id":"toolu_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}},
			{"id":"call_2","type":"function","function":{"name":"get_time","arguments":"{}"}}]},
		{"role":"tool","tool_call_id":"toolu_1","content":"sunny"},
		{"role":"tool","tool_call_id":"call_2","content":"Error: no clock"},
		{"role":"user","content":"and?"}]}`, info)

	f("assistant with only tool use has null content", `{"model":"m","max_tokens":100,"messages":[
		{"role":"user","content":"go"},
		{"role":"assistant","content":[{"type":"tool_use","id":"toolu_1","name":"run","input":{"x":1}}]},
		{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1"}]}]}`,
		`{"model":"m","max_tokens":100,"messages":[
		{"role":"user","content":"go"},
		{"role":"assistant","content":null,"tool_calls":[{"id":"toolu_1","type":"function","function":{"name":"run","arguments":"{\"x\":1}"}}]},
		{"role":"tool","tool_call_id":"toolu_1","content":""}]}`, info)

	f("image in tool result follows as user content", `{"model":"m","max_tokens":100,"messages":[
		{"role":"user","content":[{"type":"tool_result","tool_use_id":"t","content":[
			{"type":"text","text":"screenshot"},
			{"type":"image","source":{"type":"base64","media_type":"image/png","data":"QQ=="}}]}]}]}`,
		`{"model":"m","max_tokens":100,"messages":[
		{"role":"tool","tool_call_id":"t","content":"screenshot"},
		{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png;base64,QQ=="}}]}]}`, info)

	toolsInfo := info
	toolsInfo.HasTools = true
	toolDecl := `"tools":[{"name":"get_weather","description":"d","input_schema":{"type":"object","properties":{"city":{"type":"string"}}}},
		{"name":"noargs"},{"type":"web_search_20250305","name":"web_search","max_uses":3}]`
	toolWant := `"tools":[{"type":"function","function":{"name":"get_weather","description":"d","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}},
		{"type":"function","function":{"name":"noargs","parameters":{"type":"object","properties":{}}}}]`
	for _, tc := range []struct{ name, choice, want string }{
		{"auto", `{"type":"auto"}`, `"tool_choice":"auto"`},
		{"any", `{"type":"any"}`, `"tool_choice":"required"`},
		{"none", `{"type":"none"}`, `"tool_choice":"none"`},
		{"tool", `{"type":"tool","name":"get_weather"}`, `"tool_choice":{"type":"function","function":{"name":"get_weather"}}`},
		{"no parallel", `{"type":"auto","disable_parallel_tool_use":true}`, `"tool_choice":"auto","parallel_tool_calls":false`},
	} {
		f("tool_choice "+tc.name, `{"model":"m","max_tokens":100,"messages":[{"role":"user","content":"hi"}],`+toolDecl+`,"tool_choice":`+tc.choice+`}`,
			`{"model":"m","max_tokens":100,"messages":[{"role":"user","content":"hi"}],`+toolWant+`,`+tc.want+`}`, toolsInfo)
	}

	streamInfo := info
	streamInfo.Stream = true
	f("stream asks for usage; unknown fields ignored", `{"model":"m","max_tokens":100,"stream":true,
		"thinking":{"type":"enabled","budget_tokens":1000},"metadata":{"user_id":"u1"},"service_tier":"auto",
		"messages":[{"role":"user","content":"hi"}]}`,
		`{"model":"m","max_tokens":100,"stream":true,"stream_options":{"include_usage":true},"user":"u1",
		"chat_template_kwargs":{"enable_thinking":true},"messages":[{"role":"user","content":"hi"}]}`, streamInfo)

	f("thinking disabled, effort for the template", `{"model":"m","max_tokens":100,"thinking":{"type":"disabled"},
		"output_config":{"effort":"low"},"messages":[{"role":"user","content":"hi"}]}`,
		`{"model":"m","max_tokens":100,"chat_template_kwargs":{"enable_thinking":false,"reasoning_effort":"low"},
		"messages":[{"role":"user","content":"hi"}]}`, info)

	f("unknown effort and malformed hints ignored", `{"model":"m","max_tokens":100,"thinking":"yes",
		"output_config":{"effort":"max"},"messages":[{"role":"user","content":"hi"}]}`,
		`{"model":"m","max_tokens":100,"messages":[{"role":"user","content":"hi"}]}`, info)

	for _, param := range []string{`"output_config":{"effort":"low","format":`, `"output_format":`} {
		want := `{"model":"m","max_tokens":100,"messages":[{"role":"user","content":"hi"}],
			"response_format":{"type":"json_schema","json_schema":{"name":"output","schema":{"type":"object","properties":{"a":{"type":"integer"}}},"strict":true}}`
		in := `{"model":"m","max_tokens":100,"messages":[{"role":"user","content":"hi"}],` + param + `{"type":"json_schema","schema":{"type":"object","properties":{"a":{"type":"integer"}}}}`
		if strings.HasPrefix(param, `"output_config"`) {
			in += "}"
			want += `,"chat_template_kwargs":{"reasoning_effort":"low"}`
		}
		f("structured output "+param, in+"}", want+"}", info)
	}

	f("no max_tokens", `{"model":"m","messages":[{"role":"user","content":"hi"}]}`,
		`{"model":"m","messages":[{"role":"user","content":"hi"}]}`, RequestInfo{Model: "m", WantsUsage: true})

	f("text document", `{"model":"m","max_tokens":100,"messages":[{"role":"user","content":[
		{"type":"document","source":{"type":"text","media_type":"text/plain","data":"doc body"}},{"type":"text","text":"summarise"}]}]}`,
		`{"model":"m","max_tokens":100,"messages":[{"role":"user","content":"doc body\n\nsummarise"}]}`, info)
}

func TestAnthropicToChatErrors(t *testing.T) {
	f := func(name, in, param string) {
		t.Helper()
		t.Run(name, func(t *testing.T) {
			out, _, err := AnthropicToChat([]byte(in))
			if out != nil {
				t.Fatalf("output %s on error", out)
			}
			wantError(t, err, 400, param)
		})
	}
	f("not json", `{"model":`, "")
	f("not an object", `[1,2]`, "")
	f("no model", `{"messages":[]}`, "model")
	f("no messages", `{"model":"m"}`, "messages")
	f("bad role", `{"model":"m","messages":[{"role":"robot","content":"x"}]}`, "messages[0].role")
	f("content wrong type", `{"model":"m","messages":[{"role":"user","content":42}]}`, "messages[0].content")
	f("file image", `{"model":"m","messages":[{"role":"user","content":[{"type":"image","source":{"type":"file","file_id":"f"}}]}]}`,
		"messages[0].content[0].source")
	f("tool_result without id", `{"model":"m","messages":[{"role":"user","content":[{"type":"tool_result","content":"x"}]}]}`,
		"messages[0].content[0].tool_use_id")
	f("tool choice without name", `{"model":"m","messages":[],"tool_choice":{"type":"tool"}}`, "tool_choice.name")
	f("tool choice unknown", `{"model":"m","messages":[],"tool_choice":{"type":"maybe"}}`, "tool_choice.type")
	f("output format of another type", `{"model":"m","messages":[],"output_config":{"format":{"type":"yaml"}}}`, "output_config.format.type")
	f("output format without schema", `{"model":"m","messages":[],"output_format":{"type":"json_schema"}}`, "output_format.schema")
	f("negative max_tokens", `{"model":"m","max_tokens":-1,"messages":[]}`, "max_tokens")
	f("temperature as string", `{"model":"m","temperature":"hot","messages":[]}`, "temperature")
	f("messages as object", `{"model":"m","messages":{}}`, "messages")
	f("tool without name", `{"model":"m","messages":[],"tools":[{"input_schema":{}}]}`, "tools[0].name")
}

func TestAnthropicToChatClaudeCode(t *testing.T) {
	body := clientBody(t, "claude-code-messages-request.json")
	chat, info, err := AnthropicToChat(body)
	if err != nil {
		t.Fatalf("AnthropicToChat(Claude Code request): %v", err)
	}
	if info.Model != "local-model" || !info.Stream || info.MaxTokens != 32000 || !info.HasTools || !info.WantsUsage {
		t.Fatalf("info = %+v", info)
	}
	var req struct {
		Model         string         `json:"model"`
		Stream        bool           `json:"stream"`
		StreamOptions map[string]any `json:"stream_options"`
		MaxTokens     int            `json:"max_tokens"`
		Messages      []struct {
			Role    string `json:"role"`
			Content string `json:"content"`
		} `json:"messages"`
		Tools []struct {
			Type     string `json:"type"`
			Function struct {
				Name       string          `json:"name"`
				Parameters json.RawMessage `json:"parameters"`
			} `json:"function"`
		} `json:"tools"`
	}
	if err := json.Unmarshal(chat, &req); err != nil {
		t.Fatalf("decoding translated request: %v", err)
	}
	if req.Model != "local-model" || !req.Stream || req.StreamOptions["include_usage"] != true || req.MaxTokens != 32000 {
		t.Fatalf("translated head = %+v", req)
	}
	// The system blocks and the mid-conversation system message form one
	// leading system message; the user's two text blocks form one message.
	if len(req.Messages) != 2 || req.Messages[0].Role != "system" || req.Messages[1].Role != "user" {
		t.Fatalf("messages roles = %+v", req.Messages)
	}
	sys := req.Messages[0].Content
	for _, want := range []string{"You are a Claude agent", "# Environment"} {
		if !strings.Contains(sys, want) {
			t.Errorf("system prompt lacks %q", want)
		}
	}
	if strings.Contains(sys, "billing-header") {
		t.Errorf("the billing header block reached the prompt")
	}
	if !strings.HasSuffix(req.Messages[1].Content, "say hi") || !strings.HasPrefix(req.Messages[1].Content, "<system-reminder>") {
		t.Errorf("user message = %.80q…", req.Messages[1].Content)
	}
	if len(req.Tools) != 12 {
		t.Fatalf("%d tools, want 12", len(req.Tools))
	}
	for _, tool := range req.Tools {
		if tool.Type != "function" || tool.Function.Name == "" || !json.Valid(tool.Function.Parameters) || len(tool.Function.Parameters) < 10 {
			t.Errorf("tool %+v", tool)
		}
	}
}

func TestAnthropicCountToTokenize(t *testing.T) {
	got, model, err := AnthropicCountToTokenize([]byte(`{"model":"m","system":"s","messages":[{"role":"user","content":"hi"}],
		"tools":[{"name":"t","input_schema":{"type":"object"}}],"thinking":{"type":"disabled"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if model != "m" {
		t.Fatalf("model = %q", model)
	}
	jsonEq(t, got, `{"model":"m","messages":[{"role":"system","content":"s"},{"role":"user","content":"hi"}],
		"tools":[{"type":"function","function":{"name":"t","parameters":{"type":"object"}}}]}`)

	if _, _, err := AnthropicCountToTokenize([]byte(`{"messages":[]}`)); err == nil {
		t.Fatal("no error without model")
	} else {
		wantError(t, err, 400, "model")
	}
}

func TestAnthropicCountToTokenizeClaudeCode(t *testing.T) {
	body := clientBody(t, "claude-code-messages-request.json")
	tok, model, err := AnthropicCountToTokenize(body)
	if err != nil {
		t.Fatal(err)
	}
	var req map[string]json.RawMessage
	if err := json.Unmarshal(tok, &req); err != nil {
		t.Fatal(err)
	}
	if model != "local-model" || len(req) != 3 || req["messages"] == nil || req["tools"] == nil {
		t.Fatalf("model %q, tokenize body keys %v", model, len(req))
	}
	// Counting must see what generation sees.
	chat, _, err := AnthropicToChat(body)
	if err != nil {
		t.Fatal(err)
	}
	var full map[string]json.RawMessage
	if err := json.Unmarshal(chat, &full); err != nil {
		t.Fatal(err)
	}
	if string(full["messages"]) != string(req["messages"]) || string(full["tools"]) != string(req["tools"]) {
		t.Fatal("tokenize body differs from the chat request's messages or tools")
	}
}
