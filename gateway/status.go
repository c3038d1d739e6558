package gateway

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"time"

	"github.com/labstack/echo/v4"
)

// HealthReport is the public GET /health answer: a fleet summary.
type HealthReport struct {
	Status       string `json:"status"` // ok, degraded (some nodes down) or down (none healthy)
	NodesTotal   int    `json:"nodes_total"`
	NodesHealthy int    `json:"nodes_healthy"`
	ModelsLoaded int    `json:"models_loaded"`
	InFlight     int64  `json:"in_flight"`
}

func (g *Gateway) handleHealth(c echo.Context) error {
	f := g.fleet
	f.mu.RLock()
	h := HealthReport{NodesTotal: len(f.nodes), InFlight: g.inFlight.Load()}
	for _, n := range f.nodes {
		if !n.healthy {
			continue
		}
		h.NodesHealthy++
		for _, m := range n.models {
			if m.Status == statusLoaded {
				h.ModelsLoaded++
			}
		}
	}
	f.mu.RUnlock()
	code := http.StatusOK
	switch {
	case h.NodesTotal > 0 && h.NodesHealthy == 0:
		h.Status = "down"
		code = http.StatusServiceUnavailable
		c.Response().Header().Set("Retry-After", "5")
	case h.NodesHealthy < h.NodesTotal:
		h.Status = "degraded"
	default:
		h.Status = "ok"
	}
	return c.JSON(code, h)
}

// FleetReport is the GET /fleet answer: every node's state.
type FleetReport struct {
	Nodes []FleetNode `json:"nodes"`
}

// FleetNode is one node in GET /fleet.
type FleetNode struct {
	Name        string        `json:"name"`
	Endpoint    string        `json:"endpoint"`
	Healthy     bool          `json:"healthy"`
	State       string        `json:"state"` // healthy, unhealthy, unknown (never reached)
	Status      string        `json:"status,omitempty"`
	LastError   string        `json:"last_error,omitempty"`
	LastSeen    *time.Time    `json:"last_seen,omitempty"`
	Failures    int           `json:"failures"`
	UptimeS     float64       `json:"uptime_s"`
	Hostname    string        `json:"hostname,omitempty"`
	CUDA        *bool         `json:"cuda,omitempty"`
	CUDAReason  string        `json:"cuda_reason,omitempty"`
	Cycles      int           `json:"cycles"`
	DefragDue   bool          `json:"defrag_due"`
	Devices     []FleetDevice `json:"devices"`
	Models      []FleetModel  `json:"models"`
	MemUsedMB   int           `json:"mem_used_mb"`
	MemFreeMB   int           `json:"mem_free_mb"`
	ModelsReady int           `json:"models_loaded"`
}

// FleetDevice is one device of a node.
type FleetDevice struct {
	Index      int    `json:"index"`
	Kind       string `json:"kind"`
	Name       string `json:"name,omitempty"`
	MemTotalMB int    `json:"mem_total_mb,omitempty"`
	MemUsedMB  int    `json:"mem_used_mb"`
	MemFreeMB  int    `json:"mem_free_mb"`
}

// FleetModel is one model a node lists.
type FleetModel struct {
	ID            string     `json:"id"`
	Status        string     `json:"status"`
	MemEstimateMB int        `json:"mem_estimate_mb,omitempty"`
	ContextLength int        `json:"context_length,omitempty"`
	InFlight      int        `json:"in_flight"`
	QueueDepth    int        `json:"queue_depth"`
	LastUsed      *time.Time `json:"last_used,omitempty"`
	Pinned        bool       `json:"pinned,omitempty"`
	Error         string     `json:"error,omitempty"`
	// modelFacts: architecture, parameters, quantization, capabilities
	modelFacts
}

// modelFacts describe a model as its neurons report it, in /fleet and
// /v1/models.
type modelFacts struct {
	Arch             string   `json:"arch,omitempty"`
	ParamCount       int64    `json:"param_count,omitempty"`
	ActiveParamCount int64    `json:"active_param_count,omitempty"`
	Quant            string   `json:"quant,omitempty"`
	Capabilities     []string `json:"capabilities,omitempty"`
}

