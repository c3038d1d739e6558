package node

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// instanceOf returns the loaded instance of a model.
func (n *testNeuron) instanceOf(t testing.TB, id string) *instance {
	t.Helper()
	n.s.mu.Lock()
	defer n.s.mu.Unlock()
	e := n.s.models[id]
	if e == nil || e.inst == nil {
		t.Fatalf("%s is not loaded", id)
	}
	return e.inst
}

// leaked reports what a model still holds with no request running: gate
// places, queued waiters and busy KV slots.
func leaked(in *instance) (inFlight, queued, busy int) {
	inFlight, queued = in.gate.counts()
	busy = int(in.sched.live.Load())
	return
}

// waitIdle fails the test unless the model's gate and slots come back to
// idle. Handlers release after writing the answer, so this polls.
func waitIdle(t testing.TB, in *instance) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		f, q, b := leaked(in)
		if f == 0 && q == 0 && b == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s leaks: %d in flight, %d queued, %d sequences in the scheduler with no request running", in.id, f, q, b)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestHugeMaxTokens: a token count near 2^63 once panicked after taking a
// KV slot and broke the model; it is a 400 naming the field, and the
// model keeps serving.
func TestHugeMaxTokens(t *testing.T) {
	n := startNeuron(t, testConfig(modelsDir(t, "stories260K.gguf")), (&synthEngine{}).hooks())
	n.load(t, "stories260K", 64)
	in := n.instanceOf(t, "stories260K")
	msgs := []any{map[string]any{"role": "user", "content": "Once upon a time"}}
	for _, path := range []string{"/v1/chat/completions", "/v1/completions"} {
		for _, field := range []string{"max_tokens", "max_completion_tokens"} {
			for _, stream := range []bool{false, true} {
				body := `{"model": "stories260K", "` + field + `": 9223372036854775807, "stream": ` + map[bool]string{false: "false", true: "true"}[stream]
				if path == "/v1/completions" {
					body += `, "prompt": "Once"}`
				} else {
					m, _ := json.Marshal(msgs)
					body += `, "messages": ` + string(m) + `}`
				}
				var e errEnvelope
				if st := n.do(t, "POST", path, body, &e); st != 400 || param(e) != field {
					t.Fatalf("%s %s=2^63-1: %d %+v, want 400 naming %s", path, field, st, e, field)
				}
			}
		}
	}
	// More ordinary requests than the model runs at once.
	for i := range 2 * n.s.cfg.MaxInFlight {
		var r completionResponse
		if st := n.do(t, "POST", "/v1/completions", map[string]any{"model": "stories260K", "prompt": "Once", "max_tokens": 4}, &r); st != 200 {
			t.Fatalf("ordinary request %d after the huge ones: %d", i, st)
		}
	}
	waitIdle(t, in)

	// The generation itself computes its capacity without overflow, for
	// any count a caller may pass.
	for _, mt := range []int{math.MaxInt, math.MaxInt32, in.nctx, in.nctx - 1} {
		ids := in.m.Encode("Once", true, true)
		res, err := in.generate(context.Background(), genRequest{Prompt: ids, MaxTokens: mt, Emit: func(tokenEvent) error { return nil }})
		if err != nil || res.Finish != "length" && res.Finish != "stop" {
			t.Fatalf("generate with MaxTokens %d: %+v %v", mt, res, err)
		}
	}
	waitIdle(t, in)
}

