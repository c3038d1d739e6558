// Package loadtest measures an OpenAI-compatible server under concurrent
// streaming requests: the helexa gateway or neuron, llama.cpp's server,
// vLLM, or anything else that streams /v1/chat/completions or
// /v1/completions as server-sent events.
//
// For each concurrency level it keeps exactly that many requests in
// flight until a fixed number has been sent (or, given request rates,
// sends them as a Poisson process of arrivals at each rate, an open loop
// like vLLM's --request-rate), and reports throughput
// (requests/s, output tokens/s over the level's wall time) and latency
// percentiles (time to first token, inter-token latency, end-to-end).
// Every request asks for the same max_tokens with ignore_eos, so servers
// that honour it generate the same count each time.
package loadtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Endpoint is the API a load test streams from.
type Endpoint string

const (
	// Chat streams POST /v1/chat/completions with one user message.
	Chat Endpoint = "chat"
	// Completions streams POST /v1/completions with a plain prompt.
	Completions Endpoint = "completions"
)

// Config describes a load test. The zero value of each optional field
// picks its default.
type Config struct {
	// URL is the server's API root, with or without a trailing /v1:
	// "http://127.0.0.1:31313" and "http://127.0.0.1:31313/v1" are the same.
	URL string
	// APIKey is sent as "Authorization: Bearer KEY" when set.
	APIKey string
	// Model is the request's model field.
	Model string
	// Endpoint is Chat (the default) or Completions.
	Endpoint Endpoint
	// Concurrency lists the levels to run, in order: requests in flight.
	Concurrency []int
	// Requests is the number of requests per level; 0 means
	// max(16, 4×concurrency), or at a request rate half a minute of
	// arrivals (16 to 10,000).
	Requests int
	// RequestRates, when set, makes every level an open loop at one of
	// these rates: requests arrive on their own schedule, a Poisson
	// process of that many a second (exponential gaps drawn from Seed,
	// the first at once), whatever the earlier ones' progress, as with
	// vLLM's benchmark_serving --request-rate. Concurrency then holds at
	// most one value, the cap on requests in flight (an arrival beyond
	// it waits for a slot); none means no cap.
	RequestRates []float64
	// PromptTokens is the prompt's target length in tokens (default 128).
	// Prompts are random common words, about one token each; unless
	// NoCalibrate is set, the word count is adjusted from the prompt
	// token counts the server reports for the warm-up requests.
	PromptTokens int
	// MaxTokens is every request's max_tokens (default 128).
	MaxTokens int
	// NoCalibrate keeps prompts at PromptTokens words.
	NoCalibrate bool
	// Seed makes the prompts reproducible.
	Seed uint64
	// Timeout bounds one request from sending to the end of its stream;
	// 0 means none.
	Timeout time.Duration
	// Client sends the requests. Nil means a client that keeps enough
	// idle connections for the highest level.
	Client *http.Client

	now func() time.Time // the clock; tests replace it
}

// Defaults of Config's optional fields.
const (
	DefaultPromptTokens = 128
	DefaultMaxTokens    = 128
	maxConcurrency      = 4096
	maxRequestRate      = 1e6
	// rateSeconds is how long the default request count of an open-loop
	// level keeps arriving, within 16 and maxRateRequests requests.
	rateSeconds     = 30
	maxRateRequests = 10000
)

