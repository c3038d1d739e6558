package node

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// complete runs one non-streaming legacy completion and returns its text
// and finish reason.
func complete(t *testing.T, n *testNeuron, body map[string]any) (string, string) {
	t.Helper()
	var r completionResponse
	if st := n.do(t, "POST", "/v1/completions", body, &r); st != 200 || len(r.Choices) != 1 || r.Choices[0].FinishReason == nil {
		t.Fatalf("completion %v: %d %+v", body, st, r)
	}
	return r.Choices[0].Text, *r.Choices[0].FinishReason
}

// Many concurrent streams of mixed lengths and sampling settings, all in
// one model's batch, each give exactly what they give alone (the test
// engine's output depends on the sequence only, sampling on the seed).
func TestBatchMixedRequests(t *testing.T) {
	cfg := testConfig(modelsDir(t, "stories260K.gguf"))
	cfg.MaxInFlight, cfg.MaxQueueDepth, cfg.BatchTokens = 8, 32, 24
	n := startNeuron(t, cfg, (&synthEngine{}).hooks())
	n.load(t, "stories260K", 512)
	var bodies []map[string]any
	for i := range 16 {
		b := map[string]any{"model": "stories260K", "prompt": strings.Repeat("Once upon a time ", 1+i%5) + fmt.Sprint(i),
			"max_tokens": 5 + 7*(i%4), "seed": 100 + i, "temperature": []float64{0, 0.7, 1.2}[i%3]}
		if i%3 == 1 {
			b["top_k"], b["top_p"] = 20, 0.9
		}
		if i%4 == 2 {
			b["logprobs"] = 2
		}
		if i%5 == 3 {
			b["stop"] = []string{"e"}
		}
		bodies = append(bodies, b)
	}
	type out struct{ text, finish string }
	alone := make([]out, len(bodies))
	for i, b := range bodies {
		alone[i].text, alone[i].finish = complete(t, n, b)
	}
	var wg sync.WaitGroup
	for round := range 2 {
		for i, b := range bodies {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if round == 1 && i%2 == 0 {
					// half of the second round streams
					b = map[string]any{"stream": true}
					for k, v := range bodies[i] {
						b[k] = v
					}
					text, finish := streamText(t, n, b)
					if text != alone[i].text || finish != alone[i].finish {
						t.Errorf("request %d streamed in a batch: %q (%s), alone %q (%s)", i, text, finish, alone[i].text, alone[i].finish)
					}
					return
				}
				text, finish := complete(t, n, b)
				if text != alone[i].text || finish != alone[i].finish {
					t.Errorf("request %d in a batch: %q (%s), alone %q (%s)", i, text, finish, alone[i].text, alone[i].finish)
				}
			}()
		}
		wg.Wait()
	}
	in := n.instanceOf(t, "stories260K")
	waitIdle(t, in)
	if in.sched.parallelDraws.Load() == 0 {
		t.Error("no step drew its tokens on two goroutines: the parallel sampling went untested")
	}
}

// readEvents reads n SSE data lines of a stream.
func readEvents(t *testing.T, r io.Reader, n int) {
	t.Helper()
	br := bufio.NewReader(r)
	for i := 0; i < n; {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(line, "data: ") {
			i++
		}
	}
}

// streamText runs a streaming legacy completion and gathers its text and
// finish reason.
func streamText(t *testing.T, n *testNeuron, body map[string]any) (string, string) {
	data, _ := json.Marshal(body)
	resp, err := http.Post(n.srv.URL+"/v1/completions", "application/json", strings.NewReader(string(data)))
	if err != nil {
		t.Error(err)
		return "", ""
	}
	defer resp.Body.Close()
	var text strings.Builder
	finish := ""
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok || line == "[DONE]" {
			continue
		}
		var c completionResponse
		if err := json.Unmarshal([]byte(line), &c); err != nil {
			t.Errorf("chunk %q: %v", line, err)
			return "", ""
		}
		for _, ch := range c.Choices {
			text.WriteString(ch.Text)
			if ch.FinishReason != nil {
				finish = *ch.FinishReason
			}
		}
	}
	return text.String(), finish
}