// TestNumericFieldsValidated: every numeric field out of range is a 400
// that names it as the API spells it.
func TestNumericFieldsValidated(t *testing.T) {
	n := startNeuron(t, testConfig(modelsDir(t, "stories260K.gguf")), (&synthEngine{}).hooks())
	n.load(t, "stories260K", 64)
	cases := []struct {
		field string
		value any
	}{
		{"max_tokens", -1}, {"max_tokens", int64(math.MaxInt32) + 1}, {"max_tokens", "many"}, {"max_tokens", 1.5},
		{"max_tokens", "1e30"}, {"max_completion_tokens", -5}, {"max_completion_tokens", int64(1) << 40},
		{"n", 2}, {"n", 0}, {"temperature", -0.1}, {"temperature", 1e3}, {"temperature", "hot"},
		{"top_p", 1.5}, {"top_p", -1}, {"top_k", -2}, {"top_k", int64(1) << 33}, {"min_p", 2},
		{"presence_penalty", 3}, {"frequency_penalty", -2.5}, {"repetition_penalty", -1},
		{"repeat_penalty", -1}, {"repeat_last_n", -2}, {"seed", 1.5}, {"seed", "x"},
		{"stream", 3}, {"logit_bias", map[string]any{"5": 1000}},
	}
	for _, path := range []string{"/v1/chat/completions", "/v1/completions"} {
		for _, c := range cases {
			body := map[string]any{"model": "stories260K", c.field: c.value}
			if path == "/v1/completions" {
				body["prompt"] = "Once"
			} else {
				body["messages"] = []any{map[string]any{"role": "user", "content": "Once"}}
			}
			if s, ok := c.value.(string); ok && s == "1e30" {
				data, _ := json.Marshal(body)
				body = nil
				var e errEnvelope
				raw := strings.Replace(string(data), `"1e30"`, `1e30`, 1)
				if st := n.do(t, "POST", path, raw, &e); st != 400 || param(e) != c.field {
					t.Fatalf("%s %s=1e30: %d %+v", path, c.field, st, e)
				}
				continue
			}
			var e errEnvelope
			if st := n.do(t, "POST", path, body, &e); st != 400 || param(e) != c.field || strings.Contains(e.Error.Message, "samplingFields") {
				t.Fatalf("%s %s=%v: %d %+v, want 400 naming %s", path, c.field, c.value, st, e, c.field)
			}
		}
	}
	// The per-route counts.
	var e errEnvelope
	if st := n.do(t, "POST", "/v1/chat/completions", map[string]any{"model": "stories260K", "messages": []any{map[string]any{"role": "user", "content": "x"}}, "top_logprobs": 21}, &e); st != 400 || param(e) != "top_logprobs" {
		t.Fatalf("top_logprobs=21: %d %+v", st, e)
	}
	for _, v := range []any{-1, 21, int64(1) << 40} {
		if st := n.do(t, "POST", "/v1/completions", map[string]any{"model": "stories260K", "prompt": "x", "logprobs": v}, &e); st != 400 || param(e) != "logprobs" {
			t.Fatalf("logprobs=%v: %d %+v", v, st, e)
		}
	}
	for _, p := range []any{[]int64{1, -1}, []int64{1, 1 << 40}, []int64{1, 512}} {
		if st := n.do(t, "POST", "/v1/completions", map[string]any{"model": "stories260K", "prompt": p}, &e); st != 400 || param(e) != "prompt" {
			t.Fatalf("prompt %v: %d %+v", p, st, e)
		}
	}
	// Nested fields are named by their JSON path.
	if st := n.do(t, "POST", "/v1/completions", map[string]any{"model": "stories260K", "prompt": "x", "stream_options": map[string]any{"include_usage": "yes"}}, &e); st != 400 || param(e) != "stream_options.include_usage" {
		t.Fatalf("stream_options.include_usage: %d %+v", st, e)
	}
	// Values in range still work, vLLM's top_k -1 included.
	var r completionResponse
	if st := n.do(t, "POST", "/v1/completions", map[string]any{"model": "stories260K", "prompt": "Once", "max_tokens": math.MaxInt32,
		"top_k": -1, "repeat_last_n": -1, "temperature": 0.7, "top_p": 1, "min_p": 0, "seed": -1, "presence_penalty": 2, "frequency_penalty": -2}, &r); st != 200 || *r.Choices[0].FinishReason == "" {
		t.Fatalf("in-range values: %d %+v", st, r)
	}
	waitIdle(t, n.instanceOf(t, "stories260K"))
}

