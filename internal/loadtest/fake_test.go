package loadtest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeServer is an OpenAI-compatible streaming server with a fixed
// schedule: the first chunk ttft after a request arrives, then one chunk
// per token every gap. Its hooks change single requests by their arrival
// number (1 is the warm-up).
type fakeServer struct {
	t        *testing.T
	ttft     time.Duration
	gap      time.Duration
	noUsage  bool
	hold     int // hold every request but the first until this many have arrived
	apiKey   string
	endpoint string // "/v1/chat/completions" unless set

	// before answers request n itself when it returns true.
	before func(n int, w http.ResponseWriter, r *http.Request, body map[string]any) bool

	arrivals    atomic.Int64
	inflight    atomic.Int64
	maxInflight atomic.Int64
	held        chan struct{}
	heldOnce    sync.Once

	mu        sync.Mutex
	bodies    []map[string]any
	arrivedAt []time.Time // by arrival
}

func (f *fakeServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := f.endpoint
	if path == "" {
		path = "/v1/chat/completions"
	}
	if r.Method != http.MethodPost || r.URL.Path != path {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprintf(w, `{"error":{"message":"no route %s %s"}}`, r.Method, r.URL.Path)
		return
	}
	if f.apiKey != "" && r.Header.Get("Authorization") != "Bearer "+f.apiKey {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, `{"error":{"message":"invalid api key","type":"authentication_error"}}`)
		return
	}
	var body map[string]any
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		f.t.Errorf("request body is not JSON: %v", err)
		return
	}
	f.mu.Lock()
	f.bodies = append(f.bodies, body)
	f.arrivedAt = append(f.arrivedAt, time.Now())
	f.mu.Unlock()
	n := int(f.arrivals.Add(1))
	cur := f.inflight.Add(1)
	// A request leaves just before its last event: the client may send
	// the next one as soon as it reads it.
	var leaveOnce sync.Once
	leave := func() { leaveOnce.Do(func() { f.inflight.Add(-1) }) }
	defer leave()
	for {
		m := f.maxInflight.Load()
		if cur <= m || f.maxInflight.CompareAndSwap(m, cur) {
			break
		}
	}
	if f.hold > 0 && n > 1 {
		f.heldOnce.Do(func() { f.held = make(chan struct{}) })
		if n == f.hold+1 {
			close(f.held)
		}
		select {
		case <-f.held:
		case <-time.After(10 * time.Second):
			f.t.Errorf("request %d: never %d requests in flight at once", n, f.hold)
		}
	}
	if f.before != nil && f.before(n, w, r, body) {
		return
	}
	maxTokens := int(body["max_tokens"].(float64))
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	fl := w.(http.Flusher)
	chat := path == "/v1/chat/completions"
	if chat {
		fmt.Fprint(w, "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n")
		fl.Flush()
	}
	time.Sleep(f.ttft)
	for i := range maxTokens {
		if i > 0 {
			time.Sleep(f.gap)
		}
		if chat {
			fmt.Fprintf(w, "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"t%d \"}}]}\n\n", i)
		} else {
			fmt.Fprintf(w, "data: {\"choices\":[{\"index\":0,\"text\":\"t%d \"}]}\n\n", i)
		}
		fl.Flush()
	}
	if !f.noUsage {
		words := 0
		if chat {
			msgs := body["messages"].([]any)
			words = len(strings.Fields(msgs[0].(map[string]any)["content"].(string)))
		} else {
			words = len(strings.Fields(body["prompt"].(string)))
		}
		fmt.Fprintf(w, "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":%d,\"completion_tokens\":%d}}\n\n", words, maxTokens)
	}
	leave()
	fmt.Fprint(w, "data: [DONE]\n\n")
	fl.Flush()
}

// fakeClock is a clock that only moves when a scripted body is read.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// event is one server-sent event at an offset from its request's start.
type event struct {
	at   time.Duration
	data string
}

// scriptTransport answers every request in process with the events its
// script gives for that request's number (1 is the warm-up). Reading an
// event moves the clock to the event's time, so what a run measures
// follows from the script alone.
type scriptTransport struct {
	clock  *fakeClock
	script func(n int) []event
	n      int
}

func (s *scriptTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	io.Copy(io.Discard, r.Body)
	r.Body.Close()
	s.n++
	return &http.Response{
		StatusCode: http.StatusOK,
		Header:     http.Header{"Content-Type": {"text/event-stream"}},
		Body:       &scriptBody{clock: s.clock, base: s.clock.now(), events: s.script(s.n)},
		Request:    r,
	}, nil
}

type scriptBody struct {
	clock   *fakeClock
	base    time.Time
	events  []event
	pending []byte
}

func (b *scriptBody) Read(p []byte) (int, error) {
	if len(b.pending) == 0 {
		if len(b.events) == 0 {
			return 0, io.EOF
		}
		e := b.events[0]
		b.events = b.events[1:]
		b.clock.set(b.base.Add(e.at))
		b.pending = []byte("data: " + e.data + "\n\n")
	}
	n := copy(p, b.pending)
	b.pending = b.pending[n:]
	return n, nil
}

func (b *scriptBody) Close() error { return nil }
