package gateway

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"helexa/roles/config"
)

func chatReq(model string, extra string) string {
	b := `{"model":"` + model + `","messages":[{"role":"user","content":"hi"}],"max_tokens":8`
	if extra != "" {
		b += "," + extra
	}
	return b + "}"
}

func withAlias(alias, id string) gwOpt {
	return func(_ *config.Config, cat *config.Catalogue) {
		if cat.Aliases == nil {
			cat.Aliases = map[string]string{}
		}
		cat.Aliases[alias] = id
	}
}

func withModel(m config.CatalogueModel) gwOpt {
	return func(_ *config.Config, cat *config.Catalogue) { cat.Models = append(cat.Models, m) }
}

func TestChatNonStreamingRewritesOnlyModel(t *testing.T) {
	n := newFakeNeuron(t, "a", "m1*")
	tg := startGateway(t, []*fakeNeuron{n}, withAlias("fast", "m1"))
	body := `{"model": "fast" ,"messages":[{"role":"user","content":"hi"}],"x_unknown":{"keep":[1,2.50,"me"]}}`
	code, _, resp := tg.post(t, "/v1/chat/completions", body)
	if code != 200 {
		t.Fatalf("status %d: %s", code, resp)
	}
	var cr struct {
		Choices []struct {
			Message struct{ Content string } `json:"message"`
		} `json:"choices"`
	}
	if err := json.Unmarshal(resp, &cr); err != nil || len(cr.Choices) != 1 || cr.Choices[0].Message.Content != "Hello there!" {
		t.Fatalf("answer %s (%v)", resp, err)
	}
	n.mu.Lock()
	got := string(n.lastBody)
	n.mu.Unlock()
	want := `{"model": "m1" ,"messages":[{"role":"user","content":"hi"}],"x_unknown":{"keep":[1,2.50,"me"]}}`
	if got != want {
		t.Fatalf("forwarded body\n got %s\nwant %s", got, want)
	}
}

// sseData reads an SSE body and returns the data of each event.
func sseData(t testing.TB, r io.Reader) []string {
	t.Helper()
	var out []string
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			out = append(out, d)
		}
	}
	return out
}

func TestChatStreamingUsageChunk(t *testing.T) {
	n := newFakeNeuron(t, "a", "m1*")
	tg := startGateway(t, []*fakeNeuron{n})
	// Without include_usage the gateway asks for usage but drops the chunk.
	code, hdr, resp := tg.post(t, "/v1/chat/completions", chatReq("m1", `"stream":true`))
	if code != 200 || !strings.HasPrefix(hdr.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("status %d %s: %s", code, hdr.Get("Content-Type"), resp)
	}
	n.mu.Lock()
	fwd := string(n.lastBody)
	n.mu.Unlock()
	if !strings.Contains(fwd, `"stream_options":{"include_usage":true}`) {
		t.Fatalf("usage not asked for: %s", fwd)
	}
	data := sseData(t, strings.NewReader(string(resp)))
	if len(data) != 6 || data[len(data)-1] != "[DONE]" {
		t.Fatalf("events %q", data)
	}
	for _, d := range data {
		if strings.Contains(d, `"usage"`) {
			t.Fatalf("usage chunk passed on unasked: %s", d)
		}
	}
	// With include_usage the chunk comes through.
	_, _, resp = tg.post(t, "/v1/chat/completions", chatReq("m1", `"stream":true,"stream_options":{"include_usage":true}`))
	data = sseData(t, strings.NewReader(string(resp)))
	if len(data) != 7 || !strings.Contains(data[5], `"completion_tokens":3`) {
		t.Fatalf("events %q", data)
	}
	out := scrapeMetrics(t, tg.g)
	for _, want := range []string{
		`cortex_requests_total{model="m1",node="a",api="chat",code="200"} 2`,
		`cortex_completion_tokens_total 6`,
		`cortex_prompt_tokens_total 22`,
		`cortex_time_to_first_token_seconds_count 2`,
		`cortex_tokens_per_second_count 2`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

func TestLegacyCompletions(t *testing.T) {
	n := newFakeNeuron(t, "a", "m1*")
	tg := startGateway(t, []*fakeNeuron{n})
	code, _, resp := tg.post(t, "/v1/completions", `{"model":"m1","prompt":"Once"}`)
	if code != 200 || !strings.Contains(string(resp), `"text":"Hello there!"`) {
		t.Fatalf("status %d: %s", code, resp)
	}
	if n.lastPath != "/v1/completions" {
		t.Fatalf("forwarded to %s", n.lastPath)
	}
}

func TestRoutesToLeastBusy(t *testing.T) {
	a := newFakeNeuron(t, "a", "m1*")
	b := newFakeNeuron(t, "b", "m1*")
	a.set(func(f *fakeNeuron) { f.busy["m1"] = 3 })
	tg := startGateway(t, []*fakeNeuron{a, b})
	for range 3 {
		if code, _, resp := tg.post(t, "/v1/chat/completions", chatReq("m1", "")); code != 200 {
			t.Fatalf("status %d: %s", code, resp)
		}
	}
	if a.infers.Load() != 0 || b.infers.Load() != 3 {
		t.Fatalf("a served %d, b served %d; want 0 and 3", a.infers.Load(), b.infers.Load())
	}
}

func TestColdLoadOnceUnderConcurrency(t *testing.T) {
	a := newFakeNeuron(t, "a", "m1")
	a.set(func(f *fakeNeuron) { f.loadDelay = 150 * time.Millisecond })
	tg := startGateway(t, []*fakeNeuron{a})
	const n = 16
	var wg sync.WaitGroup
	codes := make([]int, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i], _, _ = tg.post(t, "/v1/chat/completions", chatReq("m1", ""))
		}()
	}
	wg.Wait()
	for i, c := range codes {
		if c != 200 {
			t.Fatalf("request %d: status %d", i, c)
		}
	}
	if got := a.loads.Load(); got != 1 {
		t.Fatalf("%d loads, want exactly 1", got)
	}
	out := scrapeMetrics(t, tg.g)
	if !strings.Contains(out, "cortex_cold_starts_total 1\n") || !strings.Contains(out, "cortex_model_load_seconds_count 1\n") {
		t.Fatalf("cold start not counted:\n%s", out)
	}
}

