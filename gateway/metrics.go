package gateway

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/VictoriaMetrics/metrics"
)

// metricHelp documents every metric family the gateway exposes, with its
// type. The exposition writes HELP and TYPE from here, so the output is the
// same whatever the metrics library is told globally.
var metricHelp = map[string][2]string{
	"cortex_requests_total":              {"counter", "Requests answered, by model, node, API family and HTTP status."},
	"cortex_request_errors_total":        {"counter", "Requests that failed, by model, node and reason."},
	"cortex_request_duration_seconds":    {"histogram", "Time from a request's arrival to its last byte."},
	"cortex_time_to_first_token_seconds": {"histogram", "Time from a request's arrival to its first generated token."},
	"cortex_tokens_per_second":           {"histogram", "Decode speed of each request in completion tokens per second."},
	"cortex_prompt_tokens_total":         {"counter", "Prompt tokens processed."},
	"cortex_completion_tokens_total":     {"counter", "Completion tokens generated."},
	"cortex_cold_starts_total":           {"counter", "Models loaded on demand because a request needed them."},
	"cortex_model_load_seconds":          {"histogram", "Time a neuron took to load a model on demand."},
	"cortex_evictions_total":             {"counter", "Models unloaded by the gateway, by node, model and reason."},
	"cortex_defrag_total":                {"counter", "Nodes defragmented by unloading all their unpinned models."},
	"cortex_node_up":                     {"gauge", "1 when the node is healthy, 0 when not."},
	"cortex_model_loaded":                {"gauge", "1 when the model is loaded on the node."},
	"cortex_model_in_flight":             {"gauge", "Requests the gateway has in flight to neurons."},
	"cortex_device_mem_used_mb":          {"gauge", "Device memory in use, in megabytes."},
	"cortex_device_mem_free_mb":          {"gauge", "Device memory free, in megabytes."},
	"cortex_key_requests_total":          {"counter", "Requests by key name (never the key itself)."},
	"cortex_key_tokens_total":            {"counter", "Tokens by key name and type (prompt, completion)."},
	"cortex_key_rejections_total":        {"counter", "Requests refused before routing, by key name and reason (rpm, tpm, max_parallel, budget, model_not_allowed)."},
}

// Histogram buckets.
var (
	secondsBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300}
	loadBuckets    = []float64{0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600}
	tpsBuckets     = []float64{1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000}
)

// gwMetrics is one gateway's metrics. Safe for concurrent use.
type gwMetrics struct {
	set *metrics.Set

	duration   *metrics.PrometheusHistogram
	ttft       *metrics.PrometheusHistogram
	tps        *metrics.PrometheusHistogram
	loadTime   *metrics.PrometheusHistogram
	prompt     *metrics.Counter
	completion *metrics.Counter
	coldStarts *metrics.Counter
	defrags    *metrics.Counter
	inFlight   *metrics.Gauge

	mu       sync.RWMutex
	requests map[reqKey]*metrics.Counter
	errors   map[errKey]*metrics.Counter
}

type reqKey struct {
	model, node, api string
	code             int
}

type errKey struct{ model, node, reason string }

func newMetrics(inFlight func() float64) *gwMetrics {
	s := metrics.NewSet()
	m := &gwMetrics{
		set:        s,
		duration:   s.NewPrometheusHistogramExt("cortex_request_duration_seconds", secondsBuckets),
		ttft:       s.NewPrometheusHistogramExt("cortex_time_to_first_token_seconds", secondsBuckets),
		tps:        s.NewPrometheusHistogramExt("cortex_tokens_per_second", tpsBuckets),
		loadTime:   s.NewPrometheusHistogramExt("cortex_model_load_seconds", loadBuckets),
		prompt:     s.NewCounter("cortex_prompt_tokens_total"),
		completion: s.NewCounter("cortex_completion_tokens_total"),
		coldStarts: s.NewCounter("cortex_cold_starts_total"),
		defrags:    s.NewCounter("cortex_defrag_total"),
		requests:   map[reqKey]*metrics.Counter{},
		errors:     map[errKey]*metrics.Counter{},
	}
	m.inFlight = s.NewGauge("cortex_model_in_flight", inFlight)
	return m
}

func (m *gwMetrics) request(model, node, api string, code int) {
	k := reqKey{model, node, api, code}
	m.mu.RLock()
	c := m.requests[k]
	m.mu.RUnlock()
	if c == nil {
		name := fmt.Sprintf(`cortex_requests_total{model=%s,node=%s,api=%s,code="%d"}`, quoteLabel(model), quoteLabel(node), quoteLabel(api), code)
		m.mu.Lock()
		if c = m.requests[k]; c == nil {
			c = m.set.GetOrCreateCounter(name)
			m.requests[k] = c
		}
		m.mu.Unlock()
	}
	c.Inc()
}

