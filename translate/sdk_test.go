package translate

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/anthropics/anthropic-sdk-go/v2"
	assestream "github.com/anthropics/anthropic-sdk-go/v2/packages/ssestream"
	"github.com/openai/openai-go/v3/responses"
)

// The official SDKs must read what the converters write: the Anthropic SDK
// accumulates a stream into a Message, and the OpenAI SDK decodes every
// Responses event and the final response.

func sseResponse(b []byte) *http.Response {
	return &http.Response{
		StatusCode: 200,
		Header:     http.Header{"Content-Type": []string{"text/event-stream"}},
		Body:       io.NopCloser(bytes.NewReader(b)),
	}
}

func goldenOutput(t *testing.T, name, dialect string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(streamDir, name+"."+dialect+".sse"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func accumulateAnthropic(t *testing.T, sse []byte) (anthropic.Message, error) {
	t.Helper()
	stream := assestream.NewStream[anthropic.MessageStreamEventUnion](assestream.NewDecoder(sseResponse(sse)), nil)
	var msg anthropic.Message
	for stream.Next() {
		if err := msg.Accumulate(stream.Current()); err != nil {
			t.Fatalf("Accumulate: %v", err)
		}
	}
	return msg, stream.Err()
}

func TestAnthropicSDKReadsStreams(t *testing.T) {
	msg, err := accumulateAnthropic(t, goldenOutput(t, "tool_call", "anthropic"))
	if err != nil {
		t.Fatal(err)
	}
	if msg.ID != "msg_tool1" || msg.StopReason != anthropic.StopReasonToolUse || len(msg.Content) != 3 {
		t.Fatalf("message = %+v", msg)
	}
	if msg.Content[0].Text != "I'll check both." {
		t.Errorf("text = %q", msg.Content[0].Text)
	}
	call := msg.Content[1].AsToolUse()
	var input map[string]string
	if err := json.Unmarshal(call.Input, &input); err != nil || input["city"] != "Paris" || call.ID != "toolu_call_A1" || call.Name != "get_weather" {
		t.Errorf("first tool use = %+v (input %s)", call, call.Input)
	}
	if msg.Content[2].AsToolUse().Name != "agents__spawn_agent" {
		t.Errorf("second tool use = %+v", msg.Content[2])
	}
	if msg.Usage.InputTokens != 300 || msg.Usage.OutputTokens != 40 {
		t.Errorf("usage = %+v", msg.Usage)
	}

	msg, err = accumulateAnthropic(t, goldenOutput(t, "thinking", "anthropic"))
	if err != nil {
		t.Fatal(err)
	}
	th := msg.Content[0].AsThinking()
	if th.Thinking != "The user greets me." || th.Signature == "" || msg.Content[1].Text != "Hi! How can I" || msg.StopReason != anthropic.StopReasonMaxTokens {
		t.Errorf("thinking message = %+v", msg)
	}

	msg, err = accumulateAnthropic(t, goldenOutput(t, "text", "anthropic"))
	if err != nil || msg.Content[0].Text != `Hello, "world" <ok> & bye` || msg.Usage.CacheReadInputTokens != 100 || msg.Usage.InputTokens != 20 {
		t.Errorf("text message = %+v, err %v", msg, err)
	}

	_, err = accumulateAnthropic(t, goldenOutput(t, "fail_midstream", "anthropic"))
	if err == nil || !strings.Contains(err.Error(), "upstream connection lost") {
		t.Errorf("failed stream: err = %v, want the failure", err)
	}
}

func TestAnthropicSDKReadsMessage(t *testing.T) {
	out, err := ChatToAnthropic([]byte(`{"id":"c1","choices":[{"message":{"content":"hi","reasoning_content":"r",
		"tool_calls":[{"id":"call_1","function":{"name":"f","arguments":"{\"a\":1}"}}]},"finish_reason":"tool_calls"}],
		"usage":{"prompt_tokens":9,"completion_tokens":3}}`), "m")
	if err != nil {
		t.Fatal(err)
	}
	var msg anthropic.Message
	if err := json.Unmarshal(out, &msg); err != nil {
		t.Fatal(err)
	}
	if len(msg.Content) != 3 || msg.Content[0].Type != "thinking" || msg.Content[1].Text != "hi" ||
		msg.Content[2].AsToolUse().Name != "f" || msg.StopReason != anthropic.StopReasonToolUse || msg.Usage.InputTokens != 9 {
		t.Fatalf("message = %+v", msg)
	}
}

func TestOpenAISDKReadsResponsesStreams(t *testing.T) {
	names := []string{"text", "tool_call", "thinking", "interleaved_tools", "fail_midstream", "empty"}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			r := NewSSEReader(bytes.NewReader(goldenOutput(t, name, "responses")))
			var last responses.ResponseStreamEventUnion
			for {
				ev, data, err := r.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				var e responses.ResponseStreamEventUnion
				if err := json.Unmarshal(data, &e); err != nil {
					t.Fatalf("%s: %v", ev, err)
				}
				if e.Type != ev {
					t.Fatalf("event %s decoded as %q", ev, e.Type)
				}
				switch v := e.AsAny().(type) {
				case responses.ResponseOutputItemDoneEvent:
					if v.Item.ID == "" || v.Item.Type == "" {
						t.Errorf("item without id or type: %s", data)
					}
				case responses.ResponseTextDeltaEvent:
					if v.ItemID == "" {
						t.Errorf("text delta without item: %s", data)
					}
				}
				last = e
			}
			resp := last.Response
			switch name {
			case "fail_midstream":
				if last.Type != "response.failed" || resp.Status != responses.ResponseStatusFailed || resp.Error.Message == "" {
					t.Fatalf("last event %s, response %+v", last.Type, resp)
				}
			case "thinking":
				if resp.Status != responses.ResponseStatusIncomplete || resp.IncompleteDetails.Reason != "max_output_tokens" ||
					resp.Output[0].AsReasoning().Summary[0].Text != "The user greets me." || resp.Usage.OutputTokensDetails.ReasoningTokens != 12 {
					t.Fatalf("response %+v", resp)
				}
			case "tool_call":
				fc := resp.Output[1].AsFunctionCall()
				if resp.Status != responses.ResponseStatusCompleted || fc.CallID != "call_A1" || fc.Arguments != `{"city": "Paris"}` ||
					resp.OutputText() != "I'll check both." || resp.Usage.TotalTokens != 340 {
					t.Fatalf("response %+v", resp)
				}
			case "text":
				if resp.OutputText() != `Hello, "world" <ok> & bye` || resp.Usage.InputTokensDetails.CachedTokens != 100 {
					t.Fatalf("response %+v", resp)
				}
			}
		})
	}
}