// A cold load sends the catalogue's per-model settings to the neuron.
func TestColdLoadSendsCatalogueSettings(t *testing.T) {
	a := newFakeNeuron(t, "a", "m1")
	tg := startGateway(t, []*fakeNeuron{a}, withModel(config.CatalogueModel{ID: "m1", ContextLength: 4096, MaxOutputTokens: 128}))
	if code, _, resp := tg.post(t, "/v1/chat/completions", chatReq("m1", "")); code != 200 {
		t.Fatalf("%d %s", code, resp)
	}
	a.mu.Lock()
	raw := a.lastLoad
	a.mu.Unlock()
	var body map[string]any
	if err := json.Unmarshal(raw, &body); err != nil || body["context_length"] != 4096.0 || body["max_output_tokens"] != 128.0 {
		t.Fatalf("load body %s (%v)", raw, err)
	}
}

func TestColdLoadPrefersPinnedThenFit(t *testing.T) {
	a := newFakeNeuron(t, "a", "m1")
	b := newFakeNeuron(t, "b", "m1")
	c := newFakeNeuron(t, "c", "m1")
	a.set(func(f *fakeNeuron) { f.freeMB = 500 }) // does not fit
	b.set(func(f *fakeNeuron) { f.freeMB = 2000 })
	c.set(func(f *fakeNeuron) { f.freeMB = 8000 })
	tg := startGateway(t, []*fakeNeuron{a, b, c})
	if code, _, resp := tg.post(t, "/v1/chat/completions", chatReq("m1", "")); code != 200 {
		t.Fatalf("status %d: %s", code, resp)
	}
	if c.loads.Load() != 1 || a.loads.Load()+b.loads.Load() != 0 {
		t.Fatalf("loads a=%d b=%d c=%d; want the most free node c", a.loads.Load(), b.loads.Load(), c.loads.Load())
	}

	a2 := newFakeNeuron(t, "a", "m2")
	b2 := newFakeNeuron(t, "b", "m2")
	tg2 := startGateway(t, []*fakeNeuron{a2, b2}, withModel(config.CatalogueModel{ID: "m2", PinnedOn: []string{"b"}}))
	if code, _, resp := tg2.post(t, "/v1/chat/completions", chatReq("m2", "")); code != 200 {
		t.Fatalf("status %d: %s", code, resp)
	}
	if b2.status("m2") != statusLoaded || a2.loads.Load() != 0 {
		t.Fatalf("pinned node not chosen: a loads %d, b status %s", a2.loads.Load(), b2.status("m2"))
	}
}

