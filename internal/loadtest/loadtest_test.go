package loadtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestPercentile(t *testing.T) {
	f := func(xs []float64, p, want float64) {
		t.Helper()
		if got := percentile(xs, p); got != want {
			t.Errorf("percentile(%v, %v) = %v, want %v", xs, p, got, want)
		}
	}
	hundred := make([]float64, 100)
	for i := range hundred {
		hundred[i] = float64(100 - i) // 100..1, unsorted
	}
	f(hundred, 50, 50.5)
	f(hundred, 99, 99.01)
	f(hundred, 0, 1)
	f(hundred, 100, 100)
	f([]float64{7}, 99, 7)
	f([]float64{10, 20}, 50, 15)
	f(nil, 50, 0)
}

func TestParseConcurrency(t *testing.T) {
	got, err := ParseConcurrency(" 1, 2,4,8 ,16")
	if err != nil || !cmp.Equal(got, []int{1, 2, 4, 8, 16}) {
		t.Errorf("ParseConcurrency = %v, %v", got, err)
	}
	for _, bad := range []string{"", "1,,2", "0", "-1", "x", "2,y", "1.5", "100000"} {
		if _, err := ParseConcurrency(bad); err == nil || !strings.Contains(err.Error(), "--concurrency") {
			t.Errorf("ParseConcurrency(%q) = %v, want an error naming --concurrency", bad, err)
		}
	}
}