// LevelResult is what one concurrency level measured. Latencies are in
// milliseconds, durations in seconds. Percentiles interpolate linearly
// between the closest ranks; a percentile over no samples is 0 and its
// sample count says so.
type LevelResult struct {
	Model    string `json:"model"`
	Endpoint string `json:"endpoint"`
	// Concurrency is a closed loop's requests in flight, or an open
	// loop's cap on them (0: none).
	Concurrency int `json:"concurrency"`
	// RequestRate is an open loop's arrivals a second; 0 for a closed
	// loop.
	RequestRate float64 `json:"request_rate,omitempty"`
	// MeanInFlight is how many requests an open loop had in flight on
	// average: their end-to-end times over the wall time.
	MeanInFlight float64 `json:"mean_in_flight,omitempty"`
	// Requests is how many the level was to send.
	Requests int `json:"requests"`
	// Completed is how many streamed to the end without an error.
	Completed int `json:"completed"`
	// Errors counts failed requests; FirstError is the first one's message.
	Errors     int    `json:"errors"`
	FirstError string `json:"first_error,omitempty"`
	// Interrupted is set when the run was stopped during this level;
	// requests cut short are then neither completed nor errors.
	Interrupted bool `json:"interrupted,omitempty"`

	DurationS     float64 `json:"duration_s"`
	RequestsPerS  float64 `json:"requests_per_s"`
	OutputTokens  int     `json:"output_tokens"`
	OutputTokPerS float64 `json:"output_tok_per_s"`
	// DecodeTokPerS is the streams' aggregate rate while they decode: the
	// requests' tokens after their first over the time from their first
	// chunk to their last, times the concurrency. Unlike OutputTokPerS
	// it leaves out the time to first token (the prompt's prefill and
	// any queueing), so it is the figure to set beside a batched decode
	// benchmark such as llama-batched-bench's S_TG. An open loop, whose
	// number of streams changes, has none (0).
	DecodeTokPerS float64 `json:"decode_tok_per_s"`
	// OutputTokensFrom is "usage" when every completed request's count
	// came from the server's usage chunk, "chunks" when it was counted as
	// content chunks, "mixed" when both.
	OutputTokensFrom string  `json:"output_tokens_from"`
	OutputTokensMean float64 `json:"output_tokens_mean"`
	MaxTokens        int     `json:"max_tokens"`
	PromptWords      int     `json:"prompt_words"`
	// PromptTokensMean is the mean prompt_tokens the server reported (0
	// when it reported none).
	PromptTokensMean float64 `json:"prompt_tokens_mean"`

	TTFTMsP50  float64 `json:"ttft_ms_p50"`
	TTFTMsP99  float64 `json:"ttft_ms_p99"`
	TTFTMsMean float64 `json:"ttft_ms_mean"`
	// ITL is the time between consecutive content chunks of a request,
	// over all completed requests.
	ITLMsP50   float64 `json:"itl_ms_p50"`
	ITLMsP99   float64 `json:"itl_ms_p99"`
	ITLMsMean  float64 `json:"itl_ms_mean"`
	ITLSamples int     `json:"itl_samples"`
	E2EMsP50   float64 `json:"e2e_ms_p50"`
	E2EMsP99   float64 `json:"e2e_ms_p99"`
}

// ErrInterrupted is returned, wrapped around the context's error, when
// the context ends a run early. The levels measured so far come with it.
var ErrInterrupted = errors.New("interrupted")

// ParseConcurrency reads a comma-separated list of levels, "1,2,4,8".
func ParseConcurrency(s string) ([]int, error) {
	if strings.TrimSpace(s) == "" {
		return nil, errors.New("--concurrency is empty: give levels such as 1,2,4,8")
	}
	var out []int
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 || n > maxConcurrency {
			return nil, fmt.Errorf("--concurrency %q: %q is not a whole number from 1 to %d", s, f, maxConcurrency)
		}
		out = append(out, n)
	}
	return out, nil
}

// ParseRates reads a comma-separated list of request rates a second,
// "0.5,1,2,4".
func ParseRates(s string) ([]float64, error) {
	var out []float64
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		r, err := strconv.ParseFloat(f, 64)
		if err != nil || !(r > 0 && r <= maxRequestRate) {
			return nil, fmt.Errorf("--request-rate %q: %q is not a rate above 0 and at most %g a second", s, f, float64(maxRequestRate))
		}
		out = append(out, r)
	}
	return out, nil
}

// levelSpec is one level of a run: conc requests in flight (a closed
// loop), or arrivals at rate a second with at most conc in flight (an
// open loop; conc 0: no cap).
type levelSpec struct {
	conc int
	rate float64
}

// name is how messages and progress call the level.
func (l levelSpec) name() string {
	if l.rate == 0 {
		return fmt.Sprintf("concurrency %d", l.conc)
	}
	return fmt.Sprintf("rate %s/s", strconv.FormatFloat(l.rate, 'g', -1, 64))
}