func TestColdLoadEvictsLRU(t *testing.T) {
	a := newFakeNeuron(t, "a", "old*", "new*", "big")
	a.set(func(f *fakeNeuron) {
		f.freeMB = 500
		f.models["big"].memMB = 1200
	})
	tg := startGateway(t, []*fakeNeuron{a})
	// Use "new" so "old" is the least recently used.
	if code, _, _ := tg.post(t, "/v1/chat/completions", chatReq("new", "")); code != 200 {
		t.Fatal("warm request failed")
	}
	if code, _, resp := tg.post(t, "/v1/chat/completions", chatReq("big", "")); code != 200 {
		t.Fatalf("status %d: %s", code, resp)
	}
	if a.status("old") != statusAvailable || a.status("new") != statusLoaded || a.status("big") != statusLoaded {
		t.Fatalf("old=%s new=%s big=%s", a.status("old"), a.status("new"), a.status("big"))
	}
	if out := scrapeMetrics(t, tg.g); !strings.Contains(out, `cortex_evictions_total{node="a",model="old",reason="make_room"} 1`) {
		t.Fatalf("eviction not counted:\n%s", out)
	}
}

func TestFailoverBeforeFirstByte(t *testing.T) {
	a := newFakeNeuron(t, "a", "m1*")
	b := newFakeNeuron(t, "b", "m1*")
	a.set(func(f *fakeNeuron) { f.failInfer = 500 })
	b.set(func(f *fakeNeuron) { f.busy["m1"] = 5 }) // a is chosen first
	tg := startGateway(t, []*fakeNeuron{a, b})
	code, _, resp := tg.post(t, "/v1/chat/completions", chatReq("m1", ""))
	if code != 200 || a.infers.Load() != 1 || b.infers.Load() != 1 {
		t.Fatalf("status %d (a %d, b %d): %s", code, a.infers.Load(), b.infers.Load(), resp)
	}
	// Both failing: one retry only, then a 5xx in the OpenAI envelope.
	b.set(func(f *fakeNeuron) { f.failInfer = 503 })
	code, hdr, resp := tg.post(t, "/v1/chat/completions", chatReq("m1", ""))
	if code < 500 || a.infers.Load()+b.infers.Load() != 4 {
		t.Fatalf("status %d after %d tries: %s", code, a.infers.Load()+b.infers.Load(), resp)
	}
	var env openAIEnvelope
	if json.Unmarshal(resp, &env) != nil || env.Error.Message == "" {
		t.Fatalf("not an OpenAI envelope: %s", resp)
	}
	if code == 503 && hdr.Get("Retry-After") == "" {
		t.Fatal("503 without Retry-After")
	}
}

func TestFailoverConnectionRefused(t *testing.T) {
	a := newFakeNeuron(t, "a", "m1*")
	b := newFakeNeuron(t, "b", "m1*")
	b.set(func(f *fakeNeuron) { f.busy["m1"] = 5 })
	tg := startGateway(t, []*fakeNeuron{a, b})
	a.srv.Close() // refused from now on; the poller has not noticed yet
	code, _, resp := tg.post(t, "/v1/chat/completions", chatReq("m1", ""))
	if code != 200 || b.infers.Load() != 1 {
		t.Fatalf("status %d: %s", code, resp)
	}
}