// A client that disconnects leaves the batch at the next step; the other
// sequences go on unaffected.
func TestBatchDisconnectLeavesOthers(t *testing.T) {
	eng := &synthEngine{delay: 2 * time.Millisecond}
	cfg := testConfig(modelsDir(t, "stories260K.gguf"))
	cfg.MaxInFlight = 4
	n := startNeuron(t, cfg, eng.hooks())
	n.load(t, "stories260K", 512)
	bodies := []map[string]any{
		{"model": "stories260K", "prompt": "Once upon a time", "max_tokens": 60, "temperature": 0},
		{"model": "stories260K", "prompt": "The little dog", "max_tokens": 60, "temperature": 0},
	}
	var want [2]string
	for i, b := range bodies {
		want[i], _ = complete(t, n, b)
	}
	// the one that leaves: a long stream, read a little, then dropped
	ctx, cancel := context.WithCancel(context.Background())
	data := `{"model":"stories260K","prompt":"A bird","max_tokens":400,"temperature":0,"stream":true}`
	req, _ := http.NewRequestWithContext(ctx, "POST", n.srv.URL+"/v1/completions", strings.NewReader(data))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	got := make([]string, 2)
	for i, b := range bodies {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i], _ = complete(t, n, b)
		}()
	}
	readEvents(t, resp.Body, 5)
	cancel()
	resp.Body.Close()
	wg.Wait()
	for i := range got {
		if got[i] != want[i] {
			t.Errorf("request %d beside a disconnecting one: %q, alone %q", i, got[i], want[i])
		}
	}
	in := n.instanceOf(t, "stories260K")
	waitIdle(t, in)
	if c := eng.computed.Load(); c > 400 {
		t.Errorf("%d tokens computed: the dropped stream ran on", c)
	}
}

// Claude Code's first request is about 20k tokens and asks for 32k more:
// a model trained for 32k serves it with the default configuration
// (context = the trained one, the pool sized from memory), ending with
// "length" when the context is full.
func TestLongPromptDefaultContext(t *testing.T) {
	eng := &synthEngine{trained: 32768}
	n := startNeuron(t, testConfig(modelsDir(t, "stories260K.gguf")), eng.hooks())
	var out map[string]any
	if st := n.do(t, "POST", "/models/load", map[string]any{"model": "stories260K"}, &out); st != 200 {
		t.Fatalf("load: %d %v", st, out)
	}
	if in := n.instanceOf(t, "stories260K"); in.nctx != 32768 {
		t.Fatalf("default context %d, want the trained 32768", in.nctx)
	}
	prompt := make([]int32, 19824)
	for i := range prompt {
		prompt[i] = int32(3 + i%500)
	}
	var r completionResponse
	if st := n.do(t, "POST", "/v1/completions", map[string]any{"model": "stories260K", "prompt": prompt, "max_tokens": 32000, "ignore_eos": true}, &r); st != 200 {
		t.Fatalf("a 19,824-token prompt: %d %+v", st, r)
	}
	if f := *r.Choices[0].FinishReason; f != "length" || r.Usage.PromptTokens != len(prompt) || r.Usage.PromptTokens+r.Usage.CompletionTokens != 32768 {
		t.Fatalf("finish %s, usage %+v: want length at the end of the context", f, r.Usage)
	}
}

// max_output_tokens caps every completion (node-wide, and per model at
// load), finishing with "length".
func TestMaxOutputTokens(t *testing.T) {
	cfg := testConfig(modelsDir(t, "stories260K.gguf"))
	cfg.MaxOutputTokens = 7
	n := startNeuron(t, cfg, (&synthEngine{}).hooks())
	n.load(t, "stories260K", 256)
	var r completionResponse
	if st := n.do(t, "POST", "/v1/completions", map[string]any{"model": "stories260K", "prompt": "Once", "max_tokens": 32000, "ignore_eos": true}, &r); st != 200 {
		t.Fatalf("%d %+v", st, r)
	}
	if *r.Choices[0].FinishReason != "length" || r.Usage.CompletionTokens != 7 {
		t.Fatalf("node cap: finish %s after %d tokens, want length after 7", *r.Choices[0].FinishReason, r.Usage.CompletionTokens)
	}
	if st := n.do(t, "POST", "/models/unload", map[string]any{"model": "stories260K"}, nil); st != 200 {
		t.Fatal(st)
	}
	if st := n.do(t, "POST", "/models/load", map[string]any{"model": "stories260K", "context_length": 256, "max_output_tokens": 3}, nil); st != 200 {
		t.Fatal(st)
	}
	if st := n.do(t, "POST", "/v1/completions", map[string]any{"model": "stories260K", "prompt": "Once", "ignore_eos": true}, &r); st != 200 {
		t.Fatalf("%d %+v", st, r)
	}
	if r.Usage.CompletionTokens != 3 {
		t.Fatalf("model cap: %d tokens, want 3", r.Usage.CompletionTokens)
	}
	var e errEnvelope
	if st := n.do(t, "POST", "/models/load", map[string]any{"model": "stories260K", "max_output_tokens": -1}, &e); st != 400 {
		t.Fatalf("negative max_output_tokens: %d", st)
	}
}

