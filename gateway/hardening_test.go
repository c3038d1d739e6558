package gateway

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"helexa/roles/config"
)

// A neuron that reads a request and then drops the connection may be
// running it, or may have crashed on it: the gateway must not send it
// again, to it or to the next node.
func TestNoReplayOnceRequestWritten(t *testing.T) {
	for _, tc := range []struct{ path, body string }{
		{"/v1/chat/completions", chatReq("m1", "")},
		{"/v1/chat/completions", `{"model":"m1","stream":true,"messages":[{"role":"user","content":"hi"}]}`},
		{"/v1/messages", `{"model":"m1","max_tokens":8,"messages":[{"role":"user","content":"hi"}]}`},
		{"/v1/responses", `{"model":"m1","input":"hi","stream":true}`},
	} {
		a := newFakeNeuron(t, "a", "m1*")
		b := newFakeNeuron(t, "b", "m1*")
		a.set(func(f *fakeNeuron) { f.hangUp = true })
		tg := startGateway(t, []*fakeNeuron{a, b})
		code, _, resp := tg.post(t, tc.path, tc.body)
		if code != http.StatusBadGateway {
			t.Fatalf("%s: status %d: %s", tc.path, code, resp)
		}
		if a.infers.Load() != 1 || b.infers.Load() != 0 {
			t.Fatalf("%s: one client request reached node a %d times and node b %d times, want 1 and 0", tc.path, a.infers.Load(), b.infers.Load())
		}
	}
}

// A node that cannot be reached at all never saw the request: the
// deliberate failover sends it to the next one.
func TestFailoverWhenNeverSent(t *testing.T) {
	a := newFakeNeuron(t, "a", "m1*")
	b := newFakeNeuron(t, "b", "m1*")
	tg := startGateway(t, []*fakeNeuron{a, b})
	a.srv.Close() // refused from now on; the gateway still thinks it healthy
	if code, _, resp := tg.post(t, "/v1/chat/completions", chatReq("m1", "")); code != 200 {
		t.Fatalf("status %d: %s", code, resp)
	}
	if b.infers.Load() != 1 {
		t.Fatalf("node b served %d requests, want 1", b.infers.Load())
	}
}

// A model every node reports as corrupt is the client's 4xx with the
// neuron's reason (its path removed): no Retry-After, no overloaded_error.
func TestCorruptModelIsClientError(t *testing.T) {
	a := newFakeNeuron(t, "a", "bad")
	a.set(func(f *fakeNeuron) {
		f.failLoad = http.StatusUnprocessableEntity
		f.loadErr = "unsupported or corrupt model: /srv/secret/models/bad.gguf: not a GGUF file (bad magic)"
	})
	tg := startGateway(t, []*fakeNeuron{a})
	for i := range 3 { // the load, then the remembered failure
		code, hdr, resp := tg.post(t, "/v1/messages", `{"model":"bad","max_tokens":8,"messages":[{"role":"user","content":"hi"}]}`)
		var ae anthropicEnvelope
		if code != http.StatusUnprocessableEntity || json.Unmarshal(resp, &ae) != nil || ae.Error.Type != "invalid_request_error" {
			t.Fatalf("request %d: status %d: %s", i, code, resp)
		}
		if hdr.Get("Retry-After") != "" {
			t.Fatalf("request %d: Retry-After %q on a corrupt model", i, hdr.Get("Retry-After"))
		}
		if !strings.Contains(ae.Error.Message, "bad magic") || strings.Contains(ae.Error.Message, "/srv") {
			t.Fatalf("request %d: message %q: want the reason without the path", i, ae.Error.Message)
		}
		code, _, resp = tg.post(t, "/v1/chat/completions", chatReq("bad", ""))
		if code != http.StatusUnprocessableEntity || strings.Contains(string(resp), "/srv") {
			t.Fatalf("request %d, chat: status %d: %s", i, code, resp)
		}
	}
	if n := a.loads.Load(); n != 0 {
		t.Fatalf("%d successful loads of a corrupt model", n)
	}
	// /fleet shows the reason, not the path.
	_, body := tg.get(t, "/fleet")
	if strings.Contains(string(body), "/srv") || !strings.Contains(string(body), "bad magic") {
		t.Fatalf("/fleet: %s", body)
	}
}