func TestMidStreamErrorEvent(t *testing.T) {
	a := newFakeNeuron(t, "a", "m1*")
	a.set(func(f *fakeNeuron) { f.breakAfter = 2 })
	tg := startGateway(t, []*fakeNeuron{a})
	_, _, resp := tg.post(t, "/v1/chat/completions", chatReq("m1", `"stream":true`))
	data := sseData(t, strings.NewReader(string(resp)))
	if len(data) != 3 || !strings.Contains(data[2], `"error"`) {
		t.Fatalf("openai stream %q", data)
	}
	_, _, resp = tg.post(t, "/v1/messages", `{"model":"m1","max_tokens":8,"stream":true,"messages":[{"role":"user","content":"hi"}]}`)
	if !strings.Contains(string(resp), "event: error") || strings.Contains(string(resp), "message_stop") {
		t.Fatalf("anthropic stream:\n%s", resp)
	}
	_, _, resp = tg.post(t, "/v1/responses", `{"model":"m1","stream":true,"input":"hi"}`)
	if !strings.Contains(string(resp), "event: response.failed") || strings.Contains(string(resp), "response.completed") {
		t.Fatalf("responses stream:\n%s", resp)
	}
	if out := scrapeMetrics(t, tg.g); !strings.Contains(out, `cortex_request_errors_total{model="m1",node="a",reason="stream_broken"} 3`) {
		t.Fatalf("stream break not counted:\n%s", out)
	}
}