// factsOf reads a neuron's row of a model.
func factsOf(m neuronModel) modelFacts {
	return modelFacts{Arch: m.Arch, ParamCount: m.ParamCount, ActiveParamCount: m.ActiveParamCount, Quant: m.Quant,
		Capabilities: append([]string(nil), m.Capabilities...)}
}

// merge adds another node's facts: the first node's values stand, the
// capabilities are the union (a model loaded on one node lists what its
// runner computes there).
func (f *modelFacts) merge(o modelFacts) {
	if f.Arch == "" {
		f.Arch = o.Arch
	}
	if f.ParamCount == 0 {
		f.ParamCount, f.ActiveParamCount = o.ParamCount, o.ActiveParamCount
	}
	if f.Quant == "" {
		f.Quant = o.Quant
	}
	for _, c := range o.Capabilities {
		if !slices.Contains(f.Capabilities, c) {
			f.Capabilities = append(f.Capabilities, c)
		}
	}
}

func (g *Gateway) fleetReport() FleetReport {
	f := g.fleet
	f.mu.RLock()
	defer f.mu.RUnlock()
	rep := FleetReport{Nodes: []FleetNode{}}
	for _, n := range f.nodes {
		fn := FleetNode{Name: n.ref.Name, Endpoint: n.ref.Endpoint, Healthy: n.healthy, Status: n.health.Status,
			LastError: n.lastErr, Failures: n.failures, UptimeS: n.health.UptimeS, Cycles: n.cycles, DefragDue: n.defragDue,
			Devices: []FleetDevice{}, Models: []FleetModel{}}
		switch {
		case n.healthy:
			fn.State = "healthy"
		case n.contacted:
			fn.State = "unhealthy"
		default:
			fn.State = "unknown"
		}
		if !n.lastSeen.IsZero() {
			t := n.lastSeen.UTC()
			fn.LastSeen = &t
		}
		names := map[int]FleetDevice{}
		if d := n.discovery; d != nil {
			fn.Hostname = d.Hostname
			avail := d.CUDA.Available
			fn.CUDA = &avail
			fn.CUDAReason = d.CUDA.Reason
			for _, dev := range d.Devices {
				names[dev.Index] = FleetDevice{Index: dev.Index, Kind: dev.Kind, Name: dev.Name, MemTotalMB: dev.MemTotalMB}
			}
		}
		for _, du := range n.health.Devices {
			fd := names[du.Index]
			fd.Index, fd.MemUsedMB, fd.MemFreeMB = du.Index, du.MemUsedMB, du.MemFreeMB
			if fd.Kind == "" {
				fd.Kind = du.Kind
			}
			delete(names, du.Index)
			fn.Devices = append(fn.Devices, fd)
			fn.MemUsedMB += du.MemUsedMB
			fn.MemFreeMB += du.MemFreeMB
		}
		for _, fd := range names {
			fn.Devices = append(fn.Devices, fd)
		}
		sort.Slice(fn.Devices, func(i, j int) bool { return fn.Devices[i].Index < fn.Devices[j].Index })
		busy := map[string]neuronHealthModel{}
		for _, hm := range n.health.Models {
			busy[hm.ID] = hm
		}
		for id, m := range n.models {
			fm := FleetModel{ID: id, Status: m.Status, MemEstimateMB: m.MemEstimateMB, ContextLength: m.ContextLength,
				InFlight: busy[id].InFlight, QueueDepth: busy[id].QueueDepth, Pinned: g.pinnedOn(id, n.ref.Name), Error: m.Error,
				modelFacts: factsOf(m)}
			if s := n.slots[id]; s != nil && m.Status == statusLoaded {
				t := s.last().UTC()
				fm.LastUsed = &t
			}
			if m.Status == statusLoaded {
				fn.ModelsReady++
			}
			fn.Models = append(fn.Models, fm)
		}
		sort.Slice(fn.Models, func(i, j int) bool { return fn.Models[i].ID < fn.Models[j].ID })
		rep.Nodes = append(rep.Nodes, fn)
	}
	return rep
}

