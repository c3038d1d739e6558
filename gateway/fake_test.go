package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"helexa/roles/config"
)

// fakeNeuron is an httptest neuron that follows design/neuron-api.md and
// can be told to fail, stall or stream slowly.
type fakeNeuron struct {
	t    testing.TB
	name string
	srv  *httptest.Server

	mu         sync.Mutex
	models     map[string]*fakeModel
	freeMB     int
	token      string
	down       bool          // every route answers 503 (health included)
	failInfer  int           // inference answers this status (0: normal)
	failLoad   int           // /models/load answers this status (0: normal)
	loadDelay  time.Duration // /models/load takes this long
	lastLoad   []byte        // the last /models/load body
	stall      time.Duration // inference waits this long before answering
	tokenDelay time.Duration // pause between streamed tokens
	breakAfter int           // streaming: drop the connection after this many chunks (0: never)
	busy       map[string]int
	lastBody   []byte
	lastPath   string
	fixed      []byte // when set, inference answers these bytes at once (benchmarks)
	hangUp     bool   // inference reads the body, then closes the connection without answering
	freezeAt   int    // streaming: after this many chunks, send nothing more until the client leaves (0: never)
	// streaming: before each chunk after the first, this many keep-alive
	// comments keepAliveGap apart and no data (a neuron holding text back)
	keepAlives   int
	keepAliveGap time.Duration
	hangPolls    bool   // /health and /models never answer (a frozen node)
	loadErr      string // message of a failed load (failLoad)

	loads    atomic.Int64
	unloads  atomic.Int64
	infers   atomic.Int64
	canceled atomic.Int64
}

// fakes maps a fake neuron's URL to it.
var fakes sync.Map

type fakeModel struct {
	status string
	memMB  int
	loads  int
	errMsg string // the reason of a failed model
}

func newFakeNeuron(t testing.TB, name string, models ...string) *fakeNeuron {
	f := &fakeNeuron{t: t, name: name, models: map[string]*fakeModel{}, freeMB: 16000, busy: map[string]int{}}
	for _, m := range models {
		st := statusAvailable
		id := m
		if strings.HasSuffix(m, "*") {
			id, st = strings.TrimSuffix(m, "*"), statusLoaded
		}
		f.models[id] = &fakeModel{status: st, memMB: 1000}
	}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	fakes.Store(f.srv.URL, f)
	t.Cleanup(func() { f.srv.Close(); fakes.Delete(f.srv.URL) })
	return f
}

func (f *fakeNeuron) set(fn func(f *fakeNeuron)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

func (f *fakeNeuron) status(id string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if m := f.models[id]; m != nil {
		return m.status
	}
	return ""
}

func (f *fakeNeuron) ref() config.NeuronRef {
	return config.NeuronRef{Name: f.name, Endpoint: f.srv.URL, Token: f.token}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func neuronErr(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]any{"error": map[string]any{"message": msg, "type": "server_error", "code": code}})
}

func (f *fakeNeuron) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	down, token := f.down, f.token
	f.mu.Unlock()
	if down {
		neuronErr(w, http.StatusServiceUnavailable, "down", "node is down")
		return
	}
	f.mu.Lock()
	hang := f.hangPolls
	f.mu.Unlock()
	if hang && (r.URL.Path == "/health" || r.URL.Path == "/models") {
		<-r.Context().Done()
		return
	}
	if token != "" && r.URL.Path != "/health" && r.Header.Get("Authorization") != "Bearer "+token {
		neuronErr(w, http.StatusUnauthorized, "unauthorized", "bad token")
		return
	}
	switch r.URL.Path {
	case "/health":
		f.health(w)
	case "/models":
		f.list(w)
	case "/discovery":
		writeJSON(w, 200, map[string]any{"hostname": f.name + "-host", "os": "linux", "kernel": "6.1",
			"cuda":    map[string]any{"available": false, "reason": "no libcuda.so.1"},
			"devices": []any{map[string]any{"index": 0, "kind": "cpu", "name": "fake cpu", "mem_total_mb": 32000}}})
	case "/models/load":
		f.load(w, r)
	case "/models/unload":
		f.unload(w, r)
	case "/v1/chat/completions", "/v1/completions", "/v1/embeddings":
		f.infer(w, r)
	case "/tokenize":
		body, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.lastBody, f.lastPath = body, r.URL.Path
		f.mu.Unlock()
		writeJSON(w, 200, map[string]any{"tokens": []int{1, 2, 3, 4, 5, 6, 7}, "count": 7})
	default:
		http.NotFound(w, r)
	}
}

