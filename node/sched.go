package node

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"helexa/node/device"
	"helexa/node/engine"
	"helexa/node/grammar"
	"helexa/node/sampler"
)

// idlePrefill is how many prompt tokens one step reads when no sequence
// is decoding: nobody waits on the step, so it may be long.
const idlePrefill = 256

// scheduler batches every request of one loaded model. Each step it runs
// one forward pass over the next token of every decoding sequence plus
// chunks of waiting prompts, up to a token budget, and hands each
// sequence its logits. New sequences join at the next step; finished,
// stopped or cancelled ones leave at the next step. It owns the model's
// KV pool: the loop goroutine is the only one touching it.
type scheduler struct {
	in     *instance
	m      *engine.Model
	budget int // tokens per step while sequences decode

	live atomic.Int32 // sequences submitted and not yet finished
	// parallelDraws counts the steps whose tokens were drawn on two
	// goroutines (drawAll).
	parallelDraws atomic.Int64
	met           *batchMetrics

	mu      sync.Mutex
	waiting []*sequence // submitted, not yet seen by the loop
	wake    chan struct{}
	stopped chan struct{} // closed when the loop has ended

	// Owned by the loop.
	queue   []*sequence // seen, waiting for KV blocks (first come, first served)
	running []*sequence // holding a place in the pool
	items   []engine.SeqItem
	owners  []*sequence
	others  []*engine.Seq
	// grammars are the compiled output grammars of recent requests.
	grammars grammarCache
	// draws are the step's sequences whose token is drawn ahead of
	// deciding (drawAll); drawer is the goroutine that draws part of them.
	draws  []*sequence
	drawer chan []*sequence
	drawn  chan struct{}
	// pass is the device worker's job for a step, made once: a closure
	// made every step would be an allocation per step.
	pass func() error
}

// sequence is one request's generation as the scheduler runs it.
type sequence struct {
	req     genRequest
	cancel  atomic.Bool // the request gave up
	tArrive time.Time

	// Owned by the loop.
	seq    *engine.Seq
	fed    int      // prompt tokens in the cache
	next   [1]int32 // the token to feed at the next step
	logits []float32
	smp    *sampler.Sampler
	rng    *rand.Rand
	dec    decoder
	stops  *stopMatcher
	top    []sampler.TokenLogprob
	gm     *grammar.Matcher // follows the output grammar (nil: none yet)
	// the token drawn for this step ahead of decide (drawAll)
	draw    int32
	drawErr error
	hasDraw bool
	tStart  time.Time // prefill began
	tFirst  time.Time // first token decided
	res     genResult

	// Handed to the request's goroutine.
	mu     sync.Mutex
	events []tokenEvent
	done   bool
	err    error
	final  genResult
	notify chan struct{}
}

func newScheduler(in *instance, m *engine.Model, budget int) *scheduler {
	s := &scheduler{in: in, m: m, budget: max(budget, 1), wake: make(chan struct{}, 1), stopped: make(chan struct{}),
		drawer: make(chan []*sequence), drawn: make(chan struct{}), met: in.srv.metrics.batch(in.id)}
	forward := func() error { return s.m.ForwardBatch(s.items) }
	s.pass = func() error { return device.CatchFault(forward) }
	go s.drawLoop()
	go s.loop()
	return s
}

// drawLoop draws the tokens of the sequences the loop hands it, until
// the loop ends.
func (s *scheduler) drawLoop() {
	for {
		select {
		case qs := <-s.drawer:
			for _, q := range qs {
				drawSafely(q, s.in.m.EOG)
			}
			s.drawn <- struct{}{}
		case <-s.stopped:
			return
		}
	}
}

// minParallelDraws is the fewest sequences a step draws on two
// goroutines: below it the hand-over costs more than it saves.
const minParallelDraws = 4

