package translate

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestResponsesToChat(t *testing.T) {
	f := func(name, in, want string, wantInfo RequestInfo) {
		t.Helper()
		t.Run(name, func(t *testing.T) {
			fixedSources(t)
			got, info, err := ResponsesToChat([]byte(in))
			if err != nil {
				t.Fatalf("ResponsesToChat: %v", err)
			}
			jsonEq(t, got, want)
			if info != wantInfo {
				t.Fatalf("info = %+v, want %+v", info, wantInfo)
			}
		})
	}
	info := RequestInfo{Model: "m", WantsUsage: true}

	f("string input with instructions", `{"model":"m","instructions":"be brief","input":"hi","max_output_tokens":50,
		"temperature":0.2,"top_p":0.8,"store":true,"include":["x"]}`,
		`{"model":"m","max_tokens":50,"temperature":0.2,"top_p":0.8,
		"messages":[{"role":"system","content":"be brief"},{"role":"user","content":"hi"}]}`,
		RequestInfo{Model: "m", WantsUsage: true, MaxTokens: 50})

	f("message items, developer joins system, images", `{"model":"m","stream":true,"input":[
		{"type":"message","role":"developer","content":[{"type":"input_text","text":"dev1"}]},
		{"role":"user","content":"plain"},
		{"type":"message","role":"user","content":[{"type":"input_text","text":"look"},{"type":"input_image","image_url":"data:image/png;base64,QQ=="}]},
		{"type":"message","role":"system","content":"sys2"}]}`,
		`{"model":"m","stream":true,"stream_options":{"include_usage":true},"messages":[
		{"role":"system","content":"dev1\n\nsys2"},
		{"role":"user","content":"plain"},
		{"role":"user","content":[{"type":"text","text":"look"},{"type":"image_url","image_url":{"url":"data:image/png;base64,QQ=="}}]}]}`,
		RequestInfo{Model: "m", Stream: true, WantsUsage: true})

	f("function calls, outputs and reasoning", `{"model":"m","input":[
		{"type":"message","role":"user","content":[{"type":"input_text","text":"ls"}]},
		{"type":"reasoning","id":"rs_1","summary":[{"type":"summary_text","text":"need ls"}],"encrypted_content":"xyz"},
		{"type":"message","role":"assistant","content":[{"type":"output_text","text":"Running it."}]},
		{"type":"function_call","call_id":"call_1","name":"exec_command","arguments":"{\"cmd\":\"ls\"}"},
		{"type":"function_call","call_id":"call_2","name":"spawn_agent","namespace":"agents","arguments":""},
		{"type":"function_call_output","call_id":"call_1","output":"a.txt"},
		{"type":"function_call_output","call_id":"call_2","output":[{"type":"input_text","text":"spawned"}]},
		{"type":"message","role":"assistant","content":[{"type":"output_text","text":"Done."}]},
		{"type":"item_reference","id":"x"}]}`,
		`{"model":"m","messages":[
		{"role":"user","content":"ls"},
		{"role":"assistant","content":"Running it.","reasoning_content":"need ls","tool_calls":[
			{"id":"call_1","type":"function","function":{"name":"exec_command","arguments":"{\"cmd\":\"ls\"}"}},
			{"id":"call_2","type":"function","function":{"name":"agents__spawn_agent","arguments":"{}"}}]},
		{"role":"tool","tool_call_id":"call_1","content":"a.txt"},
		{"role":"tool","tool_call_id":"call_2","content":"spawned"},
		{"role":"assistant","content":"Done."}]}`, info)

	toolsInfo := info
	toolsInfo.HasTools = true
	f("tools, namespaces, tool_choice, text format, effort", `{"model":"m","input":"x",
		"tools":[{"type":"function","name":"f","description":"d","strict":true,"parameters":{"type":"object"}},
			{"type":"namespace","name":"ns","description":"n","tools":[{"type":"function","name":"g"}]},
			{"type":"web_search"},{"type":"custom","name":"apply_patch"}],
		"tool_choice":{"type":"function","name":"f"},"parallel_tool_calls":false,
		"reasoning":{"effort":"low","summary":"auto"},
		"text":{"format":{"type":"json_schema","name":"out","schema":{"type":"object"},"strict":true}}}`,
		`{"model":"m","messages":[{"role":"user","content":"x"}],
		"tools":[{"type":"function","function":{"name":"f","description":"d","parameters":{"type":"object"},"strict":true}},
			{"type":"function","function":{"name":"ns__g","parameters":{"type":"object","properties":{}}}},
			{"type":"function","function":{"name":"apply_patch","description":"Pass the whole input as the string argument \"input\".",
				"parameters":{"type":"object","properties":{"input":{"type":"string","description":"The tool's raw input."}},"required":["input"]}}}],
		"tool_choice":{"type":"function","function":{"name":"f"}},"parallel_tool_calls":false,"reasoning_effort":"low",
		"chat_template_kwargs":{"reasoning_effort":"low"},
		"response_format":{"type":"json_schema","json_schema":{"name":"out","schema":{"type":"object"},"strict":true}}}`, toolsInfo)

	f("tool_choice without tools is dropped, json_object", `{"model":"m","input":"x","tool_choice":"required",
		"parallel_tool_calls":true,"text":{"format":{"type":"json_object"}}}`,
		`{"model":"m","messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_object"}}`, info)

	f("instructions as items, arguments as an object", `{"model":"m","instructions":[{"role":"developer","content":"d"},{"role":"user","content":"u"}],
		"input":[{"type":"function_call","call_id":"c","name":"f","arguments":{"a": 1}}]}`,
		`{"model":"m","messages":[{"role":"system","content":"d\n\nu"},
		{"role":"assistant","content":null,"tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{\"a\":1}"}}]}]}`, info)

	f("effort none disables thinking", `{"model":"m","input":"x","reasoning":{"effort":"none"}}`,
		`{"model":"m","messages":[{"role":"user","content":"x"}],"reasoning_effort":"none",
		"chat_template_kwargs":{"enable_thinking":false}}`, info)

	f("reasoning before a user turn is dropped", `{"model":"m","input":[
		{"type":"reasoning","summary":[{"type":"summary_text","text":"stale"}]},
		{"role":"user","content":"q"},
		{"type":"message","role":"assistant","content":[{"type":"output_text","text":"a"}]}]}`,
		`{"model":"m","messages":[{"role":"user","content":"q"},{"role":"assistant","content":"a"}]}`, info)

	f("allowed_tools keeps only the allowed tools; text format text", `{"model":"m","input":"x",
		"tools":[{"type":"function","name":"f"},{"type":"function","name":"g"}],
		"tool_choice":{"type":"allowed_tools","mode":"required","tools":[{"type":"function","name":"g"}]},
		"text":{"format":{"type":"text"}}}`,
		`{"model":"m","messages":[{"role":"user","content":"x"}],
		"tools":[{"type":"function","function":{"name":"g","parameters":{"type":"object","properties":{}}}}],"tool_choice":"required"}`, toolsInfo)

	f("custom tool choice is the named function", `{"model":"m","input":"x","tools":[{"type":"custom","name":"apply_patch"}],
		"tool_choice":{"type":"custom","name":"apply_patch"}}`,
		`{"model":"m","messages":[{"role":"user","content":"x"}],
		"tools":[{"type":"function","function":{"name":"apply_patch","description":"Pass the whole input as the string argument \"input\".",
			"parameters":{"type":"object","properties":{"input":{"type":"string","description":"The tool's raw input."}},"required":["input"]}}}],
		"tool_choice":{"type":"function","function":{"name":"apply_patch"}}}`, toolsInfo)

	f("empty previous_response_id is accepted", `{"model":"m","input":"x","previous_response_id":null}`,
		`{"model":"m","messages":[{"role":"user","content":"x"}]}`, info)
}

