// Package loadtest measures an OpenAI-compatible server under concurrent
// streaming requests: the helexa gateway or neuron, llama.cpp's server,
// vLLM, or anything else that streams /v1/chat/completions or
// /v1/completions as server-sent events.
//
// For each concurrency level it keeps exactly that many requests in
// flight until a fixed number has been sent, and reports throughput
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
	// max(16, 4×concurrency).
	Requests int
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
)

// LevelResult is what one concurrency level measured. Latencies are in
// milliseconds, durations in seconds. Percentiles interpolate linearly
// between the closest ranks; a percentile over no samples is 0 and its
// sample count says so.
type LevelResult struct {
	Model       string `json:"model"`
	Endpoint    string `json:"endpoint"`
	Concurrency int    `json:"concurrency"`
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
	// benchmark such as llama-batched-bench's S_TG.
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

// requestsFor is the number of requests a level sends.
func (c *Config) requestsFor(conc int) int {
	if c.Requests > 0 {
		return c.Requests
	}
	return max(16, 4*conc)
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
	if len(c.Concurrency) == 0 {
		return errors.New("no concurrency levels given")
	}
	for _, n := range c.Concurrency {
		if n < 1 || n > maxConcurrency {
			return fmt.Errorf("concurrency %d: want 1 to %d", n, maxConcurrency)
		}
		if c.Requests > 0 && c.Requests < n {
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
	for li, conc := range cfg.Concurrency {
		res := r.level(ctx, li, conc, p)
		out = append(out, res)
		if res.Interrupted {
			return out, fmt.Errorf("%w at concurrency %d: %w", ErrInterrupted, conc, ctx.Err())
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

// level runs one concurrency level: conc workers take request numbers
// until the level's count is sent, so exactly conc are in flight until
// the last ones finish.
func (r *runner) level(ctx context.Context, li, conc int, p *progress) LevelResult {
	n := r.cfg.requestsFor(conc)
	var (
		mu      sync.Mutex
		results = make([]reqResult, 0, n)
		next    atomic.Int64
		wg      sync.WaitGroup
	)
	bar := p.start(conc, n)
	start := r.cfg.now()
	for range conc {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n || ctx.Err() != nil {
					return
				}
				res := r.do(ctx, r.prompt(li, i, r.words), r.cfg.MaxTokens)
				if res.err != nil && ctx.Err() != nil {
					return // cut short by the interrupt: neither done nor failed
				}
				mu.Lock()
				results = append(results, res)
				mu.Unlock()
				bar.done(res.err != nil)
			}
		})
	}
	wg.Wait()
	wall := r.cfg.now().Sub(start)
	bar.finish()
	lr := summarize(results, conc, wall)
	lr.Model, lr.Endpoint = r.cfg.Model, string(r.cfg.Endpoint)
	lr.Concurrency, lr.Requests = conc, n
	lr.MaxTokens, lr.PromptWords = r.cfg.MaxTokens, r.words
	lr.Interrupted = ctx.Err() != nil && len(results) < n
	return lr
}
