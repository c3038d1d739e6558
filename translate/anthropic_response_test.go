package translate

import (
	"strings"
	"testing"
)

func TestChatToAnthropic(t *testing.T) {
	f := func(name, in, want string) {
		t.Helper()
		t.Run(name, func(t *testing.T) {
			fixedSources(t)
			got, err := ChatToAnthropic([]byte(in), "claude-local")
			if err != nil {
				t.Fatalf("ChatToAnthropic: %v", err)
			}
			jsonEq(t, got, want)
		})
	}
	f("text with cached usage", `{"id":"chatcmpl-42","object":"chat.completion","model":"qwen","choices":[{"index":0,
		"message":{"role":"assistant","content":"Hello!"},"finish_reason":"stop"}],
		"usage":{"prompt_tokens":100,"completion_tokens":5,"total_tokens":105,"prompt_tokens_details":{"cached_tokens":64}},
		"timings":{"prompt_n":36}}`,
		`{"id":"msg_42","type":"message","role":"assistant","model":"claude-local",
		"content":[{"type":"text","text":"Hello!"}],"stop_reason":"end_turn","stop_sequence":null,
		"usage":{"input_tokens":36,"output_tokens":5,"cache_creation_input_tokens":0,"cache_read_input_tokens":64}}`)

	f("reasoning and tool calls", `{"id":"chatcmpl-7","choices":[{"index":0,"message":{"role":"assistant",
		"content":null,"reasoning_content":"think","tool_calls":[
		{"id":"call_x","type":"function","function":{"name":"get_weather","arguments":"{\"city\": \"Paris\"}"}},
		{"id":"toolu_y","type":"function","function":{"name":"noargs","arguments":""}},
		{"id":"","type":"function","function":{"name":"broken","arguments":"not json"}}]},
		"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":10,"completion_tokens":20}}`,
		`{"id":"msg_7","type":"message","role":"assistant","model":"claude-local","content":[
		{"type":"thinking","thinking":"think","signature":"`+thinkingSignature("think")+`"},
		{"type":"tool_use","id":"toolu_call_x","name":"get_weather","input":{"city":"Paris"}},
		{"type":"tool_use","id":"toolu_y","name":"noargs","input":{}},
		{"type":"tool_use","id":"toolu_000102030405060708090a0b","name":"broken","input":{"_raw_arguments":"not json"}}],
		"stop_reason":"tool_use","stop_sequence":null,
		"usage":{"input_tokens":10,"output_tokens":20,"cache_creation_input_tokens":0,"cache_read_input_tokens":0}}`)

	f("length", `{"id":"c","choices":[{"message":{"content":"abc"},"finish_reason":"length"}]}`,
		`{"id":"msg_c","type":"message","role":"assistant","model":"claude-local","content":[{"type":"text","text":"abc"}],
		"stop_reason":"max_tokens","stop_sequence":null,
		"usage":{"input_tokens":0,"output_tokens":0,"cache_creation_input_tokens":0,"cache_read_input_tokens":0}}`)

	f("stop sequence reported by the upstream", `{"id":"c","choices":[{"message":{"content":"a"},"finish_reason":"stop","stop_reason":"###"}]}`,
		`{"id":"msg_c","type":"message","role":"assistant","model":"claude-local","content":[{"type":"text","text":"a"}],
		"stop_reason":"stop_sequence","stop_sequence":"###",
		"usage":{"input_tokens":0,"output_tokens":0,"cache_creation_input_tokens":0,"cache_read_input_tokens":0}}`)

	f("stop token id is not a stop sequence", `{"id":"c","choices":[{"message":{"content":""},"finish_reason":"stop","stop_reason":151645}]}`,
		`{"id":"msg_c","type":"message","role":"assistant","model":"claude-local","content":[],
		"stop_reason":"end_turn","stop_sequence":null,
		"usage":{"input_tokens":0,"output_tokens":0,"cache_creation_input_tokens":0,"cache_read_input_tokens":0}}`)

	f("tool calls with finish stop", `{"id":"c","choices":[{"message":{"tool_calls":[{"id":"toolu_1","function":{"name":"f","arguments":"{}"}}]},"finish_reason":"stop"}]}`,
		`{"id":"msg_c","type":"message","role":"assistant","model":"claude-local","content":[
		{"type":"tool_use","id":"toolu_1","name":"f","input":{}}],"stop_reason":"tool_use","stop_sequence":null,
		"usage":{"input_tokens":0,"output_tokens":0,"cache_creation_input_tokens":0,"cache_read_input_tokens":0}}`)
}

func TestChatToAnthropicErrors(t *testing.T) {
	for _, in := range []string{``, `{`, `{"choices":[]}`, `[]`, `{"choices":"x"}`} {
		if out, err := ChatToAnthropic([]byte(in), "m"); err == nil {
			t.Errorf("ChatToAnthropic(%q) = %s, want an error", in, out)
		}
	}
}

// A tool call id crosses the dialects unchanged after its first mapping, so
// the tool_result a client sends back names the call the model made.
func TestToolIDRoundTrip(t *testing.T) {
	resp, err := ChatToAnthropic([]byte(`{"id":"c","choices":[{"message":{"tool_calls":[
		{"id":"call_abc","function":{"name":"f","arguments":"{}"}}]},"finish_reason":"tool_calls"}]}`), "m")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(resp), `"id":"toolu_call_abc"`) {
		t.Fatalf("response %s", resp)
	}
	chat, _, err := AnthropicToChat([]byte(`{"model":"m","messages":[{"role":"assistant","content":[
		{"type":"tool_use","id":"toolu_call_abc","name":"f","input":{}}]},
		{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_call_abc","content":"ok"}]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Count(string(chat), `"toolu_call_abc"`) != 2 {
		t.Fatalf("request %s", chat)
	}
	if got := toolUseID("toolu_call_abc"); got != "toolu_call_abc" {
		t.Fatalf("toolUseID is not stable: %q", got)
	}
}