// A model the neuron already lists as failed (found corrupt at scan) gets
// the same 422, not no_healthy_node.
func TestListedFailedModelIsClientError(t *testing.T) {
	a := newFakeNeuron(t, "a", "ok*", "broken")
	a.set(func(f *fakeNeuron) {
		f.models["broken"].status = statusFailed
		f.models["broken"].errMsg = "/models/broken.gguf: truncated tensor data"
	})
	tg := startGateway(t, []*fakeNeuron{a})
	waitFor(t, "the poll to see the failed model", func() bool {
		tg.g.fleet.mu.RLock()
		defer tg.g.fleet.mu.RUnlock()
		return tg.g.fleet.byName["a"].models["broken"].Status == statusFailed
	})
	code, hdr, resp := tg.post(t, "/v1/chat/completions", chatReq("broken", ""))
	if code != http.StatusUnprocessableEntity || hdr.Get("Retry-After") != "" || strings.Contains(string(resp), "/models/") ||
		!strings.Contains(string(resp), "truncated") {
		t.Fatalf("status %d (Retry-After %q): %s", code, hdr.Get("Retry-After"), resp)
	}
}

// A neuron that freezes mid-stream: the client gets an error event in its
// dialect once stream_idle_timeout passes without a byte.
func TestFrozenStreamEndsWithErrorEvent(t *testing.T) {
	const idle = 300 * time.Millisecond
	for _, tc := range []struct{ name, path, body, want string }{
		{"openai", "/v1/chat/completions", `{"model":"m1","stream":true,"messages":[{"role":"user","content":"hi"}]}`, `data: {"error":{`},
		{"anthropic", "/v1/messages", `{"model":"m1","stream":true,"max_tokens":8,"messages":[{"role":"user","content":"hi"}]}`, "event: error"},
		{"responses", "/v1/responses", `{"model":"m1","stream":true,"input":"hi"}`, "response.failed"},
	} {
		a := newFakeNeuron(t, "a", "m1*")
		a.set(func(f *fakeNeuron) { f.freezeAt = 2 })
		tg := startGateway(t, []*fakeNeuron{a}, func(cfg *config.Config, _ *config.Catalogue) {
			cfg.Gateway.StreamIdleTimeout = config.Duration(idle)
		})
		// Without the watchdog the stream would hang; the client gives up
		// after 10s so that the test fails instead.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, tg.srv.URL+tc.path, strings.NewReader(tc.body))
		req.Header.Set("Content-Type", "application/json")
		start := time.Now()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var got strings.Builder
		var lastByte time.Time
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			got.WriteString(sc.Text() + "\n")
			lastByte = time.Now()
		}
		resp.Body.Close()
		if !strings.Contains(got.String(), tc.want) || !strings.Contains(got.String(), "stream_idle_timeout") {
			t.Fatalf("%s: stream without the idle error event:\n%s", tc.name, got.String())
		}
		t.Logf("%s: frozen upstream to the client's error event: %s after the request (idle timeout %s)", tc.name, lastByte.Sub(start).Round(time.Millisecond), idle)
		waitFor(t, "in-flight back to 0", func() bool { return tg.g.inFlight.Load() == 0 })
		waitFor(t, "the frozen request canceled upstream", func() bool { return a.canceled.Load() == 1 })
	}
}

