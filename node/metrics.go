package node

import (
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/VictoriaMetrics/metrics"
	"github.com/labstack/echo/v4"
)

// metricSet holds the neuron's Prometheus metrics (neuron_*). Each Server
// has its own set, so several servers in one process (tests) do not
// share counters. Safe for concurrent use.
type metricSet struct {
	set *metrics.Set
	srv *Server
}

func newMetricSet(s *Server) *metricSet {
	m := &metricSet{set: metrics.NewSet(), srv: s}
	m.set.RegisterMetricsWriter(m.writeLive)
	return m
}

// label quotes a Prometheus label value.
func label(v string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	return `"` + r.Replace(v) + `"`
}

func (m *metricSet) name(metric, model string, extra ...string) string {
	var b strings.Builder
	b.WriteString(metric)
	b.WriteString(`{model=`)
	b.WriteString(label(model))
	for i := 0; i+1 < len(extra); i += 2 {
		fmt.Fprintf(&b, ",%s=%s", extra[i], label(extra[i+1]))
	}
	b.WriteByte('}')
	return b.String()
}

// generated records a finished generation.
func (m *metricSet) generated(model string, r genResult) {
	m.set.GetOrCreateCounter(m.name("neuron_prompt_tokens_total", model)).Add(r.PromptTokens)
	m.set.GetOrCreateCounter(m.name("neuron_prompt_cached_tokens_total", model)).Add(r.CachedTokens)
	m.set.GetOrCreateCounter(m.name("neuron_completion_tokens_total", model)).Add(r.CompletionTokens)
	m.set.GetOrCreateCounter(m.name("neuron_requests_total", model)).Inc()
	if r.CompletionTokens > 0 {
		m.set.GetOrCreatePrometheusHistogram(m.name("neuron_time_to_first_token_seconds", model)).Update(r.TTFT.Seconds())
	}
}

// embedded records an answered embeddings request: its inputs and tokens.
func (m *metricSet) embedded(model string, inputs, tokens int) {
	m.set.GetOrCreateCounter(m.name("neuron_embedding_requests_total", model)).Inc()
	m.set.GetOrCreateCounter(m.name("neuron_embedding_inputs_total", model)).Add(inputs)
	m.set.GetOrCreateCounter(m.name("neuron_embedding_tokens_total", model)).Add(tokens)
}

// rejected records a request refused by admission.
func (m *metricSet) rejected(model string, err error) {
	reason := "other"
	switch {
	case errors.Is(err, errQueueFull):
		reason = "queue_full"
	case errors.Is(err, errQueueTimeout):
		reason = "queue_timeout"
	case errors.Is(err, errDraining):
		reason = "unloading"
	default:
		return // the client went away: not a rejection
	}
	m.set.GetOrCreateCounter(m.name("neuron_rejections_total", model, "reason", reason)).Inc()
}

// batchMetrics are one model's scheduler counters, created once when the
// model loads so that a step updates them without a lookup: steps, the
// rows they ran (decoding sequences' tokens and prompt tokens), the time
// in forward passes and in sampling, and the rows per step.
type batchMetrics struct {
	steps, decodeRows, prefillRows *metrics.Counter
	forward, sample                *metrics.FloatCounter
	rows                           *metrics.PrometheusHistogram
}

// batchRowBuckets are the upper bounds of neuron_batch_rows.
var batchRowBuckets = []float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 512}

func (m *metricSet) batch(model string) *batchMetrics {
	return &batchMetrics{
		steps:       m.set.GetOrCreateCounter(m.name("neuron_batch_steps_total", model)),
		decodeRows:  m.set.GetOrCreateCounter(m.name("neuron_batch_decode_rows_total", model)),
		prefillRows: m.set.GetOrCreateCounter(m.name("neuron_batch_prefill_rows_total", model)),
		forward:     m.set.GetOrCreateFloatCounter(m.name("neuron_batch_forward_seconds_total", model)),
		sample:      m.set.GetOrCreateFloatCounter(m.name("neuron_batch_sample_seconds_total", model)),
		rows:        m.set.GetOrCreatePrometheusHistogramExt(m.name("neuron_batch_rows", model), batchRowBuckets),
	}
}

// loaded records a load's duration.
func (m *metricSet) loaded(model string, secs float64) {
	m.set.GetOrCreatePrometheusHistogram(m.name("neuron_load_seconds", model)).Update(secs)
	m.set.GetOrCreateGauge(m.name("neuron_last_load_seconds", model), nil).Set(secs)
}

// writeLive writes the gauges read from the loaded models at scrape time.
func (m *metricSet) writeLive(w io.Writer) {
	type row struct {
		id                    string
		inFlight, queued      int
		prefillTPS, decodeTPS float64
	}
	s := m.srv
	s.mu.Lock()
	var rows []row
	for id, e := range s.models {
		if e.inst == nil {
			continue
		}
		in, q := e.inst.gate.counts()
		p, d := e.inst.stats.get()
		rows = append(rows, row{id, in, q, p, d})
	}
	s.mu.Unlock()
	sort.Slice(rows, func(i, j int) bool { return rows[i].id < rows[j].id })
	for _, r := range rows {
		metrics.WriteGaugeUint64(w, m.name("neuron_in_flight", r.id), uint64(r.inFlight))
		metrics.WriteGaugeUint64(w, m.name("neuron_queue_depth", r.id), uint64(r.queued))
		metrics.WriteGaugeFloat64(w, m.name("neuron_prefill_tokens_per_second", r.id), r.prefillTPS)
		metrics.WriteGaugeFloat64(w, m.name("neuron_decode_tokens_per_second", r.id), r.decodeTPS)
	}
	metrics.WriteGaugeUint64(w, "neuron_models_loaded", uint64(len(rows)))
}

func (s *Server) handleMetrics(c echo.Context) error {
	c.Response().Header().Set("Content-Type", "text/plain; version=0.0.4")
	c.Response().WriteHeader(200)
	s.metrics.set.WritePrometheus(c.Response())
	return nil
}
