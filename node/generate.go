package node

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"helexa/node/sampler"
)

// genRequest is one generation, already tokenized and validated.
type genRequest struct {
	Prompt []int32
	// MaxTokens caps the completion; 0 generates until the context is full.
	MaxTokens int
	Params    sampler.Params
	Seed      uint64
	Stops     []string
	// TopLogprobs > 0 or Logprobs asks for log-probabilities per token.
	Logprobs    bool
	TopLogprobs int
	// Emit receives each token as it is decided; an error stops the
	// generation (the client went away).
	Emit func(tokenEvent) error
	// KeepAlive, when set, is called every half keepAliveEvery, to write
	// something when the stream has sent nothing for keepAliveEvery (its
	// text held back: a long tool call, a stop string being matched; or a
	// slow model); an error stops the generation like Emit's.
	KeepAlive func() error
	// Constraint is the grammar the output follows (nil: free).
	Constraint *constraint
	// IgnoreEOS masks the end-of-generation tokens: the generation runs
	// to MaxTokens (or the context).
	IgnoreEOS bool
	// Arrived is when the request arrived (before its wait for
	// admission); time to first token counts from it. Zero: from the
	// start of generate.
	Arrived time.Time
}

// tokenEvent is one generated token. Text is the text it releases (may
// be empty while a stop string or a UTF-8 character is undecided, and may
// hold text of earlier tokens).
type tokenEvent struct {
	ID      int32
	Text    string
	Logprob float32
	Top     []sampler.TokenLogprob // nil unless asked
}

// genResult summarises a finished generation.
type genResult struct {
	PromptTokens     int
	CachedTokens     int
	CompletionTokens int
	Finish           string // stop, length
	PromptMS         float64
	PredictedMS      float64
	TTFT             time.Duration
}

// timings is llama.cpp's timings object.
type timings struct {
	PromptN             int     `json:"prompt_n"`
	PromptMS            float64 `json:"prompt_ms"`
	PromptPerSecond     float64 `json:"prompt_per_second"`
	PredictedN          int     `json:"predicted_n"`
	PredictedMS         float64 `json:"predicted_ms"`
	PredictedPerSecond  float64 `json:"predicted_per_second"`
	CacheN              int     `json:"cache_n"`
	PromptPerTokenMS    float64 `json:"prompt_per_token_ms"`
	PredictedPerTokenMS float64 `json:"predicted_per_token_ms"`
}

func (r genResult) timings() timings {
	t := timings{
		PromptN: r.PromptTokens - r.CachedTokens, PromptMS: r.PromptMS,
		PredictedN: r.CompletionTokens, PredictedMS: r.PredictedMS, CacheN: r.CachedTokens,
	}
	if t.PromptMS > 0 && t.PromptN > 0 {
		t.PromptPerSecond = float64(t.PromptN) / t.PromptMS * 1000
		t.PromptPerTokenMS = t.PromptMS / float64(t.PromptN)
	}
	if t.PredictedMS > 0 && t.PredictedN > 0 {
		t.PredictedPerSecond = float64(t.PredictedN) / t.PredictedMS * 1000
		t.PredictedPerTokenMS = t.PredictedMS / float64(t.PredictedN)
	}
	return t
}

// contextError reports a prompt that does not fit the context.
func contextError(n, nctx int) *apiError {
	return &apiError{Status: 400, Code: "context_length_exceeded", Param: "messages",
		Message: fmt.Sprintf("the prompt is %d tokens long, more than the model's context of %d tokens", n, nctx)}
}

// keepAliveEvery is how often a stream that sends nothing else gets a
// keep-alive (genRequest.KeepAlive): well inside the gateway's default
// stream_idle_timeout of 60 s and the idle limits of proxies.
var keepAliveEvery = 15 * time.Second

