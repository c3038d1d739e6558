package node

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The fuzz targets drive the neuron's real echo handlers with the test
// engine (real GGUF reader, tokenizer and chat templates; a cheap forward
// pass). After every input: no handler panicked (the recover middleware
// would hide it), the device is not poisoned, no gate place or KV slot
// is held, and the answer is well formed with a status below 500.

// fuzzNeuron is a neuron for a fuzz target, with stories260K loaded.
func fuzzNeuron(f *testing.F) (*testNeuron, *instance) {
	f.Helper()
	cfg := testConfig(modelsDir(f, "stories260K.gguf"))
	cfg.MaxWait = 0
	n := startNeuron(f, cfg, (&synthEngine{}).hooks())
	n.s.panicHook = func(v any, stack []byte) {
		panic(fmt.Sprintf("handler panicked: %v\n%s", v, stack))
	}
	n.load(f, "stories260K", 96)
	return n, n.instanceOf(f, "stories260K")
}

// serve runs one request through the handler in-process.
func serve(n *testNeuron, path string, body []byte) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	n.s.Handler().ServeHTTP(rec, req)
	return rec
}

// checkAnswer fails on a server error or a malformed answer, and on
// anything a model still holds after the request.
func checkAnswer(t *testing.T, n *testNeuron, in *instance, rec *httptest.ResponseRecorder) {
	t.Helper()
	body := rec.Body.Bytes()
	if rec.Code >= 500 && rec.Code != http.StatusInsufficientStorage { // 507: a load that does not fit
		t.Fatalf("status %d: %s", rec.Code, body)
	}
	if strings.HasPrefix(rec.Header().Get("Content-Type"), "text/event-stream") {
		for _, ev := range strings.Split(strings.TrimSpace(string(body)), "\n\n") {
			data, ok := strings.CutPrefix(ev, "data: ")
			if !ok {
				t.Fatalf("malformed event %q", ev)
			}
			if data != "[DONE]" && !json.Valid([]byte(data)) {
				t.Fatalf("event is not JSON: %q", data)
			}
			if strings.Contains(data, `"error"`) && strings.Contains(data, `"server_error"`) {
				t.Fatalf("error event: %s", data)
			}
		}
	} else if !json.Valid(body) {
		t.Fatalf("status %d answer is not JSON: %q", rec.Code, body)
	}
	for _, d := range n.s.devices {
		if err := d.w.Err(); err != nil {
			t.Fatalf("device poisoned: %v", err)
		}
	}
	if in != nil {
		if f, q, b := leaked(in); f != 0 || q != 0 || b != 0 {
			t.Fatalf("leak after the request: %d in flight, %d queued, %d busy slots", f, q, b)
		}
	}
}

// seedBodies adds the chat bodies: the tests' own, the real client
// captures as they are (other dialects), and chat bodies made from them.
func seedChat(f *testing.F) {
	f.Helper()
	for _, s := range []string{
		`{"model":"stories260K","messages":[{"role":"user","content":"Once upon a time"}],"max_tokens":8}`,
		`{"model":"stories260K","messages":[{"role":"user","content":"Once"}],"stream":true,"stream_options":{"include_usage":true},"logprobs":true,"top_logprobs":3}`,
		`{"model":"stories260K","messages":[{"role":"system","content":"S"},{"role":"user","content":[{"type":"text","text":"a"}]}],"stop":["the","."],"temperature":0}`,
		`{"model":"stories260K","messages":[{"role":"user","content":"x"}],"max_tokens":9223372036854775807}`,
		`{"model":"stories260K","messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}],"tool_choice":"auto"}`,
		`{"model":"stories260K","messages":[{"role":"assistant","content":null,"tool_calls":[{"id":"1","type":"function","function":{"name":"f","arguments":"{\"a\":1}"}}]},{"role":"tool","tool_call_id":"1","content":"ok"}]}`,
		`{"model":"stories260K","messages":[{"role":"user","content":"x"}],"logit_bias":{"5":-100},"seed":-1,"top_k":-1,"repeat_last_n":-1,"min_p":0.1}`,
		`{"model":"stories260K","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:,"}}]}]}`,
		`{"model":"stories260K","messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_object"}}`,
		`{"model":"stories260K","messages":[{"role":"user","content":"x"}],"chat_template_kwargs":{"enable_thinking":false},"reasoning_effort":"low"}`,
	} {
		f.Add([]byte(s))
	}
	files, _ := filepath.Glob(filepath.Join(sharedDir(f), "clients", "*.json"))
	for _, p := range files {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		var capture struct {
			Body json.RawMessage `json:"body"`
		}
		if json.Unmarshal(data, &capture) == nil {
			f.Add([]byte(capture.Body))
		}
	}
	for _, b := range clientChatBodies(f) {
		b["model"], b["max_tokens"] = "stories260K", 4
		data, _ := json.Marshal(b)
		f.Add(data)
		// a short version too: the whole conversation exceeds the context
		if msgs, _ := b["messages"].([]any); len(msgs) > 0 {
			last, _ := msgs[len(msgs)-1].(map[string]any)
			if c, _ := last["content"].(string); len(c) > 200 {
				last["content"] = c[:200]
			}
			b["messages"] = msgs[len(msgs)-1:]
			data, _ := json.Marshal(b)
			f.Add(data)
		}
	}
}