func (f *fakeNeuron) health(w http.ResponseWriter) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var ms []any
	used := 0
	ids := make([]string, 0, len(f.models))
	for id := range f.models {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		m := f.models[id]
		if m.status == statusLoaded {
			used += m.memMB
			ms = append(ms, map[string]any{"id": id, "in_flight": f.busy[id], "queue_depth": 0, "max_in_flight": 4, "max_queue_depth": 64})
		}
	}
	writeJSON(w, 200, map[string]any{"status": "ok", "uptime_s": 12, "models": ms,
		"devices": []any{map[string]any{"index": 0, "kind": "cpu", "mem_used_mb": used, "mem_free_mb": f.freeMB}}})
}

func (f *fakeNeuron) entry(id string, m *fakeModel) map[string]any {
	e := map[string]any{"id": id, "status": m.status, "format": "gguf", "quant": "Q8_0", "size_bytes": 1 << 20,
		"mem_estimate_mb": m.memMB, "context_length": 2048, "capabilities": []string{"chat", "completion", "tools"},
		"arch": "llama", "param_count": 25_000_000, "active_param_count": 25_000_000}
	if strings.HasPrefix(id, "embed") {
		e["arch"], e["capabilities"], e["param_count"], e["active_param_count"] = "bert", []string{"embeddings", "tokenize"}, 33_000_000, 33_000_000
	}
	if m.errMsg != "" {
		e["error"] = m.errMsg
	}
	return e
}

func (f *fakeNeuron) list(w http.ResponseWriter) {
	f.mu.Lock()
	defer f.mu.Unlock()
	data := []any{}
	ids := make([]string, 0, len(f.models))
	for id := range f.models {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		data = append(data, f.entry(id, f.models[id]))
	}
	writeJSON(w, 200, map[string]any{"object": "list", "data": data})
}

func (f *fakeNeuron) load(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Model string `json:"model"`
	}
	raw, _ := io.ReadAll(r.Body)
	_ = json.Unmarshal(raw, &req)
	f.mu.Lock()
	f.lastLoad = raw
	delay, fail := f.loadDelay, f.failLoad
	f.mu.Unlock()
	if delay > 0 {
		time.Sleep(delay)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	m := f.models[req.Model]
	if m == nil {
		neuronErr(w, 404, "model_not_found", "no such model "+req.Model)
		return
	}
	if fail != 0 {
		code, msg := "insufficient_memory", "cannot load "+req.Model
		if f.loadErr != "" {
			code, msg = "unsupported_model", f.loadErr
		}
		neuronErr(w, fail, code, msg)
		return
	}
	if m.status != statusLoaded {
		if m.memMB > f.freeMB {
			neuronErr(w, 507, "insufficient_memory", fmt.Sprintf("need %d MB, %d free", m.memMB, f.freeMB))
			return
		}
		f.loads.Add(1)
		m.loads++
		m.status = statusLoaded
		f.freeMB -= m.memMB
	}
	writeJSON(w, 200, map[string]any{"status": "loaded", "model": f.entry(req.Model, m)})
}

func (f *fakeNeuron) unload(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Model string `json:"model"`
	}
	_ = json.NewDecoder(r.Body).Decode(&req)
	f.mu.Lock()
	defer f.mu.Unlock()
	m := f.models[req.Model]
	if m == nil || m.status != statusLoaded {
		neuronErr(w, 404, "model_not_loaded", "not loaded")
		return
	}
	f.unloads.Add(1)
	m.status = statusAvailable
	f.freeMB += m.memMB
	writeJSON(w, 200, map[string]any{"status": "unloaded"})
}