// levels lists the run's levels in order.
func (c *Config) levels() []levelSpec {
	if len(c.RequestRates) == 0 {
		out := make([]levelSpec, len(c.Concurrency))
		for i, n := range c.Concurrency {
			out[i] = levelSpec{conc: n}
		}
		return out
	}
	limit := 0
	if len(c.Concurrency) > 0 {
		limit = c.Concurrency[0]
	}
	out := make([]levelSpec, len(c.RequestRates))
	for i, r := range c.RequestRates {
		out[i] = levelSpec{conc: limit, rate: r}
	}
	return out
}

// requestsFor is the number of requests a level sends.
func (c *Config) requestsFor(l levelSpec) int {
	switch {
	case c.Requests > 0:
		return c.Requests
	case l.rate > 0:
		return min(maxRateRequests, max(16, int(math.Ceil(rateSeconds*l.rate))))
	}
	return max(16, 4*l.conc)
}

// validate checks the config and fills defaults.
func (c *Config) validate() error {
	if strings.TrimSpace(c.URL) == "" {
		return errors.New("no --url given")
	}
	if !strings.HasPrefix(c.URL, "http://") && !strings.HasPrefix(c.URL, "https://") {
		return fmt.Errorf("--url %q: want http:// or https://", c.URL)
	}
	if strings.TrimSpace(c.Model) == "" {
		return errors.New("no --model given")
	}
	switch c.Endpoint {
	case "":
		c.Endpoint = Chat
	case Chat, Completions:
	default:
		return fmt.Errorf("--endpoint %q: want chat or completions", c.Endpoint)
	}
	if len(c.Concurrency) == 0 && len(c.RequestRates) == 0 {
		return errors.New("no concurrency levels given")
	}
	if len(c.RequestRates) > 0 && len(c.Concurrency) > 1 {
		return fmt.Errorf("with --request-rate, --concurrency is one cap on requests in flight, not %d levels", len(c.Concurrency))
	}
	for _, r := range c.RequestRates {
		if !(r > 0 && r <= maxRequestRate) {
			return fmt.Errorf("request rate %g: want above 0 and at most %g a second", r, float64(maxRequestRate))
		}
	}
	for _, n := range c.Concurrency {
		if n < 1 || n > maxConcurrency {
			return fmt.Errorf("concurrency %d: want 1 to %d", n, maxConcurrency)
		}
		if c.Requests > 0 && c.Requests < n && len(c.RequestRates) == 0 {
			return fmt.Errorf("--requests %d is below concurrency %d: that level could never have %d requests in flight", c.Requests, n, n)
		}
	}
	if c.Requests < 0 {
		return fmt.Errorf("--requests %d: want at least 1 (or 0 for the default)", c.Requests)
	}
	if c.PromptTokens == 0 {
		c.PromptTokens = DefaultPromptTokens
	}
	if c.MaxTokens == 0 {
		c.MaxTokens = DefaultMaxTokens
	}
	if c.PromptTokens < 1 || c.MaxTokens < 1 {
		return fmt.Errorf("--prompt-tokens and --max-tokens must be at least 1 (got %d, %d)", c.PromptTokens, c.MaxTokens)
	}
	if c.Timeout < 0 {
		return fmt.Errorf("--timeout %s is negative", c.Timeout)
	}
	if c.now == nil {
		c.now = time.Now
	}
	return nil
}

// Run warms the server up with requests that are not counted, then runs
// each concurrency level in turn and returns what each measured. Progress
// goes to progress (nil for none): a bar redrawn in place when it is a
// terminal, plain lines otherwise.
//
// A warm-up that fails ends the run with its error: the server is
// unreachable, refuses the key, lacks the model, or does not stream.
// Requests that fail during a level are counted, not fatal. When ctx ends,
// Run returns the levels measured so far, the interrupted one last, with
// an error wrapping ErrInterrupted.
func Run(ctx context.Context, cfg Config, progress io.Writer) ([]LevelResult, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	r := newRunner(cfg)
	defer r.close()
	p := newProgress(progress)
	if err := r.warmUp(ctx, p); err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%w during the warm-up: %w", ErrInterrupted, ctx.Err())
		}
		return nil, err
	}
	var out []LevelResult
	for li, lv := range r.cfg.levels() {
		res := r.level(ctx, li, lv, p)
		out = append(out, res)
		if res.Interrupted {
			return out, fmt.Errorf("%w at %s: %w", ErrInterrupted, lv.name(), ctx.Err())
		}
	}
	return out, nil
}

