package node

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"helexa/roles/config"
)

// benchNeuron serves one real model (HELEXA_BENCH_MODEL, else the shared
// synth-25m-Q4_K_M) through the neuron's HTTP API on 2 threads, with the
// default batch_tokens or HELEXA_BENCH_BATCH_TOKENS.
func benchNeuron(b *testing.B, maxInFlight int) (*testNeuron, string) {
	b.Helper()
	path := os.Getenv("HELEXA_BENCH_MODEL")
	if path == "" {
		path = filepath.Join(sharedDir(b), "models", "synth-25m-Q4_K_M.gguf")
	}
	dir, name := filepath.Split(path)
	f := false
	budget := config.DefaultBatchTokens
	if v, err := strconv.Atoi(os.Getenv("HELEXA_BENCH_BATCH_TOKENS")); err == nil && v > 0 {
		budget = v // to compare step budgets
	}
	cfg := config.Neuron{ModelsDirs: []string{dir}, MaxInFlight: maxInFlight, MaxQueueDepth: 64, MaxWait: config.Duration(time.Minute),
		DemoModel: &f, Threads: 2, BatchTokens: budget, KVCacheShare: 0.5}
	s, err := newServer(cfg, zerolog.New(io.Discard), realEngine())
	if err != nil {
		b.Fatal(err)
	}
	n := &testNeuron{s: s, srv: newHTTPTest(b, s), dir: dir}
	id := strings.TrimSuffix(name, ".gguf")
	data, _ := json.Marshal(map[string]any{"model": id, "context_length": 2048})
	resp, err := http.Post(n.srv.URL+"/models/load", "application/json", strings.NewReader(string(data)))
	if err != nil || resp.StatusCode != 200 {
		b.Fatalf("load %s: %v %v", id, err, resp)
	}
	resp.Body.Close()
	return n, id
}

// streamTimes streams one completion and sends the arrival time of each
// token chunk on times (closed at the end).
func streamTimes(url, model string, prompt []int32, maxTokens int, times chan<- time.Time) error {
	defer close(times)
	body, _ := json.Marshal(map[string]any{"model": model, "prompt": prompt, "max_tokens": maxTokens, "temperature": 0, "stream": true, "ignore_eos": true})
	resp, err := http.Post(url+"/v1/completions", "application/json", strings.NewReader(string(body)))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if line, ok := strings.CutPrefix(sc.Text(), "data: "); ok && line != "[DONE]" && strings.Contains(line, `"text"`) {
			times <- time.Now()
		}
	}
	return sc.Err()
}

func benchPrompt(n, salt int) []int32 {
	p := make([]int32, n)
	for i := range p {
		p[i] = int32(3 + (i*37+salt*101)%400)
	}
	return p
}

// BenchmarkChunkedPrefill: a 512-token prompt arrives while 7 streams
// decode. It reports that prompt's time to first token against the same
// prompt on an idle model (ttft_x), and the 7 streams' inter-token
// latency p99 while it is read against their p99 before it came (itl_p99_x).
func BenchmarkChunkedPrefill(b *testing.B) {
	// streamTokens keeps the 7 streams decoding past the prompt's first
	// token even on a fast model (1,200 steps of 7 sequences).
	const streamTokens = 1200
	n, id := benchNeuron(b, 8)
	url := n.srv.URL
	ttft := func(salt int) time.Duration {
		times := make(chan time.Time, 8)
		t0 := time.Now()
		go func() { _ = streamTimes(url, id, benchPrompt(512, salt), 1, times) }()
		first, ok := <-times
		for range times {
		}
		if !ok {
			b.Fatal("no token")
		}
		return first.Sub(t0)
	}
	ttft(0) // warm up
	var idleTTFT, busyTTFT []float64
	var itlIdle, itlBusy []float64
	for i := 0; i < b.N; i++ {
		idleTTFT = append(idleTTFT, float64(ttft(1000+i)))
		// 7 decoding streams
		var mu sync.Mutex
		var stamps [7][]time.Time
		var wg sync.WaitGroup
		for s := range 7 {
			times := make(chan time.Time, 1024)
			wg.Add(1)
			go func() {
				defer wg.Done()
				go func() { _ = streamTimes(url, id, benchPrompt(32, 10*i+s), streamTokens, times) }()
				for t := range times {
					mu.Lock()
					stamps[s] = append(stamps[s], t)
					mu.Unlock()
				}
			}()
		}
		time.Sleep(300 * time.Millisecond) // all decoding
		tIdle0 := time.Now()
		time.Sleep(500 * time.Millisecond)
		tArrive := time.Now()
		d := ttft(2000 + i)
		busyTTFT = append(busyTTFT, float64(d))
		tFirst := tArrive.Add(d)
		wg.Wait()
		for s := range 7 {
			ts := stamps[s]
			for k := 1; k < len(ts); k++ {
				gap := float64(ts[k].Sub(ts[k-1]))
				switch {
				case ts[k].After(tIdle0) && ts[k].Before(tArrive):
					itlIdle = append(itlIdle, gap)
				case ts[k].After(tArrive) && !ts[k-1].After(tFirst):
					itlBusy = append(itlBusy, gap)
				}
			}
		}
	}
	if len(itlIdle) == 0 || len(itlBusy) == 0 {
		b.Fatalf("the 7 streams were not decoding throughout (%d idle and %d busy gaps): raise streamTokens", len(itlIdle), len(itlBusy))
	}
	b.ReportMetric(median(busyTTFT)/median(idleTTFT), "ttft_x")
	b.ReportMetric(median(idleTTFT)/1e6, "idle_ttft_ms")
	b.ReportMetric(pct(itlBusy, 0.99)/pct(itlIdle, 0.99), "itl_p99_x")
	b.ReportMetric(pct(itlIdle, 0.99)/1e6, "idle_itl_p99_ms")
}

func median(v []float64) float64 { return pct(v, 0.5) }

func pct(v []float64, p float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return s[min(len(s)-1, int(p*float64(len(s))))]
}
