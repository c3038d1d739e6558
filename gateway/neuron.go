package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"
)

// Calls to one neuron's control routes: /health, /models, /discovery,
// /models/load, /models/unload.

// upstreamError is a neuron's non-2xx answer.
type upstreamError struct {
	Status  int
	Code    string
	Message string
	Body    []byte
}

func (e *upstreamError) Error() string {
	return fmt.Sprintf("neuron answered %d: %s", e.Status, e.Message)
}

func (g *Gateway) newRequest(ctx context.Context, n *node, method, path string, body []byte) (*http.Request, error) {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, n.base+path, r)
	if err != nil {
		return nil, fmt.Errorf("building request to %s: %w", n.ref.Name, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
		// The control routes are idempotent; a nil key (not sent) lets the
		// transport resend a POST whose reused connection was closed.
		req.Header["Idempotency-Key"] = nil
	}
	if n.ref.Token != "" {
		req.Header.Set("Authorization", "Bearer "+n.ref.Token)
	}
	return req, nil
}

// callJSON does one control call and decodes a 2xx answer into out.
func (g *Gateway) callJSON(ctx context.Context, n *node, method, path string, body []byte, out any) error {
	var resp *http.Response
	for try := 0; ; try++ {
		req, err := g.newRequest(ctx, n, method, path, body)
		if err != nil {
			return err
		}
		resp, err = g.client.Do(req)
		if err == nil {
			break
		}
		// The control routes are idempotent: a keep-alive connection the
		// neuron closed while idle is worth one more try.
		if try == 0 && ctx.Err() == nil && staleConn(err) {
			continue
		}
		return fmt.Errorf("%s %s on %s: %w", method, path, n.ref.Name, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("reading %s from %s: %w", path, n.ref.Name, err)
	}
	if resp.StatusCode/100 != 2 {
		msg, code := upstreamMessage(data)
		return &upstreamError{Status: resp.StatusCode, Code: code, Message: msg, Body: data}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("decoding %s from %s: %w", path, n.ref.Name, err)
	}
	return nil
}

// pollNode reads /health and /models, and /discovery when asked.
func (g *Gateway) pollNode(ctx context.Context, n *node, discover bool) pollResult {
	ctx, cancel := context.WithTimeout(ctx, g.pollTimeout())
	defer cancel()
	r := pollResult{started: time.Now()}
	var h neuronHealth
	if err := g.callJSON(ctx, n, http.MethodGet, "/health", nil, &h); err != nil {
		r.err = err
		return r
	}
	var ms neuronModels
	if err := g.callJSON(ctx, n, http.MethodGet, "/models", nil, &ms); err != nil {
		r.err = err
		return r
	}
	r.health, r.models = &h, &ms
	if discover {
		var d neuronDiscovery
		if err := g.callJSON(ctx, n, http.MethodGet, "/discovery", nil, &d); err != nil {
			g.log.Warn().Str("node", n.ref.Name).Err(err).Msg("discovery failed")
		} else {
			r.discovery = &d
		}
	}
	return r
}

// pollTimeout bounds one poll of a node (all its calls together) by the
// poll interval, so that a frozen node is marked unhealthy after
// unhealthyAfter intervals, not after as many connect timeouts.
func (g *Gateway) pollTimeout() time.Duration {
	return g.cfg.Gateway.PollInterval.D()
}

// pollAll polls every node concurrently and records the results.
func (g *Gateway) pollAll(ctx context.Context) {
	f := g.fleet
	var wg sync.WaitGroup
	f.mu.RLock()
	nodes := f.nodes // a reload replaces the slice, never changes it
	f.mu.RUnlock()
	for _, n := range nodes {
		f.mu.RLock()
		discover := !n.contacted || n.polls%discoveryEvery == 0 || n.discovery == nil
		f.mu.RUnlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := g.pollNode(ctx, n, discover)
			if ctx.Err() != nil && r.err != nil {
				return
			}
			if g.fleet.apply(n, r, g.now()) {
				f.mu.RLock()
				healthy, lastErr := n.healthy, n.lastErr
				f.mu.RUnlock()
				if healthy {
					g.log.Info().Str("node", n.ref.Name).Msg("node healthy")
				} else {
					g.log.Warn().Str("node", n.ref.Name).Str("error", lastErr).Msg("node unhealthy")
				}
			}
		}()
	}
	wg.Wait()
	g.pollOnce.Do(func() { close(g.polled) })
}