// runner holds what every request of a run shares.
type runner struct {
	cfg    Config
	url    string
	client *http.Client
	own    *http.Transport // the transport runner made, closed at the end
	words  int             // prompt length in words, after calibration
}

func newRunner(cfg Config) *runner {
	base := strings.TrimRight(strings.TrimSpace(cfg.URL), "/")
	base = strings.TrimSuffix(base, "/v1")
	path := "/v1/chat/completions"
	if cfg.Endpoint == Completions {
		path = "/v1/completions"
	}
	r := &runner{cfg: cfg, url: base + path, client: cfg.Client, words: cfg.PromptTokens}
	if r.client == nil {
		highest := 1
		for _, n := range cfg.Concurrency {
			highest = max(highest, n)
		}
		if len(cfg.RequestRates) > 0 && len(cfg.Concurrency) == 0 {
			highest = 64 // uncapped: as many as arrive
		}
		t := http.DefaultTransport.(*http.Transport).Clone()
		// The default keeps 2 idle connections per host: at higher levels
		// every request would otherwise pay for a new connection.
		t.MaxIdleConns = highest + 4
		t.MaxIdleConnsPerHost = highest + 4
		t.DisableCompression = true
		r.own = t
		r.client = &http.Client{Transport: t}
	}
	return r
}

func (r *runner) close() {
	if r.own != nil {
		r.own.CloseIdleConnections()
	}
}

// prompt is the text of request i of level li (li < 0: warm-up), the same
// for the same seed, and different across requests so that no server
// can answer one from another's prefix cache.
func (r *runner) prompt(li, i, words int) string {
	rng := rand.New(rand.NewPCG(r.cfg.Seed, uint64(uint32(li))<<32|uint64(uint32(i))))
	return promptText(rng, words)
}

// warmUp sends one request with the run's settings, not counted, then
// calibrates the prompt's word count from the reported prompt tokens.
func (r *runner) warmUp(ctx context.Context, p *progress) error {
	p.line("warm-up: 1 request of %d prompt words and max_tokens %d to %s (not counted)", r.words, r.cfg.MaxTokens, r.url)
	w1 := r.words
	res := r.do(ctx, r.prompt(-1, 0, w1), r.cfg.MaxTokens)
	if res.err != nil {
		return fmt.Errorf("warm-up request to %s: %w", r.url, res.err)
	}
	if r.cfg.NoCalibrate {
		return nil
	}
	t1 := res.usagePrompt
	target := r.cfg.PromptTokens
	if t1 <= 0 {
		p.line("the server reported no prompt tokens: prompts stay %d words", w1)
		return nil
	}
	if near(t1, target) {
		p.line("%d words made %d prompt tokens", w1, t1)
		return nil
	}
	// A second point separates the template's fixed tokens from the
	// tokens per word: tokens = fixed + rate×words.
	w2 := max(1, int(float64(w1)*float64(target)/float64(t1)+0.5))
	if w2 == w1 {
		w2 = max(1, w1/2)
	}
	if w2 == w1 {
		return nil
	}
	res = r.do(ctx, r.prompt(-2, 0, w2), 1)
	if res.err != nil {
		return fmt.Errorf("calibration request to %s: %w", r.url, res.err)
	}
	t2 := res.usagePrompt
	words := w2
	fixed := 0.0
	if t2 > 0 && t2 != t1 {
		rate := float64(t1-t2) / float64(w1-w2)
		fixed = float64(t1) - rate*float64(w1)
		if rate > 0 {
			words = max(1, int((float64(target)-fixed)/rate+0.5))
		}
	}
	r.words = words
	p.line("%d words made %d prompt tokens and %d made %d: using %d words for about %d tokens", w1, t1, w2, t2, words, target)
	if fixed >= float64(target) {
		p.line("the request's fixed part (chat template) alone is about %.0f tokens, more than --prompt-tokens %d", fixed, target)
	}
	return nil
}

