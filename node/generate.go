package node

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"helexa/node/sampler"
)

// prefillChunk is how many prompt tokens one forward job computes, so that
// other requests' decode steps interleave with a long prefill and a
// disconnect is noticed quickly.
const prefillChunk = 256

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
	return &apiError{Status: 400, Type: "invalid_request_error", Code: "context_length_exceeded", Param: "messages",
		Message: fmt.Sprintf("the prompt is %d tokens long, more than the model's context of %d tokens", n, nctx)}
}

// generate runs one request on a loaded instance: a KV slot (reusing a
// cached prefix), prefill in chunks, then one decode step per token, each
// a job on the device worker so concurrent requests interleave token by
// token. The caller holds a place of the instance's gate (see admit) for
// the whole call.
func (in *instance) generate(ctx context.Context, req genRequest) (genResult, error) {
	var res genResult
	m := in.m
	if len(req.Prompt) == 0 {
		return res, badRequest("prompt", "the prompt is empty")
	}
	if len(req.Prompt) >= m.NCtx {
		return res, contextError(len(req.Prompt), m.NCtx)
	}
	for _, id := range req.Prompt {
		if id < 0 || int(id) >= m.NVocab {
			return res, badRequest("prompt", "token id %d is outside the vocabulary of %d", id, m.NVocab)
		}
	}
	smp, err := sampler.New(req.Params, m.NVocab)
	if err != nil {
		return res, badRequest("", "%v", err)
	}

	tArrive := req.Arrived // time to first token counts the wait in the queue
	if tArrive.IsZero() {
		tArrive = time.Now()
	}
	// Unloading cancels what is still running after the drain wait.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(in.ctx, cancel)
	defer stop()

	slot, cached, ok := in.slots.take(req.Prompt)
	if !ok {
		return res, fmt.Errorf("no free KV slot for %s (admission bug)", in.id)
	}
	// seq is what the slot's cache holds; it is handed back at the end,
	// whatever happens (a panic included), so the slot never leaks.
	seq := req.Prompt[:cached:cached]
	defer func() { in.slots.give(slot, seq) }()
	// Room for the whole generation, bounded by the context: MaxTokens
	// may be anything up to the context or beyond (then the context ends
	// the generation), so no sum here may overflow.
	want := len(req.Prompt) + min(max(req.MaxTokens, 16), m.NCtx)
	seq = append(make([]int32, 0, min(m.NCtx, want)), seq...)

	res.PromptTokens = len(req.Prompt)
	res.CachedTokens = cached
	logits := make([]float32, m.NVocab)
	w := in.dev.w

	// Prefill.
	t0 := time.Now()
	for pos := cached; pos < len(req.Prompt); {
		n := min(prefillChunk, len(req.Prompt)-pos)
		chunk := req.Prompt[pos : pos+n]
		if err := w.Do(ctx, func() error { return m.Forward(slot, chunk, pos, logits) }); err != nil {
			return res, in.forwardErr(err)
		}
		seq = append(seq, chunk...)
		pos += n
	}
	res.PromptMS = msSince(t0)
	in.stats.prefill(res.PromptTokens-cached, res.PromptMS)

	// Decode.
	rng := rand.New(rand.NewPCG(req.Seed, req.Seed^0x9e3779b97f4a7c15))
	dec := m.NewDecoder()
	stops := newStopMatcher(req.Stops)
	var top []sampler.TokenLogprob
	if req.TopLogprobs > 0 {
		top = make([]sampler.TokenLogprob, min(req.TopLogprobs, m.NVocab))
	}
	t1 := time.Now()
	res.Finish = "length"
	for {
		if err := ctx.Err(); err != nil {
			if in.ctx.Err() != nil {
				return res, fmt.Errorf("%w: %s was unloaded during the generation", errDraining, in.id)
			}
			return res, err
		}
		id, err := smp.Sample(logits, seq, rng)
		if err != nil {
			return res, err
		}
		ev := tokenEvent{ID: id}
		if req.Logprobs || req.TopLogprobs > 0 {
			ev.Logprob = sampler.Logprobs(logits, id, top)
			if top != nil {
				ev.Top = append([]sampler.TokenLogprob(nil), top...)
			}
		}
		if res.CompletionTokens == 0 {
			res.TTFT = time.Since(tArrive)
		}
		res.CompletionTokens++
		eog := m.IsEOG(id)
		if eog {
			res.Finish = "stop"
			ev.Text = stops.flush(dec.Flush())
		} else {
			text, hit := stops.add(dec.Add(id))
			ev.Text = text
			if hit {
				res.Finish = "stop"
				eog = true
			}
		}
		if err := req.Emit(ev); err != nil {
			return res, err
		}
		if eog {
			break
		}
		full := len(seq)+1 >= m.NCtx
		if (req.MaxTokens > 0 && res.CompletionTokens >= req.MaxTokens) || full {
			// Release what is held back: the generation ends here.
			if rest := stops.flush(dec.Flush()); rest != "" {
				if err := req.Emit(tokenEvent{ID: -1, Text: rest}); err != nil {
					return res, err
				}
			}
			break
		}
		pos := len(seq)
		tok := []int32{id}
		if err := w.Do(ctx, func() error { return m.Forward(slot, tok, pos, logits) }); err != nil {
			return res, in.forwardErr(err)
		}
		seq = append(seq, id)
	}
	res.PredictedMS = msSince(t1)
	in.stats.decode(res.CompletionTokens, res.PredictedMS)
	in.srv.metrics.generated(in.id, res)
	return res, nil
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