type fakeReq struct {
	Model         string `json:"model"`
	Stream        bool   `json:"stream"`
	StreamOptions *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
	Tools []json.RawMessage `json:"tools"`
}

func (f *fakeNeuron) infer(w http.ResponseWriter, r *http.Request) {
	f.infers.Add(1)
	f.mu.Lock()
	fixed := f.fixed
	f.mu.Unlock()
	if fixed != nil {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(fixed)
		return
	}
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	hangUp := f.hangUp
	f.mu.Unlock()
	if hangUp {
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				_ = conn.Close()
			}
		}
		return
	}
	var req fakeReq
	if err := json.Unmarshal(body, &req); err != nil {
		neuronErr(w, 400, "invalid_json", err.Error())
		return
	}
	f.mu.Lock()
	f.lastBody, f.lastPath = body, r.URL.Path
	m := f.models[req.Model]
	fail, stall, tokenDelay, breakAfter, freezeAt := f.failInfer, f.stall, f.tokenDelay, f.breakAfter, f.freezeAt
	keepAlives, keepAliveGap := f.keepAlives, f.keepAliveGap
	f.busy[req.Model]++
	f.mu.Unlock()
	defer f.set(func(f *fakeNeuron) { f.busy[req.Model]-- })
	if fail != 0 {
		neuronErr(w, fail, "fake_failure", "told to fail")
		return
	}
	if m == nil || m.status != statusLoaded {
		neuronErr(w, 404, "model_not_loaded", "model "+req.Model+" is not loaded")
		return
	}
	if stall > 0 {
		select {
		case <-time.After(stall):
		case <-r.Context().Done():
			f.canceled.Add(1)
			return
		}
	}
	if r.URL.Path == "/v1/embeddings" {
		writeJSON(w, 200, map[string]any{"object": "list", "model": req.Model,
			"data":  []any{map[string]any{"object": "embedding", "index": 0, "embedding": []float32{0.6, 0.8}}},
			"usage": map[string]any{"prompt_tokens": 5, "total_tokens": 5}})
		return
	}
	tools := len(req.Tools) > 0
	if !req.Stream {
		writeJSON(w, 200, fakeCompletion(req.Model, tools, r.URL.Path == "/v1/completions"))
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(200)
	fl := http.NewResponseController(w)
	chunks := fakeChunks(req.Model, tools)
	if req.StreamOptions != nil && req.StreamOptions.IncludeUsage {
		chunks = append(chunks, fmt.Sprintf(`{"id":"chatcmpl-fake1","object":"chat.completion.chunk","created":1700000000,"model":%q,"choices":[],"usage":{"prompt_tokens":11,"completion_tokens":3,"total_tokens":14,"prompt_tokens_details":{"cached_tokens":2}}}`, req.Model))
	}
	for i, c := range chunks {
		if breakAfter > 0 && i == breakAfter {
			if hj, ok := w.(http.Hijacker); ok {
				_ = fl.Flush()
				conn, _, err := hj.Hijack()
				if err == nil {
					_ = conn.Close()
				}
			}
			return
		}
		if freezeAt > 0 && i == freezeAt {
			<-r.Context().Done()
			f.canceled.Add(1)
			return
		}
		for k := 0; i > 0 && k < keepAlives; k++ {
			select {
			case <-time.After(keepAliveGap):
			case <-r.Context().Done():
				f.canceled.Add(1)
				return
			}
			_, _ = io.WriteString(w, ": keep-alive\n\n")
			_ = fl.Flush()
		}
		if tokenDelay > 0 && i > 0 {
			select {
			case <-time.After(tokenDelay):
			case <-r.Context().Done():
				f.canceled.Add(1)
				return
			}
		}
		if _, err := fmt.Fprintf(w, "data: %s\n\n", c); err != nil {
			f.canceled.Add(1)
			return
		}
		_ = fl.Flush()
	}
	_, _ = io.WriteString(w, "data: [DONE]\n\n")
	_ = fl.Flush()
}

