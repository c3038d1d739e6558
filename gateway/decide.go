package gateway

import (
	"sort"
	"time"
)

// The gateway's decisions are pure functions over snapshots of the fleet:
// which node serves a loaded model, where a cold model is loaded, which
// models make room, which idle models are unloaded, and when a node is
// defragmented. The loops around them only gather the snapshots and act.

// Eviction strategies ([eviction].strategy).
const (
	strategyLRU      = "lru"
	strategyPriority = "priority"
)

// servingNode is one healthy node that has the model loaded.
type servingNode struct {
	Name string
	Busy int // in_flight + queue_depth
}

// pickServing returns the least busy node, ties broken by name. ok is false
// for an empty list.
func pickServing(nodes []servingNode) (string, bool) {
	best := -1
	for i, n := range nodes {
		if best < 0 || n.Busy < nodes[best].Busy || (n.Busy == nodes[best].Busy && n.Name < nodes[best].Name) {
			best = i
		}
	}
	if best < 0 {
		return "", false
	}
	return nodes[best].Name, true
}

// resident is one model loaded on a node, as eviction sees it.
type resident struct {
	ID       string
	MemMB    int
	Priority int
	Pinned   bool // pinned on this node
	InFlight int
	LastUsed time.Time
}

// evictable reports whether r may make room for a model of the given
// priority under strategy.
func evictable(r resident, strategy string, incoming int) bool {
	if r.Pinned || r.InFlight > 0 {
		return false
	}
	if strategy == strategyPriority && r.Priority > incoming {
		return false
	}
	return true
}

// evictionVictims chooses which models to unload from a node so that a
// model needing needMB fits beside freeMB. Under "lru" the least recently
// used go first; under "priority" the lowest priority first, then the least
// recently used, and a model never displaces one of higher priority. Pinned
// models and models with requests in flight are never chosen. ok is false
// when no choice frees enough; victims is then nil.
func evictionVictims(res []resident, needMB, freeMB int, strategy string, incoming int) (victims []string, ok bool) {
	if needMB <= freeMB {
		return nil, true
	}
	cands := make([]resident, 0, len(res))
	for _, r := range res {
		if evictable(r, strategy, incoming) {
			cands = append(cands, r)
		}
	}
	sort.Slice(cands, func(i, j int) bool {
		a, b := cands[i], cands[j]
		if strategy == strategyPriority && a.Priority != b.Priority {
			return a.Priority < b.Priority
		}
		if !a.LastUsed.Equal(b.LastUsed) {
			return a.LastUsed.Before(b.LastUsed)
		}
		return a.ID < b.ID
	})
	free := freeMB
	for _, c := range cands {
		victims = append(victims, c.ID)
		free += c.MemMB
		if free >= needMB {
			return victims, true
		}
	}
	return nil, false
}

// placeNode is one healthy node that lists a cold model, as placement sees it.
type placeNode struct {
	Name     string
	Pinned   bool // the model is pinned on this node
	FreeMB   int  // free memory over the node's devices
	Devices  int
	Resident []resident
}

// placeModel describes the cold model being placed.
type placeModel struct {
	NeedMB     int // memory estimate; 0 when unknown (fits anywhere)
	MinDevices int
	Priority   int
}

// placement is one candidate for a cold load: the node and the models to
// unload there first.
type placement struct {
	Node  string
	Evict []string
	Rank  int // 0 pinned, 1 fits in free memory, 2 fits after evicting, 3 most free memory
}

// placeCandidates orders the nodes for a cold load: pinned nodes first, then
// nodes where the model fits in free memory, then nodes where it fits after
// evicting, then the rest by most free memory. Within a rank the node with
// more free memory goes first, ties by name. Nodes with fewer devices than
// MinDevices are left out.
func placeCandidates(m placeModel, nodes []placeNode, strategy string) []placement {
	type cand struct {
		placement
		free int
	}
	var cs []cand
	for _, n := range nodes {
		if m.MinDevices > 0 && n.Devices < m.MinDevices {
			continue
		}
		c := cand{placement: placement{Node: n.Name}, free: n.FreeMB}
		fits := m.NeedMB <= n.FreeMB
		var victims []string
		evictFits := false
		if !fits {
			victims, evictFits = evictionVictims(n.Resident, m.NeedMB, n.FreeMB, strategy, m.Priority)
		}
		switch {
		case n.Pinned:
			c.Rank = 0
			c.Evict = victims
		case fits:
			c.Rank = 1
		case evictFits:
			c.Rank = 2
			c.Evict = victims
		default:
			c.Rank = 3
		}
		cs = append(cs, c)
	}
	sort.Slice(cs, func(i, j int) bool {
		a, b := cs[i], cs[j]
		if a.Rank != b.Rank {
			return a.Rank < b.Rank
		}
		if a.free != b.free {
			return a.free > b.free
		}
		return a.Node < b.Node
	})
	out := make([]placement, len(cs))
	for i, c := range cs {
		out[i] = c.placement
	}
	return out
}

// idleModel is one loaded model as the idle-unload check sees it.
type idleModel struct {
	ID       string
	TTL      time.Duration // 0: never unloaded for idleness
	Pinned   bool
	InFlight int
	LastUsed time.Time
}

// idleVictims returns the models idle longer than their TTL at now. Pinned
// models and models with requests in flight stay.
func idleVictims(now time.Time, ms []idleModel) []string {
	var out []string
	for _, m := range ms {
		if m.TTL <= 0 || m.Pinned || m.InFlight > 0 {
			continue
		}
		if now.Sub(m.LastUsed) >= m.TTL {
			out = append(out, m.ID)
		}
	}
	sort.Strings(out)
	return out
}

// defragPlan decides whether a node is defragmented now: after threshold
// load/unload cycles (0 disables), once the node is idle, every unpinned
// loaded model is unloaded. due reports that the threshold is reached even
// when the node is still busy.
func defragPlan(cycles, threshold int, idle bool, res []resident) (unload []string, due, now bool) {
	if threshold <= 0 || cycles < threshold {
		return nil, false, false
	}
	if !idle {
		return nil, true, false
	}
	for _, r := range res {
		if !r.Pinned {
			unload = append(unload, r.ID)
		}
	}
	sort.Strings(unload)
	return unload, true, true
}
