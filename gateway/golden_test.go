package gateway

import (
	"bytes"
	"encoding/json"
	"flag"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"helexa/roles/config"
)

var update = flag.Bool("update", false, "rewrite the golden transcripts in testdata/gateway")

// TestGoldenTranscripts streams each dialect, plain text and a tool call,
// through the gateway over a fake neuron and compares the bytes the client
// receives with the transcripts in testdata/gateway.
func TestGoldenTranscripts(t *testing.T) {
	a := newFakeNeuron(t, "a", "m1*")
	tg := startGateway(t, []*fakeNeuron{a}, withAlias("claude-fast", "m1"))
	cases := goldenRequests
	dir := filepath.Join("..", "testdata", "gateway")
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			code, _, got := tg.post(t, c.path, c.body)
			if code != 200 {
				t.Fatalf("status %d: %s", code, got)
			}
			path := filepath.Join(dir, c.file)
			if *update {
				if err := os.MkdirAll(dir, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("reading golden transcript (run with -update to create): %v", err)
			}
			if diff := cmp.Diff(string(want), string(got)); diff != "" {
				t.Fatalf("%s differs (-want +got):\n%s", c.file, diff)
			}
		})
	}
}

// TestRealClientRequests replays the requests Claude Code and Codex really
// send (method, path, headers and body, as captured) through the gateway
// unchanged, their model name aliased to a fake neuron's model and their API
// keys configured.
func TestRealClientRequests(t *testing.T) {
	root := filepath.Join("..", "..", "shared", "clients")
	for _, file := range []string{"claude-code-messages-request.json", "codex-responses-request.json"} {
		t.Run(file, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join(root, file))
			if err != nil {
				t.Skipf("shared client captures not available (%v)", err)
			}
			var capture struct {
				Method  string            `json:"method"`
				Path    string            `json:"path"`
				Headers map[string]string `json:"headers"`
				Body    json.RawMessage   `json:"body"`
			}
			if err := json.Unmarshal(raw, &capture); err != nil {
				t.Fatal(err)
			}
			facts, err := inspect(capture.Body)
			if err != nil || facts.Model == "" {
				t.Fatalf("capture has no model: %v", err)
			}
			a := newFakeNeuron(t, "a", "m1*")
			tg := startGateway(t, []*fakeNeuron{a}, withAlias(facts.Model, "m1"),
				func(cfg *config.Config, _ *config.Catalogue) {
					cfg.Gateway.APIKeys = []string{"sk-test-123", "sk-test"}
				})
			req, err := http.NewRequest(capture.Method, tg.srv.URL+capture.Path, bytes.NewReader(capture.Body))
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range capture.Headers {
				req.Header.Set(k, v)
			}
			req.Header.Del("Accept-Encoding")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			got, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != 200 {
				t.Fatalf("status %d: %s", resp.StatusCode, got)
			}
			if facts.Stream && !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
				t.Fatalf("content type %s", resp.Header.Get("Content-Type"))
			}
			// The captures carry tools, so the fake neuron answers with its
			// tool call; the translated stream must finish cleanly.
			end := "message_stop"
			if strings.HasPrefix(capture.Path, "/v1/responses") {
				end = "response.completed"
			}
			if !strings.Contains(string(got), "get_weather") || !strings.Contains(string(got), end) {
				t.Fatalf("answer lacks the tool call or %s:\n%.3000s", end, got)
			}
			a.mu.Lock()
			fwd := string(a.lastBody)
			a.mu.Unlock()
			if !strings.Contains(fwd, `"model":"m1"`) {
				t.Fatalf("forwarded model not rewritten: %.300s", fwd)
			}
		})
	}
}

const (
	tools  = `"tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}]`
	aTools = `"tools":[{"name":"get_weather","input_schema":{"type":"object","properties":{"city":{"type":"string"}}}}]`
	rTools = `"tools":[{"type":"function","name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}]`
)

// goldenRequests are the bodies of the golden transcripts; the handler
// fuzz targets start from them too.
var goldenRequests = []struct{ file, path, body string }{
	{"openai-chat-text.sse", "/v1/chat/completions", `{"model":"m1","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}`},
	{"openai-chat-tool-call.sse", "/v1/chat/completions", `{"model":"m1","stream":true,"messages":[{"role":"user","content":"weather in Paris?"}],` + tools + `}`},
	{"anthropic-messages-text.sse", "/v1/messages", `{"model":"claude-fast","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"hi"}]}`},
	{"anthropic-messages-tool-call.sse", "/v1/messages", `{"model":"claude-fast","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"weather in Paris?"}],` + aTools + `}`},
	{"responses-text.sse", "/v1/responses", `{"model":"m1","stream":true,"input":"hi"}`},
	{"responses-tool-call.sse", "/v1/responses", `{"model":"m1","stream":true,"input":"weather in Paris?",` + rTools + `}`},
}
