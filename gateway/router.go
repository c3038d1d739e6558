package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"

	"helexa/roles/config"
)

// resolve maps the requested name (an alias or an id) to a model id. A name
// no catalogue entry, alias or node knows is a 404 model_not_found; when no
// node is healthy the gateway cannot tell, and answers 503.
func (g *Gateway) resolve(name string) (string, *apiError) {
	id := g.live().cat.Resolve(name)
	if _, ok := g.live().catByID[id]; ok {
		return id, nil
	}
	f := g.fleet
	f.mu.RLock()
	defer f.mu.RUnlock()
	anyHealthy := false
	for _, n := range f.nodes {
		if _, ok := n.models[id]; ok {
			return id, nil
		}
		anyHealthy = anyHealthy || n.healthy
	}
	if !anyHealthy {
		return "", noNodeError(id)
	}
	return "", modelNotFound(name)
}

func modelNotFound(name string) *apiError {
	return &apiError{Status: http.StatusNotFound, Code: "model_not_found", Message: fmt.Sprintf("model %q does not exist on any node, in the catalogue or as an alias", name)}
}

func noNodeError(id string) *apiError {
	return &apiError{Status: http.StatusServiceUnavailable, Code: "no_healthy_node", Reason: "no_node",
		Message: fmt.Sprintf("no healthy node can serve model %q right now", id), RetryAfter: 5}
}

// route picks the node for one attempt: the least busy healthy node with
// the model loaded, else a cold load. exclude holds nodes that already
// failed this request.
func (g *Gateway) route(ctx context.Context, id string, exclude []string) (*node, error) {
	if n := g.pickLoaded(id, exclude); n != nil {
		return n, nil
	}
	return g.coldLoad(ctx, id, exclude)
}

func (g *Gateway) pickLoaded(id string, exclude []string) *node {
	f := g.fleet
	f.mu.RLock()
	defer f.mu.RUnlock()
	var buf [8]servingNode
	cands := buf[:0]
	for _, n := range f.nodes {
		if !n.healthy || slices.Contains(exclude, n.ref.Name) {
			continue
		}
		if m, ok := n.models[id]; ok && m.Status == statusLoaded {
			cands = append(cands, servingNode{Name: n.ref.Name, Busy: n.busy(id)})
		}
	}
	name, ok := pickServing(cands)
	if !ok {
		return nil
	}
	return f.byName[name]
}

// catalogue helpers.
func (g *Gateway) priority(id string) int {
	if m, ok := g.live().catByID[id]; ok {
		return m.PriorityOr()
	}
	return config.DefaultPriority
}

func (g *Gateway) pinnedOn(id, nodeName string) bool {
	m, ok := g.live().catByID[id]
	return (ok && slices.Contains(m.PinnedOn, nodeName)) || g.store.pinned(nodeName, id)
}

// memOf is a model's memory need on n: the neuron's estimate, else the
// catalogue's mem_mb. Called with fleet.mu held.
func (g *Gateway) memOf(n *node, id string) int {
	if m, ok := n.models[id]; ok && m.MemEstimateMB > 0 {
		return m.MemEstimateMB
	}
	return g.live().catByID[id].MemMB
}

