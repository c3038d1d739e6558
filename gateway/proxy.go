package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"helexa/translate"
)

// API families as the metrics label them.
const (
	apiChat        = "chat"
	apiCompletions = "completions"
	apiMessages    = "messages"
	apiCountTokens = "count_tokens"
	apiResponses   = "responses"
	apiEmbeddings  = "embeddings"
)

// call is one client request on its way to a neuron.
type call struct {
	api     string
	dialect dialect
	path    string // the neuron route
	model   string // resolved model id
	asked   string // the model name the client sent (console errors only)
	stream  bool
	start   time.Time

	// body builds the upstream body for the model id (already resolved).
	body []byte

	// filled in as the call proceeds
	node     string
	code     int
	usage    usage
	hasUsage bool
	tps      float64 // decode speed the neuron reported; 0 when it did not
	ttft     time.Duration
	reason   string // error reason for metrics, empty on success
	errMsg   string // the client's error message, for the console
	streamed int    // chunks of generated text streamed: the tokens when no usage came

	key      *keyState // who asked (nil only in tests that call serve directly)
	admitted bool      // the key's limits took this request

	// open counts request bodies the transport has not closed yet; pooled
	// buffers behind body go back to the pool only when it is zero.
	open atomic.Int32
}

// fail records e as the call's outcome (status and error reason) and writes
// it to the client in the call's dialect.
func (c *call) fail(w http.ResponseWriter, e *apiError) error {
	c.code = e.Status
	c.errMsg = e.Message
	if c.reason == "" {
		c.reason = nonEmpty(e.Reason, e.Code)
	}
	writeError(w, c.dialect, e)
	return nil
}

// trackedBody is an upstream request body over c.body whose Close tells
// c that the transport is done with the bytes.
type trackedBody struct {
	bytes.Reader
	c      *call
	closed atomic.Bool
}

func (b *trackedBody) Close() error {
	if b.closed.CompareAndSwap(false, true) {
		b.c.open.Add(-1)
	}
	return nil
}

func (c *call) trackBody() io.ReadCloser {
	c.open.Add(1)
	b := &trackedBody{c: c}
	b.Reset(c.body)
	return b
}

// bodyReleased reports whether no transport still reads c.body.
func (c *call) bodyReleased() bool { return c.open.Load() == 0 }

// upstream is a neuron's answer that the client will see. body is the
// response body under the stream_idle_timeout watchdog.
type upstream struct {
	resp    *http.Response
	body    io.Reader
	node    *node
	release func()
	watch   *idleWatch
}

func (u *upstream) close() {
	if u.watch != nil {
		u.watch.stop()
	}
	_ = u.resp.Body.Close()
	u.release()
}

// idle reports whether the watchdog ended the answer because the neuron
// went silent.
func (u *upstream) idle() bool { return u.watch != nil && u.watch.fired.Load() }

// idleWatch closes a response body that delivers no bytes for d, so a
// frozen neuron cannot hold a client forever. Every read that returns data
// pushes the deadline back.
type idleWatch struct {
	rc    io.ReadCloser
	d     time.Duration
	t     *time.Timer
	fired atomic.Bool
}

func newIdleWatch(rc io.ReadCloser, d time.Duration) *idleWatch {
	w := &idleWatch{rc: rc, d: d}
	w.t = time.AfterFunc(d, func() {
		w.fired.Store(true)
		_ = rc.Close()
	})
	return w
}

func (w *idleWatch) Read(p []byte) (int, error) {
	n, err := w.rc.Read(p)
	if n > 0 && !w.fired.Load() {
		w.t.Reset(w.d)
	}
	if err != nil && w.fired.Load() {
		err = errIdle
	}
	return n, err
}

func (w *idleWatch) stop() { w.t.Stop() }

// errIdle ends an answer whose neuron sent nothing for stream_idle_timeout.
var errIdle = errors.New("the neuron sent nothing for stream_idle_timeout")

// maxAttempts: the chosen node and the next candidate, once.
const maxAttempts = 2