// pollLoop polls every poll_interval until ctx ends.
func (g *Gateway) pollLoop(ctx context.Context) {
	t := time.NewTicker(g.cfg.Gateway.PollInterval.D())
	defer t.Stop()
	for {
		g.safely("poller", func() { g.pollAll(ctx) })
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// safely runs one round of a background loop, logging a panic instead of
// taking the process down.
func (g *Gateway) safely(what string, fn func()) {
	defer func() {
		if r := recover(); r != nil {
			g.log.Error().Str("loop", what).Any("panic", r).Msg("background loop failed; continuing")
		}
	}()
	fn()
}

// waitPolled waits for the first poll round so that requests arriving at
// start see the fleet; bounded so a gateway never hangs on it.
func (g *Gateway) waitPolled(ctx context.Context) {
	select {
	case <-g.polled:
		return
	default:
	}
	select {
	case <-g.polled:
	case <-ctx.Done():
	case <-time.After(g.pollTimeout()):
	}
}

// loadResp is the answer of POST /models/load.
type loadResp struct {
	Status string       `json:"status"`
	Model  *neuronModel `json:"model"`
}

// loadOn asks n to load id and records the result. onDemand loads (a
// request needed the model) count as cold starts.
func (g *Gateway) loadOn(ctx context.Context, n *node, id string, onDemand bool) error {
	body := map[string]any{"model": id}
	if m, ok := g.live().catByID[id]; ok && m.MaxOutputTokens > 0 {
		body["max_output_tokens"] = m.MaxOutputTokens
	}
	if m, ok := g.live().catByID[id]; ok && m.ContextLength > 0 {
		body["context_length"] = m.ContextLength
	}
	b, _ := json.Marshal(body)
	g.fleet.setStatus(n, id, statusLoading, nil, g.now())
	start := time.Now()
	var lr loadResp
	err := g.callJSON(ctx, n, http.MethodPost, "/models/load", b, &lr)
	if err != nil {
		var ue *upstreamError
		if errors.As(err, &ue) && ue.Status == http.StatusUnprocessableEntity {
			// Corrupt or unsupported: loading it again cannot help.
			g.fleet.setFailed(n, id, ue.Message)
			return err
		}
		g.fleet.setStatus(n, id, statusAvailable, nil, g.now())
		return err
	}
	d := time.Since(start)
	if onDemand {
		g.met.loadTime.Update(d.Seconds())
		g.met.coldStarts.Inc()
	}
	g.fleet.setStatus(n, id, statusLoaded, lr.Model, g.now())
	g.log.Info().Str("node", n.ref.Name).Str("model", id).Dur("took", d).Msg("model loaded")
	return nil
}

// unloadOn asks n to unload id, recording why.
func (g *Gateway) unloadOn(ctx context.Context, n *node, id, reason string) error {
	b, _ := json.Marshal(map[string]string{"model": id})
	g.fleet.setStatus(n, id, statusUnloading, nil, g.now())
	err := g.callJSON(ctx, n, http.MethodPost, "/models/unload", b, nil)
	var ue *upstreamError
	if errors.As(err, &ue) && ue.Status == http.StatusNotFound {
		// It was not loaded after all: nothing was evicted.
		g.fleet.setStatus(n, id, statusAvailable, nil, g.now())
		return nil
	}
	if err != nil {
		g.fleet.setStatus(n, id, statusLoaded, nil, g.now())
		return err
	}
	g.fleet.setStatus(n, id, statusAvailable, nil, g.now())
	g.met.eviction(n.ref.Name, id, reason)
	g.countCycle(n)
	g.log.Info().Str("node", n.ref.Name).Str("model", id).Str("reason", reason).Msg("model unloaded")
	return nil
}

// countCycle counts one load/unload cycle on n (counted when the model
// leaves), towards defrag_after_cycles.
func (g *Gateway) countCycle(n *node) {
	g.fleet.mu.Lock()
	n.cycles++
	g.fleet.mu.Unlock()
}