// drawAll draws, before the step's sequences are decided one by one, the
// next token of every one that wants one and has no output grammar (the
// grammar cache is the loop's): that is each sequence's own sampler, rng
// and logits, so half of them go to the drawer goroutine while the loop
// draws the rest. Sampling a vocabulary is the larger part of deciding.
func (s *scheduler) drawAll() {
	s.draws = s.draws[:0]
	for i, it := range s.items {
		q := s.owners[i]
		if it.Logits != nil && q.fed >= len(q.req.Prompt) && q.req.Constraint == nil && !q.isDone() {
			s.draws = append(s.draws, q)
		}
	}
	if len(s.draws) < minParallelDraws {
		return
	}
	s.parallelDraws.Add(1)
	half := len(s.draws) / 2
	s.drawer <- s.draws[:half]
	for _, q := range s.draws[half:] {
		drawSafely(q, s.in.m.EOG)
	}
	<-s.drawn
}

// drawSafely draws q's next token into q.draw; a panic becomes q's error.
func drawSafely(q *sequence, eog []int32) {
	defer func() {
		if r := recover(); r != nil {
			q.drawErr = fmt.Errorf("sampling panicked: %v", r)
		}
	}()
	q.hasDraw = true
	q.draw, q.drawErr = q.sample(eog, nil)
}

// sample masks q's logits as its request says (ignore_eos: the
// end-of-generation tokens eog), applies constrain when given, and draws
// the next token.
func (q *sequence) sample(eog []int32, constrain func() error) (int32, error) {
	if q.req.IgnoreEOS {
		for _, id := range eog {
			q.logits[id] = float32(math.Inf(-1))
		}
	}
	if constrain != nil {
		if err := constrain(); err != nil {
			return 0, err
		}
	}
	return q.smp.Sample(q.logits, q.seq.Tokens, q.rng)
}

// submit hands a sequence to the loop.
func (s *scheduler) submit(q *sequence) {
	s.live.Add(1)
	s.mu.Lock()
	s.waiting = append(s.waiting, q)
	s.mu.Unlock()
	s.poke()
}

func (s *scheduler) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// loop runs steps until the instance ends and every sequence is gone.
func (s *scheduler) loop() {
	defer close(s.stopped)
	ctx := s.in.ctx
	for {
		s.mu.Lock()
		s.queue = append(s.queue, s.waiting...)
		clear(s.waiting)
		s.waiting = s.waiting[:0]
		s.mu.Unlock()

		if ctx.Err() != nil {
			// Unloading: whatever still runs ends now (the drain wait
			// is over).
			for _, q := range append(s.queue, s.running...) {
				s.finish(q, fmt.Errorf("%w: %s was unloaded during the generation", errDraining, s.in.id))
			}
			s.queue, s.running = s.queue[:0], s.running[:0]
			s.m.Pool().DropCache()
			return
		}
		if !s.turn() {
			select {
			case <-s.wake:
			case <-ctx.Done():
			}
		}
	}
}

// turn runs one step, if there is anything to run, and reports whether
// there was. A panic (a bug) fails the sequences of the step, not the
// process, and the loop goes on.
func (s *scheduler) turn() (ran bool) {
	defer func() {
		if r := recover(); r != nil {
			err := fmt.Errorf("%s: scheduler step panicked: %v", s.in.id, r)
			s.in.srv.log.Error().Str("model", s.in.id).Interface("panic", r).Bytes("stack", debug.Stack()).Msg("scheduler step panicked")
			for _, q := range s.running {
				if !q.isDone() {
					s.finish(q, err)
				}
			}
			s.compact()
			ran = true
		}
	}()
	s.drop()
	s.admit()
	if !s.build() {
		return false
	}
	s.step()
	return true
}

// drop removes cancelled sequences.
func (s *scheduler) drop() {
	keep := func(list []*sequence) []*sequence {
		out := list[:0]
		for _, q := range list {
			if q.cancel.Load() {
				s.finish(q, context.Canceled)
				continue
			}
			out = append(out, q)
		}
		clear(list[len(out):])
		return out
	}
	s.queue = keep(s.queue)
	s.running = keep(s.running)
}