func (g *Gateway) handleFleet(c echo.Context) error {
	rep := g.fleetReport()
	if k := keyOf(c); k != nil && !k.unlimited {
		for i := range rep.Nodes {
			ms := rep.Nodes[i].Models[:0]
			for _, m := range rep.Nodes[i].Models {
				if k.allows(m.ID, m.ID) {
					ms = append(ms, m)
				}
			}
			rep.Nodes[i].Models = ms
		}
	}
	return c.JSON(http.StatusOK, rep)
}

// ModelList is the merged GET /v1/models answer, in OpenAI's shape.
type ModelList struct {
	Object string       `json:"object"`
	Data   []ModelEntry `json:"data"`
}

// ModelEntry is one model (or alias) in GET /v1/models.
type ModelEntry struct {
	ID            string     `json:"id"`
	Object        string     `json:"object"`
	Created       int64      `json:"created"`
	OwnedBy       string     `json:"owned_by"`
	Loaded        bool       `json:"loaded"`
	Locations     []Location `json:"locations"`
	ContextLength int        `json:"context_length,omitempty"`
	AliasOf       string     `json:"alias_of,omitempty"`
	InCatalogue   bool       `json:"in_catalogue,omitempty"`
	// modelFacts: merged over the nodes that list the model
	modelFacts
}

// Location is one node's status for a model.
type Location struct {
	Node   string `json:"node"`
	Status string `json:"status"`
}

func (g *Gateway) modelList() ModelList {
	f := g.fleet
	f.mu.RLock()
	entries := map[string]*ModelEntry{}
	get := func(id string) *ModelEntry {
		e := entries[id]
		if e == nil {
			e = &ModelEntry{ID: id, Object: "model", OwnedBy: "helexa", Locations: []Location{}}
			entries[id] = e
		}
		return e
	}
	for _, n := range f.nodes {
		if !n.healthy {
			continue
		}
		for id, m := range n.models {
			e := get(id)
			e.Locations = append(e.Locations, Location{Node: n.ref.Name, Status: m.Status})
			if m.Status == statusLoaded {
				e.Loaded = true
			}
			if m.ContextLength > e.ContextLength {
				e.ContextLength = m.ContextLength
			}
			e.merge(factsOf(m))
		}
	}
	f.mu.RUnlock()
	for _, cm := range g.live().cat.Models {
		e := get(cm.ID)
		e.InCatalogue = true
		if e.ContextLength == 0 {
			e.ContextLength = cm.ContextLength
		}
	}
	for alias, id := range g.live().cat.Aliases {
		t := get(id)
		a := *t
		a.ID, a.AliasOf, a.InCatalogue = alias, id, false
		a.Locations = append([]Location(nil), t.Locations...)
		a.Capabilities = append([]string(nil), t.Capabilities...)
		entries[alias] = &a
	}
	list := ModelList{Object: "list", Data: make([]ModelEntry, 0, len(entries))}
	for _, e := range entries {
		sort.Slice(e.Locations, func(i, j int) bool { return e.Locations[i].Node < e.Locations[j].Node })
		list.Data = append(list.Data, *e)
	}
	sort.Slice(list.Data, func(i, j int) bool { return list.Data[i].ID < list.Data[j].ID })
	return list
}

func (g *Gateway) handleModels(c echo.Context) error {
	return c.JSON(http.StatusOK, g.modelsFor(keyOf(c)))
}

// modelsFor is the merged list with only the models k may use.
func (g *Gateway) modelsFor(k *keyState) ModelList {
	list := g.modelList()
	out := list.Data[:0]
	for _, e := range list.Data {
		if k.allows(e.ID, nonEmpty(e.AliasOf, e.ID)) {
			out = append(out, e)
		}
	}
	list.Data = out
	return list
}

// handleModel serves GET /v1/models/{id}: one entry of the merged list.
func (g *Gateway) handleModel(c echo.Context) error {
	id := c.Param("*")
	if u, err := url.PathUnescape(id); err == nil {
		id = u
	}
	for _, e := range g.modelsFor(keyOf(c)).Data {
		if e.ID == id {
			return c.JSON(http.StatusOK, e)
		}
	}
	writeError(c.Response(), dialectOpenAI, &apiError{Status: http.StatusNotFound, Code: "model_not_found",
		Message: fmt.Sprintf("model %q does not exist on any healthy node, in the catalogue or as an alias", id)})
	return nil
}