// scripted runs one level at concurrency 1 against a scripted server on
// a fake clock.
func scripted(t *testing.T, n int, script func(n int) []event) LevelResult {
	t.Helper()
	clock := &fakeClock{t: time.Unix(1000, 0)}
	cfg := Config{
		URL: "http://fake", Model: "m", Concurrency: []int{1}, Requests: n, MaxTokens: 5, PromptTokens: 8,
		NoCalibrate: true, Client: &http.Client{Transport: &scriptTransport{clock: clock, script: script}},
		now: clock.now,
	}
	levels, err := Run(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(levels) != 1 {
		t.Fatalf("%d levels, want 1", len(levels))
	}
	return levels[0]
}

// schedule is request k's stream (k from 0): a role chunk, 5 content
// chunks, the first at (k+1)×100 ms and then gaps of 10, 20, 30 and 40
// ms times k+1, then the usage chunk and [DONE] 5 ms after the last.
func schedule(k int, usage bool) []event {
	s := time.Duration(k + 1)
	ev := []event{{time.Millisecond, `{"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}`}}
	at := 100 * time.Millisecond * s
	for i := range 5 {
		at += time.Duration(i) * 10 * time.Millisecond * s
		ev = append(ev, event{at, fmt.Sprintf(`{"choices":[{"index":0,"delta":{"content":"w%d"}}]}`, i)})
	}
	at += 5 * time.Millisecond
	if usage {
		ev = append(ev, event{at, `{"choices":[],"usage":{"prompt_tokens":9,"completion_tokens":5}}`})
	}
	return append(ev, event{at, "[DONE]"})
}

func TestFiguresFollowTheSchedule(t *testing.T) {
	got := scripted(t, 4, func(n int) []event {
		if n == 1 { // warm-up
			return schedule(9, true)
		}
		return schedule(n-2, true)
	})
	// TTFT 100, 200, 300, 400 ms. ITL, sorted: 10 20 20 30 30 40 40 40
	// 60 60 80 80 90 120 120 160. End to end 205, 405, 605, 805 ms, one
	// after the other: 2,020 ms of wall time for 4 requests of 5 tokens.
	want := LevelResult{
		Model: "m", Endpoint: "chat", Concurrency: 1, Requests: 4, Completed: 4,
		DurationS: 2.02, RequestsPerS: 1.98, OutputTokens: 20, OutputTokPerS: 9.9,
		DecodeTokPerS:    16, // 16 tokens after the first ones, over the ITL sum of 1,000 ms
		OutputTokensFrom: "usage", OutputTokensMean: 5, MaxTokens: 5, PromptWords: 8, PromptTokensMean: 9,
		TTFTMsP50: 250, TTFTMsP99: 397, TTFTMsMean: 250,
		ITLMsP50: 50, ITLMsP99: 154, ITLMsMean: 62.5, ITLSamples: 16,
		E2EMsP50: 505, E2EMsP99: 799,
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("level (-want +got):\n%s", d)
	}
}

func TestOutputCountedAsChunksWithoutUsage(t *testing.T) {
	got := scripted(t, 2, func(n int) []event { return schedule(0, false) })
	if got.OutputTokens != 10 || got.OutputTokensFrom != "chunks" || got.PromptTokensMean != 0 {
		t.Errorf("output %d tokens from %q, prompt mean %v; want 10 from chunks, 0", got.OutputTokens, got.OutputTokensFrom, got.PromptTokensMean)
	}
	// 2 requests of 205 ms each: 10 tokens in 0.41 s.
	if got.OutputTokPerS != 24.39 {
		t.Errorf("output tok/s = %v, want 24.39", got.OutputTokPerS)
	}
}

func newFake(t *testing.T, f *fakeServer) (*fakeServer, string) {
	t.Helper()
	f.t = t
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv.URL
}

func TestLevelsKeepExactlyConcurrencyInFlight(t *testing.T) {
	for _, c := range []int{1, 3, 8} {
		t.Run(fmt.Sprint("c", c), func(t *testing.T) {
			f, url := newFake(t, &fakeServer{hold: c, ttft: 2 * time.Millisecond, gap: time.Millisecond})
			levels, err := Run(context.Background(), Config{URL: url, Model: "m", Concurrency: []int{c}, MaxTokens: 4, PromptTokens: 12, NoCalibrate: true}, nil)
			if err != nil {
				t.Fatal(err)
			}
			l := levels[0]
			n := max(16, 4*c)
			if l.Requests != n || l.Completed != n || l.Errors != 0 {
				t.Errorf("requests %d, completed %d, errors %d; want %d, %d, 0", l.Requests, l.Completed, l.Errors, n, n)
			}
			if got := f.maxInflight.Load(); got != int64(c) {
				t.Errorf("at most %d requests in flight, want exactly %d", got, c)
			}
			if got := f.arrivals.Load(); got != int64(n+1) {
				t.Errorf("%d requests arrived, want %d and the warm-up", got, n)
			}
			if l.OutputTokens != 4*n || l.OutputTokensFrom != "usage" || l.PromptTokensMean != 12 {
				t.Errorf("output %d tokens from %q, prompt mean %v; want %d from usage, 12", l.OutputTokens, l.OutputTokensFrom, l.PromptTokensMean, 4*n)
			}
			if l.ITLSamples != 3*n {
				t.Errorf("%d inter-token samples, want %d", l.ITLSamples, 3*n)
			}
		})
	}
}

func TestRequestBodies(t *testing.T) {
	f, url := newFake(t, &fakeServer{})
	_, err := Run(context.Background(), Config{URL: url + "/v1/", Model: "tiny", Concurrency: []int{2}, Requests: 4, MaxTokens: 3, PromptTokens: 20, NoCalibrate: true, Seed: 7}, nil)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for i, b := range f.bodies {
		opts, _ := b["stream_options"].(map[string]any)
		if b["model"] != "tiny" || b["stream"] != true || opts["include_usage"] != true || b["max_tokens"] != 3.0 || b["ignore_eos"] != true {
			t.Errorf("request %d: %v", i, b)
		}
		content := b["messages"].([]any)[0].(map[string]any)["content"].(string)
		if n := len(strings.Fields(content)); n != 20 {
			t.Errorf("request %d: %d prompt words, want 20", i, n)
		}
		if seen[content] {
			t.Errorf("request %d repeats an earlier prompt", i)
		}
		seen[content] = true
	}
	// The same seed gives the same prompts.
	a, b, c := newRunner(Config{Seed: 7}), newRunner(Config{Seed: 7}), newRunner(Config{Seed: 8})
	if a.prompt(0, 1, 20) != b.prompt(0, 1, 20) || a.prompt(0, 1, 20) == a.prompt(1, 1, 20) || a.prompt(0, 1, 20) == c.prompt(0, 1, 20) {
		t.Error("prompts are not a function of seed, level and request")
	}
}

func TestCompletionsEndpoint(t *testing.T) {
	f, url := newFake(t, &fakeServer{endpoint: "/v1/completions"})
	levels, err := Run(context.Background(), Config{URL: url, Model: "m", Endpoint: Completions, Concurrency: []int{2}, Requests: 4, MaxTokens: 6, NoCalibrate: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if l := levels[0]; l.Completed != 4 || l.OutputTokens != 24 || l.ITLSamples != 20 {
		t.Errorf("completed %d, output %d, itl samples %d; want 4, 24, 20", l.Completed, l.OutputTokens, l.ITLSamples)
	}
	for _, b := range f.bodies {
		if _, ok := b["prompt"].(string); !ok || b["messages"] != nil {
			t.Errorf("completions body %v: want a prompt and no messages", b)
		}
	}
}

func TestCalibrationFitsTheTemplate(t *testing.T) {
	f := func(fixed, wantWords int, wantMean float64, wantNote string) {
		t.Helper()
		// The server counts fixed template tokens plus 2 per word.
		srv := &fakeServer{noUsage: true}
		srv.before = func(n int, w http.ResponseWriter, r *http.Request, body map[string]any) bool {
			content := body["messages"].([]any)[0].(map[string]any)["content"].(string)
			words := len(strings.Fields(content))
			w.Header().Set("Content-Type", "text/event-stream")
			fmt.Fprint(w, "data: {\"choices\":[{\"delta\":{\"content\":\"x\"}}]}\n\n")
			fmt.Fprintf(w, "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":%d,\"completion_tokens\":1}}\n\ndata: [DONE]\n\n", fixed+2*words)
			return true
		}
		_, url := newFake(t, srv)
		var progress bytes.Buffer
		levels, err := Run(context.Background(), Config{URL: url, Model: "m", Concurrency: []int{1}, Requests: 2, PromptTokens: 64, MaxTokens: 1}, &progress)
		if err != nil {
			t.Fatal(err)
		}
		if l := levels[0]; l.PromptWords != wantWords || l.PromptTokensMean != wantMean {
			t.Errorf("fixed %d: %d prompt words, %v prompt tokens on average; want %d, %v", fixed, l.PromptWords, l.PromptTokensMean, wantWords, wantMean)
		}
		if got := srv.arrivals.Load(); got != 4 {
			t.Errorf("fixed %d: %d requests, want 4: warm-up, calibration, 2 measured", fixed, got)
		}
		if !strings.Contains(progress.String(), wantNote) {
			t.Errorf("fixed %d: progress lacks %q:\n%s", fixed, wantNote, progress.String())
		}
	}
	// 64 words: 138 tokens; 30 words: 70; so 27 words for 64 tokens.
	f(10, 27, 64, "64 words made 138 prompt tokens and 30 made 70: using 27 words for about 64 tokens")
	// 64 words: 228 tokens; 18 words: 136; the template alone is 100.
	f(100, 1, 102, "alone is about 100 tokens, more than --prompt-tokens 64")
}

func TestFailedRequestsAreCounted(t *testing.T) {
	f := &fakeServer{}
	f.before = func(n int, w http.ResponseWriter, r *http.Request, body map[string]any) bool {
		switch n {
		case 4, 7:
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintf(w, `{"error":{"message":"queue full at request %d"}}`, n)
			return true
		case 9:
			w.Header().Set("Content-Type", "text/event-stream")
			fmt.Fprint(w, "data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\n")
			fmt.Fprint(w, "data: {\"error\":{\"message\":\"device lost\"}}\n\n")
			return true
		}
		return false
	}
	_, url := newFake(t, f)
	var out bytes.Buffer
	err := run(context.Background(), Config{URL: url, Model: "m", Concurrency: []int{1}, Requests: 10, MaxTokens: 2, NoCalibrate: true}, &out, nil, true)
	if err == nil || !strings.Contains(err.Error(), "3 of 10 requests failed") || !strings.Contains(err.Error(), "queue full at request 4") {
		t.Errorf("error %v, want 3 of 10 failed, the first queue full at request 4", err)
	}
	var levels []LevelResult
	if err := json.Unmarshal(out.Bytes(), &levels); err != nil {
		t.Fatalf("output is not the JSON array: %v\n%s", err, out.String())
	}
	l := levels[0]
	if l.Completed != 7 || l.Errors != 3 || l.OutputTokens != 14 {
		t.Errorf("completed %d, errors %d, output %d; want 7, 3, 14", l.Completed, l.Errors, l.OutputTokens)
	}
	if !strings.Contains(l.FirstError, "503") || !strings.Contains(l.FirstError, "queue full at request 4") {
		t.Errorf("first error %q", l.FirstError)
	}
}

func TestMidStreamErrorEvent(t *testing.T) {
	var res reqResult
	r := newRunner(Config{now: time.Now})
	err := r.readStream(strings.NewReader("data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\ndata: {\"error\":{\"message\":\"device lost\"}}\n\n"), &res)
	if err == nil || !strings.Contains(err.Error(), "device lost") {
		t.Errorf("readStream = %v, want the error event's message", err)
	}
	err = r.readStream(strings.NewReader("data: {\"choices\":[{\"delta\":{\"role\":\"assistant\"}}]}\n\ndata: [DONE]\n\n"), &reqResult{})
	if err == nil || !strings.Contains(err.Error(), "no output") {
		t.Errorf("readStream of an empty stream = %v, want no output", err)
	}
	err = r.readStream(strings.NewReader("data: {oops\n\n"), &reqResult{})
	if err == nil || !strings.Contains(err.Error(), "not JSON") {
		t.Errorf("readStream of bad JSON = %v", err)
	}
	// Comments, event names, CRLF and a stream closed without [DONE] are fine.
	res = reqResult{usageOut: -1}
	err = r.readStream(strings.NewReader(": ping\r\nevent: x\r\ndata:{\"choices\":[{\"text\":\"a\"}]}\r\n\r\n"), &res)
	if err != nil || len(res.chunks) != 1 {
		t.Errorf("readStream = %v with %d chunks, want 1 chunk", err, len(res.chunks))
	}
}

func TestBadInput(t *testing.T) {
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	_, keyed := newFake(t, &fakeServer{apiKey: "sekrit"})
	notFound := &fakeServer{}
	notFound.before = func(n int, w http.ResponseWriter, r *http.Request, body map[string]any) bool {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprintf(w, `{"error":{"message":"model '%s' not found","code":"model_not_found"}}`, body["model"])
		return true
	}
	_, missing := newFake(t, notFound)
	plain := &fakeServer{}
	plain.before = func(n int, w http.ResponseWriter, r *http.Request, body map[string]any) bool {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"choices":[{"message":{"content":"hi"}}]}`)
		return true
	}
	_, noSSE := newFake(t, plain)

	f := func(want string, args ...string) {
		t.Helper()
		var out, errOut bytes.Buffer
		cmd := Command()
		cmd.Writer, cmd.ErrWriter = &out, &errOut
		err := cmd.Run(context.Background(), append([]string{"loadtest"}, args...))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("loadtest %v = %v, want an error with %q", args, err, want)
		}
	}
	f("connection refused", "--url", closed.URL, "--model", "m", "-c", "1")
	f("401 Unauthorized: invalid api key (check --api-key)", "--url", keyed, "--model", "m", "-c", "1")
	f("401", "--url", keyed, "--api-key", "wrong", "--model", "m", "-c", "1")
	f(`404 Not Found: model 'nope' not found (check --model`, "--url", missing, "--model", "nope", "-c", "1")
	f("not an event stream", "--url", noSSE, "--model", "m", "-c", "1")
	f("--concurrency", "--url", keyed, "--model", "m", "-c", "1,two")
	f("--concurrency", "--url", keyed, "--model", "m", "-c", "")
	f("--requests 4 is below concurrency 8", "--url", keyed, "--model", "m", "-c", "1,8", "-n", "4")
	f("--max-tokens", "--url", keyed, "--model", "m", "--max-tokens", "0")
	f("--endpoint", "--url", keyed, "--model", "m", "--endpoint", "embeddings")
	f("--url", "--url", "localhost:1", "--model", "m")
	f("model", "--url", keyed)

	// The right key works.
	var out bytes.Buffer
	cmd := Command()
	cmd.Writer, cmd.ErrWriter = &out, &bytes.Buffer{}
	if err := cmd.Run(context.Background(), []string{"loadtest", "--url", keyed, "--api-key", "sekrit", "--model", "m", "-c", "1,2", "-n", "2", "--max-tokens", "2"}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "concurrency") || strings.Count(out.String(), "\n") != 4 {
		t.Errorf("table:\n%s", out.String())
	}
}

func TestInterruptKeepsWhatWasMeasured(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	blocked := make(chan struct{}, 8)
	f := &fakeServer{}
	// Requests 2 and 3 (the level's first two) finish; 4 and 5 stall
	// after one chunk, and Ctrl-C comes once both have.
	f.before = func(n int, w http.ResponseWriter, r *http.Request, body map[string]any) bool {
		if n < 4 {
			return false
		}
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\n")
		w.(http.Flusher).Flush()
		blocked <- struct{}{}
		if len(blocked) == 2 {
			cancel()
		}
		<-r.Context().Done()
		return true
	}
	_, url := newFake(t, f)
	var out, progress bytes.Buffer
	err := run(ctx, Config{URL: url, Model: "m", Concurrency: []int{2, 4}, Requests: 8, MaxTokens: 2, NoCalibrate: true}, &out, &progress, false)
	if !errors.Is(err, ErrInterrupted) || !errors.Is(err, context.Canceled) {
		t.Errorf("error %v, want it to say interrupted", err)
	}
	if !strings.Contains(out.String(), "2/8*") || !strings.Contains(out.String(), "interrupted after 2 of 8") {
		t.Errorf("table:\n%s", out.String())
	}
}

func TestJSONAndProgress(t *testing.T) {
	_, url := newFake(t, &fakeServer{})
	var out, progress bytes.Buffer
	cmd := Command()
	cmd.Writer, cmd.ErrWriter = &out, &progress
	if err := cmd.Run(context.Background(), []string{"loadtest", "--url", url, "--model", "m", "-c", "1,2", "-n", "4", "--max-tokens", "3", "-p", "10", "--json"}); err != nil {
		t.Fatal(err)
	}
	var doc []map[string]any
	if err := json.Unmarshal(out.Bytes(), &doc); err != nil {
		t.Fatalf("stdout is not one JSON document: %v\n%s", err, out.String())
	}
	if len(doc) != 2 {
		t.Fatalf("%d levels, want 2", len(doc))
	}
	for _, k := range []string{"model", "endpoint", "concurrency", "requests", "completed", "errors", "duration_s",
		"requests_per_s", "output_tokens", "output_tok_per_s", "output_tokens_from", "prompt_tokens_mean",
		"ttft_ms_p50", "ttft_ms_p99", "itl_ms_p50", "itl_ms_p99", "itl_samples", "e2e_ms_p50", "e2e_ms_p99"} {
		if _, ok := doc[1][k]; !ok {
			t.Errorf("level object lacks %q: %v", k, doc[1])
		}
	}
	if doc[1]["concurrency"] != 2.0 || doc[1]["completed"] != 4.0 || doc[1]["output_tokens"] != 12.0 {
		t.Errorf("second level %v", doc[1])
	}
	for _, line := range []string{"warm-up: 1 request", "10 words made 10 prompt tokens", "concurrency 2: 4 requests", "concurrency 2: 4/4 done, 0 errors"} {
		if !strings.Contains(progress.String(), line) {
			t.Errorf("progress lacks %q:\n%s", line, progress.String())
		}
	}
}

func TestTable(t *testing.T) {
	var out bytes.Buffer
	err := WriteTable(&out, []LevelResult{
		{Model: "m", Endpoint: "chat", Concurrency: 1, Requests: 4, Completed: 4, MaxTokens: 1, PromptWords: 9, PromptTokensMean: 30,
			RequestsPerS: 2, OutputTokPerS: 2, DecodeTokPerS: 3.456, OutputTokens: 4, OutputTokensMean: 1, OutputTokensFrom: "usage",
			TTFTMsP50: 12.345, TTFTMsP99: 123.4, E2EMsP50: 5},
		{Model: "m", Endpoint: "chat", Concurrency: 8, Requests: 32, Completed: 10, Errors: 2, FirstError: "boom", Interrupted: true,
			MaxTokens: 1, OutputTokens: 8, OutputTokensMean: 0.8, OutputTokensFrom: "mixed", ITLSamples: 3, ITLMsP50: 1.5, ITLMsP99: 2},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := `m, chat endpoint, 9-word prompts (30 prompt tokens on average), max_tokens 1
  concurrency  completed  errors  req/s  output tok/s  decode tok/s  ttft p50 ms  ttft p99 ms  itl p50 ms  itl p99 ms  e2e p50 ms
            1        4/4       0   2.00           2.0           3.5         12.3          123           -           -        5.00
            8     10/32*       2   0.00           0.0           0.0         0.00         0.00        1.50        2.00        0.00
* concurrency 8 was interrupted after 12 of 32 requests
concurrency 8: 2 errors, the first: boom
concurrency 8: 0.8 output tokens per request on average, below max_tokens 1: the server stopped some early (it may not honour ignore_eos)
concurrency 8: output tokens counted as stream chunks where the server sent no usage
`
	if d := cmp.Diff(want, out.String()); d != "" {
		t.Errorf("table (-want +got):\n%s", d)
	}
}

// TestDecodeRate: the decode rate is the tokens after each request's
// first over the time from its first chunk to its last, times the
// concurrency; one-token requests and failures add nothing to it.
func TestDecodeRate(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms ...int) []time.Time {
		var out []time.Time
		for _, m := range ms {
			out = append(out, t0.Add(time.Duration(m)*time.Millisecond))
		}
		return out
	}
	results := []reqResult{
		{start: t0, end: t0.Add(600 * time.Millisecond), chunks: at(100, 200, 300, 500), usageOut: 4},           // 3 tokens in 400 ms
		{start: t0, end: t0.Add(700 * time.Millisecond), chunks: at(300, 400, 500), usageOut: -1},               // 2 tokens in 200 ms
		{start: t0, end: t0.Add(300 * time.Millisecond), chunks: at(250), usageOut: 1},                          // no decode
		{start: t0, end: t0.Add(300 * time.Millisecond), chunks: at(10, 20), usageOut: 2, err: errors.New("x")}, // failed
	}
	got := summarize(results, 4, time.Second)
	// 5 tokens in 600 ms per stream, four streams: 33.33 tok/s
	if got.DecodeTokPerS != 33.33 {
		t.Errorf("decode tok/s = %v, want 33.33", got.DecodeTokPerS)
	}
}

func TestArrivalsArePoisson(t *testing.T) {
	const n, rate = 4000, 10.0
	at := arrivals(7, 0, rate, n)
	if at[0] != 0 {
		t.Fatalf("the first arrival is at %v, want at once", at[0])
	}
	var sum, sq float64
	for i := 1; i < n; i++ {
		g := (at[i] - at[i-1]).Seconds()
		if g < 0 {
			t.Fatalf("arrival %d comes before the one before it", i)
		}
		sum += g
		sq += g * g
	}
	mean := sum / (n - 1)
	sd := math.Sqrt(sq/(n-1) - mean*mean)
	// Exponential gaps: mean 1/rate, standard deviation equal to the mean.
	if math.Abs(mean-1/rate) > 0.05/rate || math.Abs(sd/mean-1) > 0.08 {
		t.Errorf("gaps: mean %.4fs, sd/mean %.3f; want %.4fs and 1", mean, sd/mean, 1/rate)
	}
	if again := arrivals(7, 0, rate, n); !slices.Equal(at, again) {
		t.Error("the same seed and level gave another schedule")
	}
	if other := arrivals(7, 1, rate, n); slices.Equal(at, other) {
		t.Error("two levels got the same schedule")
	}
}

func TestOpenLoop(t *testing.T) {
	const n, rate = 12, 50.0
	// Each request takes ~100 ms, several of the ~20 ms arrival gaps: an
	// open loop overlaps them where a closed loop of one would not.
	f, url := newFake(t, &fakeServer{ttft: 60 * time.Millisecond, gap: 10 * time.Millisecond})
	levels, err := Run(context.Background(), Config{URL: url, Model: "m", RequestRates: []float64{rate}, Requests: n, MaxTokens: 4, PromptTokens: 8, NoCalibrate: true, Seed: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	l := levels[0]
	if l.Completed != n || l.Errors != 0 || l.RequestRate != rate || l.Concurrency != 0 || l.DecodeTokPerS != 0 {
		t.Errorf("completed %d, errors %d, rate %v, concurrency %d, decode %v; want %d, 0, %v, 0 (no cap), 0",
			l.Completed, l.Errors, l.RequestRate, l.Concurrency, l.DecodeTokPerS, n, rate)
	}
	if got := f.maxInflight.Load(); got < 3 {
		t.Errorf("at most %d requests in flight; the arrivals should overlap", got)
	}
	if l.MeanInFlight <= 1 {
		t.Errorf("mean in flight %v, want above 1", l.MeanInFlight)
	}
	// No request is sent before its arrival time (measured from the
	// level's first; later is allowed, the machine may be slow).
	want := arrivals(1, 0, rate, n)
	f.mu.Lock()
	got := f.arrivedAt[1:] // after the warm-up
	f.mu.Unlock()
	slices.SortFunc(got, func(a, b time.Time) int { return a.Compare(b) })
	for i := range got {
		if d := got[i].Sub(got[0]); d < want[i]-5*time.Millisecond {
			t.Errorf("request %d arrived %v after the first, its schedule says %v", i, d, want[i])
		}
	}

	// A cap holds the requests in flight to it.
	f, url = newFake(t, &fakeServer{ttft: 60 * time.Millisecond, gap: 10 * time.Millisecond})
	levels, err = Run(context.Background(), Config{URL: url, Model: "m", RequestRates: []float64{rate}, Concurrency: []int{2}, Requests: n, MaxTokens: 4, PromptTokens: 8, NoCalibrate: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := f.maxInflight.Load(); got != 2 || levels[0].Completed != n || levels[0].Concurrency != 2 {
		t.Errorf("capped at 2: %d in flight at most, %d completed, concurrency %d", got, levels[0].Completed, levels[0].Concurrency)
	}
}

func TestOpenLoopCommand(t *testing.T) {
	_, url := newFake(t, &fakeServer{})
	run := func(args ...string) (string, error) {
		var out bytes.Buffer
		cmd := Command()
		cmd.Writer, cmd.ErrWriter = &out, &bytes.Buffer{}
		err := cmd.Run(context.Background(), append([]string{"loadtest", "--url", url, "--model", "m", "--max-tokens", "2", "-n", "3"}, args...))
		return out.String(), err
	}
	for _, bad := range []struct {
		want string
		args []string
	}{
		{"--request-rate", []string{"--request-rate", "0"}},
		{"--request-rate", []string{"--request-rate", "fast"}},
		{"--request-rate", []string{"--request-rate", "1,-2"}},
		{"one cap on requests in flight", []string{"--request-rate", "100", "-c", "1,2"}},
	} {
		if _, err := run(bad.args...); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%v: %v, want an error with %q", bad.args, err, bad.want)
		}
	}
	out, err := run("--request-rate", "200,400", "-c", "2")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "rate/s") || !strings.Contains(out, "mean in flight") || strings.Count(out, "\n") != 4 {
		t.Errorf("table:\n%s", out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if f := strings.Fields(lines[2]); f[0] != "200" || f[1] != "2" || f[2] != "3/3" {
		t.Errorf("first level's row %q: want rate 200, cap 2, 3/3 completed", lines[2])
	}
}

func TestOpenLoopRequestCounts(t *testing.T) {
	for _, c := range []struct {
		rate float64
		want int
	}{{0.1, 16}, {2, 60}, {2.5, 75}, {1e6, maxRateRequests}} {
		cfg := Config{RequestRates: []float64{c.rate}}
		if got := cfg.requestsFor(cfg.levels()[0]); got != c.want {
			t.Errorf("rate %v: %d requests by default, want %d", c.rate, got, c.want)
		}
	}
	cfg := Config{RequestRates: []float64{2}, Requests: 7}
	if got := cfg.requestsFor(cfg.levels()[0]); got != 7 {
		t.Errorf("--requests 7 at a rate: %d requests", got)
	}
}
