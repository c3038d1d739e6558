package node

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/rs/zerolog"

	"helexa/roles/config"
)

// testNeuron is a neuron on a test HTTP server.
type testNeuron struct {
	s   *Server
	srv *httptest.Server
	dir string
}

// modelsDir makes a models folder linking the named shared models.
func modelsDir(t testing.TB, names ...string) string {
	t.Helper()
	shared := sharedDir(t)
	dir := t.TempDir()
	for _, n := range names {
		src, err := filepath.Abs(filepath.Join(shared, "models", n))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(src, filepath.Join(dir, n)); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func testConfig(dir string) config.Neuron {
	f := false
	// modelsDir links the shared models: follow links out of the folder.
	return config.Neuron{ModelsDirs: []string{dir}, MaxInFlight: 2, MaxQueueDepth: 4, MaxWait: config.Duration(5 * time.Second), DemoModel: &f,
		FollowSymlinks: true}
}

func startNeuron(t testing.TB, cfg config.Neuron, hooks engineHooks) *testNeuron {
	t.Helper()
	s, err := newServer(cfg, zerolog.New(io.Discard), hooks)
	if err != nil {
		t.Fatal(err)
	}
	return &testNeuron{s: s, srv: newHTTPTest(t, s), dir: cfg.ModelsDirs[0]}
}

// newHTTPTest serves s until the test ends, then shuts it down.
func newHTTPTest(t testing.TB, s *Server) *httptest.Server {
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(func() {
		srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return srv
}

// do sends a JSON request and decodes the JSON answer into out (when not
// nil); it returns the status.
func (n *testNeuron) do(t testing.TB, method, path string, body any, out any) int {
	t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	default:
		data, _ := json.Marshal(b)
		r = bytes.NewReader(data)
	}
	req, _ := http.NewRequest(method, n.srv.URL+path, r)
	req.Header.Set("Content-Type", "application/json")
	if n.s.cfg.Token != "" {
		req.Header.Set("Authorization", "Bearer "+n.s.cfg.Token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("%s %s: %d %s: %v", method, path, resp.StatusCode, data, err)
		}
	}
	return resp.StatusCode
}

func (n *testNeuron) load(t testing.TB, model string, ctxLen int) {
	t.Helper()
	var out map[string]any
	if st := n.do(t, "POST", "/models/load", map[string]any{"model": model, "context_length": ctxLen}, &out); st != 200 {
		t.Fatalf("load %s: %d %v", model, st, out)
	}
}

func (n *testNeuron) client() *openai.Client {
	c := openai.NewClient(option.WithBaseURL(n.srv.URL+"/v1/"), option.WithAPIKey("unused"), option.WithMaxRetries(0))
	return &c
}

type errEnvelope struct {
	Error struct {
		Message string  `json:"message"`
		Type    string  `json:"type"`
		Code    *string `json:"code"`
		Param   *string `json:"param"`
	} `json:"error"`
}

func param(e errEnvelope) string {
	if e.Error.Param == nil {
		return ""
	}
	return *e.Error.Param
}

func code(e errEnvelope) string {
	if e.Error.Code == nil {
		return ""
	}
	return *e.Error.Code
}

func TestModelsListingAndCorruptFile(t *testing.T) {
	dir := modelsDir(t, "stories260K.gguf")
	if err := os.WriteFile(filepath.Join(dir, "broken.gguf"), []byte("GGUF but not really"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("not a model"), 0o644); err != nil {
		t.Fatal(err)
	}
	n := startNeuron(t, testConfig(dir), (&synthEngine{}).hooks())
	var list struct {
		Data []modelEntry `json:"data"`
	}
	if st := n.do(t, "GET", "/models", nil, &list); st != 200 {
		t.Fatalf("GET /models: %d", st)
	}
	if len(list.Data) != 2 {
		t.Fatalf("want 2 models, got %+v", list.Data)
	}
	broken, good := list.Data[0], list.Data[1]
	if broken.ID != "broken" || broken.Status != statusFailed || broken.Error == "" {
		t.Fatalf("broken file: %+v", broken)
	}
	if good.ID != "stories260K" || good.Status != statusAvailable || good.Format != "gguf" || good.SizeBytes == 0 || good.ContextLength <= 0 {
		t.Fatalf("good file: %+v", good)
	}
	// loading the broken one is a 422; the good one still loads and serves
	var e errEnvelope
	if st := n.do(t, "POST", "/models/load", map[string]any{"model": "broken"}, &e); st != 422 {
		t.Fatalf("load broken: %d %+v", st, e)
	}
	// Answers name the model, never the file's path.
	if strings.Contains(broken.Error, dir) || strings.Contains(e.Error.Message, dir) || !strings.Contains(e.Error.Message, "broken") {
		t.Fatalf("errors tell the file system: %q, %q", broken.Error, e.Error.Message)
	}
	n.load(t, "stories260K", 0)
	resp, err := n.client().Completions.New(context.Background(), openai.CompletionNewParams{
		Model: "stories260K", Prompt: openai.CompletionNewParamsPromptUnion{OfString: openai.String("Once upon a time")},
		MaxTokens: openai.Int(5), Temperature: openai.Float(0)})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Usage.CompletionTokens != 5 || resp.Choices[0].FinishReason != "length" {
		t.Fatalf("completion: %+v", resp)
	}
}

func TestLoadLifecycle(t *testing.T) {
	eng := &synthEngine{}
	n := startNeuron(t, testConfig(modelsDir(t, "stories260K.gguf")), eng.hooks())
	var e errEnvelope
	if st := n.do(t, "POST", "/models/load", map[string]any{"model": "nope"}, &e); st != 404 || code(e) != "model_not_found" {
		t.Fatalf("load missing: %d %+v", st, e)
	}
	if st := n.do(t, "POST", "/models/load", `{"model": `, &e); st != 400 {
		t.Fatalf("malformed load: %d %+v", st, e)
	}
	if st := n.do(t, "POST", "/models/unload", map[string]any{"model": "stories260K"}, &e); st != 404 {
		t.Fatalf("unload of a model not loaded: %d", st)
	}
	// a chat before loading is model_not_loaded
	if st := n.do(t, "POST", "/v1/chat/completions", map[string]any{"model": "stories260K", "messages": []any{map[string]any{"role": "user", "content": "hi"}}}, &e); st != 404 || code(e) != "model_not_loaded" {
		t.Fatalf("chat before load: %d %+v", st, e)
	}
	// concurrent loads coalesce into one
	var wg sync.WaitGroup
	for range 5 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var out struct {
				Status string     `json:"status"`
				Model  modelEntry `json:"model"`
			}
			if st := n.do(t, "POST", "/models/load", map[string]any{"model": "stories260K"}, &out); st != 200 || out.Status != "loaded" || out.Model.Status != statusLoaded {
				t.Errorf("load: %d %+v", st, out)
			}
		}()
	}
	wg.Wait()
	if got := eng.loads.Load(); got != 1 {
		t.Fatalf("5 concurrent loads ran the engine's load %d times", got)
	}
	n.load(t, "stories260K", 0) // idempotent
	if got := eng.loads.Load(); got != 1 {
		t.Fatalf("a second load reloaded (%d loads)", got)
	}
	var health healthBody
	n.do(t, "GET", "/health", nil, &health)
	if health.Status != "ok" || len(health.Models) != 1 || health.Models[0].MaxInFlight != 2 || len(health.Devices) != 1 || health.Devices[0].Kind != "cpu" {
		t.Fatalf("health: %+v", health)
	}
	var out map[string]any
	if st := n.do(t, "POST", "/models/unload", map[string]any{"model": "stories260K"}, &out); st != 200 || out["status"] != "unloaded" {
		t.Fatalf("unload: %d %v", st, out)
	}
	if st := n.do(t, "POST", "/models/unload", map[string]any{"model": "stories260K"}, &e); st != 404 {
		t.Fatalf("second unload: %d", st)
	}
}

func TestInsufficientMemory(t *testing.T) {
	n := startNeuron(t, testConfig(modelsDir(t, "stories260K.gguf")), (&synthEngine{}).hooks())
	n.s.devices[0].memFree = func() (int64, error) { return 1 << 20, nil }
	var e errEnvelope
	if st := n.do(t, "POST", "/models/load", map[string]any{"model": "stories260K"}, &e); st != 507 || code(e) != "insufficient_memory" {
		t.Fatalf("load without memory: %d %+v", st, e)
	}
	var list struct {
		Data []modelEntry `json:"data"`
	}
	n.do(t, "GET", "/models", nil, &list)
	if list.Data[0].Status != statusAvailable {
		t.Fatalf("a refused load changed the model's status: %+v", list.Data[0])
	}
	n.s.mu.Lock()
	reserved := n.s.devices[0].reserved
	n.s.mu.Unlock()
	if reserved != 0 {
		t.Fatalf("a refused load left %d bytes reserved", reserved)
	}
}

func TestAuth(t *testing.T) {
	cfg := testConfig(modelsDir(t))
	cfg.Token = "sekrit"
	n := startNeuron(t, cfg, (&synthEngine{}).hooks())
	for _, c := range []struct {
		path, auth string
		want       int
	}{{"/health", "", 200}, {"/models", "", 401}, {"/models", "Bearer wrong", 401}, {"/models", "Bearer sekrit", 200}, {"/discovery", "Bearer sekrit", 200}} {
		req, _ := http.NewRequest("GET", n.srv.URL+c.path, nil)
		if c.auth != "" {
			req.Header.Set("Authorization", c.auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Errorf("%s with %q: %d, want %d", c.path, c.auth, resp.StatusCode, c.want)
		}
	}
}

func TestDiscoveryAndVersion(t *testing.T) {
	n := startNeuron(t, testConfig(modelsDir(t)), (&synthEngine{}).hooks())
	var d discoveryBody
	if st := n.do(t, "GET", "/discovery", nil, &d); st != 200 {
		t.Fatal(st)
	}
	if d.CUDA.Available || d.CUDA.Reason == "" || len(d.Devices) != 1 || d.Devices[0].Kind != "cpu" || d.OS == "" {
		t.Fatalf("discovery: %+v", d)
	}
	var v versionBody
	if n.do(t, "GET", "/version", nil, &v); v.GoVersion == "" || v.Version == "" {
		t.Fatalf("version: %+v", v)
	}
	var e errEnvelope
	if st := n.do(t, "GET", "/nope", nil, &e); st != 404 || e.Error.Message == "" {
		t.Fatalf("unknown route: %d %+v", st, e)
	}
}

func chatParams(model, text string, maxTokens int64) openai.ChatCompletionNewParams {
	return openai.ChatCompletionNewParams{Model: model, Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage(text)},
		MaxTokens: openai.Int(maxTokens), Temperature: openai.Float(0)}
}

func TestChatStreamingMatchesNonStreaming(t *testing.T) {
	eng := &synthEngine{}
	n := startNeuron(t, testConfig(modelsDir(t, "stories260K.gguf")), eng.hooks())
	n.load(t, "stories260K", 256)
	cl := n.client()
	ctx := context.Background()
	p := chatParams("stories260K", "Tell me a story about a cat.", 12)
	full, err := cl.Chat.Completions.New(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if full.Usage.CompletionTokens != 12 || full.Choices[0].FinishReason != "length" || full.Choices[0].Message.Content == "" {
		t.Fatalf("chat: %+v", full)
	}
	p.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
	st := cl.Chat.Completions.NewStreaming(ctx, p)
	var text strings.Builder
	chunks, finish := 0, ""
	var u openai.CompletionUsage
	for st.Next() {
		c := st.Current()
		if len(c.Choices) > 0 {
			text.WriteString(c.Choices[0].Delta.Content)
			if c.Choices[0].FinishReason != "" {
				finish = c.Choices[0].FinishReason
			}
			chunks++
		}
		if c.Usage.TotalTokens > 0 {
			u = c.Usage
		}
	}
	if err := st.Err(); err != nil {
		t.Fatal(err)
	}
	if text.String() != full.Choices[0].Message.Content || finish != "length" {
		t.Fatalf("stream %q (%s), non-stream %q", text.String(), finish, full.Choices[0].Message.Content)
	}
	if chunks < 10 {
		t.Fatalf("only %d chunks for 12 tokens", chunks)
	}
	// the second identical request reuses the prompt's KV
	if u.PromptTokensDetails.CachedTokens != u.PromptTokens-1 || u.CompletionTokens != 12 {
		t.Fatalf("usage of the repeated request: %+v", u)
	}

	// logprobs: one entry per token, the chosen token's among the top
	lp := chatParams("stories260K", "Tell me a story about a cat.", 6)
	lp.Logprobs, lp.TopLogprobs = openai.Bool(true), openai.Int(3)
	r, err := cl.Chat.Completions.New(ctx, lp)
	if err != nil {
		t.Fatal(err)
	}
	entries := r.Choices[0].Logprobs.Content
	if len(entries) != 6 {
		t.Fatalf("%d logprob entries for 6 tokens", len(entries))
	}
	for _, e := range entries {
		if len(e.TopLogprobs) != 3 || e.TopLogprobs[0].Logprob < e.TopLogprobs[1].Logprob || e.Logprob > 0 ||
			e.TopLogprobs[0].Token != e.Token || e.TopLogprobs[0].Logprob != e.Logprob {
			t.Fatalf("greedy logprob entry %+v", e)
		}
	}

	// seeded sampling repeats; another seed differs
	sample := func(seed int64) string {
		p := chatParams("stories260K", "Tell me a story about a cat.", 24)
		p.Temperature, p.Seed = openai.Float(1.5), openai.Int(seed)
		p.TopP = openai.Float(1)
		r, err := cl.Chat.Completions.New(ctx, p, option.WithJSONSet("top_k", 0), option.WithJSONSet("min_p", 0))
		if err != nil {
			t.Fatal(err)
		}
		return r.Choices[0].Message.Content
	}
	a, b, c := sample(42), sample(42), sample(7)
	if a != b || a == c {
		t.Fatalf("seed 42 gave %q and %q; seed 7 gave %q", a, b, c)
	}
}

func TestPromptReuse(t *testing.T) {
	eng := &synthEngine{}
	cfg := testConfig(modelsDir(t, "stories260K.gguf"))
	cfg.MaxInFlight = 1
	n := startNeuron(t, cfg, eng.hooks())
	n.load(t, "stories260K", 512)
	cl := n.client()
	ctx := context.Background()
	turn1 := []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Once upon a time there was a little dog who liked to run in the park.")}
	r1, err := cl.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: "stories260K", Messages: turn1, MaxTokens: openai.Int(8), Temperature: openai.Float(0)})
	if err != nil {
		t.Fatal(err)
	}
	before := eng.computed.Load()
	turn2 := append(turn1, openai.AssistantMessage(r1.Choices[0].Message.Content), openai.UserMessage("And then?"))
	r2, err := cl.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: "stories260K", Messages: turn2, MaxTokens: openai.Int(8), Temperature: openai.Float(0)})
	if err != nil {
		t.Fatal(err)
	}
	cached := r2.Usage.PromptTokensDetails.CachedTokens
	if cached < r1.Usage.PromptTokens-1 {
		t.Fatalf("second turn reused %d tokens; the first turn's prompt alone was %d", cached, r1.Usage.PromptTokens)
	}
	// computed = the uncached prompt tail + one step per generated token but the last
	if got, want := eng.computed.Load()-before, int64(r2.Usage.PromptTokens-cached+r2.Usage.CompletionTokens-1); got != want {
		t.Fatalf("second turn computed %d tokens, want %d", got, want)
	}
}

