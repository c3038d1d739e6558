package gateway

import (
	"net/http"
	"runtime"
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
// http-64: the same request through a gateway without keys (off) and
// through one whose key has every limit (on, none reached), from 64
// clients, alternating in ten rounds; cpu-µs/req is the whole process's
// CPU time per request, which depends less than req/s on what else the
// machine runs, and added-cpu-µs/req is the cost of the checks with
// authentication.

var benchKey = config.Key{Name: "bench", Key: "sk-bench", Models: []string{"m*"}, RPM: 1 << 40, TPM: 1 << 40,
	MaxParallel: 1 << 20, BudgetTokens: 1 << 60, BudgetPeriod: config.PeriodMonth}

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
	offURL, onURL := off.srv.URL+"/v1/chat/completions", on.srv.URL+"/v1/chat/completions"
	for _, w := range []struct{ url, key string }{{offURL, ""}, {onURL, "sk-bench"}} {
		if err := postKeyConcurrently(c, w.url, w.key, 500, 64); err != nil { // warm the pools
			b.Fatal(err)
		}
	}
	b.Run("http-64", func(b *testing.B) {
		// Off and on alternate in ten rounds, so both see the same machine.
		const rounds = 10
		per := max(b.N/rounds, 1)
		var cpu [2]time.Duration
		var wall [2]time.Duration
		for range rounds {
			for i, w := range []struct{ url, key string }{{offURL, ""}, {onURL, "sk-bench"}} {
				c0, t0 := cpuTime(), time.Now()
				if err := postKeyConcurrently(c, w.url, w.key, per, 64); err != nil {
					b.Fatal(err)
				}
				cpu[i] += cpuTime() - c0
				wall[i] += time.Since(t0)
			}
		}
		n := float64(per * rounds)
		us := func(d time.Duration) float64 { return float64(d.Microseconds()) / n }
		b.ReportMetric(us(cpu[0]), "off-cpu-µs/req")
		b.ReportMetric(us(cpu[1]), "on-cpu-µs/req")
		b.ReportMetric(us(cpu[1])-us(cpu[0]), "added-cpu-µs/req")
		b.ReportMetric(n/wall[0].Seconds(), "off-req/s")
		b.ReportMetric(n/wall[1].Seconds(), "on-req/s")
	})
}