func TestResponsesToChatErrors(t *testing.T) {
	f := func(name, in, param string) {
		t.Helper()
		t.Run(name, func(t *testing.T) {
			out, _, err := ResponsesToChat([]byte(in))
			if out != nil {
				t.Fatalf("output %s on error", out)
			}
			wantError(t, err, 400, param)
		})
	}
	f("previous_response_id", `{"model":"m","input":"x","previous_response_id":"resp_1"}`, "previous_response_id")
	f("not json", `nope`, "")
	f("no model", `{"input":"x"}`, "model")
	f("no input", `{"model":"m"}`, "input")
	f("input wrong type", `{"model":"m","input":7}`, "input")
	f("bad role", `{"model":"m","input":[{"type":"message","role":"robot","content":"x"}]}`, "input[0].role")
	f("function call without name", `{"model":"m","input":[{"type":"function_call","call_id":"c"}]}`, "input[0].name")
	f("output without call_id", `{"model":"m","input":[{"type":"function_call_output","output":"x"}]}`, "input[0].call_id")
	f("image by file id", `{"model":"m","input":[{"role":"user","content":[{"type":"input_image","file_id":"f"}]}]}`, "input[0].content[0]")
	f("bad tool_choice", `{"model":"m","input":"x","tool_choice":"sometimes"}`, "tool_choice")
	f("hosted tool choice", `{"model":"m","input":"x","tools":[{"type":"function","name":"f"}],"tool_choice":{"type":"file_search"}}`, "tool_choice.type")
	f("allowed tools none declared", `{"model":"m","input":"x","tools":[{"type":"function","name":"f"}],
		"tool_choice":{"type":"allowed_tools","mode":"required","tools":[{"type":"function","name":"g"}]}}`, "tool_choice.tools")
	f("allowed tools bad mode", `{"model":"m","input":"x","tool_choice":{"type":"allowed_tools","mode":"sometimes"}}`, "tool_choice.mode")
	f("unknown text format", `{"model":"m","input":"x","text":{"format":{"type":"yaml"}}}`, "text.format.type")
	f("schema missing", `{"model":"m","input":"x","text":{"format":{"type":"json_schema","name":"n"}}}`, "text.format.schema")
	f("instructions not a string", `{"model":"m","input":"x","instructions":7}`, "instructions")
	f("instructions with a bad item", `{"model":"m","input":"x","instructions":[{"role":"robot","content":"x"}]}`, "instructions[0].role")
	f("function tool without name", `{"model":"m","input":"x","tools":[{"type":"function"}]}`, "tools[0].name")
}