func TestConcurrentRequestsKeepTheirOwnKV(t *testing.T) {
	eng := &synthEngine{delay: time.Millisecond}
	cfg := testConfig(modelsDir(t, "stories260K.gguf"))
	cfg.MaxInFlight, cfg.MaxQueueDepth = 3, 16
	n := startNeuron(t, cfg, eng.hooks())
	n.load(t, "stories260K", 256)
	cl := n.client()
	prompts := []string{"The sun", "A big red ball", "Lily and Ben went", "One day", "The old tree"}
	want := make([]string, len(prompts))
	for i, p := range prompts {
		r, err := cl.Completions.New(context.Background(), openai.CompletionNewParams{Model: "stories260K",
			Prompt: openai.CompletionNewParamsPromptUnion{OfString: openai.String(p)}, MaxTokens: openai.Int(20), Temperature: openai.Float(0)})
		if err != nil {
			t.Fatal(err)
		}
		want[i] = r.Choices[0].Text
	}
	var wg sync.WaitGroup
	for round := range 2 {
		for i, p := range prompts {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r, err := cl.Completions.New(context.Background(), openai.CompletionNewParams{Model: "stories260K",
					Prompt: openai.CompletionNewParamsPromptUnion{OfString: openai.String(p)}, MaxTokens: openai.Int(20), Temperature: openai.Float(0)})
				if err != nil {
					t.Error(err)
					return
				}
				if r.Choices[0].Text != want[i] {
					t.Errorf("round %d prompt %q: concurrent %q, alone %q", round, p, r.Choices[0].Text, want[i])
				}
			}()
		}
	}
	wg.Wait()
	if eng.maxSeen.Load() > 1 {
		t.Fatalf("%d forward passes ran at once on one device", eng.maxSeen.Load())
	}
}