func TestClientDisconnectCancelsUpstream(t *testing.T) {
	a := newFakeNeuron(t, "a", "m1*")
	a.set(func(f *fakeNeuron) { f.tokenDelay = 200 * time.Millisecond })
	tg := startGateway(t, []*fakeNeuron{a})
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, tg.srv.URL+"/v1/chat/completions", strings.NewReader(chatReq("m1", `"stream":true`)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(resp.Body)
	if _, err := br.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	cancel()
	resp.Body.Close()
	waitFor(t, "upstream cancel", func() bool { return a.canceled.Load() == 1 })
	waitFor(t, "in-flight back to 0", func() bool { return tg.g.inFlight.Load() == 0 })
}

func TestAuth(t *testing.T) {
	a := newFakeNeuron(t, "a", "m1*")
	tg := startGateway(t, []*fakeNeuron{a}, func(cfg *config.Config, _ *config.Catalogue) { cfg.Gateway.APIKeys = []string{"sekret"} })
	code, _, resp := tg.post(t, "/v1/chat/completions", chatReq("m1", ""))
	var oe openAIEnvelope
	if code != 401 || json.Unmarshal(resp, &oe) != nil || oe.Error.Type != "invalid_request_error" || oe.Error.Code == nil || *oe.Error.Code != "invalid_api_key" {
		t.Fatalf("no key: %d %s", code, resp)
	}
	code, _, resp = tg.post(t, "/v1/messages", `{}`, "x-api-key", "wrong")
	var ae anthropicEnvelope
	if code != 401 || json.Unmarshal(resp, &ae) != nil || ae.Type != "error" || ae.Error.Type != "authentication_error" {
		t.Fatalf("wrong key: %d %s", code, resp)
	}
	if code, _, _ := tg.post(t, "/v1/chat/completions", chatReq("m1", ""), "Authorization", "Bearer sekret"); code != 200 {
		t.Fatalf("bearer: %d", code)
	}
	if code, _, _ := tg.post(t, "/v1/chat/completions", chatReq("m1", ""), "x-api-key", "sekret"); code != 200 {
		t.Fatalf("x-api-key: %d", code)
	}
	if code, _, _ := tg.post(t, "/v1/messages/count_tokens", `{"model":"m1","messages":[{"role":"user","content":"hi"}]}`, "x-api-key", "stale", "Authorization", "Bearer sekret"); code != 200 {
		t.Fatalf("one good key of two: %d", code)
	}
	if code, _, _ := tg.post(t, "/v1/chat/completions", chatReq("m1", ""), "Authorization", "Basic sekret"); code != 401 {
		t.Fatalf("basic auth accepted: %d", code)
	}
	if code, _ := tg.get(t, "/health"); code != 200 {
		t.Fatalf("/health must be public, got %d", code)
	}
	if code, _ := tg.get(t, "/fleet"); code != 401 {
		t.Fatalf("/fleet must need a key, got %d", code)
	}
}

func TestNeuronToken(t *testing.T) {
	a := newFakeNeuron(t, "a", "m1*")
	a.token = "node-secret"
	tg := startGateway(t, []*fakeNeuron{a})
	if code, _, resp := tg.post(t, "/v1/chat/completions", chatReq("m1", "")); code != 200 {
		t.Fatalf("status %d: %s", code, resp)
	}
}

func TestErrorEnvelopes(t *testing.T) {
	a := newFakeNeuron(t, "a", "m1*")
	tg := startGateway(t, []*fakeNeuron{a}, func(cfg *config.Config, _ *config.Catalogue) { cfg.Gateway.MaxBodyMB = 1 })
	big := `{"model":"m1","pad":"` + strings.Repeat("x", 1<<20) + `"}`
	f := func(path, body string, status int, code string) {
		t.Helper()
		got, hdr, resp := tg.post(t, path, body)
		if got != status {
			t.Fatalf("%s %.40s: status %d, want %d: %s", path, body, got, status, resp)
		}
		if strings.HasPrefix(path, "/v1/messages") {
			var ae anthropicEnvelope
			if json.Unmarshal(resp, &ae) != nil || ae.Type != "error" || ae.Error.Message == "" {
				t.Fatalf("%s: not an Anthropic envelope: %s", path, resp)
			}
		} else {
			var oe openAIEnvelope
			if json.Unmarshal(resp, &oe) != nil || oe.Error.Message == "" {
				t.Fatalf("%s: not an OpenAI envelope: %s", path, resp)
			}
			if code != "" && (oe.Error.Code == nil || *oe.Error.Code != code) {
				t.Fatalf("%s: code %v, want %s", path, oe.Error.Code, code)
			}
		}
		if (status == 503 || status == 429) && hdr.Get("Retry-After") == "" {
			t.Fatalf("%s: %d without Retry-After", path, status)
		}
	}
	f("/v1/chat/completions", `{"model":`, 400, "invalid_json")
	f("/v1/chat/completions", `{"messages":[]}`, 400, "missing_model")
	f("/v1/chat/completions", `{"model":7}`, 400, "missing_model")
	f("/v1/chat/completions", `[1,2]`, 400, "")
	f("/v1/chat/completions", big, 413, "request_too_large")
	f("/v1/chat/completions", chatReq("nope", ""), 404, "model_not_found")
	f("/v1/messages", `{"model":"nope","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}`, 404, "")
	f("/v1/messages", `{"model":`, 400, "")
	f("/v1/responses", `{"model":"m1","input":"hi","previous_response_id":"resp_1"}`, 400, "")
	a.set(func(f *fakeNeuron) { f.down = true })
	waitFor(t, "node unhealthy", func() bool {
		tg.g.fleet.mu.RLock()
		defer tg.g.fleet.mu.RUnlock()
		return !tg.g.fleet.nodes[0].healthy
	})
	f("/v1/chat/completions", chatReq("m1", ""), 503, "no_healthy_node")
	f("/v1/messages", `{"model":"m1","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}`, 503, "")
}

func TestPollerHealthTransitions(t *testing.T) {
	a := newFakeNeuron(t, "a", "m1*")
	b := newFakeNeuron(t, "b", "m2*")
	tg := startGateway(t, []*fakeNeuron{a, b})
	has := func(id string) bool {
		for _, e := range tg.g.modelList().Data {
			if e.ID == id {
				return true
			}
		}
		return false
	}
	if !has("m1") || !has("m2") {
		t.Fatal("models missing from the merged list")
	}
	b.set(func(f *fakeNeuron) { f.down = true })
	waitFor(t, "b unhealthy", func() bool { return !has("m2") })
	tg.g.fleet.mu.RLock()
	fails := tg.g.fleet.nodes[1].failures
	tg.g.fleet.mu.RUnlock()
	if fails < unhealthyAfter {
		t.Fatalf("marked unhealthy after %d failures", fails)
	}
	if code, body := tg.get(t, "/health"); code != 200 || !strings.Contains(string(body), `"degraded"`) {
		t.Fatalf("/health %d %s", code, body)
	}
	b.set(func(f *fakeNeuron) { f.down = false })
	waitFor(t, "b back", func() bool { return has("m2") })
	if out := scrapeMetrics(t, tg.g); !strings.Contains(out, `cortex_node_up{node="b"} 1`) {
		t.Fatalf("node_up:\n%s", out)
	}
}

func TestModelsMerged(t *testing.T) {
	a := newFakeNeuron(t, "a", "m1*", "m2")
	b := newFakeNeuron(t, "b", "m1")
	tg := startGateway(t, []*fakeNeuron{a, b}, withAlias("fast", "m1"),
		withModel(config.CatalogueModel{ID: "cat-only", ContextLength: 4096}))
	code, body := tg.get(t, "/v1/models")
	if code != 200 {
		t.Fatalf("status %d", code)
	}
	var ml ModelList
	if err := json.Unmarshal(body, &ml); err != nil {
		t.Fatal(err)
	}
	got := map[string]ModelEntry{}
	for _, e := range ml.Data {
		got[e.ID] = e
	}
	if e := got["m1"]; !e.Loaded || len(e.Locations) != 2 || e.Locations[0] != (Location{"a", "loaded"}) || e.Locations[1] != (Location{"b", "available"}) || e.ContextLength != 2048 {
		t.Fatalf("m1: %+v", e)
	}
	if e := got["m2"]; e.Loaded || len(e.Locations) != 1 {
		t.Fatalf("m2: %+v", e)
	}
	if e := got["fast"]; e.AliasOf != "m1" || !e.Loaded {
		t.Fatalf("alias: %+v", e)
	}
	if e := got["cat-only"]; e.ContextLength != 4096 || len(e.Locations) != 0 {
		t.Fatalf("catalogue entry: %+v", e)
	}
	if ml.Object != "list" || len(ml.Data) != 4 {
		t.Fatalf("list: %s", body)
	}
}

func TestFleetReport(t *testing.T) {
	a := newFakeNeuron(t, "a", "m1*")
	tg := startGateway(t, []*fakeNeuron{a})
	code, body := tg.get(t, "/fleet")
	if code != 200 {
		t.Fatalf("status %d", code)
	}
	var fr FleetReport
	if err := json.Unmarshal(body, &fr); err != nil || len(fr.Nodes) != 1 {
		t.Fatalf("%s (%v)", body, err)
	}
	n := fr.Nodes[0]
	if n.State != "healthy" || n.Hostname != "a-host" || len(n.Devices) != 1 || n.Devices[0].Name != "fake cpu" || n.Devices[0].MemFreeMB != 16000 || len(n.Models) != 1 || n.Models[0].Status != "loaded" {
		t.Fatalf("%+v", n)
	}
}

func TestIdleUnloadAndDefrag(t *testing.T) {
	a := newFakeNeuron(t, "a", "m1*", "m2*", "keep*")
	tg := startGateway(t, []*fakeNeuron{a},
		withModel(config.CatalogueModel{ID: "m1", IdleUnloadAfter: config.Duration(100 * time.Millisecond)}),
		withModel(config.CatalogueModel{ID: "keep", PinnedOn: []string{"a"}}),
		func(cfg *config.Config, _ *config.Catalogue) { cfg.Eviction.DefragAfterCycles = 1 })
	waitFor(t, "idle unload of m1", func() bool { return a.status("m1") == statusAvailable })
	// That unload was one cycle: the defrag follows and unloads m2 too, but
	// never the pinned model.
	waitFor(t, "defrag", func() bool { return a.status("m2") == statusAvailable })
	if a.status("keep") != statusLoaded {
		t.Fatal("pinned model unloaded")
	}
	// The evictor counts an eviction after the neuron answered the
	// unload: wait for the counters rather than read them at once.
	for _, want := range []string{`cortex_evictions_total{node="a",model="m1",reason="idle"} 1`, `cortex_evictions_total{node="a",model="m2",reason="defrag"} 1`, "cortex_defrag_total 1"} {
		waitFor(t, want, func() bool { return strings.Contains(scrapeMetrics(t, tg.g), want) })
	}
}

func TestPinnedModelKeptLoaded(t *testing.T) {
	a := newFakeNeuron(t, "a", "p")
	tg := startGateway(t, []*fakeNeuron{a}, withModel(config.CatalogueModel{ID: "p", PinnedOn: []string{"a"}}))
	waitFor(t, "pinned load", func() bool { return a.status("p") == statusLoaded })
	if out := scrapeMetrics(t, tg.g); !strings.Contains(out, "cortex_cold_starts_total 0\n") {
		t.Fatal("keeping a pinned model loaded counted as a cold start")
	}
}

func TestModelNotLoadedReloads(t *testing.T) {
	a := newFakeNeuron(t, "a", "m1*")
	tg := startGateway(t, []*fakeNeuron{a})
	// The neuron unloads behind the gateway's back; the next request loads
	// it again instead of failing.
	a.set(func(f *fakeNeuron) { f.models["m1"].status = statusAvailable })
	if code, _, resp := tg.post(t, "/v1/chat/completions", chatReq("m1", "")); code != 200 {
		t.Fatalf("status %d: %s", code, resp)
	}
	if a.loads.Load() != 1 {
		t.Fatalf("%d loads", a.loads.Load())
	}
}

func TestCountTokens(t *testing.T) {
	a := newFakeNeuron(t, "a", "m1*")
	tg := startGateway(t, []*fakeNeuron{a}, withAlias("claude-x", "m1"))
	code, _, resp := tg.post(t, "/v1/messages/count_tokens", `{"model":"claude-x","messages":[{"role":"user","content":"hi"}],"system":"be brief"}`)
	if code != 200 || strings.TrimSpace(string(resp)) != `{"input_tokens":7}` {
		t.Fatalf("status %d: %q", code, resp)
	}
	a.mu.Lock()
	fwd := string(a.lastBody)
	a.mu.Unlock()
	if a.lastPath != "/tokenize" || !strings.Contains(fwd, `"model":"m1"`) || !strings.Contains(fwd, `"messages"`) {
		t.Fatalf("forwarded %s %s", a.lastPath, fwd)
	}
}

func TestShutdownRefusesNew(t *testing.T) {
	a := newFakeNeuron(t, "a", "m1*")
	tg := startGateway(t, []*fakeNeuron{a})
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := tg.g.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	code, hdr, _ := tg.post(t, "/v1/chat/completions", chatReq("m1", ""))
	if code != 503 || hdr.Get("Retry-After") == "" {
		t.Fatalf("after shutdown: %d", code)
	}
}

func TestRequestTimeout(t *testing.T) {
	a := newFakeNeuron(t, "a", "m1*")
	tg := startGateway(t, []*fakeNeuron{a}, func(cfg *config.Config, _ *config.Catalogue) {
		cfg.Gateway.RequestTimeout = config.Duration(400 * time.Millisecond)
	})
	a.set(func(f *fakeNeuron) { f.stall = 2 * time.Second })
	code, _, resp := tg.post(t, "/v1/chat/completions", chatReq("m1", ""))
	if code != http.StatusGatewayTimeout || !strings.Contains(string(resp), "request_timeout") {
		t.Fatalf("stalled: %d %s", code, resp)
	}
	a.set(func(f *fakeNeuron) { f.stall, f.tokenDelay = 0, 2*time.Second })
	_, _, resp = tg.post(t, "/v1/messages", `{"model":"m1","max_tokens":8,"stream":true,"messages":[{"role":"user","content":"hi"}]}`)
	if !strings.Contains(string(resp), "event: error") {
		t.Fatalf("slow stream past the timeout:\n%s", resp)
	}
}

func TestColdLoadFailsOver(t *testing.T) {
	a := newFakeNeuron(t, "a", "m1")
	b := newFakeNeuron(t, "b", "m1")
	a.set(func(f *fakeNeuron) { f.freeMB, f.failLoad = 20000, 507 }) // chosen first, refuses
	tg := startGateway(t, []*fakeNeuron{a, b})
	if code, _, resp := tg.post(t, "/v1/chat/completions", chatReq("m1", "")); code != 200 {
		t.Fatalf("status %d: %s", code, resp)
	}
	if b.status("m1") != statusLoaded || b.infers.Load() != 1 {
		t.Fatalf("not served by b: status %s, %d requests", b.status("m1"), b.infers.Load())
	}
	// A refusal that is the request's fault (unknown model on the node)
	// is answered, not retried elsewhere.
	c := newFakeNeuron(t, "c", "m2")
	c.set(func(f *fakeNeuron) { f.failLoad = 422 })
	tg2 := startGateway(t, []*fakeNeuron{c})
	code, _, resp := tg2.post(t, "/v1/messages", `{"model":"m2","max_tokens":8,"messages":[{"role":"user","content":"hi"}]}`)
	var ae anthropicEnvelope
	if code != 422 || json.Unmarshal(resp, &ae) != nil || ae.Error.Type != "invalid_request_error" {
		t.Fatalf("422 load: %d %s", code, resp)
	}
}

func TestPriorityEvictionNeverDisplacesHigher(t *testing.T) {
	a := newFakeNeuron(t, "a", "vip*", "big")
	a.set(func(f *fakeNeuron) {
		f.freeMB = 500
		f.models["big"].memMB = 1200
	})
	high, low := 500, 10
	tg := startGateway(t, []*fakeNeuron{a},
		withModel(config.CatalogueModel{ID: "vip", Priority: &high}),
		withModel(config.CatalogueModel{ID: "big", Priority: &low}),
		func(cfg *config.Config, _ *config.Catalogue) { cfg.Eviction.Strategy = strategyPriority })
	code, _, resp := tg.post(t, "/v1/chat/completions", chatReq("big", ""))
	if a.status("vip") != statusLoaded {
		t.Fatal("a lower-priority model displaced a higher one")
	}
	if code != 503 || !strings.Contains(string(resp), "insufficient_memory") {
		t.Fatalf("status %d: %s", code, resp)
	}
}

func TestRetrieveModel(t *testing.T) {
	a := newFakeNeuron(t, "a", "org/m1*")
	tg := startGateway(t, []*fakeNeuron{a})
	code, body := tg.get(t, "/v1/models/org/m1")
	var e ModelEntry
	if code != 200 || json.Unmarshal(body, &e) != nil || e.ID != "org/m1" || !e.Loaded {
		t.Fatalf("%d %s", code, body)
	}
	if code, body := tg.get(t, "/v1/models/nope"); code != 404 || !strings.Contains(string(body), "model_not_found") {
		t.Fatalf("%d %s", code, body)
	}
}

func TestSlowLoadNotBoundByFirstByteTimeout(t *testing.T) {
	a := newFakeNeuron(t, "a", "m1")
	a.set(func(f *fakeNeuron) { f.loadDelay = 800 * time.Millisecond })
	tg := startGateway(t, []*fakeNeuron{a}, func(cfg *config.Config, _ *config.Catalogue) {
		cfg.Gateway.FirstByteTimeout = config.Duration(400 * time.Millisecond)
	})
	if code, _, resp := tg.post(t, "/v1/chat/completions", chatReq("m1", "")); code != 200 {
		t.Fatalf("status %d: %s", code, resp)
	}
	// Inference is bound by it: a stalled neuron is a 504.
	a.set(func(f *fakeNeuron) { f.stall = 2 * time.Second })
	if code, _, resp := tg.post(t, "/v1/chat/completions", chatReq("m1", "")); code != http.StatusGatewayTimeout {
		t.Fatalf("stalled inference: %d %s", code, resp)
	}
}

func TestStaleKeepAliveIsNotAFailure(t *testing.T) {
	a := newFakeNeuron(t, "a", "m1*")
	tg := startGateway(t, []*fakeNeuron{a})
	for i := range 50 {
		if code, _, resp := tg.post(t, "/v1/chat/completions", chatReq("m1", "")); code != 200 {
			t.Fatalf("request %d: status %d: %s", i, code, resp)
		}
		a.srv.CloseClientConnections() // the neuron drops its idle connections
	}
	if out := scrapeMetrics(t, tg.g); strings.Contains(out, "upstream_unreachable") {
		t.Fatalf("a closed idle connection counted as a failure:\n%s", out)
	}
}

func TestUnknownRouteAndHealthDown(t *testing.T) {
	a := newFakeNeuron(t, "a", "m1*")
	tg := startGateway(t, []*fakeNeuron{a})
	code, body := tg.get(t, "/v1/nothing")
	var oe openAIEnvelope
	if code != 404 || json.Unmarshal(body, &oe) != nil || oe.Error.Message == "" {
		t.Fatalf("unknown route: %d %s", code, body)
	}
	code, _, body = tg.post(t, "/v1/messages/nothing", `{}`)
	var ae anthropicEnvelope
	if code != 404 || json.Unmarshal(body, &ae) != nil || ae.Type != "error" {
		t.Fatalf("unknown Anthropic route: %d %s", code, body)
	}
	a.set(func(f *fakeNeuron) { f.down = true })
	waitFor(t, "fleet down", func() bool {
		code, _ := tg.get(t, "/health")
		return code == http.StatusServiceUnavailable
	})
	_, body = tg.get(t, "/health")
	var h HealthReport
	if json.Unmarshal(body, &h) != nil || h.Status != "down" || h.NodesTotal != 1 || h.NodesHealthy != 0 {
		t.Fatalf("health %s", body)
	}
}