// TestHandlerPanicLeaksNothing: a panic in a handler while it holds a
// gate place and a KV slot answers 500 (an error event once streaming)
// and leaks neither.
func TestHandlerPanicLeaksNothing(t *testing.T) {
	n := startNeuron(t, testConfig(modelsDir(t, "stories260K.gguf")), (&synthEngine{}).hooks())
	n.load(t, "stories260K", 64)
	in := n.instanceOf(t, "stories260K")
	// The panic comes at the panicAt-th token's logprobs: the first
	// before any output, the second once a stream has started.
	var boom atomic.Bool
	var calls, panicAt atomic.Int32
	text := in.m.TokenText
	in.m.TokenText = func(id int32) string {
		if boom.Load() && calls.Add(1) == panicAt.Load() {
			panic("forced panic in a handler")
		}
		return text(id)
	}
	boom.Store(true)
	chat := map[string]any{"model": "stories260K", "messages": []any{map[string]any{"role": "user", "content": "Once"}}, "logprobs": true, "max_tokens": 4}
	for range 2 * n.s.cfg.MaxInFlight {
		calls.Store(0)
		panicAt.Store(1)
		var e errEnvelope
		if st := n.do(t, "POST", "/v1/chat/completions", chat, &e); st != 500 || code(e) != "internal_error" || e.Error.Type != "server_error" {
			t.Fatalf("panicking handler: %d %+v", st, e)
		}
		// Streaming: the panic comes after the stream started. The
		// sampled text may end at any token; ignore_eos keeps it going
		// past the third.
		chat["stream"] = true
		chat["max_tokens"] = 8
		chat["ignore_eos"] = true
		calls.Store(0)
		panicAt.Store(3) // the third call: a token after the first one
		data, _ := json.Marshal(chat)
		resp, err := http.Post(n.srv.URL+"/v1/chat/completions", "application/json", bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		_, _ = buf.ReadFrom(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.HasPrefix(buf.String(), "data: ") || !strings.Contains(buf.String(), `"internal_error"`) {
			t.Fatalf("panicking stream: %d %s", resp.StatusCode, buf.String())
		}
		delete(chat, "stream")
		delete(chat, "ignore_eos")
		waitIdle(t, in)
	}
	boom.Store(false)
	for range 2 * n.s.cfg.MaxInFlight {
		var r chatResponse
		if st := n.do(t, "POST", "/v1/chat/completions", chat, &r); st != 200 {
			t.Fatalf("request after the panics: %d", st)
		}
	}
	waitIdle(t, in)
}

// TestHugePromptRefusedBeforeWork: a prompt that cannot fit the context
// by its size alone is refused before it is rendered or tokenized, on
// every route that tokenizes.
func TestHugePromptRefusedBeforeWork(t *testing.T) {
	n := startNeuron(t, testConfig(modelsDir(t, "stories260K.gguf")), (&synthEngine{}).hooks())
	n.load(t, "stories260K", 128)
	in := n.instanceOf(t, "stories260K")
	var encoded, rendered atomic.Int32
	enc, render := in.m.Encode, in.m.Render
	in.m.Encode = func(s string, addSpecial, parseSpecial bool) []int32 {
		encoded.Add(1)
		return enc(s, addSpecial, parseSpecial)
	}
	in.m.Render = func(r renderInput) (string, error) {
		rendered.Add(1)
		return render(r)
	}
	big := strings.Repeat("The cat sat on the mat. ", 1000) // 24 kB against 8 × 128 bytes
	msgs := []any{map[string]any{"role": "user", "content": big}}
	for _, c := range []struct {
		path  string
		body  map[string]any
		param string
	}{
		{"/v1/chat/completions", map[string]any{"messages": msgs}, "messages"},
		{"/v1/completions", map[string]any{"prompt": big}, "prompt"},
		{"/v1/completions", map[string]any{"prompt": []string{big}}, "prompt"},
		{"/tokenize", map[string]any{"content": big}, "content"},
		{"/tokenize", map[string]any{"messages": msgs}, "messages"},
	} {
		c.body["model"] = "stories260K"
		var e errEnvelope
		if st := n.do(t, "POST", c.path, c.body, &e); st != 400 || code(e) != "context_length_exceeded" || param(e) != c.param ||
			!strings.Contains(e.Error.Message, "128") {
			t.Fatalf("%s huge %s: %d %+v", c.path, c.param, st, e)
		}
	}
	if encoded.Load() != 0 || rendered.Load() != 0 {
		t.Fatalf("a huge prompt was rendered %d and tokenized %d times before being refused", rendered.Load(), encoded.Load())
	}
	// A prompt within the bound is still served.
	var r tokenizeResponse
	if st := n.do(t, "POST", "/tokenize", map[string]any{"model": "stories260K", "content": "Once upon a time"}, &r); st != 200 || r.Count == 0 {
		t.Fatalf("small tokenize: %d %+v", st, r)
	}
	waitIdle(t, in)
}

// TestTokenizeIsAdmitted: /tokenize waits for a place like generation
// does, so a flood of it cannot run unbounded work beside the requests.
func TestTokenizeIsAdmitted(t *testing.T) {
	cfg := testConfig(modelsDir(t, "stories260K.gguf"))
	cfg.MaxInFlight, cfg.MaxQueueDepth = 1, 0
	n := startNeuron(t, cfg, (&synthEngine{}).hooks())
	n.load(t, "stories260K", 64)
	in := n.instanceOf(t, "stories260K")
	release, err := in.admit(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ path, body string }{
		{"/tokenize", `{"model": "stories260K", "content": "Once"}`},
		{"/tokenize", `{"model": "stories260K", "messages": [{"role": "user", "content": "Once"}]}`},
		{"/v1/completions", `{"model": "stories260K", "prompt": "Once"}`},
		{"/v1/chat/completions", `{"model": "stories260K", "messages": [{"role": "user", "content": "Once"}]}`},
	} {
		var e errEnvelope
		if st := n.do(t, "POST", c.path, c.body, &e); st != 503 || code(e) != "overloaded" {
			t.Fatalf("%s with the only place taken: %d %+v, want 503 overloaded", c.path, st, e)
		}
	}
	release()
	var r tokenizeResponse
	if st := n.do(t, "POST", "/tokenize", map[string]any{"model": "stories260K", "content": "Once"}, &r); st != 200 {
		t.Fatalf("tokenize with a free place: %d", st)
	}
	waitIdle(t, in)
}

// TestHugePromptCost measures what one 30 MB prompt costs the neuron
// now that it is refused by its size: the memory allocated and the CPU
// time of the request, in-process (the figures are logged, not asserted).
func TestHugePromptCost(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates 30 MB bodies")
	}
	n := startNeuron(t, testConfig(modelsDir(t, "stories260K.gguf")), (&synthEngine{}).hooks())
	n.load(t, "stories260K", 0)
	text := strings.Repeat("The cat sat on the mat. ", 30<<20/24)
	for _, c := range []struct{ path, field string }{
		{"/v1/completions", "prompt"}, {"/v1/chat/completions", "messages"}, {"/tokenize", "content"},
	} {
		body := map[string]any{"model": "stories260K"}
		switch c.field {
		case "messages":
			body[c.field] = []any{map[string]any{"role": "user", "content": text}}
		default:
			body[c.field] = text
		}
		data, _ := json.Marshal(body)
		runtime.GC()
		var m0, m1 runtime.MemStats
		runtime.ReadMemStats(&m0)
		var r0, r1 syscall.Rusage
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &r0)
		t0 := time.Now()
		rec := httptest.NewRecorder()
		n.s.Handler().ServeHTTP(rec, httptest.NewRequest("POST", c.path, bytes.NewReader(data)))
		wall := time.Since(t0)
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &r1)
		runtime.ReadMemStats(&m1)
		if rec.Code != 400 || !strings.Contains(rec.Body.String(), "context_length_exceeded") {
			t.Fatalf("%s 30 MB: %d %s", c.path, rec.Code, rec.Body.String())
		}
		cpu := time.Duration(r1.Utime.Nano()+r1.Stime.Nano()-r0.Utime.Nano()-r0.Stime.Nano()) * time.Nanosecond
		t.Logf("%s with a %d MB body: 400 in %v wall, %v CPU, %d MB allocated, heap in use %+d MB",
			c.path, len(data)>>20, wall.Round(time.Millisecond), cpu.Round(time.Millisecond),
			(m1.TotalAlloc-m0.TotalAlloc)>>20, (int64(m1.HeapInuse)-int64(m0.HeapInuse))>>20)
	}
}