func TestBadRequests(t *testing.T) {
	n := startNeuron(t, testConfig(modelsDir(t, "stories260K.gguf")), (&synthEngine{}).hooks())
	n.load(t, "stories260K", 64)
	f := func(path string, body any, status int, wantCode string) {
		t.Helper()
		var e errEnvelope
		if st := n.do(t, "POST", path, body, &e); st != status || (wantCode != "" && code(e) != wantCode) || e.Error.Message == "" {
			t.Fatalf("%s %v: %d %+v, want %d %s", path, body, st, e, status, wantCode)
		}
	}
	long := strings.Repeat("The cat sat on the mat. ", 40)
	f("/v1/chat/completions", `{"model": "stories260K", "messages": [`, 400, "")
	f("/v1/chat/completions", ``, 400, "")
	f("/v1/chat/completions", map[string]any{"model": "stories260K", "messages": "hi"}, 400, "")
	f("/v1/chat/completions", map[string]any{"model": "stories260K", "messages": []any{}}, 400, "")
	f("/v1/chat/completions", map[string]any{"model": "stories260K", "messages": []any{map[string]any{"role": "user", "content": long}}}, 400, "context_length_exceeded")
	f("/v1/completions", map[string]any{"model": "stories260K", "prompt": long}, 400, "context_length_exceeded")
	f("/v1/completions", map[string]any{"model": "stories260K", "prompt": []int{1, 99999}}, 400, "")
	f("/v1/completions", map[string]any{"model": "stories260K", "prompt": "x", "temperature": -1}, 400, "")
	f("/v1/completions", map[string]any{"model": "stories260K", "prompt": "x", "n": 3}, 400, "")
	f("/v1/completions", map[string]any{"model": "stories260K", "prompt": "x", "stop": 5}, 400, "")
	f("/v1/completions", map[string]any{"model": "stories260K", "prompt": "x", "max_tokens": "many"}, 400, "")
	f("/v1/completions", map[string]any{"model": "stories260K", "prompt": "x", "logit_bias": map[string]any{"abc": 1}}, 400, "")
	f("/tokenize", map[string]any{"model": "stories260K"}, 400, "")
	f("/tokenize", map[string]any{"model": "other", "content": "x"}, 404, "model_not_found")

	// the message says both numbers
	var e errEnvelope
	n.do(t, "POST", "/v1/completions", map[string]any{"model": "stories260K", "prompt": long}, &e)
	if !strings.Contains(e.Error.Message, "64") {
		t.Fatalf("context error does not give the context: %q", e.Error.Message)
	}
	// a prompt that fits but leaves less room than max_tokens generates to the end
	var r completionResponse
	if st := n.do(t, "POST", "/v1/completions", map[string]any{"model": "stories260K", "prompt": strings.Repeat("The cat sat. ", 4), "max_tokens": 32000, "temperature": 0}, &r); st != 200 {
		t.Fatalf("fits but max_tokens too large: %d", st)
	}
	if *r.Choices[0].FinishReason != "length" || r.Usage.PromptTokens+r.Usage.CompletionTokens != 64 {
		t.Fatalf("want generation to the end of the context: %+v %+v", r.Usage, r.Choices[0])
	}
}

