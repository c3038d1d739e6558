package gateway

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"helexa/roles/config"
)

// Gateway overhead: the same non-streaming chat request sent to a fake
// neuron directly and through the gateway, in one run.
//
//	go test ./gateway -run '^$' -bench 'Gateway' -benchtime 20000x
//
// BenchmarkGatewayOverhead reports the median latency each way and the
// difference (added-ms/op), and requests per second at 64 concurrent
// clients each way. BenchmarkGatewayMemory reports the live heap before and
// after 100,000 requests.

const benchBody = `{"model":"m1","messages":[{"role":"user","content":"Say hello."}],"max_tokens":8,"temperature":0}`

// benchSetup starts a fake neuron answering inference with fixed bytes and
// a gateway in front of it.
func benchSetup(b *testing.B) (direct, gateway string, client *http.Client) {
	b.Helper()
	n := newFakeNeuron(b, "a", "m1*")
	n.set(func(f *fakeNeuron) { f.fixed = fixedCompletion })
	tg := startGateway(b, []*fakeNeuron{n}, func(cfg *config.Config, _ *config.Catalogue) { cfg.Gateway.PollInterval = config.Duration(time.Second) })
	client = &http.Client{Transport: &http.Transport{MaxIdleConns: 512, MaxIdleConnsPerHost: 256, DisableCompression: true}}
	b.Cleanup(client.CloseIdleConnections)
	return n.srv.URL + "/v1/chat/completions", tg.srv.URL + "/v1/chat/completions", client
}

var fixedCompletion = []byte(`{"id":"chatcmpl-1","object":"chat.completion","created":1700000000,"model":"m1","choices":[{"index":0,"message":{"role":"assistant","content":"Hello there!"},"finish_reason":"stop"}],"usage":{"prompt_tokens":11,"completion_tokens":3,"total_tokens":14}}`)

// post sends benchBody to url and reads the answer.
func post(c *http.Client, url string) error { return postKey(c, url, "") }

// postKey is post with key as the bearer token (none when empty).
func postKey(c *http.Client, url, key string) error {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader([]byte(benchBody)))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}

// benchPost is post from the benchmark's own goroutine.
func benchPost(b testing.TB, c *http.Client, url string) {
	b.Helper()
	if err := post(c, url); err != nil {
		b.Fatal(err)
	}
}

// postConcurrently sends n requests to url from workers goroutines. The
// first error stops every worker; it is returned after they have all
// ended (FailNow must not be called from a worker goroutine).
func postConcurrently(c *http.Client, url string, n, workers int) error {
	return postKeyConcurrently(c, url, "", n, workers)
}

// postKeyConcurrently is postConcurrently with key as the bearer token.
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
				if err := postKey(c, url, key); err != nil {
					once.Do(func() { first = err })
					failed.Store(true)
				}
			}
		}()
	}
	wg.Wait()
	return first
}

// cpuTime is the CPU time (user + system) the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func median(d []time.Duration) time.Duration {
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	return d[len(d)/2]
}

func BenchmarkGatewayOverhead(b *testing.B) {
	direct, gw, c := benchSetup(b)
	for range 200 { // warm the connection pools
		benchPost(b, c, direct)
		benchPost(b, c, gw)
	}
	b.Run("latency", func(b *testing.B) {
		// Interleaved, one at a time, so both paths see the same machine.
		dd := make([]time.Duration, 0, b.N)
		gd := make([]time.Duration, 0, b.N)
		for range b.N {
			t := time.Now()
			benchPost(b, c, direct)
			dd = append(dd, time.Since(t))
			t = time.Now()
			benchPost(b, c, gw)
			gd = append(gd, time.Since(t))
		}
		md, mg := median(dd), median(gd)
		b.ReportMetric(float64(md.Microseconds())/1000, "direct-median-ms")
		b.ReportMetric(float64(mg.Microseconds())/1000, "gateway-median-ms")
		b.ReportMetric(float64((mg-md).Microseconds())/1000, "added-ms")
	})
	for _, target := range []struct{ name, url string }{{"direct-64", direct}, {"gateway-64", gw}} {
		b.Run(target.name, func(b *testing.B) {
			b.ReportAllocs()
			cpu0 := cpuTime()
			start := time.Now()
			if err := postConcurrently(c, target.url, b.N, 64); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
			// CPU time of the whole process (client, gateway and fake
			// neuron) per request: unlike req/s it does not depend on
			// what else the machine runs.
			b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/req")
		})
	}
}

// BenchmarkGatewayMemory sends 100,000 requests through the gateway from 64
// clients and reports the live heap before and after (after a GC each
// time): flat memory means no growth beyond noise.
func BenchmarkGatewayMemory(b *testing.B) {
	_, gw, c := benchSetup(b)
	const total = 100_000
	run := func(n int) {
		if err := postConcurrently(c, gw, n, 64); err != nil {
			b.Fatal(err)
		}
	}
	heap := func() float64 {
		runtime.GC()
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return float64(ms.HeapAlloc) / (1 << 20)
	}
	for range b.N {
		run(5000) // warm pools and connections
		before := heap()
		start := time.Now()
		run(total)
		el := time.Since(start)
		after := heap()
		b.ReportMetric(before, "heap-before-MB")
		b.ReportMetric(after, "heap-after-MB")
		b.ReportMetric(float64(total)/el.Seconds(), "req/s")
	}
}

// postConcurrently sends exactly n requests when all succeed, and returns
// a failure (instead of failing the benchmark from a worker goroutine).
func TestPostConcurrently(t *testing.T) {
	var hits atomic.Int64
	status := atomic.Int64{}
	status.Store(200)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.WriteHeader(int(status.Load()))
	}))
	defer srv.Close()
	if err := postConcurrently(srv.Client(), srv.URL, 50, 8); err != nil {
		t.Fatal(err)
	}
	if n := hits.Load(); n != 50 {
		t.Errorf("%d requests, want 50", n)
	}
	status.Store(500)
	if err := postConcurrently(srv.Client(), srv.URL, 50, 8); err == nil || !strings.Contains(err.Error(), "500") {
		t.Errorf("err = %v, want status 500", err)
	}
}
