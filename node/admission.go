package node

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// gate admits requests to one model: at most maxInFlight run at once, up
// to maxQueue wait (first come, first served) for at most maxWait, the
// rest are refused. Safe for concurrent use.
type gate struct {
	maxInFlight, maxQueue int
	maxWait               time.Duration

	mu       sync.Mutex
	inFlight int
	waiters  []chan struct{} // FIFO; a closed channel is a granted place
	closed   bool            // draining: new requests are refused
	idle     chan struct{}   // closed when inFlight and waiters reach 0 after close
}

func newGate(maxInFlight, maxQueue int, maxWait time.Duration) *gate {
	return &gate{maxInFlight: max(1, maxInFlight), maxQueue: max(0, maxQueue), maxWait: maxWait}
}

// acquire takes a place, waiting in the queue if it must. It returns
// errQueueFull at once when the queue is full, errQueueTimeout after
// maxWait, errDraining once the gate is closed, or ctx's error.
func (g *gate) acquire(ctx context.Context) error {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return errDraining
	}
	if g.inFlight < g.maxInFlight && len(g.waiters) == 0 {
		g.inFlight++
		g.mu.Unlock()
		return nil
	}
	if len(g.waiters) >= g.maxQueue {
		g.mu.Unlock()
		return fmt.Errorf("%w: %d requests running and %d waiting", errQueueFull, g.maxInFlight, g.maxQueue)
	}
	ch := make(chan struct{})
	g.waiters = append(g.waiters, ch)
	g.mu.Unlock()

	var timeout <-chan time.Time
	if g.maxWait > 0 {
		t := time.NewTimer(g.maxWait)
		defer t.Stop()
		timeout = t.C
	}
	var err error
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		err = ctx.Err()
	case <-timeout:
		err = fmt.Errorf("%w (%s)", errQueueTimeout, g.maxWait)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	select {
	case <-ch:
		// Granted while giving up: keep the place (the caller releases).
		return nil
	default:
	}
	for i, w := range g.waiters {
		if w == ch {
			g.waiters = append(g.waiters[:i], g.waiters[i+1:]...)
			break
		}
	}
	g.checkIdle()
	return err
}

// release gives a place back, handing it to the first waiter.
func (g *gate) release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.waiters) > 0 {
		close(g.waiters[0])
		g.waiters = g.waiters[1:]
		return
	}
	g.inFlight--
	g.checkIdle()
}

func (g *gate) checkIdle() {
	if g.closed && g.inFlight == 0 && len(g.waiters) == 0 && g.idle != nil {
		close(g.idle)
		g.idle = nil
	}
}

// close refuses new requests from now on and returns a channel closed
// once every admitted and queued request is done.
func (g *gate) close() <-chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.closed = true
	if g.inFlight == 0 && len(g.waiters) == 0 {
		ch := make(chan struct{})
		close(ch)
		return ch
	}
	if g.idle == nil {
		g.idle = make(chan struct{})
	}
	return g.idle
}

// counts returns the requests running and waiting.
func (g *gate) counts() (inFlight, queued int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.inFlight, len(g.waiters)
}

// admit takes a place in the instance's gate for one request: a handler
// calls it before any work that grows with the request (rendering,
// tokenizing, generating) and defers the returned release at once.
// release is idempotent.
func (in *instance) admit(ctx context.Context) (release func(), err error) {
	if err := in.gate.acquire(ctx); err != nil {
		in.srv.metrics.rejected(in.id, err)
		return nil, err
	}
	var once sync.Once
	return func() { once.Do(in.gate.release) }, nil
}

// promptBytesPerToken bounds the bytes one prompt token stands for on
// average: a prompt longer than this times the context cannot fit, and is
// refused before it is tokenized. Tokenizers of the supported families
// average 3 to 5 bytes per token on text and code.
const promptBytesPerToken = 8

// jsonBytesPerByte allows for JSON escapes when the bound is applied to
// a request's raw JSON before decoding it.
const jsonBytesPerByte = 2

// checkPromptBytes refuses a prompt of n bytes that cannot fit the
// context, before any tokenizing. raw says n counts raw JSON (escapes
// and all) rather than text.
func (in *instance) checkPromptBytes(param string, n int, raw bool) error {
	limit := promptBytesPerToken * in.nctx
	what := "bytes"
	if raw {
		limit *= jsonBytesPerByte
		what = "bytes of JSON"
	}
	if n <= limit {
		return nil
	}
	return &apiError{Status: 400, Code: "context_length_exceeded", Param: param,
		Message: fmt.Sprintf("the %s is %d %s, more than the %d that can fit the model's context of %d tokens",
			param, n, what, limit, in.nctx)}
}