func TestTokenize(t *testing.T) {
	n := startNeuron(t, testConfig(modelsDir(t, "stories260K.gguf")), (&synthEngine{}).hooks())
	n.load(t, "stories260K", 0)
	var r tokenizeResponse
	if st := n.do(t, "POST", "/tokenize", map[string]any{"model": "stories260K", "content": "Once upon a time"}, &r); st != 200 {
		t.Fatal(st)
	}
	// the reference's prompt tokens without the BOS
	if want := []int32{403, 407, 261, 378}; !equal(r.Tokens, want) || r.Count != 4 {
		t.Fatalf("tokenize: %+v, want %v", r, want)
	}
	var m tokenizeResponse
	if st := n.do(t, "POST", "/tokenize", map[string]any{"model": "stories260K", "messages": []any{map[string]any{"role": "user", "content": "Once upon a time"}}}, &m); st != 200 {
		t.Fatal(st)
	}
	if m.Count <= r.Count || m.Tokens[0] != 1 {
		t.Fatalf("chat tokenize: %+v", m)
	}
}

func TestStopStrings(t *testing.T) {
	eng := &synthEngine{script: "The cat sat on the mat and purred."}
	n := startNeuron(t, testConfig(modelsDir(t, "stories260K.gguf")), eng.hooks())
	n.load(t, "stories260K", 256)
	cl := n.client()
	ctx := context.Background()
	r, err := cl.Completions.New(ctx, openai.CompletionNewParams{Model: "stories260K", Prompt: openai.CompletionNewParamsPromptUnion{OfString: openai.String("x")},
		MaxTokens: openai.Int(100), Temperature: openai.Float(0)})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(r.Choices[0].Text); got != "The cat sat on the mat and purred." || r.Choices[0].FinishReason != "stop" {
		t.Fatalf("scripted completion %q (%s)", r.Choices[0].Text, r.Choices[0].FinishReason)
	}
	for _, stop := range []string{"on the m", "at a", "purred."} {
		p := openai.CompletionNewParams{Model: "stories260K", Prompt: openai.CompletionNewParamsPromptUnion{OfString: openai.String("x")},
			MaxTokens: openai.Int(100), Temperature: openai.Float(0), Stop: openai.CompletionNewParamsStopUnion{OfString: openai.String(stop)}}
		want := r.Choices[0].Text[:strings.Index(r.Choices[0].Text, stop)]
		got, err := cl.Completions.New(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		if got.Choices[0].Text != want || got.Choices[0].FinishReason != "stop" {
			t.Fatalf("stop %q: %q (%s), want %q", stop, got.Choices[0].Text, got.Choices[0].FinishReason, want)
		}
		st := cl.Completions.NewStreaming(ctx, p)
		var b strings.Builder
		for st.Next() {
			if c := st.Current(); len(c.Choices) > 0 {
				b.WriteString(c.Choices[0].Text)
			}
		}
		if st.Err() != nil || b.String() != want {
			t.Fatalf("streamed stop %q: %q, want %q (%v)", stop, b.String(), want, st.Err())
		}
	}
}

func TestToolCallsAndReasoning(t *testing.T) {
	eng := &synthEngine{script: `<think>The user wants weather.</think><tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}}</tool_call>`}
	n := startNeuron(t, testConfig(modelsDir(t, "stories260K.gguf")), eng.hooks())
	n.load(t, "stories260K", 512)
	n.s.mu.Lock()
	n.s.models["stories260K"].inst.tools.Reasoning = true // the test template has no <think>
	n.s.mu.Unlock()
	cl := n.client()
	ctx := context.Background()
	tool := openai.ChatCompletionFunctionTool(openai.FunctionDefinitionParam{Name: "get_weather",
		Parameters: openai.FunctionParameters{"type": "object", "properties": map[string]any{"city": map[string]any{"type": "string"}}}})
	p := chatParams("stories260K", "Weather in Paris?", 200)
	p.Tools = []openai.ChatCompletionToolUnionParam{tool}
	r, err := cl.Chat.Completions.New(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	c := r.Choices[0]
	if c.FinishReason != "tool_calls" || len(c.Message.ToolCalls) != 1 || c.Message.ToolCalls[0].Function.Name != "get_weather" ||
		c.Message.ToolCalls[0].Function.Arguments != `{"city":"Paris"}` || c.Message.ToolCalls[0].ID == "" {
		t.Fatalf("tool call: %+v", c)
	}
	var raw map[string]any
	_ = json.Unmarshal([]byte(r.RawJSON()), &raw)
	msg := raw["choices"].([]any)[0].(map[string]any)["message"].(map[string]any)
	if msg["reasoning_content"] != "The user wants weather." {
		t.Fatalf("reasoning: %v", msg)
	}
	// streaming: the same call, as deltas
	st := cl.Chat.Completions.NewStreaming(ctx, p)
	var name, args, id, finish string
	for st.Next() {
		ch := st.Current()
		if len(ch.Choices) == 0 {
			continue
		}
		for _, tc := range ch.Choices[0].Delta.ToolCalls {
			name += tc.Function.Name
			args += tc.Function.Arguments
			id += tc.ID
		}
		if ch.Choices[0].FinishReason != "" {
			finish = ch.Choices[0].FinishReason
		}
	}
	if st.Err() != nil || name != "get_weather" || args != `{"city":"Paris"}` || id == "" || finish != "tool_calls" {
		t.Fatalf("streamed tool call: %q %q %q %q %v", name, args, id, finish, st.Err())
	}
	// without tools in the request the text stays content
	r, err = cl.Chat.Completions.New(ctx, chatParams("stories260K", "Weather in Paris?", 200))
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Choices[0].Message.ToolCalls) != 0 || !strings.Contains(r.Choices[0].Message.Content, "<tool_call>") {
		t.Fatalf("no tools requested: %+v", r.Choices[0].Message)
	}
}

func TestDisconnectStopsGeneration(t *testing.T) {
	eng := &synthEngine{delay: 5 * time.Millisecond}
	n := startNeuron(t, testConfig(modelsDir(t, "stories260K.gguf")), eng.hooks())
	n.load(t, "stories260K", 512)
	ctx, cancel := context.WithCancel(context.Background())
	body := `{"model":"stories260K","prompt":"Once","max_tokens":400,"temperature":0,"stream":true}`
	req, _ := http.NewRequestWithContext(ctx, "POST", n.srv.URL+"/v1/completions", strings.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	readEvents(t, resp.Body, 6)
	cancel()
	resp.Body.Close()
	inst, _ := n.s.instanceFor("stories260K")
	deadline := time.Now().Add(5 * time.Second)
	for {
		in, q := inst.gate.counts()
		if in == 0 && q == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("generation still running after the client left (in flight %d)", in)
		}
		time.Sleep(5 * time.Millisecond)
	}
	c1 := eng.computed.Load()
	time.Sleep(50 * time.Millisecond)
	if c2 := eng.computed.Load(); c2 != c1 || c1 > 100 {
		t.Fatalf("forward passes continued after the disconnect: %d then %d tokens", c1, c2)
	}
	// the slot is free again: a new request runs
	if _, err := n.client().Completions.New(context.Background(), openai.CompletionNewParams{Model: "stories260K",
		Prompt: openai.CompletionNewParamsPromptUnion{OfString: openai.String("Once")}, MaxTokens: openai.Int(3)}); err != nil {
		t.Fatal(err)
	}
}

func TestQueueFull(t *testing.T) {
	eng := &synthEngine{delay: 10 * time.Millisecond}
	cfg := testConfig(modelsDir(t, "stories260K.gguf"))
	cfg.MaxInFlight, cfg.MaxQueueDepth = 1, 1
	n := startNeuron(t, cfg, eng.hooks())
	n.load(t, "stories260K", 256)
	inst, _ := n.s.instanceFor("stories260K")
	body := map[string]any{"model": "stories260K", "prompt": "Once", "max_tokens": 80, "temperature": 0}
	var wg sync.WaitGroup
	statuses := make(chan int, 2)
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses <- n.do(t, "POST", "/v1/completions", body, nil)
		}()
	}
	// wait until one runs and one waits
	deadline := time.Now().Add(5 * time.Second)
	for {
		in, q := inst.gate.counts()
		if in == 1 && q == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("never saw 1 running and 1 queued (%d, %d)", in, q)
		}
		time.Sleep(time.Millisecond)
	}
	data, _ := json.Marshal(body)
	resp, err := http.Post(n.srv.URL+"/v1/completions", "application/json", bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	var e errEnvelope
	_ = json.NewDecoder(resp.Body).Decode(&e)
	resp.Body.Close()
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" || e.Error.Message == "" {
		t.Fatalf("third request: %d Retry-After=%q %+v", resp.StatusCode, resp.Header.Get("Retry-After"), e)
	}
	wg.Wait()
	close(statuses)
	for st := range statuses {
		if st != 200 {
			t.Fatalf("admitted request got %d", st)
		}
	}
	var metrics bytes.Buffer
	n.s.metrics.set.WritePrometheus(&metrics)
	for _, want := range []string{`neuron_rejections_total{model="stories260K",reason="queue_full"} 1`, `neuron_completion_tokens_total{model="stories260K"} 160`, "neuron_time_to_first_token_seconds_bucket", "neuron_queue_depth"} {
		if !strings.Contains(metrics.String(), want) {
			t.Fatalf("metrics lack %q:\n%s", want, metrics.String())
		}
	}
}