// send routes c and sends it. An inference request is never replayed to a
// node that may have seen it: it is sent again only when the neuron
// provably never got it whole (the connection failed before the request
// was completely written: once on a fresh connection when a keep-alive one
// turned out closed, else to the next candidate), and the one deliberate
// failover to the next candidate follows a 5xx the neuron answered before
// the first byte. A connection
// that breaks after the request was written is the client's 502 (504 on a
// timeout): the neuron may be running it, or it may be what crashed the
// neuron. A 2xx or 4xx answer comes back for the caller to relay.
func (g *Gateway) send(ctx context.Context, c *call) (*upstream, error) {
	g.waitPolled(ctx)
	var exclude []string
	var lastErr error
	resent := false
	for attempt := 0; attempt < maxAttempts; attempt++ {
		n, err := g.route(ctx, c.model, exclude)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if lastErr != nil {
				return nil, lastErr
			}
			return nil, err
		}
		c.node = n.ref.Name
		// written: the whole request went out on the connection, so the
		// neuron may be running it. reused: on a keep-alive connection.
		var written, reused atomic.Bool
		tctx := httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
			GotConn:      func(i httptrace.GotConnInfo) { reused.Store(i.Reused) },
			WroteRequest: func(i httptrace.WroteRequestInfo) { written.Store(i.Err == nil) },
		})
		req, err := g.newRequest(tctx, n, http.MethodPost, c.path, nil)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Body = c.trackBody()
		req.ContentLength = int64(len(c.body))
		// GetBody without an Idempotency-Key lets the transport resend only
		// when nothing of the request was written on a reused connection
		// the neuron had closed: it never reached the neuron.
		req.GetBody = func() (io.ReadCloser, error) { return c.trackBody(), nil }
		if c.stream {
			req.Header.Set("Accept", "text/event-stream")
		}
		release := g.acquire(n, c.model, c.key.priority())
		// Straight to the transport: neurons do not redirect, and this skips
		// the client's per-request header copies.
		resp, err := g.transport.RoundTrip(req)
		if err != nil {
			release()
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if !written.Load() && reused.Load() && !resent {
				// A keep-alive connection the neuron had closed broke
				// while the request was being written: the neuron never
				// got it whole. Once more, on a fresh connection.
				resent = true
				attempt--
				continue
			}
			g.met.requestError(c.model, n.ref.Name, "upstream_unreachable")
			g.log.Warn().Str("node", n.ref.Name).Str("model", c.model).Bool("sent", written.Load()).Err(err).Msg("neuron failed before the first byte")
			lastErr = &apiError{Status: http.StatusBadGateway, Code: "upstream_unreachable", Message: fmt.Sprintf("node %s failed: %v", n.ref.Name, err)}
			var ne interface{ Timeout() bool }
			if errors.As(err, &ne) && ne.Timeout() {
				lastErr = &apiError{Status: http.StatusGatewayTimeout, Code: "upstream_timeout", Message: fmt.Sprintf("node %s did not answer in time", n.ref.Name)}
			}
			if written.Load() {
				// The neuron may be running it, or it may be what
				// brought the neuron down: never send it again.
				return nil, lastErr
			}
			exclude = append(exclude, n.ref.Name)
			continue
		}
		if resp.StatusCode >= 500 || resp.StatusCode == http.StatusNotFound {
			data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
			_ = resp.Body.Close()
			release()
			msg, code := upstreamMessage(data)
			if resp.StatusCode == http.StatusNotFound {
				if code != "model_not_loaded" {
					return nil, &apiError{Status: http.StatusNotFound, Code: nonEmpty(code, "model_not_found"), Message: msg}
				}
				// The poll lagged: the model left the node. Record it and
				// route again, which loads it.
				g.fleet.setStatus(n, c.model, statusAvailable, nil, g.now())
				lastErr = &apiError{Status: http.StatusServiceUnavailable, Code: "model_not_loaded", Message: msg, RetryAfter: 1}
				continue
			}
			g.met.requestError(c.model, n.ref.Name, "upstream_"+strconv.Itoa(resp.StatusCode))
			g.log.Warn().Str("node", n.ref.Name).Str("model", c.model).Int("status", resp.StatusCode).Str("error", msg).Msg("neuron failed before the first byte")
			st := http.StatusBadGateway
			if resp.StatusCode == http.StatusServiceUnavailable {
				st = http.StatusServiceUnavailable
			}
			ra, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
			lastErr = &apiError{Status: st, Code: nonEmpty(code, "upstream_error"), Message: fmt.Sprintf("node %s: %s", n.ref.Name, msg), RetryAfter: ra}
			exclude = append(exclude, n.ref.Name)
			continue
		}
		up := &upstream{resp: resp, body: resp.Body, node: n, release: release}
		if d := g.idleTimeout; d > 0 {
			up.watch = newIdleWatch(resp.Body, d)
			up.body = up.watch
		}
		return up, nil
	}
	return nil, lastErr
}

