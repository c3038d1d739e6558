package node

import (
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"helexa/node/engine"
)

// The neuron serves gemma3 with its sliding-window layers keeping only
// their window: greedy completions many windows long (window 16, blocks
// of 64), three at once, one of them continuing an earlier turn (its
// prefix reused after the window moved on), give the tokens of a greedy
// run of the engine with every layer keeping every position.
func TestGemma3LongCompletions(t *testing.T) {
	shared := sharedDir(t)
	const model, ctx, steps = "synth-gemma3-F32", 512, 150
	path := filepath.Join(shared, "models", model+".gguf")
	if _, err := os.Stat(path); err != nil {
		t.Skipf("no %s: %v", model, err)
	}
	full, err := engine.Load(path, engine.Options{ContextLength: ctx, Threads: 2, Backend: struct{ engine.Backend }{engine.CPU{}}})
	if err != nil {
		t.Fatal(err)
	}
	defer full.Close()
	greedy := func(prompt []int32, n int) []int32 {
		logits := make([]float32, full.NVocab())
		if err := full.Forward(0, prompt, 0, logits); err != nil {
			t.Fatal(err)
		}
		var out []int32
		for i := range n {
			tok := int32(slices.Index(logits, slices.Max(logits)))
			out = append(out, tok)
			if i+1 < n {
				if err := full.Forward(0, []int32{tok}, len(prompt)+i, logits); err != nil {
					t.Fatal(err)
				}
			}
		}
		return out
	}

	cfg := testConfig(filepath.Join(shared, "models"))
	cfg.MaxInFlight = 3
	n := startNeuron(t, cfg, realEngine())
	n.load(t, model, ctx)
	inst, err := n.s.instanceFor(model)
	if err != nil {
		t.Fatal(err)
	}
	if p := inst.m.Engine.Pool(); p.Window() != 16 || p.WindowBlocks() == 0 {
		t.Fatalf("loaded with window %d and %d window blocks: no window layers' cache", p.Window(), p.WindowBlocks())
	}
	complete := func(prompt []int32) ([]int32, int) {
		var r completionResponse
		if st := n.do(t, "POST", "/v1/completions", map[string]any{"model": model, "prompt": prompt, "max_tokens": steps,
			"temperature": 0, "logprobs": 1, "ignore_eos": true}, &r); st != 200 || len(r.Choices) == 0 || r.Choices[0].Logprobs == nil {
			t.Errorf("completion: %d %+v", st, r)
			return nil, 0
		}
		cached := 0
		if r.Usage != nil {
			cached = r.Usage.PromptTokensDetails.CachedTokens
		}
		return r.Choices[0].Logprobs.TokenIDs, cached
	}
	first := []int32{1, 400, 25, 300, 12, 99, 7}
	turn1, _ := complete(first)
	if want := greedy(first, steps); !slices.Equal(turn1, want) {
		t.Fatalf("first turn:\n got %v\nwant %v", turn1, want)
	}
	prompts := [][]int32{
		append(append(slices.Clone(first), turn1...), 33, 44, 55), // the next turn
		{1, 5, 6, 7, 8, 9},
		slices.Repeat([]int32{1, 60, 70}, 30),
	}
	got := make([][]int32, len(prompts))
	cached := make([]int, len(prompts))
	var wg sync.WaitGroup
	for i, p := range prompts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i], cached[i] = complete(p)
		}()
	}
	wg.Wait()
	for i, p := range prompts {
		if want := greedy(p, steps); !slices.Equal(got[i], want) {
			t.Errorf("completion %d (%d prompt tokens, %d cached):\n got %v\nwant %v", i, len(p), cached[i], got[i], want)
		}
	}
	if cached[0] < len(first)+steps-1 {
		t.Errorf("the next turn reused %d positions, want %d", cached[0], len(first)+steps-1)
	}
}

// The pool the neuron sizes for a gemma3 counts both caches: it fits
// the kv_cache_share of free memory, and holds over five times the
// positions keeping every layer's would (six, less the window cache).
func TestKVPoolTokensWindowLayers(t *testing.T) {
	g := engine.Info{NLayer: 48, NHeadKV: 8, HeadDim: 256, SlidingWindow: 1024, NLayerSWA: 40, SizeBytes: 8 << 30}
	info := modelInfo{SizeBytes: g.SizeBytes, KVBytesPerToken: g.KVBytesPerToken(), KVTokensWithin: g.KVTokensWithin}
	s := &Server{cfg: testConfig(t.TempDir())}
	s.cfg.MaxInFlight, s.cfg.KVCacheShare = 8, 0.5
	const ctx, free = 128 << 10, 64 << 30
	n := s.kvPoolTokens(info, ctx, free)
	budget := int64(0.5 * float64(free-g.SizeBytes))
	if kv := g.KVBytesPerToken()*int64(n) + g.WindowKVBytes(ctx, n); kv > budget {
		t.Errorf("a pool of %d positions takes %d bytes, over the budget of %d", n, kv, budget)
	}
	all := int(budget / (2 * 2 * int64(g.NLayer*g.NHeadKV*g.HeadDim)))
	if n < 5*all {
		t.Errorf("a pool of %d positions; keeping every layer's, %d", n, all)
	}
	t.Logf("%d GiB free, 8 GiB of weights, share 0.5: %d positions (every layer's positions: %d)", free>>30, n, all)
}
