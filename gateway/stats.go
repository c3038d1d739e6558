package gateway

import (
	"sort"
	"sync"
	"time"
)

// The console's live numbers come from two small rings: the last requests'
// timings (tok/s and time to first token per model) and the last errors.

const (
	sampleRing = 4096
	errorRing  = 100
	// statsWindow is how far back the console's per-model numbers look.
	statsWindow = 5 * time.Minute
)

type sample struct {
	at     time.Time
	model  string
	ttft   time.Duration
	tps    float64
	tokens int
}

// ErrorEntry is one recent error as the console shows it.
type ErrorEntry struct {
	At      time.Time `json:"at"`
	Key     string    `json:"key,omitempty"`
	Model   string    `json:"model,omitempty"`
	Node    string    `json:"node,omitempty"`
	API     string    `json:"api"`
	Status  int       `json:"status"`
	Reason  string    `json:"reason"`
	Message string    `json:"message,omitempty"`
}

type rings struct {
	mu      sync.Mutex
	samples [sampleRing]sample
	ns      int // samples written
	errs    [errorRing]ErrorEntry
	ne      int
}

func (r *rings) add(s sample) {
	r.mu.Lock()
	r.samples[r.ns%sampleRing] = s
	r.ns++
	r.mu.Unlock()
}

func (r *rings) addError(e ErrorEntry) {
	r.mu.Lock()
	r.errs[r.ne%errorRing] = e
	r.ne++
	r.mu.Unlock()
}

// errors returns the recent errors, newest first.
func (r *rings) errors() []ErrorEntry {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := []ErrorEntry{}
	for i := r.ne - 1; i >= 0 && i >= r.ne-errorRing; i-- {
		out = append(out, r.errs[i%errorRing])
	}
	return out
}

// ModelStats is one model's recent numbers.
type ModelStats struct {
	ID        string   `json:"id"`
	Nodes     []string `json:"nodes"` // where it is loaded
	Requests  int      `json:"requests"`
	TokS      float64  `json:"tok_s"`
	TTFTP50Ms float64  `json:"ttft_p50_ms"`
	TTFTP95Ms float64  `json:"ttft_p95_ms"`
}

// modelStats summarises the samples of the last statsWindow per model.
func (r *rings) modelStats(now time.Time) map[string]*ModelStats {
	r.mu.Lock()
	by := map[string][]sample{}
	for i := r.ns - 1; i >= 0 && i >= r.ns-sampleRing; i-- {
		s := r.samples[i%sampleRing]
		if now.Sub(s.at) > statsWindow {
			break
		}
		by[s.model] = append(by[s.model], s)
	}
	r.mu.Unlock()
	out := map[string]*ModelStats{}
	for m, ss := range by {
		st := &ModelStats{ID: m, Requests: len(ss)}
		var ttfts []float64
		var tps float64
		var ntps int
		for _, s := range ss {
			if s.ttft > 0 {
				ttfts = append(ttfts, float64(s.ttft.Microseconds())/1000)
			}
			if s.tps > 0 {
				tps += s.tps
				ntps++
			}
		}
		if ntps > 0 {
			st.TokS = tps / float64(ntps)
		}
		st.TTFTP50Ms, st.TTFTP95Ms = quantile(ttfts, 0.5), quantile(ttfts, 0.95)
		out[m] = st
	}
	return out
}

// quantile is the nearest-rank quantile q of v (0 for none).
func quantile(v []float64, q float64) float64 {
	if len(v) == 0 {
		return 0
	}
	sort.Float64s(v)
	i := int(q*float64(len(v))+0.999999) - 1
	if i < 0 {
		i = 0
	}
	if i >= len(v) {
		i = len(v) - 1
	}
	return v[i]
}
