package gateway

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"helexa/roles/config"
)

// What the key checks cost per request, in one run:
//
//	go test ./gateway -run '^$' -bench 'Limits' -benchtime 20000x
//
// check-64: the limit path alone (model list, rpm, tpm, max_parallel and
// budget checks, then the charge and the usage record) from 64 goroutines
// on one key: the cost a request pays, contention included.
// off-64 / on-64: the same request through a gateway without keys and
// through one whose key has every limit (none reached), from 64 clients;
// cpu-µs/req is the whole process's CPU time per request, which does not
// depend on what else the machine runs, and their difference is the cost
// of the checks with authentication.

var benchKey = config.Key{Name: "bench", Key: "sk-bench", Models: []string{"m*"}, RPM: 1 << 40, TPM: 1 << 40,
	MaxParallel: 1 << 20, BudgetTokens: 1 << 60, BudgetPeriod: config.PeriodMonth}

func postKeyConcurrently(c *http.Client, url, key string, n, workers int) error {
	var next atomic.Int64
	var failed atomic.Bool
	var once sync.Once
	var first error
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !failed.Load() && next.Add(1) <= int64(n) {
				req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader([]byte(benchBody)))
				req.Header.Set("Content-Type", "application/json")
				if key != "" {
					req.Header.Set("Authorization", "Bearer "+key)
				}
				resp, err := c.Do(req)
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					_ = resp.Body.Close()
					if resp.StatusCode != 200 {
						err = fmt.Errorf("status %d", resp.StatusCode)
					}
				}
				if err != nil {
					once.Do(func() { first = err })
					failed.Store(true)
				}
			}
		}()
	}
	wg.Wait()
	return first
}

func BenchmarkLimits(b *testing.B) {
	n := newFakeNeuron(b, "a", "m1*")
	n.set(func(f *fakeNeuron) { f.fixed = fixedCompletion })
	slow := func(cfg *config.Config, _ *config.Catalogue) { cfg.Gateway.PollInterval = config.Duration(time.Second) }
	off := startGateway(b, []*fakeNeuron{n}, slow)
	on := startGateway(b, []*fakeNeuron{n}, slow, withKeys(benchKey))
	c := &http.Client{Transport: &http.Transport{MaxIdleConns: 512, MaxIdleConnsPerHost: 256, DisableCompression: true}}
	b.Cleanup(c.CloseIdleConnections)

	b.Run("check-64", func(b *testing.B) {
		g := on.g
		k := g.live().list[0]
		b.SetParallelism((64 + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				c := &call{api: apiChat, key: k, model: "m1", code: 200, hasUsage: true, usage: usage{Prompt: 11, Completion: 3}}
				if g.checkModel(c, "m1") != nil || g.admit(c) != nil {
					b.Error("refused")
					return
				}
				g.account(c, "m1", 0)
			}
		})
	})
	for _, t := range []struct {
		name, url, key string
	}{{"off-64", off.srv.URL, ""}, {"on-64", on.srv.URL, "sk-bench"}} {
		url := t.url + "/v1/chat/completions"
		if err := postKeyConcurrently(c, url, t.key, 500, 64); err != nil { // warm the pools
			b.Fatal(err)
		}
		b.Run(t.name, func(b *testing.B) {
			cpu0 := cpuTime()
			start := time.Now()
			if err := postKeyConcurrently(c, url, t.key, b.N, 64); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
			b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/req")
		})
	}
}