func (m *gwMetrics) requestError(model, node, reason string) {
	k := errKey{model, node, reason}
	m.mu.RLock()
	c := m.errors[k]
	m.mu.RUnlock()
	if c == nil {
		name := fmt.Sprintf(`cortex_request_errors_total{model=%s,node=%s,reason=%s}`, quoteLabel(model), quoteLabel(node), quoteLabel(reason))
		m.mu.Lock()
		if c = m.errors[k]; c == nil {
			c = m.set.GetOrCreateCounter(name)
			m.errors[k] = c
		}
		m.mu.Unlock()
	}
	c.Inc()
}

func (m *gwMetrics) eviction(node, model, reason string) {
	m.set.GetOrCreateCounter(fmt.Sprintf(`cortex_evictions_total{node=%s,model=%s,reason=%s}`, quoteLabel(node), quoteLabel(model), quoteLabel(reason))).Inc()
}

// quoteLabel writes a label value in the exposition format's quoting.
func quoteLabel(v string) string {
	var b strings.Builder
	b.Grow(len(v) + 2)
	b.WriteByte('"')
	for i := 0; i < len(v); i++ {
		switch c := v[i]; c {
		case '\\':
			b.WriteString(`\\`)
		case '"':
			b.WriteString(`\"`)
		case '\n':
			b.WriteString(`\n`)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// writeFleetGauges writes the per-node gauges from the fleet state.
func (g *Gateway) writeFleetGauges(w io.Writer) {
	f := g.fleet
	f.mu.RLock()
	defer f.mu.RUnlock()
	var up, loaded, used, free bytes.Buffer
	for _, n := range f.nodes {
		v := 0
		if n.healthy {
			v = 1
		}
		fmt.Fprintf(&up, "cortex_node_up{node=%s} %d\n", quoteLabel(n.ref.Name), v)
		ids := make([]string, 0, len(n.models))
		for id := range n.models {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		for _, id := range ids {
			l := 0
			if n.healthy && n.models[id].Status == statusLoaded {
				l = 1
			}
			fmt.Fprintf(&loaded, "cortex_model_loaded{node=%s,model=%s} %d\n", quoteLabel(n.ref.Name), quoteLabel(id), l)
		}
		for _, d := range n.health.Devices {
			dev := d.Kind + strconv.Itoa(d.Index)
			fmt.Fprintf(&used, "cortex_device_mem_used_mb{node=%s,device=%s} %d\n", quoteLabel(n.ref.Name), quoteLabel(dev), d.MemUsedMB)
			fmt.Fprintf(&free, "cortex_device_mem_free_mb{node=%s,device=%s} %d\n", quoteLabel(n.ref.Name), quoteLabel(dev), d.MemFreeMB)
		}
	}
	for _, b := range []*bytes.Buffer{&up, &loaded, &used, &free} {
		_, _ = w.Write(b.Bytes())
	}
}

// writeMetrics writes the exposition: the set's samples and the fleet
// gauges, each family preceded by its HELP and TYPE lines.
func (g *Gateway) writeMetrics(w io.Writer) {
	var raw bytes.Buffer
	g.met.set.WritePrometheus(&raw)
	g.writeFleetGauges(&raw)
	var out bytes.Buffer
	out.Grow(raw.Len() + 4096)
	prev := ""
	for _, line := range bytes.Split(raw.Bytes(), []byte{'\n'}) {
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		fam := family(string(line))
		if fam != prev {
			if h, ok := metricHelp[fam]; ok {
				fmt.Fprintf(&out, "# HELP %s %s\n# TYPE %s %s\n", fam, h[1], fam, h[0])
			}
			prev = fam
		}
		out.Write(line)
		out.WriteByte('\n')
	}
	_, _ = w.Write(out.Bytes())
}

// family maps a sample line to its metric family (histogram series to their
// base name).
func family(line string) string {
	name := line
	if i := strings.IndexAny(line, "{ "); i >= 0 {
		name = line[:i]
	}
	for _, suf := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suf); ok {
			if h, known := metricHelp[base]; known && h[0] == "histogram" {
				return base
			}
		}
	}
	return name
}

func (g *Gateway) metricsHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/metrics" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		g.writeMetrics(w)
	})
}

// MetricFamilies returns every metric family the gateway exports (those
// that appear only after an event too), by name, with its type.
func MetricFamilies() map[string]string {
	out := make(map[string]string, len(metricHelp))
	for name, h := range metricHelp {
		out[name] = h[0]
	}
	return out
}
