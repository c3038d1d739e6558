package gateway

import (
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"helexa/roles/config"
)

// What the neurons answer (design/neuron-api.md). Unknown fields are kept
// out: the gateway reads only what it uses.

type neuronHealth struct {
	Status  string              `json:"status"`
	UptimeS float64             `json:"uptime_s"`
	Models  []neuronHealthModel `json:"models"`
	Devices []neuronDeviceUse   `json:"devices"`
}

type neuronHealthModel struct {
	ID            string  `json:"id"`
	InFlight      int     `json:"in_flight"`
	QueueDepth    int     `json:"queue_depth"`
	MaxInFlight   int     `json:"max_in_flight"`
	MaxQueueDepth int     `json:"max_queue_depth"`
	TokSPrefill   float64 `json:"tok_s_prefill"`
	TokSDecode    float64 `json:"tok_s_decode"`
}

type neuronDeviceUse struct {
	Index     int    `json:"index"`
	Kind      string `json:"kind"`
	MemUsedMB int    `json:"mem_used_mb"`
	MemFreeMB int    `json:"mem_free_mb"`
}

type neuronModels struct {
	Data []neuronModel `json:"data"`
}

type neuronModel struct {
	ID            string   `json:"id"`
	Status        string   `json:"status"`
	Format        string   `json:"format,omitempty"`
	Quant         string   `json:"quant,omitempty"`
	SizeBytes     int64    `json:"size_bytes,omitempty"`
	MemEstimateMB int      `json:"mem_estimate_mb,omitempty"`
	Devices       []int    `json:"devices,omitempty"`
	ContextLength int      `json:"context_length,omitempty"`
	Capabilities  []string `json:"capabilities,omitempty"`
	Error         string   `json:"error,omitempty"`
	// what the model is: architecture and parameters (total, and read per
	// token: fewer for mixture-of-experts models)
	Arch             string `json:"arch,omitempty"`
	ParamCount       int64  `json:"param_count,omitempty"`
	ActiveParamCount int64  `json:"active_param_count,omitempty"`
}

type neuronDiscovery struct {
	Hostname string `json:"hostname"`
	OS       string `json:"os"`
	Kernel   string `json:"kernel"`
	CUDA     struct {
		Available     bool   `json:"available"`
		DriverVersion string `json:"driver_version,omitempty"`
		Reason        string `json:"reason,omitempty"`
	} `json:"cuda"`
	Devices []struct {
		Index             int    `json:"index"`
		Kind              string `json:"kind"`
		Name              string `json:"name"`
		MemTotalMB        int    `json:"mem_total_mb"`
		ComputeCapability string `json:"compute_capability,omitempty"`
	} `json:"devices"`
}

// Model statuses a neuron reports.
const (
	statusAvailable = "available"
	statusLoading   = "loading"
	statusLoaded    = "loaded"
	statusUnloading = "unloading"
	statusFailed    = "failed"
)

// unhealthyAfter failed polls in a row mark a node unhealthy.
const unhealthyAfter = 3

// discoveryEvery polls, /discovery is read again.
const discoveryEvery = 10

// slot is the gateway's own record of one model on one node: requests it
// has in flight there and when it last used it. Its counters are atomic so
// the request path touches no lock to update them.
type slot struct {
	inFlight atomic.Int64
	lastUsed atomic.Int64 // unix nanoseconds
	keyPrio  atomic.Int64 // highest priority of the keys that used it since it was loaded
}

func (s *slot) touch(now time.Time) { s.lastUsed.Store(now.UnixNano()) }

func (s *slot) last() time.Time { return time.Unix(0, s.lastUsed.Load()) }

// node is the gateway's view of one neuron. Fields below mu are guarded by
// fleet.mu.
type node struct {
	ref  config.NeuronRef
	base string // endpoint without a trailing slash

	contacted bool
	healthy   bool
	failures  int
	lastErr   string
	lastSeen  time.Time
	polls     int
	health    neuronHealth
	models    map[string]neuronModel
	discovery *neuronDiscovery
	slots     map[string]*slot
	changed   map[string]time.Time // when the gateway last changed a model's status
	cycles    int                  // load/unload cycles since the last defrag
	defragDue bool
}

func (n *node) slot(id string, now time.Time) *slot {
	s := n.slots[id]
	if s == nil {
		s = &slot{}
		s.touch(now)
		n.slots[id] = s
	}
	return s
}

// freeMB sums free memory over the node's devices.
func (n *node) freeMB() int {
	t := 0
	for _, d := range n.health.Devices {
		t += d.MemFreeMB
	}
	return t
}