// A neuron that holds its text back for longer than stream_idle_timeout
// but sends keep-alive comments is not cut off, and the client gets the
// keep-alives in its dialect (Anthropic's ping event, an SSE comment
// otherwise) and the whole answer.
func TestKeepAlivesKeepAStreamOpen(t *testing.T) {
	const idle = 200 * time.Millisecond
	for _, tc := range []struct{ name, path, body, alive, end string }{
		{"openai", "/v1/chat/completions", `{"model":"m1","stream":true,"messages":[{"role":"user","content":"hi"}]}`, ": keep-alive", "data: [DONE]"},
		{"anthropic", "/v1/messages", `{"model":"m1","stream":true,"max_tokens":8,"messages":[{"role":"user","content":"hi"}]}`, "event: ping", "event: message_stop"},
		{"responses", "/v1/responses", `{"model":"m1","stream":true,"input":"hi"}`, ": keep-alive", "response.completed"},
	} {
		a := newFakeNeuron(t, "a", "m1*")
		a.set(func(f *fakeNeuron) { f.keepAlives, f.keepAliveGap = 3, idle*2/5 }) // 240 ms without data
		tg := startGateway(t, []*fakeNeuron{a}, func(cfg *config.Config, _ *config.Catalogue) {
			cfg.Gateway.StreamIdleTimeout = config.Duration(idle)
		})
		code, _, body := tg.post(t, tc.path, tc.body)
		got := string(body)
		if code != http.StatusOK || !strings.Contains(got, tc.alive) || !strings.Contains(got, tc.end) || strings.Contains(got, "stream_idle_timeout") {
			t.Fatalf("%s: status %d, stream:\n%s", tc.name, code, got)
		}
	}
}

// A node that stops answering polls is marked unhealthy after a few poll
// intervals: each poll is bounded by the interval, not by connect timeouts.
func TestFrozenNodeMarkedUnhealthyByPollInterval(t *testing.T) {
	a := newFakeNeuron(t, "a", "m1*")
	tg := startGateway(t, []*fakeNeuron{a}, func(cfg *config.Config, _ *config.Catalogue) {
		cfg.Gateway.PollInterval = config.Duration(300 * time.Millisecond)
		cfg.Gateway.ConnectTimeout = config.Duration(5 * time.Second)
	})
	if got := tg.g.pollTimeout(); got != 300*time.Millisecond {
		t.Fatalf("pollTimeout = %s, want the poll interval", got)
	}
	a.set(func(f *fakeNeuron) { f.hangPolls = true })
	start := time.Now()
	waitFor(t, "node marked unhealthy", func() bool {
		tg.g.fleet.mu.RLock()
		defer tg.g.fleet.mu.RUnlock()
		return !tg.g.fleet.byName["a"].healthy
	})
	t.Logf("frozen node marked unhealthy after %s (poll_interval 300ms)", time.Since(start).Round(time.Millisecond))
}

// An option the neuron refuses (translated from the client's dialect) is
// the neuron's 400, with its message, in the client's envelope.
func TestNeuronRefusalReachesClientInDialect(t *testing.T) {
	a := newFakeNeuron(t, "a", "m1*")
	tg := startGateway(t, []*fakeNeuron{a})
	a.set(func(f *fakeNeuron) { f.failInfer = http.StatusBadRequest })
	const msg = "told to fail"
	code, _, resp := tg.post(t, "/v1/messages", `{"model":"m1","max_tokens":8,"messages":[{"role":"user","content":"hi"}],
		"tools":[{"name":"f","input_schema":{"type":"object"}}],"tool_choice":{"type":"any","disable_parallel_tool_use":true}}`)
	var ae anthropicEnvelope
	if code != 400 || json.Unmarshal(resp, &ae) != nil || ae.Error.Type != "invalid_request_error" || ae.Error.Message != msg {
		t.Fatalf("messages: %d %s", code, resp)
	}
	a.mu.Lock()
	fwd := string(a.lastBody)
	a.mu.Unlock()
	if !strings.Contains(fwd, `"tool_choice":"required"`) || !strings.Contains(fwd, `"parallel_tool_calls":false`) {
		t.Fatalf("tool_choice any / disable_parallel_tool_use not passed on: %s", fwd)
	}
	code, _, resp = tg.post(t, "/v1/responses", `{"model":"m1","input":"hi","text":{"format":{"type":"json_object"}}}`)
	var oe openAIEnvelope
	if code != 400 || json.Unmarshal(resp, &oe) != nil || oe.Error.Type != "invalid_request_error" || oe.Error.Message != msg {
		t.Fatalf("responses: %d %s", code, resp)
	}
	a.mu.Lock()
	fwd = string(a.lastBody)
	a.mu.Unlock()
	if !strings.Contains(fwd, `"response_format":{"type":"json_object"}`) {
		t.Fatalf("text.format not passed on as response_format: %s", fwd)
	}
}