// admit starts waiting sequences, in order, while the pool has blocks for
// their prompts. A prompt the pool could never hold is refused.
func (s *scheduler) admit() {
	n := 0
	for _, q := range s.queue {
		s.others = s.others[:0]
		for _, r := range s.running {
			s.others = append(s.others, r.seq)
		}
		seq, cached, err := s.m.Pool().Start(q.req.Prompt, s.others)
		if errors.Is(err, engine.ErrKVFull) && len(s.running) > 0 {
			break // wait for running sequences to end; later ones wait too
		}
		n++
		if err != nil {
			s.finish(q, &apiError{Status: 400, Code: "context_length_exceeded", Param: "messages",
				Message: fmt.Sprintf("the prompt of %d tokens does not fit the model's KV cache: %v", len(q.req.Prompt), err)})
			continue
		}
		q.seq, q.fed = seq, cached
		q.res.PromptTokens, q.res.CachedTokens = len(q.req.Prompt), cached
		q.tStart = time.Now()
		s.running = append(s.running, q)
	}
	clear(s.queue[:n])
	s.queue = s.queue[n:]
}

// build makes the step's batch: the next token of every decoding
// sequence, then prompt chunks (oldest first) up to the budget. It
// reports whether there is anything to run.
func (s *scheduler) build() bool {
	s.items, s.owners = s.items[:0], s.owners[:0]
	pool := s.m.Pool()
	decoding := 0
	for _, q := range s.running {
		if q.fed < len(q.req.Prompt) {
			continue
		}
		if err := pool.Grow(q.seq, q.seq.Len()+1); err != nil {
			// The pool cannot hold the sequence's next token: it
			// ends as if its context were full.
			s.end(q)
			continue
		}
		s.items = append(s.items, engine.SeqItem{Seq: q.seq, Tokens: singleToken(q), Logits: q.logits})
		s.owners = append(s.owners, q)
		decoding++
	}
	left := idlePrefill
	if decoding > 0 {
		// Prompts still move while others decode, at least a quarter
		// of the budget a step.
		left = max(s.budget-decoding, s.budget/4, 1)
	}
	for _, q := range s.running {
		if q.fed >= len(q.req.Prompt) || left == 0 {
			continue
		}
		k := min(left, len(q.req.Prompt)-q.fed)
		it := engine.SeqItem{Seq: q.seq, Tokens: q.req.Prompt[q.fed : q.fed+k]}
		if q.fed+k == len(q.req.Prompt) {
			it.Logits = q.logits
		}
		s.items = append(s.items, it)
		s.owners = append(s.owners, q)
		left -= k
	}
	s.compact()
	return len(s.items) > 0
}

// singleToken is the decoding sequence's next input: the token it last
// sampled.
func singleToken(q *sequence) []int32 {
	return q.next[:]
}

// step runs the batch on the device worker and hands out the results.
func (s *scheduler) step() {
	t0 := time.Now()
	err := s.in.dev.w.Do(context.Background(), s.pass)
	t1 := time.Now()
	s.met.forward.Add(t1.Sub(t0).Seconds())
	defer func() { s.met.sample.Add(time.Since(t1).Seconds()) }()
	if ferr := device.AsFault(err); ferr != nil {
		// The model's mapped file changed under it (truncated or
		// replaced on disk): this model fails and is unloaded, the
		// neuron and its other models carry on.
		err = ferr
		s.in.srv.log.Error().Str("model", s.in.id).Err(err).Msg("reading the model's weights faulted; unloading it")
		go s.in.srv.failModel(s.in.id, err)
	}
	if err != nil {
		err = s.in.forwardErr(err)
		for _, q := range s.owners {
			s.finish(q, err)
		}
		s.compact()
		return
	}
	// The prompts' progress first, so drawAll sees who decides now.
	rows, prefill := 0, 0
	for i, it := range s.items {
		q := s.owners[i]
		rows += len(it.Tokens)
		if q.fed < len(q.req.Prompt) {
			prefill += len(it.Tokens)
			q.fed += len(it.Tokens)
			if q.fed >= len(q.req.Prompt) {
				q.res.PromptMS = msSince(q.tStart)
				s.in.stats.prefill(q.res.PromptTokens-q.res.CachedTokens, q.res.PromptMS)
			}
		}
	}
	s.met.steps.Inc()
	s.met.rows.Update(float64(rows))
	s.met.prefillRows.Add(prefill)
	s.met.decodeRows.Add(rows - prefill)
	s.drawAll()
	for i, it := range s.items {
		if q := s.owners[i]; q.fed >= len(q.req.Prompt) && it.Logits != nil {
			s.decideSafely(q)
		}
	}
	s.compact()
}