func TestResponsesToChatCodex(t *testing.T) {
	body := clientBody(t, "codex-responses-request.json")
	chat, info, err := ResponsesToChat(body)
	if err != nil {
		t.Fatalf("ResponsesToChat(Codex request): %v", err)
	}
	if info != (RequestInfo{Model: "local-model", Stream: true, WantsUsage: true, HasTools: true}) {
		t.Fatalf("info = %+v", info)
	}
	var req struct {
		Stream        bool           `json:"stream"`
		StreamOptions map[string]any `json:"stream_options"`
		Messages      []struct {
			Role    string `json:"role"`
			Content string `json:"content"`
		} `json:"messages"`
		Tools []struct {
			Function struct {
				Name string `json:"name"`
			} `json:"function"`
		} `json:"tools"`
		ToolChoice        string `json:"tool_choice"`
		ParallelToolCalls *bool  `json:"parallel_tool_calls"`
	}
	if err := json.Unmarshal(chat, &req); err != nil {
		t.Fatal(err)
	}
	if !req.Stream || req.StreamOptions["include_usage"] != true || req.ToolChoice != "auto" || req.ParallelToolCalls == nil || !*req.ParallelToolCalls {
		t.Fatalf("translated head: %+v", req)
	}
	var roles []string
	for _, m := range req.Messages {
		roles = append(roles, m.Role)
	}
	if strings.Join(roles, ",") != "system,user,user" {
		t.Fatalf("roles = %v", roles)
	}
	sys := req.Messages[0].Content
	for _, want := range []string{"You are a coding agent", "<skills_instructions>", "<permissions instructions>"} {
		if !strings.Contains(sys, want) {
			t.Errorf("system prompt lacks %q", want)
		}
	}
	if req.Messages[2].Content != "say hi" || !strings.HasPrefix(req.Messages[1].Content, "<environment_context>") {
		t.Errorf("user messages: %.60q / %.60q", req.Messages[1].Content, req.Messages[2].Content)
	}
	var names []string
	for _, tool := range req.Tools {
		names = append(names, tool.Function.Name)
	}
	want := "exec_command,write_stdin,request_user_input,view_image," +
		"multi_agent_v1__close_agent,multi_agent_v1__resume_agent,multi_agent_v1__send_input,multi_agent_v1__spawn_agent,multi_agent_v1__wait_agent," +
		"get_goal,create_goal,update_goal"
	if strings.Join(names, ",") != want {
		t.Fatalf("tools = %v", names)
	}

	// A function call to a namespaced tool goes back to Codex with its namespace.
	resp, err := ChatToResponses([]byte(`{"id":"chatcmpl-1","created":1,"choices":[{"message":{"tool_calls":[
		{"id":"call_9","function":{"name":"multi_agent_v1__spawn_agent","arguments":"{}"}}]},"finish_reason":"tool_calls"}]}`), body)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(resp), `"name":"spawn_agent","namespace":"multi_agent_v1"`) {
		t.Fatalf("response %s", resp)
	}
}