// staleConn reports whether a transport error looks like a reused
// connection the peer had closed (as opposed to a refused or timed-out
// connection). Only the idempotent control calls resend on it.
func staleConn(err error) bool {
	return errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed)
}

func nonEmpty(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// relayError turns a neuron's 4xx answer into the client's error, keeping
// its status, code and message.
func relayError(u *upstream) *apiError {
	data, _ := io.ReadAll(io.LimitReader(u.resp.Body, 64<<10))
	msg, code := upstreamMessage(data)
	var p struct {
		Error struct {
			Param string `json:"param"`
		} `json:"error"`
	}
	_ = json.Unmarshal(data, &p)
	ra, _ := strconv.Atoi(u.resp.Header.Get("Retry-After"))
	return &apiError{Status: u.resp.StatusCode, Code: code, Param: p.Error.Param, Message: msg, RetryAfter: ra, Reason: "upstream_" + strconv.Itoa(u.resp.StatusCode)}
}

// bufPool holds response buffers.
var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func getBuf() *bytes.Buffer {
	b := bufPool.Get().(*bytes.Buffer)
	b.Reset()
	return b
}

func putBuf(b *bytes.Buffer) {
	if b.Cap() <= 1<<20 {
		bufPool.Put(b)
	}
}

// slicePool holds rewritten request bodies.
var slicePool = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

func getSlice() *[]byte { return slicePool.Get().(*[]byte) }

func putSlice(b *[]byte) {
	if cap(*b) <= 1<<20 {
		slicePool.Put(b)
	}
}

// readerPool holds the SSE readers of upstream streams.
var readerPool = sync.Pool{New: func() any { return translate.NewSSEReader(nil) }}

// streamSink receives the chunks of a chat completion stream and writes
// them to the client in its dialect.
type streamSink interface {
	Chunk(data []byte) error
	Close() error
	Fail(msg string) error
	// KeepAlive passes on the neuron's keep-alive (an SSE comment) in the
	// client's dialect.
	KeepAlive() error
}

// timingsKey marks a chunk carrying the neuron's timings.
var timingsKey = []byte(`"timings"`)

var errTruncated = errors.New("the neuron's stream ended before it finished")

// pump copies a chat completion stream from the neuron to sink, recording
// time to first token and usage in c. A stream that breaks off ends with an
// error event in the client's dialect.
func (g *Gateway) pump(ctx context.Context, c *call, up *upstream, sink streamSink) error {
	sr := readerPool.Get().(*translate.SSEReader)
	sr.Reset(up.body)
	sr.Comments = true
	defer func() { sr.Reset(nil); readerPool.Put(sr) }()
	for {
		ev, data, err := sr.Next()
		if err != nil {
			if ctx.Err() != nil {
				c.reason = "client_gone"
				if errors.Is(ctx.Err(), context.DeadlineExceeded) {
					c.reason = "timeout"
					_ = sink.Fail("the request ran past the gateway's request_timeout")
				}
				return ctx.Err()
			}
			if up.idle() {
				c.reason = "upstream_idle"
				g.log.Warn().Str("node", c.node).Str("model", c.model).Dur("idle", g.idleTimeout).Msg("stream went silent; ending it")
				_ = sink.Fail(fmt.Sprintf("node %s sent nothing for %s (stream_idle_timeout)", c.node, g.idleTimeout))
				return errIdle
			}
			if err == io.EOF {
				err = errTruncated
			}
			c.reason = "stream_broken"
			g.log.Warn().Str("node", c.node).Str("model", c.model).Err(err).Msg("stream broke off")
			_ = sink.Fail(fmt.Sprintf("node %s: %v", c.node, err))
			return err
		}
		if ev == ":" {
			if err := sink.KeepAlive(); err != nil {
				if ctx.Err() != nil {
					c.reason = "client_gone"
					return ctx.Err()
				}
				c.reason = "stream_write"
				return err
			}
			continue
		}
		if string(data) == "[DONE]" {
			return sink.Close()
		}
		if len(data) > 0 && data[0] == '{' {
			hasChoices, usageOnly := chunkKind(data)
			if hasChoices {
				if carriesToken(data) {
					c.streamed++
				}
				if c.ttft == 0 {
					c.ttft = time.Since(c.start)
				}
			}
			if u, ok := usageOf(data); ok {
				c.usage, c.hasUsage = u, true
			}
			if c.tps == 0 && bytes.Contains(data, timingsKey) {
				if tps, ok := decodeSpeed(data); ok {
					c.tps = tps
				}
			}
			if !hasChoices && !usageOnly && isErrorChunk(data) {
				msg, _ := upstreamMessage(data)
				c.reason = "upstream_error"
				_ = sink.Fail(msg)
				return errors.New(msg)
			}
		}
		if err := sink.Chunk(data); err != nil {
			if ctx.Err() != nil {
				c.reason = "client_gone"
				return ctx.Err()
			}
			c.reason = "stream_write"
			return err
		}
	}
}

// tokenFields are the delta fields whose non-empty value is generated text.
var tokenFields = [][]byte{[]byte(`"content":"`), []byte(`"reasoning_content":"`), []byte(`"arguments":"`)}

// carriesToken reports whether a chunk carries generated text (a token, as
// the neuron streams one per chunk): the role-only first chunk and the
// finish chunk do not.
func carriesToken(b []byte) bool {
	for _, k := range tokenFields {
		if i := bytes.Index(b, k); i >= 0 && i+len(k) < len(b) && b[i+len(k)] != '"' {
			return true
		}
	}
	return false
}

// isErrorChunk reports whether a stream chunk is an error event.
func isErrorChunk(b []byte) bool {
	found := false
	_ = scanObject(b, func(f field) bool {
		if f.is("error") {
			found = true
			return false
		}
		return true
	})
	return found
}

// flusher returns a function flushing w.
func flusher(w http.ResponseWriter) func() {
	rc := http.NewResponseController(w)
	return func() { _ = rc.Flush() }
}

// openAISink passes chat completion chunks through unchanged, dropping the
// usage-only chunk unless the client asked for it.
type openAISink struct {
	w         io.Writer
	flush     func()
	keepUsage bool
	buf       []byte
}

func (s *openAISink) write(data []byte) error {
	s.buf = append(s.buf[:0], "data: "...)
	s.buf = append(s.buf, data...)
	s.buf = append(s.buf, '\n', '\n')
	if _, err := s.w.Write(s.buf); err != nil {
		return err
	}
	s.flush()
	return nil
}

func (s *openAISink) Chunk(data []byte) error {
	if !s.keepUsage && len(data) > 0 && data[0] == '{' {
		if _, usageOnly := chunkKind(data); usageOnly {
			return nil
		}
	}
	return s.write(data)
}

func (s *openAISink) Close() error { return s.write([]byte("[DONE]")) }

func (s *openAISink) KeepAlive() error {
	if _, err := io.WriteString(s.w, ": keep-alive\n\n"); err != nil {
		return err
	}
	s.flush()
	return nil
}

func (s *openAISink) Fail(msg string) error {
	e := &apiError{Status: http.StatusBadGateway, Code: "stream_error", Message: msg}
	return s.write(dialectOpenAI.envelope(e))
}

// ctxDone ends a request whose context ended before an answer started: a
// client that went away gets nothing (recorded as 499), a request past
// request_timeout gets a 504.
func (g *Gateway) ctxDone(c *call, err error, fail func(*apiError) error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return fail(&apiError{Status: http.StatusGatewayTimeout, Code: "request_timeout", Reason: "timeout",
			Message: "the request ran past the gateway's request_timeout"})
	}
	c.code, c.reason = 499, "client_gone"
	return nil
}