// busy is in_flight + queue_depth of a model from the last /health, or the
// gateway's own count when that is higher (the poll lags behind).
func (n *node) busy(id string) int {
	b := 0
	for _, m := range n.health.Models {
		if m.ID == id {
			b = m.InFlight + m.QueueDepth
			break
		}
	}
	if s := n.slots[id]; s != nil {
		if l := int(s.inFlight.Load()); l > b {
			b = l
		}
	}
	return b
}

func (n *node) deviceCount() int {
	if n.discovery != nil && len(n.discovery.Devices) > 0 {
		return len(n.discovery.Devices)
	}
	return len(n.health.Devices)
}

// fleet holds every node's state.
type fleet struct {
	mu     sync.RWMutex
	nodes  []*node // configuration order
	byName map[string]*node
}

func newFleet(refs []config.NeuronRef) *fleet {
	f := &fleet{byName: map[string]*node{}}
	for _, r := range refs {
		n := &node{ref: r, base: strings.TrimRight(r.Endpoint, "/"), models: map[string]neuronModel{}, slots: map[string]*slot{}, changed: map[string]time.Time{}}
		f.nodes = append(f.nodes, n)
		f.byName[r.Name] = n
	}
	return f
}

// pollResult is what one poll of one node brought back.
type pollResult struct {
	health    *neuronHealth
	models    *neuronModels
	discovery *neuronDiscovery
	err       error
	started   time.Time // when the poll began; older than a local change loses
}

// apply records a poll of n. It returns whether the node changed health.
func (f *fleet) apply(n *node, r pollResult, now time.Time) (changed bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n.polls++
	if r.err != nil {
		n.failures++
		n.lastErr = r.err.Error()
		if n.healthy && n.failures >= unhealthyAfter {
			n.healthy = false
			return true
		}
		return false
	}
	was := n.healthy
	n.contacted = true
	n.failures = 0
	n.lastErr = ""
	n.lastSeen = now
	n.healthy = true
	n.health = *r.health
	if r.discovery != nil {
		n.discovery = r.discovery
	}
	models := make(map[string]neuronModel, len(r.models.Data))
	for _, m := range r.models.Data {
		if isAbsPath(m.ID) {
			// An id must be a name, never where the node keeps the file:
			// such an entry is not shown or served.
			continue
		}
		m.Error = redactPaths(m.Error)
		// A load or unload by the gateway after this poll began is newer
		// than what the poll saw.
		if old, ok := n.models[m.ID]; ok && n.changed[m.ID].After(r.started) {
			m.Status = old.Status
		}
		models[m.ID] = m
		if m.Status == statusLoaded {
			n.slot(m.ID, now)
		}
	}
	n.models = models
	for id, s := range n.slots {
		if _, ok := models[id]; !ok && s.inFlight.Load() == 0 {
			delete(n.slots, id)
		}
	}
	return !was
}

// setStatus records a model's status on a node after the gateway loaded or
// unloaded it, without waiting for the next poll.
func (f *fleet) setStatus(n *node, id, status string, entry *neuronModel, now time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	m, ok := n.models[id]
	was := m.Status
	if entry != nil && entry.ID == id {
		m = *entry
		m.Error = redactPaths(m.Error)
	} else if !ok {
		m = neuronModel{ID: id}
	}
	m.Status = status
	n.models[id] = m
	n.changed[id] = time.Now()
	if status == statusLoaded {
		s := n.slot(id, now)
		s.touch(now)
		if was != statusLoaded {
			s.keyPrio.Store(0)
		}
	}
}

// setFailed records that id cannot be loaded on n, and why.
func (f *fleet) setFailed(n *node, id, reason string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	m, ok := n.models[id]
	if !ok {
		m = neuronModel{ID: id}
	}
	m.Status, m.Error = statusFailed, redactPaths(reason)
	n.models[id] = m
	n.changed[id] = time.Now()
}

// failedReason returns why id cannot be loaded when every healthy node
// that lists it (outside exclude) marks it failed.
func (f *fleet) failedReason(id string, exclude []string) (string, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	reason, failed := "", false
	for _, n := range f.nodes {
		if !n.healthy || slices.Contains(exclude, n.ref.Name) {
			continue
		}
		m, ok := n.models[id]
		if !ok {
			continue
		}
		if m.Status != statusFailed {
			return "", false
		}
		if !failed || reason == "" {
			reason = m.Error
		}
		failed = true
	}
	return reason, failed
}

// isAbsPath reports whether s is an absolute file path (Unix or Windows).
func isAbsPath(s string) bool {
	return strings.HasPrefix(s, "/") || strings.HasPrefix(s, "\\") ||
		(len(s) > 2 && s[1] == ':' && (s[2] == '\\' || s[2] == '/'))
}
