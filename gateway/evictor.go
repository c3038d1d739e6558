package gateway

import (
	"context"
	"time"
)

// The evictor unloads idle models (idle_unload_after, a TTL), defragments
// nodes after defrag_after_cycles load/unload cycles, and keeps pinned
// models loaded on their nodes. The decisions are idleVictims and
// defragPlan; this loop only gathers the snapshots and acts.

// evictInterval is how often the evictor looks, at most.
func (g *Gateway) evictInterval() time.Duration {
	d := g.cfg.Gateway.PollInterval.D()
	if d > 5*time.Second {
		d = 5 * time.Second
	}
	return d
}

func (g *Gateway) evictLoop(ctx context.Context) {
	t := time.NewTicker(g.evictInterval())
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		g.safely("evictor", func() { g.evictOnce(ctx) })
	}
}

// ttl is the idle_unload_after of a model: its catalogue entry's, else the
// [eviction] default.
func (g *Gateway) ttl(id string) time.Duration {
	if m, ok := g.live().catByID[id]; ok && m.IdleUnloadAfter > 0 {
		return m.IdleUnloadAfter.D()
	}
	return g.cfg.Eviction.IdleUnloadAfter.D()
}

// nodeWork is what one evictor round does on one node.
type nodeWork struct {
	n      *node
	idle   []string
	defrag []string
	pins   []string
}

// evictOnce runs one evictor round.
func (g *Gateway) evictOnce(ctx context.Context) {
	now := g.now()
	f := g.fleet
	var work []nodeWork
	f.mu.Lock()
	for _, n := range f.nodes {
		if !n.healthy {
			continue
		}
		w := nodeWork{n: n}
		var ims []idleModel
		nodeIdle := true
		for id, m := range n.models {
			b := n.busy(id)
			if b > 0 {
				nodeIdle = false
			}
			if m.Status != statusLoaded {
				if m.Status == statusAvailable && g.pinnedOn(id, n.ref.Name) {
					w.pins = append(w.pins, id)
				}
				continue
			}
			im := idleModel{ID: id, TTL: g.ttl(id), Pinned: g.pinnedOn(id, n.ref.Name), InFlight: b}
			if s := n.slots[id]; s != nil {
				im.LastUsed = s.last()
			} else {
				im.LastUsed = now
			}
			ims = append(ims, im)
		}
		w.idle = idleVictims(now, ims)
		unload, due, doNow := defragPlan(n.cycles, g.cfg.Eviction.DefragAfterCycles, nodeIdle, g.residents(n))
		n.defragDue = due && !doNow
		if doNow {
			w.defrag = unload
			n.cycles = 0
		}
		if len(w.idle) > 0 || doNow || len(w.pins) > 0 {
			work = append(work, w)
		}
	}
	f.mu.Unlock()
	for _, w := range work {
		for _, id := range w.idle {
			if err := g.unloadOn(ctx, w.n, id, "idle"); err != nil {
				g.log.Warn().Str("node", w.n.ref.Name).Str("model", id).Err(err).Msg("idle unload failed")
			}
		}
		if w.defrag != nil {
			done := map[string]bool{}
			for _, id := range w.idle {
				done[id] = true
			}
			for _, id := range w.defrag {
				if done[id] {
					continue
				}
				if err := g.unloadOn(ctx, w.n, id, "defrag"); err != nil {
					g.log.Warn().Str("node", w.n.ref.Name).Str("model", id).Err(err).Msg("defrag unload failed")
				}
			}
			f.mu.Lock()
			w.n.cycles = 0
			f.mu.Unlock()
			g.met.defrags.Inc()
			g.log.Info().Str("node", w.n.ref.Name).Int("unloaded", len(w.defrag)).Msg("node defragmented")
		}
		for _, id := range w.pins {
			g.keepPinned(w.n, id)
		}
	}
}

// keepPinned loads a pinned model on its node in the background; one load
// per model and node at a time.
func (g *Gateway) keepPinned(n *node, id string) {
	go func() {
		_, _, _ = g.loads.Do("pin\x00"+n.ref.Name+"\x00"+id, func() (any, error) {
			ctx, cancel := context.WithTimeout(context.Background(), g.cfg.Gateway.LoadTimeout.D())
			defer cancel()
			if err := g.loadOn(ctx, n, id, false); err != nil {
				g.log.Warn().Str("node", n.ref.Name).Str("model", id).Err(err).Msg("loading pinned model failed")
				return nil, err
			}
			return nil, nil
		})
	}()
}