func TestChatToResponses(t *testing.T) {
	req := []byte(`{"model":"local-model","instructions":"be brief","input":"hi","max_output_tokens":64,"temperature":0.3,
		"tools":[{"type":"function","name":"f","parameters":{}}],"tool_choice":"auto","store":false,"metadata":{"k":"v"}}`)
	head := `"object":"response","error":null,"instructions":"be brief","max_output_tokens":64,"model":"local-model",
		"parallel_tool_calls":true,"previous_response_id":null,"reasoning":{"effort":null,"summary":null},"store":false,
		"temperature":0.3,"text":{"format":{"type":"text"}},"tool_choice":"auto",
		"tools":[{"type":"function","name":"f","parameters":{}}],"top_p":null,"truncation":"disabled","metadata":{"k":"v"}`
	f := func(name, in, want string) {
		t.Helper()
		t.Run(name, func(t *testing.T) {
			fixedSources(t)
			got, err := ChatToResponses([]byte(in), req)
			if err != nil {
				t.Fatalf("ChatToResponses: %v", err)
			}
			jsonEq(t, got, want)
		})
	}
	f("text", `{"id":"chatcmpl-9","created":1790000000,"choices":[{"message":{"role":"assistant","content":"Hello"},"finish_reason":"stop"}],
		"usage":{"prompt_tokens":30,"completion_tokens":2,"total_tokens":32,"prompt_tokens_details":{"cached_tokens":16}}}`,
		`{"id":"resp_9","created_at":1790000000,"status":"completed","incomplete_details":null,`+head+`,
		"output":[{"id":"msg_9_0","type":"message","status":"completed","role":"assistant",
			"content":[{"type":"output_text","text":"Hello","annotations":[],"logprobs":[]}]}],
		"usage":{"input_tokens":30,"input_tokens_details":{"cached_tokens":16},"output_tokens":2,
			"output_tokens_details":{"reasoning_tokens":0},"total_tokens":32}}`)

	f("reasoning, tool call, length", `{"id":"chatcmpl-3","created":5,"choices":[{"message":{"reasoning_content":"hmm","content":"",
		"tool_calls":[{"id":"call_1","type":"function","function":{"name":"f","arguments":"{\"a\":1}"}}]},"finish_reason":"length"}],
		"usage":{"prompt_tokens":1,"completion_tokens":2,"completion_tokens_details":{"reasoning_tokens":1}}}`,
		`{"id":"resp_3","created_at":5,"status":"incomplete","incomplete_details":{"reason":"max_output_tokens"},`+head+`,
		"output":[{"id":"rs_3_0","type":"reasoning","summary":[{"type":"summary_text","text":"hmm"}]},
			{"id":"fc_3_1","type":"function_call","status":"completed","call_id":"call_1","name":"f","arguments":"{\"a\":1}"}],
		"usage":{"input_tokens":1,"input_tokens_details":{"cached_tokens":0},"output_tokens":2,
			"output_tokens_details":{"reasoning_tokens":1},"total_tokens":3}}`)

	if _, err := ChatToResponses([]byte(`{"choices":[]}`), req); err == nil {
		t.Fatal("no error for a completion without choices")
	}
}