// residents lists the models loaded on n for eviction. Called with
// fleet.mu held.
func (g *Gateway) residents(n *node) []resident {
	var out []resident
	for id, m := range n.models {
		if m.Status != statusLoaded {
			continue
		}
		r := resident{ID: id, MemMB: g.memOf(n, id), Priority: g.priority(id), Pinned: g.pinnedOn(id, n.ref.Name), InFlight: n.busy(id)}
		if s := n.slots[id]; s != nil {
			r.LastUsed = s.last()
			// A model counts as at least the priority of the keys that
			// used it since it was loaded.
			if p := int(s.keyPrio.Load()); p > r.Priority {
				r.Priority = p
			}
		}
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// placementsFor snapshots the healthy nodes that list id and orders them.
func (g *Gateway) placementsFor(id string, exclude []string) []placement {
	f := g.fleet
	f.mu.RLock()
	defer f.mu.RUnlock()
	var nodes []placeNode
	need := 0
	for _, n := range f.nodes {
		if !n.healthy || slices.Contains(exclude, n.ref.Name) {
			continue
		}
		m, ok := n.models[id]
		if !ok || m.Status == statusFailed {
			continue
		}
		if mem := g.memOf(n, id); mem > need {
			need = mem
		}
		nodes = append(nodes, placeNode{Name: n.ref.Name, Pinned: g.pinnedOn(id, n.ref.Name), FreeMB: n.freeMB(), Devices: n.deviceCount(), Resident: g.residents(n)})
	}
	cm := g.live().catByID[id]
	return placeCandidates(placeModel{NeedMB: need, MinDevices: cm.MinDevices, Priority: g.priority(id)}, nodes, g.cfg.Eviction.Strategy)
}

// coldLoad loads id on the best node and returns it. Concurrent callers for
// the same model share one load; a caller that goes away does not cancel it
// for the others.
func (g *Gateway) coldLoad(ctx context.Context, id string, exclude []string) (*node, error) {
	key := id
	if len(exclude) > 0 {
		key += "\x00" + strings.Join(exclude, "\x00")
	}
	ch := g.loads.DoChan(key, func() (any, error) {
		lctx, cancel := context.WithTimeout(context.Background(), g.cfg.Gateway.LoadTimeout.D())
		defer cancel()
		if n := g.pickLoaded(id, exclude); n != nil {
			return n, nil
		}
		return g.doColdLoad(lctx, id, exclude)
	})
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case r := <-ch:
		if r.Err != nil {
			return nil, r.Err
		}
		return r.Val.(*node), nil
	}
}

// doColdLoad tries the placement candidates in order: the first, and on a
// 5xx or a connection failure the next one, once.
func (g *Gateway) doColdLoad(ctx context.Context, id string, exclude []string) (*node, error) {
	cands := g.placementsFor(id, exclude)
	if len(cands) == 0 {
		if reason, failed := g.fleet.failedReason(id, exclude); failed {
			// Corrupt or unsupported on every node that has it: the
			// client's 4xx with the reason, not a retryable 503.
			return nil, unloadableError(id, reason)
		}
		return nil, noNodeError(id)
	}
	var lastErr error
	for i, c := range cands {
		if i >= 2 {
			break
		}
		n := g.fleet.byName[c.Node]
		for _, v := range c.Evict {
			if err := g.unloadOn(ctx, n, v, "make_room"); err != nil {
				g.log.Warn().Str("node", c.Node).Str("model", v).Err(err).Msg("eviction failed")
			}
		}
		err := g.loadOn(ctx, n, id, true)
		if err == nil {
			return n, nil
		}
		lastErr = err
		g.log.Warn().Str("node", c.Node).Str("model", id).Err(err).Msg("load failed")
		g.met.requestError(id, c.Node, "load_failed")
		var ue *upstreamError
		if errors.As(err, &ue) && ue.Status < 500 {
			return nil, loadError(id, ue)
		}
	}
	var ue *upstreamError
	if errors.As(lastErr, &ue) {
		return nil, loadError(id, ue)
	}
	return nil, &apiError{Status: http.StatusBadGateway, Code: "load_failed", Message: fmt.Sprintf("loading model %q failed: %v", id, lastErr)}
}

// unloadableError is the answer for a model no node can load (corrupt or
// unsupported file): 422 with the neuron's reason, not worth retrying.
func unloadableError(id, reason string) *apiError {
	msg := fmt.Sprintf("model %q cannot be loaded", id)
	if reason != "" {
		msg += ": " + reason
	}
	return &apiError{Status: http.StatusUnprocessableEntity, Code: "unsupported_model", Reason: "load_failed", Param: "model", Message: msg}
}

// loadError maps a neuron's refusal to load to the client's error.
func loadError(id string, ue *upstreamError) *apiError {
	status := ue.Status
	code := ue.Code
	switch {
	case status == http.StatusInsufficientStorage:
		status, code = http.StatusServiceUnavailable, "insufficient_memory"
	case status >= 500:
		status = http.StatusBadGateway
	}
	if code == "" {
		code = "load_failed"
	}
	return &apiError{Status: status, Code: code, Reason: "load_failed", Message: fmt.Sprintf("loading model %q failed: %s", id, ue.Message)}
}

// acquire marks a request in flight for id on n and returns its release.
func (g *Gateway) acquire(n *node, id string, keyPrio int) func() {
	f := g.fleet
	now := g.now()
	f.mu.RLock()
	s := n.slots[id]
	f.mu.RUnlock()
	if s == nil {
		f.mu.Lock()
		s = n.slot(id, now)
		f.mu.Unlock()
	}
	s.inFlight.Add(1)
	s.touch(now)
	for p := s.keyPrio.Load(); int64(keyPrio) > p && !s.keyPrio.CompareAndSwap(p, int64(keyPrio)); p = s.keyPrio.Load() {
	}
	g.inFlight.Add(1)
	return func() {
		s.touch(g.now())
		s.inFlight.Add(-1)
		g.inFlight.Add(-1)
	}
}