// Sequences that outgrow the KV pool stop with "length", never with an
// error, and the pool is whole again afterwards.
func TestKVPoolExhaustionEndsWithLength(t *testing.T) {
	cfg := testConfig(modelsDir(t, "stories260K.gguf"))
	cfg.MaxInFlight, cfg.KVCacheShare = 3, 1e-12 // the pool: one context
	n := startNeuron(t, cfg, (&synthEngine{delay: time.Millisecond}).hooks())
	n.load(t, "stories260K", 256)
	in := n.instanceOf(t, "stories260K")
	var wg sync.WaitGroup
	total := make([]int, 3)
	for i := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			prompt := make([]int32, 60)
			for j := range prompt {
				prompt[j] = int32(3 + (i*61+j)%400)
			}
			var r completionResponse
			if st := n.do(t, "POST", "/v1/completions", map[string]any{"model": "stories260K", "prompt": prompt, "max_tokens": 150, "ignore_eos": true}, &r); st != 200 {
				t.Errorf("request %d: %d %+v", i, st, r)
				return
			}
			if f := *r.Choices[0].FinishReason; f != "length" {
				t.Errorf("request %d finished with %s", i, f)
			}
			total[i] = r.Usage.PromptTokens + r.Usage.CompletionTokens
		}()
	}
	wg.Wait()
	t.Logf("positions reached: %v", total)
	sum := total[0] + total[1] + total[2]
	if sum >= 3*210 {
		t.Errorf("every request reached 210 positions (%v) in a pool of 256", total)
	}
	waitIdle(t, in)
	// Nothing runs now, so the test may look at the loop's pool.
	p := in.sched.m.Pool()
	p.DropCache()
	if p.FreeBlocks() != p.Blocks() {
		t.Errorf("%d of %d blocks free", p.FreeBlocks(), p.Blocks())
	}
}

// The scheduler's counters account for every row it ran: each request's
// uncached prompt tokens as prefill rows, and each token it fed back
// (all generated tokens but the last) as a decode row.
func TestBatchMetrics(t *testing.T) {
	n := startNeuron(t, testConfig(modelsDir(t, "stories260K.gguf")), (&synthEngine{}).hooks())
	n.load(t, "stories260K", 512)
	prompts := []string{"Once upon a time there was", "The little dog ran to the park and", "A"}
	maxTokens := []int{20, 9, 1}
	var wg sync.WaitGroup
	results := make([]completionResponse, len(prompts))
	for i := range prompts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body := map[string]any{"model": "stories260K", "prompt": prompts[i], "max_tokens": maxTokens[i], "ignore_eos": true}
			if st := n.do(t, "POST", "/v1/completions", body, &results[i]); st != 200 {
				t.Errorf("request %d: %d", i, st)
			}
		}()
	}
	wg.Wait()
	prefill, decode := 0, 0
	for i, r := range results {
		if r.Usage.CompletionTokens != maxTokens[i] {
			t.Fatalf("request %d: %d tokens, want %d", i, r.Usage.CompletionTokens, maxTokens[i])
		}
		prefill += r.Usage.PromptTokens - r.Usage.PromptTokensDetails.CachedTokens
		decode += r.Usage.CompletionTokens - 1
	}
	var m bytes.Buffer
	n.s.metrics.set.WritePrometheus(&m)
	text := m.String()
	value := func(name string) float64 {
		t.Helper()
		for _, line := range strings.Split(text, "\n") {
			if v, ok := strings.CutPrefix(line, name+`{model="stories260K"} `); ok {
				f, err := strconv.ParseFloat(v, 64)
				if err != nil {
					t.Fatalf("%s: %v", line, err)
				}
				return f
			}
		}
		t.Fatalf("metrics lack %s:\n%s", name, text)
		return 0
	}
	if got := value("neuron_batch_prefill_rows_total"); got != float64(prefill) {
		t.Fatalf("prefill rows %v, want %d", got, prefill)
	}
	if got := value("neuron_batch_decode_rows_total"); got != float64(decode) {
		t.Fatalf("decode rows %v, want %d", got, decode)
	}
	steps := value("neuron_batch_steps_total")
	if steps < 20 || steps > float64(prefill+decode) {
		t.Fatalf("%v steps for %d prefill and %d decode rows (the longest request alone needs 20)", steps, prefill, decode)
	}
	if value("neuron_batch_forward_seconds_total") <= 0 || value("neuron_batch_sample_seconds_total") <= 0 {
		t.Fatal("no time counted in forward passes or sampling")
	}
	if got := value("neuron_batch_rows_count"); got != steps {
		t.Fatalf("rows histogram has %v observations for %v steps", got, steps)
	}
}
