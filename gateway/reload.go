package gateway

import (
	"fmt"
	"strings"
	"time"

	"helexa/roles/config"
)

// Reload replaces the neuron list, the catalogue and the keys (SIGHUP).
// Requests in flight finish on what they started with; a node that stays
// under the same name and endpoint keeps its state, a key that keeps its
// name keeps its counters and budget. An invalid configuration changes
// nothing and is returned. Every other setting takes a restart.
func (g *Gateway) Reload(cfg config.Config, cat config.Catalogue) error {
	g.reloadMu.Lock()
	defer g.reloadMu.Unlock()
	if err := checkNeurons(cfg.Neurons); err != nil {
		return err
	}
	l, err := g.buildLive(cfg, cat)
	if err != nil {
		return err
	}
	g.liveP.Store(l)
	added, removed := g.fleet.reconfigure(cfg.Neurons)
	g.log.Info().Int("neurons", len(cfg.Neurons)).Strs("added", added).Strs("removed", removed).
		Int("catalogue_models", len(cat.Models)).Int("keys", len(l.list)).Msg("configuration reloaded")
	return nil
}

// reconfigure makes the fleet the nodes of refs. A node whose name,
// endpoint and token are unchanged keeps its state; requests in flight on
// a removed or changed node finish there.
func (f *fleet) reconfigure(refs []config.NeuronRef) (added, removed []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	nodes := make([]*node, 0, len(refs))
	byName := make(map[string]*node, len(refs))
	for _, r := range refs {
		n := f.byName[r.Name]
		if n == nil || n.ref != r {
			n = &node{ref: r, base: strings.TrimRight(r.Endpoint, "/"), models: map[string]neuronModel{}, slots: map[string]*slot{}, changed: map[string]time.Time{}}
			added = append(added, r.Name)
		}
		nodes = append(nodes, n)
		byName[r.Name] = n
	}
	for name, n := range f.byName {
		if byName[name] != n {
			removed = append(removed, fmt.Sprintf("%s (%s)", name, n.ref.Endpoint))
		}
	}
	f.nodes, f.byName = nodes, byName
	return added, removed
}