// generate runs one request on a loaded instance: its sequence joins the
// model's scheduler, which batches it with everyone else's, and the
// tokens it decides are handed to req.Emit here, on the request's
// goroutine, so a slow client never holds up the batch. The caller holds
// a place of the model's gate.
func (in *instance) generate(ctx context.Context, req genRequest) (genResult, error) {
	m := in.m
	if len(req.Prompt) == 0 {
		return genResult{}, badRequest("prompt", "the prompt is empty")
	}
	if len(req.Prompt) >= m.NCtx {
		return genResult{}, contextError(len(req.Prompt), m.NCtx)
	}
	for _, id := range req.Prompt {
		if id < 0 || int(id) >= m.NVocab {
			return genResult{}, badRequest("prompt", "token id %d is outside the vocabulary of %d", id, m.NVocab)
		}
	}
	smp, err := sampler.New(req.Params, m.NVocab)
	if err != nil {
		return genResult{}, badRequest("", "%v", err)
	}
	if in.maxOutput > 0 && (req.MaxTokens <= 0 || req.MaxTokens > in.maxOutput) {
		// the operator's cap: the generation ends with "length" there
		req.MaxTokens = in.maxOutput
	}
	tArrive := req.Arrived // time to first token counts the wait in the queue
	if tArrive.IsZero() {
		tArrive = time.Now()
	}
	q := &sequence{
		req: req, tArrive: tArrive, notify: make(chan struct{}, 1),
		logits: make([]float32, m.NVocab), smp: smp,
		rng: rand.New(rand.NewPCG(req.Seed, req.Seed^0x9e3779b97f4a7c15)),
		dec: m.NewDecoder(), stops: newStopMatcher(req.Stops),
	}
	if req.Constraint != nil {
		m.grammarVocab() // built once per model, here rather than in the batch loop
	}
	if req.TopLogprobs > 0 {
		q.top = make([]sampler.TokenLogprob, min(req.TopLogprobs, m.NVocab))
	}
	in.sched.submit(q)
	// The sequence leaves the batch at the next step when the request
	// gives up (client gone, emit failed); the request waits for that
	// (at most the step running now), so once it returns, and its gate
	// place is given back, nothing of it runs any more.
	defer func() {
		q.cancel.Store(true)
		in.sched.poke()
		for !q.isDone() {
			<-q.notify
		}
	}()
	var batch []tokenEvent
	var tick <-chan time.Time
	if req.KeepAlive != nil {
		t := time.NewTicker(keepAliveEvery / 2)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-q.notify:
		case <-tick:
			if err := req.KeepAlive(); err != nil {
				return q.result(), err
			}
			continue
		case <-ctx.Done():
			return q.result(), ctx.Err()
		}
		q.mu.Lock()
		batch = append(batch[:0], q.events...)
		clear(q.events)
		q.events = q.events[:0]
		done, err := q.done, q.err
		q.mu.Unlock()
		for _, ev := range batch {
			if err := req.Emit(ev); err != nil {
				return q.result(), err
			}
		}
		if done {
			return q.result(), err
		}
	}
}

// result is the sequence's summary once it is done (zero before).
func (q *sequence) result() genResult {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.final
}

func (in *instance) forwardErr(err error) error {
	if in.ctx.Err() != nil {
		return fmt.Errorf("%w: %s", errDraining, in.id)
	}
	return fmt.Errorf("forward pass of %s: %w", in.id, err)
}

func msSince(t time.Time) float64 { return float64(time.Since(t).Microseconds()) / 1000 }

// stopMatcher finds stop strings across token boundaries. It holds back
// text that may be the start of a stop string and never releases the stop
// string itself.
type stopMatcher struct {
	stops []string
	held  string
	done  bool
}

func newStopMatcher(stops []string) *stopMatcher {
	var s []string
	for _, x := range stops {
		if x != "" {
			s = append(s, x)
		}
	}
	return &stopMatcher{stops: s}
}

// add takes the next text and returns what can be released, and whether
// a stop string was hit (the text before it is released, the rest
// dropped).
func (m *stopMatcher) add(text string) (string, bool) {
	if m.done {
		return "", true
	}
	if len(m.stops) == 0 {
		return text, false
	}
	m.held += text
	first := -1
	for _, s := range m.stops {
		if i := strings.Index(m.held, s); i >= 0 && (first < 0 || i < first) {
			first = i
		}
	}
	if first >= 0 {
		out := m.held[:first]
		m.held, m.done = "", true
		return out, true
	}
	keep := 0
	for _, s := range m.stops {
		for k := min(len(s)-1, len(m.held)); k > keep; k-- {
			if strings.HasSuffix(m.held, s[:k]) {
				keep = k
				break
			}
		}
	}
	out := m.held[:len(m.held)-keep]
	m.held = m.held[len(m.held)-keep:]
	return out, false
}

// flush releases everything held (the generation ended), with text added
// first and matched like add.
func (m *stopMatcher) flush(text string) string {
	out, hit := m.add(text)
	if hit {
		return out
	}
	out += m.held
	m.held = ""
	return out
}