// finish records the metrics of a finished call.
func (g *Gateway) finish(c *call) {
	d := time.Since(c.start)
	node := c.node
	model := c.model
	if model == "" {
		model = "unknown"
	}
	g.met.request(model, node, c.api, c.code)
	g.met.duration.Update(d.Seconds())
	if c.reason != "" {
		g.met.requestError(model, node, c.reason)
	}
	if c.ttft > 0 {
		g.met.ttft.Update(c.ttft.Seconds())
	}
	tps := 0.0
	if c.hasUsage {
		g.met.prompt.Add(c.usage.Prompt)
		g.met.completion.Add(c.usage.Completion)
		gen := d
		if c.stream {
			gen = d - c.ttft
		}
		switch {
		case c.tps > 0:
			tps = c.tps
		case c.usage.Completion > 0 && gen > 0:
			tps = float64(c.usage.Completion) / gen.Seconds()
		}
		if tps > 0 {
			g.met.tps.Update(tps)
		}
	}
	g.account(c, model, tps)
	if e := g.log.Debug(); e.Enabled() {
		e.Str("api", c.api).Str("model", model).Str("node", node).Int("code", c.code).Bool("stream", c.stream).
			Dur("took", d).Dur("ttft", c.ttft).Int("prompt_tokens", c.usage.Prompt).Int("completion_tokens", c.usage.Completion).
			Str("reason", c.reason).Msg("request")
	}
}