func TestOpenAISDKReadsResponse(t *testing.T) {
	req := []byte(`{"model":"local-model","input":"hi","tools":[{"type":"custom","name":"apply_patch"},{"type":"function","name":"f"}]}`)
	out, err := ChatToResponses([]byte(`{"id":"chatcmpl-5","created":3,"choices":[{"message":{"content":"hello","reasoning_content":"r",
		"tool_calls":[{"id":"call_1","function":{"name":"f","arguments":"{}"}},{"id":"call_2","function":{"name":"apply_patch","arguments":"{\"input\":\"p\"}"}}]},
		"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":4,"completion_tokens":6}}`), req)
	if err != nil {
		t.Fatal(err)
	}
	var resp responses.Response
	if err := json.Unmarshal(out, &resp); err != nil {
		t.Fatal(err)
	}
	if resp.ID != "resp_5" || resp.Status != responses.ResponseStatusCompleted || resp.OutputText() != "hello" || len(resp.Output) != 4 {
		t.Fatalf("response = %+v", resp)
	}
	if fc := resp.Output[2].AsFunctionCall(); fc.CallID != "call_1" || fc.Name != "f" {
		t.Errorf("function call = %+v", fc)
	}
	if cc := resp.Output[3].AsCustomToolCall(); cc.Input != "p" || cc.Name != "apply_patch" || cc.CallID != "call_2" {
		t.Errorf("custom tool call = %+v", cc)
	}
	if resp.Usage.TotalTokens != 10 {
		t.Errorf("usage = %+v", resp.Usage)
	}
}
