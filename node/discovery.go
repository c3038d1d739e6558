package node

import (
	"context"
	"math"
	"net/http"
	"os"
	"runtime"
	"sort"
	"time"

	"github.com/labstack/echo/v4"
)

type cudaInfo struct {
	Available     bool   `json:"available"`
	DriverVersion string `json:"driver_version"`
	Reason        string `json:"reason,omitempty"`
}

type discoveryDevice struct {
	Index             int    `json:"index"`
	Kind              string `json:"kind"`
	Name              string `json:"name"`
	MemTotalMB        int64  `json:"mem_total_mb"`
	ComputeCapability string `json:"compute_capability"`
}

type discoveryBody struct {
	Hostname string            `json:"hostname"`
	OS       string            `json:"os"`
	Kernel   string            `json:"kernel"`
	Arch     string            `json:"arch"`
	CPUs     int               `json:"cpus"`
	CUDA     cudaInfo          `json:"cuda"`
	Devices  []discoveryDevice `json:"devices"`
}

func (s *Server) handleDiscovery(c echo.Context) error {
	host, _ := os.Hostname()
	b := discoveryBody{Hostname: host, OS: runtime.GOOS, Kernel: kernelRelease(), Arch: runtime.GOARCH, CPUs: runtime.NumCPU(), CUDA: s.cuda}
	for _, d := range s.devices {
		b.Devices = append(b.Devices, discoveryDevice{Index: d.index, Kind: d.kind, Name: d.name, MemTotalMB: d.memTotal >> 20, ComputeCapability: d.computeCapability})
	}
	return c.JSON(http.StatusOK, b)
}

type versionBody struct {
	Version   string `json:"version"`
	Commit    string `json:"commit"`
	GoVersion string `json:"go_version"`
}

func (s *Server) handleVersion(c echo.Context) error {
	return c.JSON(http.StatusOK, versionBody{Version: Version, Commit: Commit, GoVersion: runtime.Version()})
}

type healthModel struct {
	ID            string  `json:"id"`
	InFlight      int     `json:"in_flight"`
	QueueDepth    int     `json:"queue_depth"`
	MaxInFlight   int     `json:"max_in_flight"`
	MaxQueueDepth int     `json:"max_queue_depth"`
	TokSPrefill   float64 `json:"tok_s_prefill"`
	TokSDecode    float64 `json:"tok_s_decode"`
}

type healthDevice struct {
	Index     int    `json:"index"`
	Kind      string `json:"kind"`
	MemUsedMB int64  `json:"mem_used_mb"`
	MemFreeMB int64  `json:"mem_free_mb"`
	Error     string `json:"error,omitempty"`
}

type healthBody struct {
	Status  string         `json:"status"`
	UptimeS int64          `json:"uptime_s"`
	Models  []healthModel  `json:"models"`
	Devices []healthDevice `json:"devices"`
}

func round1(f float64) float64 { return math.Round(f*10) / 10 }

func (s *Server) handleHealth(c echo.Context) error {
	b := healthBody{Status: "ok", UptimeS: int64(time.Since(s.started).Seconds()), Models: []healthModel{}}
	s.mu.Lock()
	for id, e := range s.models {
		if e.inst == nil {
			continue
		}
		in, q := e.inst.gate.counts()
		p, d := e.inst.stats.get()
		b.Models = append(b.Models, healthModel{ID: id, InFlight: in, QueueDepth: q, MaxInFlight: e.inst.gate.maxInFlight,
			MaxQueueDepth: e.inst.gate.maxQueue, TokSPrefill: round1(p), TokSDecode: round1(d)})
	}
	reserved := make([]int64, len(s.devices))
	for i, d := range s.devices {
		reserved[i] = d.reserved
	}
	s.mu.Unlock()
	sort.Slice(b.Models, func(i, j int) bool { return b.Models[i].ID < b.Models[j].ID })
	ctx, cancel := context.WithTimeout(c.Request().Context(), 2*time.Second)
	defer cancel()
	for i, d := range s.devices {
		hd := healthDevice{Index: d.index, Kind: d.kind}
		if err := d.w.Err(); err != nil {
			b.Status = "degraded"
			hd.Error = err.Error()
		} else if free, err := d.cachedFree(ctx, reserved[i], 15*time.Second); err == nil {
			hd.MemFreeMB = free >> 20
			hd.MemUsedMB = max(0, (d.memTotal-free)>>20)
		}
		b.Devices = append(b.Devices, hd)
	}
	return c.JSON(http.StatusOK, b)
}