// decideSafely is decide, with a panic failing only q.
func (s *scheduler) decideSafely(q *sequence) {
	defer func() {
		if r := recover(); r != nil {
			s.in.srv.log.Error().Str("model", s.in.id).Interface("panic", r).Bytes("stack", debug.Stack()).Msg("sampling panicked")
			if !q.isDone() {
				s.finish(q, fmt.Errorf("%s: sampling panicked: %v", s.in.id, r))
			}
		}
	}()
	s.decide(q)
}

// decide samples q's next token from its logits and hands it over; the
// sequence ends on an end-of-generation token, a stop string, its token
// limit or a full context.
func (s *scheduler) decide(q *sequence) {
	m := s.in.m
	id, err := q.draw, q.drawErr
	if !q.hasDraw {
		id, err = q.sample(m.EOG, func() error { return s.constrain(q) })
	}
	q.hasDraw, q.drawErr = false, nil
	if err != nil {
		s.finish(q, err)
		return
	}
	complete, err := s.advance(q, id)
	if err != nil {
		s.finish(q, err)
		return
	}
	ev := tokenEvent{ID: id}
	if q.req.Logprobs || q.req.TopLogprobs > 0 {
		var n int
		ev.Logprob, n = sampler.Logprobs(q.logits, id, q.top)
		if q.top != nil {
			ev.Top = append([]sampler.TokenLogprob(nil), q.top[:n]...)
		}
	}
	if q.res.CompletionTokens == 0 {
		q.tFirst = time.Now()
		q.res.TTFT = q.tFirst.Sub(q.tArrive)
	}
	q.res.CompletionTokens++
	stop := m.IsEOG(id)
	if stop {
		q.res.Finish = "stop"
		ev.Text = q.stops.flush(q.dec.Flush())
	} else {
		text, hit := q.stops.add(q.dec.Add(id))
		ev.Text = text
		if hit {
			q.res.Finish = "stop"
			stop = true
		}
	}
	if complete && !stop {
		// The grammar is complete: nothing more may follow.
		q.res.Finish = "stop"
		stop = true
		ev.Text += q.stops.flush(q.dec.Flush())
	}
	q.push(ev)
	if stop {
		s.finish(q, nil)
		return
	}
	q.next[0] = id
	full := q.seq.Len()+1 >= s.m.NCtx()
	if (q.req.MaxTokens > 0 && q.res.CompletionTokens >= q.req.MaxTokens) || full {
		s.end(q)
	}
}

// end finishes q with "length", releasing the text still held back.
func (s *scheduler) end(q *sequence) {
	q.res.Finish = "length"
	if rest := q.stops.flush(q.dec.Flush()); rest != "" {
		q.push(tokenEvent{ID: -1, Text: rest})
	}
	s.finish(q, nil)
}

// finish ends q: its blocks go back to the pool (cached for prefix reuse
// when it ended well) and its request is told.
func (s *scheduler) finish(q *sequence, err error) {
	if q.isDone() {
		return
	}
	if q.seq != nil {
		s.m.Pool().Finish(q.seq, err == nil)
	}
	if err == nil {
		if !q.tFirst.IsZero() {
			q.res.PredictedMS = msSince(q.tFirst)
		}
		s.in.stats.decode(q.res.CompletionTokens, q.res.PredictedMS)
		s.in.srv.metrics.generated(s.in.id, q.res)
	}
	// Counted out before the request can see it done: a request that
	// has returned never shows as live.
	s.live.Add(-1)
	q.mu.Lock()
	q.done, q.err, q.final = true, err, q.res
	q.mu.Unlock()
	q.signal()
}

// compact drops finished sequences from the running list.
func (s *scheduler) compact() {
	out := s.running[:0]
	for _, q := range s.running {
		if !q.isDone() {
			out = append(out, q)
		}
	}
	clear(s.running[len(out):])
	s.running = out
}

func (q *sequence) isDone() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.done
}

func (q *sequence) push(ev tokenEvent) {
	q.mu.Lock()
	q.events = append(q.events, ev)
	q.mu.Unlock()
	q.signal()
}

func (q *sequence) signal() {
	select {
	case q.notify <- struct{}{}:
	default:
	}
}