// near reports whether got is within 2% (or 1 token) of want.
func near(got, want int) bool {
	d := got - want
	if d < 0 {
		d = -d
	}
	return d <= 1 || float64(d) <= 0.02*float64(want)
}

// level runs one level. A closed loop has conc workers take request
// numbers until the level's count is sent, so exactly conc are in flight
// until the last ones finish; an open loop starts each request at its
// arrival time (arrive).
func (r *runner) level(ctx context.Context, li int, lv levelSpec, p *progress) LevelResult {
	n := r.cfg.requestsFor(lv)
	var (
		mu      sync.Mutex
		results = make([]reqResult, 0, n)
		wg      sync.WaitGroup
	)
	bar := p.start(lv.name(), n)
	// send sends request i and records it, unless the interrupt cut it
	// short: then it is neither done nor failed.
	send := func(i int) {
		res := r.do(ctx, r.prompt(li, i, r.words), r.cfg.MaxTokens)
		if res.err != nil && ctx.Err() != nil {
			return
		}
		mu.Lock()
		results = append(results, res)
		mu.Unlock()
		bar.done(res.err != nil)
	}
	start := r.cfg.now()
	if lv.rate > 0 {
		r.arrive(ctx, li, lv, n, send, &wg)
	} else {
		var next atomic.Int64
		for range lv.conc {
			wg.Go(func() {
				for {
					i := int(next.Add(1)) - 1
					if i >= n || ctx.Err() != nil {
						return
					}
					send(i)
				}
			})
		}
	}
	wg.Wait()
	wall := r.cfg.now().Sub(start)
	bar.finish()
	decodeConc := lv.conc
	if lv.rate > 0 {
		decodeConc = 0 // the number of streams changes: no decode rate
	}
	lr := summarize(results, decodeConc, wall)
	lr.Model, lr.Endpoint = r.cfg.Model, string(r.cfg.Endpoint)
	lr.Concurrency, lr.RequestRate, lr.Requests = lv.conc, lv.rate, n
	lr.MaxTokens, lr.PromptWords = r.cfg.MaxTokens, r.words
	lr.Interrupted = ctx.Err() != nil && len(results) < n
	if lv.rate > 0 && wall > 0 {
		var busy time.Duration
		for _, res := range results {
			if res.err == nil {
				busy += res.end.Sub(res.start)
			}
		}
		lr.MeanInFlight = round(busy.Seconds()/wall.Seconds(), 2)
	}
	return lr
}

// arrivals is when, from the level's start, each of an open loop's n
// requests arrives: a Poisson process of rate a second (exponential gaps
// of mean 1/rate seconds), the first at once, the same for the same seed
// and level.
func arrivals(seed uint64, li int, rate float64, n int) []time.Duration {
	rng := rand.New(rand.NewPCG(seed, 1<<63|uint64(uint32(li))))
	out := make([]time.Duration, n)
	for i := 1; i < n; i++ {
		out[i] = out[i-1] + time.Duration(rng.ExpFloat64()/rate*float64(time.Second))
	}
	return out
}

// arrive starts an open loop's n requests with send at their arrival
// times. With a cap, an arrival that finds cap requests in flight waits
// for one to end. It returns when the last has started (or ctx ended);
// wg tracks the requests.
func (r *runner) arrive(ctx context.Context, li int, lv levelSpec, n int, send func(i int), wg *sync.WaitGroup) {
	var slots chan struct{}
	if lv.conc > 0 {
		slots = make(chan struct{}, lv.conc)
	}
	start := time.Now()
	for i, at := range arrivals(r.cfg.Seed, li, lv.rate, n) {
		if d := time.Until(start.Add(at)); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return
			}
		}
		if slots != nil {
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				return
			}
		}
		wg.Go(func() {
			if slots != nil {
				defer func() { <-slots }()
			}
			send(i)
		})
	}
}