func FuzzChatHandler(f *testing.F) {
	n, in := fuzzNeuron(f)
	seedChat(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		checkAnswer(t, n, in, serve(n, "/v1/chat/completions", body))
	})
}

func FuzzCompletionsHandler(f *testing.F) {
	n, in := fuzzNeuron(f)
	for _, s := range []string{
		`{"model":"stories260K","prompt":"Once upon a time","max_tokens":8}`,
		`{"model":"stories260K","prompt":[1,403,407],"max_tokens":4,"logprobs":3,"stream":true,"stream_options":{"include_usage":true}}`,
		`{"model":"stories260K","prompt":["The cat"],"stop":"cat","temperature":0,"seed":7}`,
		`{"model":"stories260K","prompt":[[1,2,3]],"max_completion_tokens":9223372036854775807}`,
		`{"model":"stories260K","prompt":"x","echo":true,"suffix":"y","best_of":2}`,
		`{"model":"stories260K","prompt":[1,99999,-1]}`,
		`{"model":"stories260K","prompt":"x","presence_penalty":2,"frequency_penalty":-2,"repetition_penalty":1.1,"top_p":0.5,"top_k":3}`,
		`{"model":"other","prompt":"x"}`,
		`{"prompt":"x"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		checkAnswer(t, n, in, serve(n, "/v1/completions", body))
	})
}

func FuzzLoadHandler(f *testing.F) {
	cfg := testConfig(modelsDir(f, "stories260K.gguf", "stories260K-F16.gguf"))
	n := startNeuron(f, cfg, (&synthEngine{}).hooks())
	n.s.panicHook = func(v any, stack []byte) {
		panic(fmt.Sprintf("handler panicked: %v\n%s", v, stack))
	}
	n.load(f, "stories260K", 96)
	in := n.instanceOf(f, "stories260K")
	for _, s := range []string{
		`{"model":"stories260K-F16"}`,
		`{"model":"stories260K-F16","context_length":64,"devices":[0]}`,
		`{"model":"stories260K-F16","context_length":-1}`,
		`{"model":"stories260K-F16","context_length":9223372036854775807}`,
		`{"model":"stories260K-F16","context_length":2147483647}`,
		`{"model":"stories260K-F16","devices":[7,8]}`,
		`{"model":"stories260K-F16","devices":[-1]}`,
		`{"model":"stories260K","context_length":64}`,
		`{"model":"nope"}`,
		`{"model":"../stories260K"}`,
		`{}`,
		`[]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		rec := serve(n, "/models/load", body)
		checkAnswer(t, n, in, rec)
		// Put the node back as it was: only stories260K loaded, nothing
		// else reserved.
		if v := n.s.modelView("stories260K-F16"); v.Status == statusLoaded {
			if err := n.s.unload(t.Context(), "stories260K-F16"); err != nil {
				t.Fatalf("unload: %v", err)
			}
		}
		if v := n.s.modelView("stories260K"); v.Status != statusLoaded {
			t.Fatalf("the loaded model is %s", v.Status)
		}
		n.s.mu.Lock()
		var reserved int64
		for _, d := range n.s.devices {
			reserved += d.reserved
		}
		want := in.est
		n.s.mu.Unlock()
		if reserved != want {
			t.Fatalf("devices hold %d bytes of reservations, want %d (the one loaded model)", reserved, want)
		}
	})
}