func fakeCompletion(model string, tools, legacy bool) map[string]any {
	usage := map[string]any{"prompt_tokens": 11, "completion_tokens": 3, "total_tokens": 14, "prompt_tokens_details": map[string]any{"cached_tokens": 2}}
	if legacy {
		return map[string]any{"id": "cmpl-fake1", "object": "text_completion", "created": 1700000000, "model": model,
			"choices": []any{map[string]any{"index": 0, "text": "Hello there!", "finish_reason": "stop", "logprobs": nil}}, "usage": usage}
	}
	msg := map[string]any{"role": "assistant", "content": "Hello there!"}
	finish := "stop"
	if tools {
		msg = map[string]any{"role": "assistant", "content": nil, "tool_calls": []any{map[string]any{"id": "call_fake1", "type": "function",
			"function": map[string]any{"name": "get_weather", "arguments": `{"city":"Paris"}`}}}}
		finish = "tool_calls"
	}
	return map[string]any{"id": "chatcmpl-fake1", "object": "chat.completion", "created": 1700000000, "model": model,
		"choices": []any{map[string]any{"index": 0, "message": msg, "finish_reason": finish}}, "usage": usage,
		"timings": map[string]any{"prompt_n": 11, "prompt_ms": 5.0, "predicted_n": 3, "predicted_ms": 30.0}}
}

func fakeChunks(model string, tools bool) []string {
	head := fmt.Sprintf(`{"id":"chatcmpl-fake1","object":"chat.completion.chunk","created":1700000000,"model":%q,"choices":`, model)
	if tools {
		return []string{
			head + `[{"index":0,"delta":{"role":"assistant","content":null},"finish_reason":null}]}`,
			head + `[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_fake1","type":"function","function":{"name":"get_weather","arguments":""}}]},"finish_reason":null}]}`,
			head + `[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"city\":"}}]},"finish_reason":null}]}`,
			head + `[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"\"Paris\"}"}}]},"finish_reason":null}]}`,
			head + `[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}`,
		}
	}
	return []string{
		head + `[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}`,
		head + `[{"index":0,"delta":{"content":"Hello"},"finish_reason":null}]}`,
		head + `[{"index":0,"delta":{"content":" there"},"finish_reason":null}]}`,
		head + `[{"index":0,"delta":{"content":"!"},"finish_reason":null}]}`,
		head + `[{"index":0,"delta":{},"finish_reason":"stop"}]}`,
	}
}

// testGateway is a gateway over fake neurons, served by httptest.
type testGateway struct {
	g      *Gateway
	srv    *httptest.Server
	cancel context.CancelFunc
	done   chan struct{}
}

type gwOpt func(cfg *config.Config, cat *config.Catalogue)

func startGateway(t testing.TB, neurons []*fakeNeuron, opts ...gwOpt) *testGateway {
	t.Helper()
	cfg := config.Default()
	cfg.Gateway.PollInterval = config.Duration(50 * time.Millisecond)
	cfg.Gateway.ConnectTimeout = config.Duration(time.Second)
	for _, n := range neurons {
		cfg.Neurons = append(cfg.Neurons, n.ref())
	}
	var cat config.Catalogue
	for _, o := range opts {
		o(&cfg, &cat)
	}
	g, err := New(cfg, cat, zerolog.Nop())
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	tg := &testGateway{g: g, srv: httptest.NewServer(g.Handler()), cancel: cancel, done: make(chan struct{})}
	go func() { g.Run(ctx); close(tg.done) }()
	<-g.polled
	t.Cleanup(tg.close)
	return tg
}

func (tg *testGateway) close() {
	tg.srv.Close()
	tg.cancel()
	<-tg.done
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = tg.g.Shutdown(sctx)
}

// post sends a JSON body and returns status, headers and body.
func (tg *testGateway) post(t testing.TB, path, body string, hdr ...string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, tg.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

func (tg *testGateway) get(t testing.TB, path string, hdr ...string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, tg.srv.URL+path, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}
