package translate

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// checkRequestResult is the contract of a request translator on any input:
// valid JSON with a model and messages, or a 400 *Error and no output.
func checkRequestResult(t *testing.T, out []byte, info RequestInfo, err error) {
	t.Helper()
	if err != nil {
		var e *Error
		if !errors.As(err, &e) || e.Status != 400 || e.Message == "" || out != nil {
			t.Fatalf("error %v (%T), output %q", err, err, out)
		}
		return
	}
	var req struct {
		Model    string            `json:"model"`
		Messages []json.RawMessage `json:"messages"`
	}
	if err := json.Unmarshal(out, &req); err != nil {
		t.Fatalf("output is not a chat request: %v\n%s", err, out)
	}
	if req.Model == "" || req.Model != info.Model || req.Messages == nil {
		t.Fatalf("output %s, info %+v", out, info)
	}
}

func FuzzAnthropicToChat(f *testing.F) {
	for _, s := range []string{
		`{"model":"m","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}`,
		`{"model":"m","system":[{"type":"text","text":"s"}],"messages":[{"role":"assistant","content":[{"type":"tool_use","id":"t","name":"f","input":{"a":1}}]},{"role":"user","content":[{"type":"tool_result","tool_use_id":"t","content":[{"type":"text","text":"r"}],"is_error":true}]}],"tools":[{"name":"f","input_schema":{}}],"tool_choice":{"type":"any","disable_parallel_tool_use":true}}`,
		`{"model":"m","messages":[{"role":"user","content":[{"type":"image","source":{"type":"base64","media_type":"image/png","data":"QQ=="}}]}],"stream":true}`,
		`{"model":"m","messages":[{"role":"assistant","content":[{"type":"thinking","thinking":"t"}]}],"tool_choice":{"type":"tool","name":"x"}}`,
		`{"model":"","messages":null}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		out, info, err := AnthropicToChat(body)
		checkRequestResult(t, out, info, err)
		tok, model, err := AnthropicCountToTokenize(body)
		if err == nil && (model == "" || !json.Valid(tok)) {
			t.Fatalf("tokenize body %q for model %q", tok, model)
		}
	})
}

func FuzzResponsesToChat(f *testing.F) {
	for _, s := range []string{
		`{"model":"m","input":"hi","instructions":"s","max_output_tokens":5}`,
		`{"model":"m","input":[{"type":"message","role":"developer","content":[{"type":"input_text","text":"d"}]},{"type":"reasoning","summary":[{"type":"summary_text","text":"r"}]},{"type":"function_call","call_id":"c","name":"f","namespace":"n","arguments":"{}"},{"type":"function_call_output","call_id":"c","output":"o"}],"tools":[{"type":"namespace","name":"n","tools":[{"type":"function","name":"f"}]},{"type":"web_search"}]}`,
		`{"model":"m","input":[{"role":"user","content":[{"type":"input_image","image_url":"data:,x"}]}],"text":{"format":{"type":"json_schema","schema":{}}},"tool_choice":{"type":"function","name":"f"}}`,
		`{"model":"m","input":"x","previous_response_id":"resp_1"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		out, info, err := ResponsesToChat(body)
		checkRequestResult(t, out, info, err)
		if err == nil {
			// The response side must cope with whatever request was accepted.
			resp, err := ChatToResponses([]byte(`{"id":"c","choices":[{"message":{"content":"x","tool_calls":[{"id":"a","function":{"name":"n__f","arguments":"{}"}}]},"finish_reason":"stop"}]}`), body)
			if err != nil || !json.Valid(resp) {
				t.Fatalf("ChatToResponses after an accepted request: %v %q", err, resp)
			}
		}
	})
}

// addTranscripts seeds a stream fuzzer with the golden transcripts.
func addTranscripts(f *testing.F) {
	paths, _ := filepath.Glob(filepath.Join(streamDir, "*.jsonl"))
	for _, p := range paths {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(`{"choices":[{"delta":{"tool_calls":[{"function":{"arguments":"{"}}]}}]}` + "\n" +
		`{"choices":[{"delta":{"content":"x","reasoning_content":"y","tool_calls":[{"index":3,"id":"q","function":{"name":"n"}}]},"finish_reason":"length"}]}`))
}

// fuzzFeed feeds lines as chunks and closes or fails the stream as the
// input says; an unreadable chunk ends it.
func fuzzFeed(t *testing.T, s streamSink, in []byte) {
	t.Helper()
	for _, line := range bytes.Split(in, []byte("\n")) {
		switch {
		case bytes.Equal(line, []byte("[DONE]")):
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			return
		case bytes.HasPrefix(line, []byte("!fail ")):
			if err := s.Fail(string(line[6:])); err != nil {
				t.Fatal(err)
			}
			return
		}
		if err := s.Chunk(line); err != nil {
			if !errors.Is(err, ErrBadChunk) {
				t.Fatalf("Chunk: %v", err)
			}
			break // the stream has ended with an error event
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Ending twice changes nothing.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Fail("late"); err != nil {
		t.Fatal(err)
	}
}

func FuzzAnthropicStream(f *testing.F) {
	addTranscripts(f)
	f.Fuzz(func(t *testing.T, in []byte) {
		var out bytes.Buffer
		fuzzFeed(t, NewAnthropicStream(&out, "m", nil), in)
		if err := checkAnthropicEvents(out.Bytes()); err != nil {
			t.Fatalf("invalid stream: %v\n%s", err, out.Bytes())
		}
	})
}

func FuzzResponsesStream(f *testing.F) {
	addTranscripts(f)
	req := []byte(`{"model":"m","input":"x","tools":[{"type":"namespace","name":"ns","tools":[]}]}`)
	f.Fuzz(func(t *testing.T, in []byte) {
		var out bytes.Buffer
		fuzzFeed(t, NewResponsesStream(&out, req, nil), in)
		if err := checkResponsesEvents(out.Bytes()); err != nil {
			t.Fatalf("invalid stream: %v\n%s", err, out.Bytes())
		}
	})
}
