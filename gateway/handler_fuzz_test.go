package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"helexa/roles/config"
)

// The handler fuzz targets drive the gateway's real handler, over a fake
// neuron, with arbitrary bodies on each dialect route. Each input must be
// answered without a panic, and leave nothing behind: no request counted in
// flight, no model slot held, no goroutine that does not settle. The second
// argument picks how the neuron behaves (answers, fails, breaks the stream).
//
//	go test ./gateway -run '^$' -fuzz '^FuzzChatHandler$' -fuzztime 10m -parallel 1

func FuzzChatHandler(f *testing.F)      { fuzzHandler(f, "/v1/chat/completions") }
func FuzzMessagesHandler(f *testing.F)  { fuzzHandler(f, "/v1/messages") }
func FuzzResponsesHandler(f *testing.F) { fuzzHandler(f, "/v1/responses") }

// fuzzSeeds are the golden bodies of path, and the body of every captured
// client request in ../shared/clients that went to it.
func fuzzSeeds(f *testing.F, path string) []string {
	var seeds []string
	for _, g := range goldenRequests {
		if g.path == path {
			seeds = append(seeds, g.body)
		}
	}
	files, _ := filepath.Glob(filepath.Join("..", "..", "shared", "clients", "*.json"))
	if len(files) == 0 {
		f.Logf("no client captures in ../shared/clients: seeding from the golden bodies only")
	}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			continue
		}
		var c struct {
			Path string          `json:"path"`
			Body json.RawMessage `json:"body"`
		}
		if json.Unmarshal(data, &c) != nil || len(c.Body) == 0 {
			continue
		}
		if p, _, _ := strings.Cut(c.Path, "?"); p == path {
			seeds = append(seeds, string(c.Body))
		}
	}
	return seeds
}

// neuron behaviours the fuzzer picks from.
const (
	modeAnswer = iota
	modeBreak
	modeFail400
	modeFail500
	modeHangUp
	modeCount
)

func fuzzHandler(f *testing.F, path string) {
	a := newFakeNeuron(f, "a", "m1*")
	// Every model name resolves: the captures name models of their own.
	tg := startGateway(f, []*fakeNeuron{a}, func(cfg *config.Config, cat *config.Catalogue) {
		cfg.Gateway.StreamIdleTimeout = config.Duration(2 * time.Second)
		cfg.Gateway.RequestTimeout = config.Duration(10 * time.Second)
		cat.Models = append(cat.Models, config.CatalogueModel{ID: "m1"})
		cat.Aliases = map[string]string{}
		for _, n := range []string{"claude-fast", "local-model", "gpt-5", "claude-sonnet-4-5", "x"} {
			cat.Aliases[n] = "m1"
		}
	})
	for _, s := range fuzzSeeds(f, path) {
		for mode := range modeCount {
			f.Add([]byte(s), byte(mode))
		}
	}
	h := tg.g.Handler()
	base := -1
	iter := 0
	f.Fuzz(func(t *testing.T, body []byte, mode byte) {
		a.set(func(n *fakeNeuron) {
			n.failInfer, n.breakAfter, n.hangUp = 0, 0, false
			switch mode % modeCount {
			case modeBreak:
				n.breakAfter = 2
			case modeFail400:
				n.failInfer = 400
			case modeFail500:
				n.failInfer = 500
			case modeHangUp:
				n.hangUp = true
			}
		})
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		req := httptest.NewRequestWithContext(ctx, http.MethodPost, path, strings.NewReader(string(body)))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		func() {
			defer func() {
				if p := recover(); p != nil {
					t.Fatalf("handler panicked on %q (mode %d): %v\n%s", body, mode%modeCount, p, debug.Stack())
				}
			}()
			h.ServeHTTP(rec, req)
		}()
		if rec.Code == 0 || rec.Code >= 600 {
			t.Fatalf("status %d for %q", rec.Code, body)
		}
		if rec.Code >= 400 && !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("status %d with a body that is not a JSON envelope: %q", rec.Code, rec.Body.Bytes())
		}
		if err := fuzzLeaks(tg.g); err != nil {
			t.Fatalf("after %q (mode %d): %v", body, mode%modeCount, err)
		}
		iter++
		if base < 0 {
			base = settledGoroutines(0)
		} else if iter%256 == 0 {
			if n := settledGoroutines(base + 32); n > base+32 {
				t.Fatalf("goroutines grew from %d to %d", base, n)
			}
		}
	})
}

// fuzzLeaks reports a request still counted in flight or a model slot
// still held once every handler has returned.
func fuzzLeaks(g *Gateway) error {
	if n := g.inFlight.Load(); n != 0 {
		return fmt.Errorf("%d requests still in flight", n)
	}
	if n := g.active.Load(); n != 0 {
		return fmt.Errorf("%d API requests still active", n)
	}
	g.fleet.mu.RLock()
	defer g.fleet.mu.RUnlock()
	for _, n := range g.fleet.nodes {
		for id, s := range n.slots {
			if v := s.inFlight.Load(); v != 0 {
				return fmt.Errorf("node %s model %s: slot holds %d", n.ref.Name, id, v)
			}
		}
	}
	return nil
}

// settledGoroutines waits up to two seconds for the goroutine count to
// drop to want (connections closing, handlers of the fake neuron
// returning) and returns it.
func settledGoroutines(want int) int {
	deadline := time.Now().Add(2 * time.Second)
	for {
		n := runtime.NumGoroutine()
		if n <= want || time.Now().After(deadline) {
			return n
		}
		time.Sleep(10 * time.Millisecond)
	}
}