// Custom (free-form) tools travel as functions taking one string argument,
// and come back as custom_tool_call items with the bare input.
func TestResponsesCustomTools(t *testing.T) {
	fixedSources(t)
	req := []byte(`{"model":"m","stream":true,"input":[
		{"type":"message","role":"user","content":"patch it"},
		{"type":"custom_tool_call","call_id":"call_p","name":"apply_patch","input":"*** Begin Patch\n*** End Patch"},
		{"type":"custom_tool_call_output","call_id":"call_p","output":"Done!"}],
		"tools":[{"type":"custom","name":"apply_patch","description":"Apply a patch.",
			"format":{"type":"grammar","syntax":"lark","definition":"start: begin_patch"}}]}`)
	chat, info, err := ResponsesToChat(req)
	if err != nil {
		t.Fatal(err)
	}
	if !info.HasTools {
		t.Fatal("HasTools = false")
	}
	var cr chatRequest
	if err := json.Unmarshal(chat, &cr); err != nil {
		t.Fatal(err)
	}
	if len(cr.Tools) != 1 || cr.Tools[0].Function.Name != "apply_patch" ||
		!strings.Contains(cr.Tools[0].Function.Description, "lark grammar:\nstart: begin_patch") {
		t.Fatalf("tools = %+v", cr.Tools)
	}
	if len(cr.Messages) != 3 || len(cr.Messages[1].ToolCalls) != 1 ||
		cr.Messages[1].ToolCalls[0].Function.Arguments != `{"input":"*** Begin Patch\n*** End Patch"}` ||
		cr.Messages[2].Role != "tool" || cr.Messages[2].ToolCallID != "call_p" {
		t.Fatalf("messages = %s", chat)
	}

	completion := `{"id":"chatcmpl-c","created":7,"choices":[{"message":{"tool_calls":[
		{"id":"call_q","function":{"name":"apply_patch","arguments":"{\"input\":\"*** Begin Patch\\n\"}"}}]},"finish_reason":"tool_calls"}]}`
	resp, err := ChatToResponses([]byte(completion), req)
	if err != nil {
		t.Fatal(err)
	}
	var ro struct {
		Output []map[string]any `json:"output"`
	}
	if err := json.Unmarshal(resp, &ro); err != nil {
		t.Fatal(err)
	}
	if len(ro.Output) != 1 || ro.Output[0]["type"] != "custom_tool_call" || ro.Output[0]["input"] != "*** Begin Patch\n" ||
		ro.Output[0]["call_id"] != "call_q" {
		t.Fatalf("output = %v", ro.Output)
	}

	var out bytes.Buffer
	s := NewResponsesStream(&out, req, nil)
	for _, c := range []string{
		`{"id":"chatcmpl-c","created":7,"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_q","function":{"name":"apply_patch","arguments":"{\"input\":"}}]}}]}`,
		`{"id":"chatcmpl-c","created":7,"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"\"*** Begin Patch\\n\"}"}}]},"finish_reason":"tool_calls"}]}`,
	} {
		if err := s.Chunk([]byte(c)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := checkResponsesEvents(out.Bytes()); err != nil {
		t.Fatalf("%v\n%s", err, out.Bytes())
	}
	for _, want := range []string{`"type":"response.custom_tool_call_input.done"`, `"input":"*** Begin Patch\n"`, `"type":"custom_tool_call"`} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("stream lacks %s:\n%s", want, out.Bytes())
		}
	}
	if strings.Contains(out.String(), "function_call_arguments") {
		t.Errorf("custom call streamed as function arguments:\n%s", out.Bytes())
	}
}