func TestUnloadDrainsInFlight(t *testing.T) {
	eng := &synthEngine{delay: 2 * time.Millisecond}
	n := startNeuron(t, testConfig(modelsDir(t, "stories260K.gguf")), eng.hooks())
	n.load(t, "stories260K", 256)
	done := make(chan completionResponse, 1)
	go func() {
		var r completionResponse
		n.do(t, "POST", "/v1/completions", map[string]any{"model": "stories260K", "prompt": "Once", "max_tokens": 40, "temperature": 0}, &r)
		done <- r
	}()
	inst, _ := n.s.instanceFor("stories260K")
	for {
		if in, _ := inst.gate.counts(); in == 1 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	if st := n.do(t, "POST", "/models/unload", map[string]any{"model": "stories260K"}, nil); st != 200 {
		t.Fatalf("unload: %d", st)
	}
	r := <-done
	if r.Usage.CompletionTokens != 40 {
		t.Fatalf("the in-flight request did not finish before the unload: %+v", r)
	}
}

func TestDemoDownload(t *testing.T) {
	shared := sharedDir(t)
	data, err := os.ReadFile(filepath.Join(shared, "models", "stories260K.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	var hits int
	var mu sync.Mutex
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hits++
		mu.Unlock()
		switch r.URL.Path {
		case "/tiny/stories260K.gguf":
			http.ServeContent(w, r, "stories260K.gguf", time.Time{}, bytes.NewReader(data))
		case "/bad/junk.gguf":
			_, _ = w.Write([]byte("<html>not a model</html>"))
		default:
			http.NotFound(w, r)
		}
	}))
	defer ts.Close()

	dir := filepath.Join(t.TempDir(), "models")
	cfg := testConfig(dir)
	yes := true
	cfg.DemoModel = &yes
	cfg.DemoModelURL = ts.URL + "/tiny/stories260K.gguf"
	var logs bytes.Buffer
	s, err := newServer(cfg, zerolog.New(&syncWriter{w: &logs}), (&synthEngine{}).hooks())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- s.Start(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s.mu.Lock()
		e := s.models["stories260K"]
		s.mu.Unlock()
		if e != nil && e.status == statusAvailable {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("demo model not listed; logs:\n%s", logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	_ = s.Shutdown(context.Background())
	got, err := os.ReadFile(filepath.Join(dir, "stories260K.gguf"))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("downloaded file differs (%v)", err)
	}
	if !strings.Contains(logs.String(), `"percent":100`) {
		t.Fatalf("no progress line in the logs:\n%s", logs.String())
	}
	// a second start finds the model and does not download again
	mu.Lock()
	before := hits
	mu.Unlock()
	s2, _ := newServer(cfg, zerolog.New(io.Discard), (&synthEngine{}).hooks())
	ctx2, cancel2 := context.WithCancel(context.Background())
	cancel2()
	_ = s2.Start(ctx2)
	_ = s2.Shutdown(context.Background())
	mu.Lock()
	if hits != before {
		t.Fatalf("downloaded again although the folder had a model")
	}
	mu.Unlock()

	// a download that is not a GGUF file leaves nothing behind
	dir2 := t.TempDir()
	if _, err := download(context.Background(), http.DefaultClient, ts.URL+"/bad/junk.gguf", filepath.Join(dir2, "junk.gguf"), nil); err == nil {
		t.Fatal("a non-GGUF download was accepted")
	}
	if _, err := download(context.Background(), http.DefaultClient, ts.URL+"/missing.gguf", filepath.Join(dir2, "m.gguf"), nil); err == nil {
		t.Fatal("a 404 download was accepted")
	}
	if ents, _ := os.ReadDir(dir2); len(ents) != 0 {
		t.Fatalf("failed downloads left %d files", len(ents))
	}
}

type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

func TestShutdownFinishesInFlight(t *testing.T) {
	eng := &synthEngine{delay: 2 * time.Millisecond}
	cfg := testConfig(modelsDir(t, "stories260K.gguf"))
	s, err := newServer(cfg, zerolog.New(io.Discard), eng.hooks())
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	n := &testNeuron{s: s, srv: srv}
	n.load(t, "stories260K", 256)
	done := make(chan completionResponse, 1)
	go func() {
		var r completionResponse
		n.do(t, "POST", "/v1/completions", map[string]any{"model": "stories260K", "prompt": "Once", "max_tokens": 30, "temperature": 0}, &r)
		done <- r
	}()
	inst, _ := s.instanceFor("stories260K")
	for {
		if in, _ := inst.gate.counts(); in == 1 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if r := <-done; r.Usage.CompletionTokens != 30 {
		t.Fatalf("in-flight request cut short by shutdown: %+v", r)
	}
	var e errEnvelope
	if st := n.do(t, "POST", "/models/load", map[string]any{"model": "stories260K"}, &e); st != 503 {
		t.Fatalf("load after shutdown: %d %+v", st, e)
	}
}

func TestPreload(t *testing.T) {
	cfg := testConfig(modelsDir(t, "stories260K.gguf"))
	cfg.Preload = []string{"missing", "stories260K"}
	s, err := newServer(cfg, zerolog.New(io.Discard), (&synthEngine{}).hooks())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- s.Start(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := s.instanceFor("stories260K"); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("preload never loaded stories260K (a missing preload must not stop the others)")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestUnloadCancelsAfterTheWait(t *testing.T) {
	old := unloadWait
	unloadWait = 50 * time.Millisecond
	defer func() { unloadWait = old }()
	eng := &synthEngine{delay: 5 * time.Millisecond}
	n := startNeuron(t, testConfig(modelsDir(t, "stories260K.gguf")), eng.hooks())
	n.load(t, "stories260K", 512)
	done := make(chan int, 1)
	go func() {
		done <- n.do(t, "POST", "/v1/completions", map[string]any{"model": "stories260K", "prompt": "Once", "max_tokens": 400, "temperature": 0}, nil)
	}()
	inst, _ := n.s.instanceFor("stories260K")
	for {
		if in, _ := inst.gate.counts(); in == 1 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	start := time.Now()
	if st := n.do(t, "POST", "/models/unload", map[string]any{"model": "stories260K"}, nil); st != 200 {
		t.Fatalf("unload: %d", st)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("unload took %s with a 50ms bound", took)
	}
	if st := <-done; st != 503 {
		t.Fatalf("the cut-off request got %d, want 503", st)
	}
	if c := eng.computed.Load(); c >= 400 {
		t.Fatalf("the generation ran to the end (%d tokens computed)", c)
	}
}

func TestPoisonedDevice(t *testing.T) {
	eng := &synthEngine{}
	n := startNeuron(t, testConfig(modelsDir(t, "stories260K.gguf")), eng.hooks())
	n.load(t, "stories260K", 128)
	eng.poison.Store(true)
	body := map[string]any{"model": "stories260K", "prompt": "Once", "max_tokens": 4}
	if st := n.do(t, "POST", "/v1/completions", body, nil); st != 500 {
		t.Fatalf("request on a failing device: %d", st)
	}
	var e errEnvelope
	if st := n.do(t, "POST", "/v1/completions", body, &e); st != 503 || code(e) != "device_failed" {
		t.Fatalf("request after the device failed: %d %+v", st, e)
	}
	var h healthBody
	n.do(t, "GET", "/health", nil, &h)
	if h.Status != "degraded" || h.Devices[0].Error == "" {
		t.Fatalf("health after a device failure: %+v", h)
	}
	var list struct {
		Data []modelEntry `json:"data"`
	}
	n.do(t, "GET", "/models", nil, &list)
	if list.Data[0].Status != statusFailed || list.Data[0].Error == "" {
		t.Fatalf("model on a failed device: %+v", list.Data[0])
	}
}

// TestStreamKeepAlive: while a streamed tool call is held back (the
// parser emits it whole) on a slow model, the stream carries SSE
// keep-alive comments, none before its first event, and an SDK still
// reads the call from it.
func TestStreamKeepAlive(t *testing.T) {
	defer func(d time.Duration) { keepAliveEvery = d }(keepAliveEvery)
	keepAliveEvery = 40 * time.Millisecond
	eng := &synthEngine{script: `<tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}}</tool_call>`, delay: 15 * time.Millisecond}
	n := startNeuron(t, testConfig(modelsDir(t, "stories260K.gguf")), eng.hooks())
	n.load(t, "stories260K", 512)
	body := `{"model": "stories260K", "stream": true, "max_tokens": 200, "temperature": 0,
		"messages": [{"role": "user", "content": "Weather in Paris?"}],
		"tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]}`
	resp, err := http.Post(n.srv.URL+"/v1/chat/completions", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	if strings.HasPrefix(text, ":") {
		t.Errorf("a keep-alive before the first event: %.80q", text)
	}
	if k := strings.Count(text, ": keep-alive\n\n"); k < 2 {
		t.Errorf("%d keep-alives while the call was held back for %d tokens of %v each:\n%s", k, strings.Count(text, "\n\n"), eng.delay, text)
	}
	if !strings.Contains(text, `"name":"get_weather"`) || !strings.HasSuffix(text, "data: [DONE]\n\n") {
		t.Errorf("the stream lost the call or its end:\n%s", text)
	}
	// the official SDK reads the same stream (comments skipped)
	p := chatParams("stories260K", "Weather in Paris?", 200)
	p.Tools = []openai.ChatCompletionToolUnionParam{openai.ChatCompletionFunctionTool(openai.FunctionDefinitionParam{Name: "get_weather"})}
	st := n.client().Chat.Completions.NewStreaming(context.Background(), p)
	var name string
	for st.Next() {
		if ch := st.Current(); len(ch.Choices) > 0 {
			for _, tc := range ch.Choices[0].Delta.ToolCalls {
				name += tc.Function.Name
			}
		}
	}
	if st.Err() != nil || name != "get_weather" {
		t.Fatalf("SDK over keep-alives: %q, %v", name, st.Err())
	}
}
