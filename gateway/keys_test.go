package gateway

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"helexa/roles/config"
)

func withKeys(keys ...config.Key) gwOpt {
	return func(cfg *config.Config, _ *config.Catalogue) { cfg.Keys = append(cfg.Keys, keys...) }
}

func bearer(k string) []string { return []string{"Authorization", "Bearer " + k} }

const msgReq = `{"model":"m1","max_tokens":8,"messages":[{"role":"user","content":"hi"}]%s}`

// send posts one request of a dialect (chat or messages), streaming or not,
// with the key, and returns status, headers and body (a stream read whole).
func sendAs(t *testing.T, tg *testGateway, key, dialect string, stream bool) (int, http.Header, string) {
	t.Helper()
	extra := ""
	if stream {
		extra = `,"stream":true`
	}
	path, body := "/v1/chat/completions", chatReq("m1", strings.TrimPrefix(extra, ","))
	if dialect == "anthropic" {
		path, body = "/v1/messages", strings.Replace(msgReq, "%s", extra, 1)
	}
	code, h, b := tg.post(t, path, body, bearer(key)...)
	return code, h, string(b)
}

// errShape decodes either error envelope: OpenAI's type and code, or
// Anthropic's type.
func errShape(t *testing.T, dialect, body string) (typ, code, msg string) {
	t.Helper()
	var o struct {
		Type  string `json:"type"`
		Error struct {
			Type    string `json:"type"`
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal([]byte(body), &o); err != nil {
		t.Fatalf("error body %q: %v", body, err)
	}
	if dialect == "anthropic" && o.Type != "error" {
		t.Fatalf("not an Anthropic envelope: %s", body)
	}
	return o.Error.Type, o.Error.Code, o.Error.Message
}

var dialects = []struct {
	name   string
	stream bool
}{{"openai", false}, {"openai", true}, {"anthropic", false}, {"anthropic", true}}

func caseName(d string, stream bool) string {
	if stream {
		return d + "/stream"
	}
	return d
}

// wantRateLimited checks a 429 with Retry-After in the dialect's envelope.
func wantRateLimited(t *testing.T, dialect string, code int, h http.Header, body, wantMsg string) {
	t.Helper()
	if code != http.StatusTooManyRequests {
		t.Fatalf("status %d, want 429: %s", code, body)
	}
	if ra := h.Get("Retry-After"); ra == "" || ra == "0" {
		t.Errorf("Retry-After = %q", ra)
	}
	typ, c, msg := errShape(t, dialect, body)
	if dialect == "anthropic" && typ != "rate_limit_error" {
		t.Errorf("anthropic type %q, want rate_limit_error", typ)
	}
	wantType := "requests"
	if strings.Contains(wantMsg, "tokens") {
		wantType = "tokens"
	}
	if dialect == "openai" && (typ != wantType || c != "rate_limit_exceeded") {
		t.Errorf("openai type %q code %q, want %s / rate_limit_exceeded", typ, c, wantType)
	}
	if !strings.Contains(msg, wantMsg) {
		t.Errorf("message %q does not mention %q", msg, wantMsg)
	}
}

func TestKeyRPM(t *testing.T) {
	for _, d := range dialects {
		t.Run(caseName(d.name, d.stream), func(t *testing.T) {
			a := newFakeNeuron(t, "a", "m1*")
			tg := startGateway(t, []*fakeNeuron{a}, withKeys(config.Key{Name: "alice", Key: "sk-a", RPM: 2}))
			for i := range 2 {
				if code, _, b := sendAs(t, tg, "sk-a", d.name, d.stream); code != 200 {
					t.Fatalf("request %d: %d %s", i, code, b)
				}
			}
			before := a.infers.Load()
			code, h, b := sendAs(t, tg, "sk-a", d.name, d.stream)
			wantRateLimited(t, d.name, code, h, b, "2 requests per minute")
			if ra := h.Get("Retry-After"); ra != "30" {
				t.Errorf("Retry-After = %s, want 30 (one request refills in 30 s at 2 rpm)", ra)
			}
			if a.infers.Load() != before {
				t.Error("a refused request reached the neuron")
			}
		})
	}
}

func TestKeyTPM(t *testing.T) {
	for _, d := range dialects {
		t.Run(caseName(d.name, d.stream), func(t *testing.T) {
			a := newFakeNeuron(t, "a", "m1*")
			// Each answer reports 11 + 3 tokens: the first leaves 6 of 20,
			// the second takes the bucket below zero, the third is refused.
			tg := startGateway(t, []*fakeNeuron{a}, withKeys(config.Key{Name: "bob", Key: "sk-b", TPM: 20}))
			for i := range 2 {
				if code, _, b := sendAs(t, tg, "sk-b", d.name, d.stream); code != 200 {
					t.Fatalf("request %d: %d %s", i, code, b)
				}
			}
			code, h, b := sendAs(t, tg, "sk-b", d.name, d.stream)
			wantRateLimited(t, d.name, code, h, b, "20 tokens per minute")
			v := tg.g.keyStates["bob"].view(time.Now(), nil)
			if v.PromptTokens != 22 || v.ComplTokens != 6 {
				t.Errorf("counted %d prompt, %d completion tokens, want 22 and 6", v.PromptTokens, v.ComplTokens)
			}
		})
	}
}

func TestKeyMaxParallel(t *testing.T) {
	for _, d := range dialects {
		t.Run(caseName(d.name, d.stream), func(t *testing.T) {
			a := newFakeNeuron(t, "a", "m1*")
			a.set(func(f *fakeNeuron) { f.stall = 300 * time.Millisecond })
			tg := startGateway(t, []*fakeNeuron{a}, withKeys(config.Key{Name: "carol", Key: "sk-c", MaxParallel: 1}))
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				if code, _, b := sendAs(t, tg, "sk-c", d.name, d.stream); code != 200 {
					t.Errorf("first request: %d %s", code, b)
				}
			}()
			waitFor(t, "the first request in flight", func() bool { return tg.g.inFlight.Load() == 1 })
			code, h, b := sendAs(t, tg, "sk-c", d.name, d.stream)
			wantRateLimited(t, d.name, code, h, b, "1 requests at once")
			wg.Wait()
			a.set(func(f *fakeNeuron) { f.stall = 0 })
			if code, _, b := sendAs(t, tg, "sk-c", d.name, d.stream); code != 200 {
				t.Fatalf("after the first ended: %d %s", code, b)
			}
		})
	}
}

func TestKeyBudget(t *testing.T) {
	for _, d := range dialects {
		t.Run(caseName(d.name, d.stream), func(t *testing.T) {
			a := newFakeNeuron(t, "a", "m1*")
			tg := startGateway(t, []*fakeNeuron{a}, withKeys(config.Key{Name: "dave", Key: "sk-d", BudgetTokens: 20, BudgetPeriod: "day"}))
			for i := range 2 {
				if code, _, b := sendAs(t, tg, "sk-d", d.name, d.stream); code != 200 {
					t.Fatalf("request %d: %d %s", i, code, b)
				}
			}
			code, h, b := sendAs(t, tg, "sk-d", d.name, d.stream)
			if code != http.StatusTooManyRequests || h.Get("Retry-After") == "" {
				t.Fatalf("status %d Retry-After %q: %s", code, h.Get("Retry-After"), b)
			}
			typ, c, msg := errShape(t, d.name, b)
			switch d.name {
			case "openai":
				if typ != "insufficient_quota" || c != "insufficient_quota" {
					t.Errorf("type %q code %q, want insufficient_quota", typ, c)
				}
			case "anthropic":
				if typ != "rate_limit_error" {
					t.Errorf("type %q, want rate_limit_error", typ)
				}
			}
			tomorrow := time.Now().UTC().Truncate(24 * time.Hour).Add(24 * time.Hour).Format(time.RFC3339)
			if !strings.Contains(msg, "resets at "+tomorrow) {
				t.Errorf("message %q does not say it resets at %s", msg, tomorrow)
			}
		})
	}
}

func TestKeyModelList(t *testing.T) {
	a := newFakeNeuron(t, "a", "m1*", "m2*", "org/x-7b*")
	tg := startGateway(t, []*fakeNeuron{a}, withAlias("fast", "m2"),
		withKeys(config.Key{Name: "eve", Key: "sk-e", Models: []string{"m1", "org/*"}}, config.Key{Name: "all", Key: "sk-all"}))
	for _, d := range []string{"openai", "anthropic"} {
		for _, stream := range []bool{false, true} {
			for _, model := range []string{"m2", "fast", "nope"} {
				extra := ""
				if stream {
					extra = `,"stream":true`
				}
				path, body := "/v1/chat/completions", chatReq(model, strings.TrimPrefix(extra, ","))
				if d == "anthropic" {
					path, body = "/v1/messages", strings.Replace(strings.Replace(msgReq, "%s", extra, 1), `"m1"`, `"`+model+`"`, 1)
				}
				code, _, b := tg.post(t, path, body, bearer("sk-e")...)
				_, _, wantBody := tg.post(t, path, strings.Replace(body, `"`+model+`"`, `"nope"`, 1), bearer("sk-e")...)
				if code != 404 {
					t.Fatalf("%s %s stream=%v: %d %s", d, model, stream, code, b)
				}
				typ, _, msg := errShape(t, d, string(b))
				_, _, wantMsg := errShape(t, d, string(wantBody))
				if model != "nope" && msg != strings.Replace(wantMsg, `"nope"`, `"`+model+`"`, 1) {
					t.Errorf("%s %s: message %q differs from an unknown model's %q", d, model, msg, wantMsg)
				}
				if d == "anthropic" && typ != "not_found_error" {
					t.Errorf("anthropic type %q", typ)
				}
			}
		}
	}
	for _, m := range []string{"m1", "org/x-7b"} {
		if code, _, b := tg.post(t, "/v1/chat/completions", chatReq(m, ""), bearer("sk-e")...); code != 200 {
			t.Errorf("%s: %d %s", m, code, b)
		}
	}
	_, b := tg.get(t, "/v1/models", bearer("sk-e")...)
	var list ModelList
	_ = json.Unmarshal(b, &list)
	var ids []string
	for _, e := range list.Data {
		ids = append(ids, e.ID)
	}
	if strings.Join(ids, ",") != "m1,org/x-7b" {
		t.Errorf("/v1/models for the key lists %v, want m1 and org/x-7b", ids)
	}
	if code, _ := tg.get(t, "/v1/models/m2", bearer("sk-e")...); code != 404 {
		t.Errorf("GET /v1/models/m2 = %d, want 404", code)
	}
	_, b = tg.get(t, "/v1/models", bearer("sk-all")...)
	if !strings.Contains(string(b), `"fast"`) {
		t.Errorf("a key without a list sees every model: %s", b)
	}
}

func TestKeyMetricsAndHashedKey(t *testing.T) {
	a := newFakeNeuron(t, "a", "m1*")
	sum := sha256.Sum256([]byte("sk-secret-frank"))
	tg := startGateway(t, []*fakeNeuron{a}, withKeys(config.Key{Name: "frank", KeySHA256: hex.EncodeToString(sum[:]), RPM: 1}),
		func(cfg *config.Config, _ *config.Catalogue) { cfg.Gateway.APIKeys = []string{"plain"} })
	if code, _, b := tg.post(t, "/v1/chat/completions", chatReq("m1", ""), bearer("sk-secret-frank")...); code != 200 {
		t.Fatalf("hashed key: %d %s", code, b)
	}
	if code, _, _ := tg.post(t, "/v1/chat/completions", chatReq("m1", ""), bearer("sk-secret-frank")...); code != 429 {
		t.Fatalf("second request: %d, want 429", code)
	}
	for range 3 {
		if code, _, b := tg.post(t, "/v1/chat/completions", chatReq("m1", ""), "x-api-key", "plain"); code != 200 {
			t.Fatalf("plain api_keys entry is unlimited: %d %s", code, b)
		}
	}
	if code, _, _ := tg.post(t, "/v1/chat/completions", chatReq("m1", ""), bearer("wrong")...); code != 401 {
		t.Fatalf("unknown key: %d", code)
	}
	out := scrapeMetrics(t, tg.g)
	for _, want := range []string{`cortex_key_requests_total{key="frank"} 2`, `cortex_key_rejections_total{key="frank",reason="rpm"} 1`,
		`cortex_key_tokens_total{key="frank",type="completion"} 3`, `cortex_key_requests_total{key="api_keys[0]"} 3`} {
		if !strings.Contains(out, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if strings.Contains(out, "sk-secret") || strings.Contains(out, "plain") {
		t.Error("a key's secret appears in the metrics")
	}
}

// A stream cut short before its usage chunk counts the chunks that were
// generated.
func TestKeyCountsCutStream(t *testing.T) {
	a := newFakeNeuron(t, "a", "m1*")
	a.set(func(f *fakeNeuron) { f.breakAfter = 3 })
	tg := startGateway(t, []*fakeNeuron{a}, withKeys(config.Key{Name: "gus", Key: "sk-g", BudgetTokens: 1000, BudgetPeriod: "week"}))
	code, _, b := sendAs(t, tg, "sk-g", "openai", true)
	if code != 200 || !strings.Contains(b, "error") {
		t.Fatalf("want a stream ending in an error event: %d %s", code, b)
	}
	v := tg.g.keyStates["gus"].view(time.Now(), nil)
	// Chunks 0-2 went out: the role chunk, "Hello" and " there".
	if v.BudgetSpent != 2 || v.ComplTokens != 2 {
		t.Errorf("budget spent %d, completion tokens %d; want the 2 tokens streamed", v.BudgetSpent, v.ComplTokens)
	}
	if v.Parallel != 0 {
		t.Errorf("in flight after the stream ended: %d", v.Parallel)
	}
}

// A model used by a key of high priority counts as that priority when the
// "priority" strategy picks what to evict.
func TestKeyPriorityProtectsModels(t *testing.T) {
	a := newFakeNeuron(t, "a", "m1*")
	tg := startGateway(t, []*fakeNeuron{a}, withKeys(config.Key{Name: "vip", Key: "sk-v", Priority: 500}, config.Key{Name: "low", Key: "sk-l"}))
	n := tg.g.fleet.byName["a"]
	prio := func() int {
		tg.g.fleet.mu.RLock()
		defer tg.g.fleet.mu.RUnlock()
		for _, r := range tg.g.residents(n) {
			if r.ID == "m1" {
				return r.Priority
			}
		}
		return -1
	}
	tg.post(t, "/v1/chat/completions", chatReq("m1", ""), bearer("sk-l")...)
	if p := prio(); p != config.DefaultPriority {
		t.Fatalf("priority after a plain key: %d", p)
	}
	tg.post(t, "/v1/chat/completions", chatReq("m1", ""), bearer("sk-v")...)
	if p := prio(); p != 500 {
		t.Fatalf("priority after the vip key: %d, want 500", p)
	}
	if err := tg.g.unloadOn(context.Background(), n, "m1", "test"); err != nil {
		t.Fatal(err)
	}
	if err := tg.g.loadOn(context.Background(), n, "m1", false); err != nil {
		t.Fatal(err)
	}
	if p := prio(); p != config.DefaultPriority {
		t.Errorf("a fresh load keeps the old key priority: %d", p)
	}
}

func TestPeriodStart(t *testing.T) {
	at := time.Date(2026, 12, 2, 19, 30, 0, 0, time.UTC) // a Wednesday
	for _, tc := range []struct {
		period     string
		start, end string
	}{
		{"day", "2026-12-02T00:00:00Z", "2026-12-03T00:00:00Z"},
		{"week", "2026-11-30T00:00:00Z", "2026-12-07T00:00:00Z"},
		{"month", "2026-12-01T00:00:00Z", "2027-01-01T00:00:00Z"},
	} {
		s := periodStart(tc.period, at)
		if s.Format(time.RFC3339) != tc.start || periodEnd(tc.period, s).Format(time.RFC3339) != tc.end {
			t.Errorf("%s: %s – %s", tc.period, s.Format(time.RFC3339), periodEnd(tc.period, s).Format(time.RFC3339))
		}
	}
	if s := periodStart("week", time.Date(2026, 11, 29, 23, 0, 0, 0, time.UTC)); s.Format(time.DateOnly) != "2026-11-23" {
		t.Errorf("a Sunday belongs to the week from the Monday before: %s", s)
	}
}

func TestGlob(t *testing.T) {
	for _, tc := range []struct {
		p, s string
		ok   bool
	}{{"m1", "m1", true}, {"m1", "m10", false}, {"m*", "m10", true}, {"org/*", "org/a/b", true}, {"*-7b", "x-7b", true},
		{"?1", "m1", true}, {"?1", "mm1", false}, {"*", "", true}, {"a*b*c", "aXbYc", true}, {"a*b*c", "aXbY", false}} {
		if glob(tc.p, tc.s) != tc.ok {
			t.Errorf("glob(%q, %q) = %v", tc.p, tc.s, !tc.ok)
		}
	}
}

func TestCarriesToken(t *testing.T) {
	for _, tc := range []struct {
		chunk string
		ok    bool
	}{
		{`{"choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}`, false},
		{`{"choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}]}`, true},
		{`{"choices":[{"index":0,"delta":{"content":"\"q"},"finish_reason":null}]}`, true},
		{`{"choices":[{"index":0,"delta":{"reasoning_content":"hm"}}]}`, true},
		{`{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"name":"f","arguments":""}}]}}]}`, false},
		{`{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"a\""}}]}}]}`, true},
		{`{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}`, false},
	} {
		if carriesToken([]byte(tc.chunk)) != tc.ok {
			t.Errorf("carriesToken(%s) = %v", tc.chunk, !tc.ok)
		}
	}
}
