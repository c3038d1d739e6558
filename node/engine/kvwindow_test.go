package engine

import (
	"path/filepath"
	"slices"
	"testing"
)

// windowModels serves w twice: with the sliding-window layers' own
// cache, and without it (a backend that is no WindowKVBackend), as
// before that cache existed.
func windowModels(t *testing.T, w *Weights, o Options) (win, full *Model) {
	t.Helper()
	win = &Model{w: w, closer: func() error { return nil }}
	if err := win.start("gemma3", o); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { win.Close() })
	o.Backend = struct{ Backend }{CPU{}}
	full = &Model{w: w, closer: func() error { return nil }}
	if err := full.start("gemma3", o); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { full.Close() })
	if win.pool.WindowBlocks() == 0 || full.pool.WindowBlocks() != 0 {
		t.Fatalf("window blocks: %d with the window cache, %d without", win.pool.WindowBlocks(), full.pool.WindowBlocks())
	}
	return win, full
}

// poisonFreeWindow fills every window block no sequence holds with NaN,
// so that a read of a released block shows in the logits. It returns
// how many blocks it filled.
func poisonFreeWindow(m *Model) int {
	r := m.runner.(*cpuRunner)
	c := &r.c
	bl := c.bs * c.kvDim
	for l := range c.nWinLayers {
		base := l * r.winKV * bl
		for _, b := range m.pool.w.free {
			o := base + int(b)*bl
			for i := o; i < o+bl; i++ {
				r.kv.wk[i], r.kv.wv[i] = 0x7e00, 0x7e00
			}
		}
	}
	return len(m.pool.w.free)
}

// exactly fails unless got and want are the same floats (no NaN).
func exactly(t *testing.T, what string, got, want []float32) {
	t.Helper()
	if d := maxDiff(got, want); d != 0 {
		t.Fatalf("%s: logits differ by up to %g from the full cache's", what, d)
	}
}

// A long sequence whose window layers keep only their window computes
// exactly the logits of the full cache, with every released window block
// poisoned, holding no more window blocks than a sequence may.
func TestWindowKVMatchesFullCache(t *testing.T) {
	w := tinyGemma(41)
	win, full := windowModels(t, w, Options{ContextLength: 512, Threads: 2})
	nv := w.H.NVocab
	tokens := tokenRun(400, nv)
	got, want := make([]float32, 100*nv), make([]float32, 100*nv)
	// a prompt of 100 in one call (two passes)
	if err := win.ForwardAll(0, tokens[:100], 0, got); err != nil {
		t.Fatal(err)
	}
	if err := full.ForwardAll(0, tokens[:100], 0, want); err != nil {
		t.Fatal(err)
	}
	exactly(t, "prompt", got, want)
	released := 0
	for i := 100; i < len(tokens); i++ {
		poisonFreeWindow(win)
		if err := win.Forward(0, tokens[i:i+1], i, got[:nv]); err != nil {
			t.Fatal(err)
		}
		if err := full.Forward(0, tokens[i:i+1], i, want[:nv]); err != nil {
			t.Fatal(err)
		}
		exactly(t, "decode", got[:nv], want[:nv])
		s := win.slots[0]
		released = s.winLo
		if held := len(s.WinBlocks) - s.winLo; held > win.pool.winPer {
			t.Fatalf("position %d: %d window blocks held", i, held)
		}
	}
	if released < 5 {
		t.Fatalf("only %d window blocks released over %d positions", released, len(tokens))
	}
	// having computed position 399 (reading from 384), the window layers
	// hold one block of 64, the global layers all 7
	if n := win.pool.WindowBlocks() - win.pool.FreeWindowBlocks(); n != 1 {
		t.Errorf("%d window blocks held at position 400, want 1", n)
	}
	// truncating back before the window is refused, to 0 it works
	if err := win.Forward(0, tokens[:1], 200, got[:nv]); err == nil {
		t.Fatal("recomputing from position 200, whose window was released, was allowed")
	}
	if err := win.Forward(0, tokens[:50], 0, got[:nv]); err != nil {
		t.Fatal(err)
	}

	// the embedding scratch has its window cache too
	we, err := win.runner.(*cpuRunner).Embed(tokens[:300])
	if err != nil {
		t.Fatal(err)
	}
	fe, err := full.runner.(*cpuRunner).Embed(tokens[:300])
	if err != nil {
		t.Fatal(err)
	}
	exactly(t, "embedding", we, fe)
}

// Sequences of different lengths in one batch, and prefix reuse after
// their windows slid: the logits are the full cache's.
func TestWindowKVBatchedAndPrefixes(t *testing.T) {
	w := tinyGemma(43)
	nv := w.H.NVocab
	win, full := windowModels(t, w, Options{ContextLength: 512, KVTokens: 4 * 512, MaxCached: 4, Threads: 2})
	prompts := [][]int32{tokenRun(30, nv), tokenRun(150, nv-3), tokenRun(270, nv-5)}
	type run struct {
		m    *Model
		seqs []*Seq
		out  [][]float32
	}
	runs := []*run{{m: win}, {m: full}}
	for _, r := range runs {
		var items []SeqItem
		for _, p := range prompts {
			s, cached, err := r.m.Pool().Start(p, nil)
			if err != nil || cached != 0 {
				t.Fatalf("start: cached %d, %v", cached, err)
			}
			r.seqs = append(r.seqs, s)
			r.out = append(r.out, make([]float32, nv))
			items = append(items, SeqItem{Seq: s, Tokens: p, Logits: r.out[len(r.out)-1]})
		}
		if err := r.m.ForwardBatch(items); err != nil {
			t.Fatal(err)
		}
	}
	for i := range prompts {
		exactly(t, "prompts in one batch", runs[0].out[i], runs[1].out[i])
	}
	for step := range 80 {
		for _, r := range runs {
			if r.m == win {
				poisonFreeWindow(win)
			}
			var items []SeqItem
			for i, s := range r.seqs {
				tok := int32(1 + (step*5+i*11)%(nv-1))
				items = append(items, SeqItem{Seq: s, Tokens: []int32{tok}, Logits: r.out[i]})
			}
			if err := r.m.ForwardBatch(items); err != nil {
				t.Fatal(err)
			}
		}
		for i := range prompts {
			exactly(t, "decoding in one batch", runs[0].out[i], runs[1].out[i])
		}
	}
	for _, r := range runs {
		r.m.Pool().Finish(r.seqs[2], true) // 350 positions, cached
	}

	// a continuation of the cached sequence reuses all of it, its
	// window included (a shared block, a copied partial one)
	cont := append(slices.Clone(runs[0].seqs[2].Tokens), 3, 4, 5)
	for _, r := range runs {
		s, cached, err := r.m.Pool().Start(cont, nil)
		if err != nil || cached != 350 {
			t.Fatalf("continuation: cached %d, %v; want 350", cached, err)
		}
		poisonFreeWindow(win)
		if err := r.m.ForwardBatch([]SeqItem{{Seq: s, Tokens: cont[cached:], Logits: r.out[0]}}); err != nil {
			t.Fatal(err)
		}
		r.m.Pool().Finish(s, false)
	}
	exactly(t, "after prefix reuse", runs[0].out[0], runs[1].out[0])

	// a prompt parting from it at 100: the window cache no longer has
	// positions 85..99, so it is computed afresh
	early := append(slices.Clone(cont[:100]), 7, 8)
	for _, r := range runs {
		s, cached, err := r.m.Pool().Start(early, nil)
		if err != nil {
			t.Fatal(err)
		}
		if want := map[*Model]int{win: 0, full: 100}[r.m]; cached != want {
			t.Fatalf("early divergence: cached %d, want %d", cached, want)
		}
		poisonFreeWindow(win)
		if err := r.m.ForwardBatch([]SeqItem{{Seq: s, Tokens: early[cached:], Logits: r.out[0]}}); err != nil {
			t.Fatal(err)
		}
		r.m.Pool().Finish(s, false)
	}
	if d := maxDiff(runs[0].out[0], runs[1].out[0]); d > 1e-4 {
		t.Errorf("a fresh computation and a reused prefix differ by %g", d)
	}
	for _, r := range runs {
		for _, s := range r.seqs[:2] {
			r.m.Pool().Finish(s, false)
		}
		p := r.m.Pool()
		p.DropCache()
		if p.FreeBlocks() != p.Blocks() || p.FreeWindowBlocks() != p.WindowBlocks() {
			t.Errorf("at the end %d of %d blocks and %d of %d window blocks free", p.FreeBlocks(), p.Blocks(), p.FreeWindowBlocks(), p.WindowBlocks())
		}
	}
}

// The shared gemma3 (a window of 16 on five of its six layers), loaded
// as the neuron loads it: a long greedy run gives the full cache's
// logits with released window blocks poisoned, and its window layers
// hold a few blocks whatever its length.
func TestWindowKVSynthGemma3(t *testing.T) {
	path := filepath.Join(sharedDir(t), "models", "synth-gemma3-F32.gguf")
	win, err := Load(path, Options{ContextLength: 1024, Threads: 2})
	if err != nil {
		t.Skipf("loading %s: %v", path, err)
	}
	defer win.Close()
	full, err := Load(path, Options{ContextLength: 1024, Threads: 2, Backend: struct{ Backend }{CPU{}}})
	if err != nil {
		t.Fatal(err)
	}
	defer full.Close()
	if win.pool.WindowBlocks() == 0 || win.pool.Window() != 16 {
		t.Fatalf("window space: %d blocks, window %d", win.pool.WindowBlocks(), win.pool.Window())
	}
	if a, b := win.MemBytes(), full.MemBytes(); a >= b {
		t.Errorf("the window cache holds %d bytes, the full cache %d", a, b)
	}
	nv := win.NVocab()
	prompt := win.Tok.Encode("Once upon a time there was a little girl who", true, false)
	got, want := make([]float32, nv), make([]float32, nv)
	if err := win.Forward(0, prompt, 0, got); err != nil {
		t.Fatal(err)
	}
	if err := full.Forward(0, prompt, 0, want); err != nil {
		t.Fatal(err)
	}
	exactly(t, "prompt", got, want)
	n := len(prompt)
	steps := 400
	if testing.Short() {
		steps = 150
	}
	for range steps {
		tok := argmax(want)
		poisonFreeWindow(win)
		if err := win.Forward(0, []int32{tok}, n, got); err != nil {
			t.Fatal(err)
		}
		if err := full.Forward(0, []int32{tok}, n, want); err != nil {
			t.Fatal(err)
		}
		n++
		exactly(t, "greedy decode", got, want)
	}
	if s := win.slots[0]; s.winLo < 2 {
		t.Errorf("after %d positions only %d window blocks released", n, s.winLo)
	}
}

// The memory a gemma3 load takes: the estimate covers the load with its
// window layers' cache, a full-context sequence of a Gemma 3 12B shape
// at 128k costs under a fifth of what keeping every layer's positions
// did, and the largest pool within a budget fits it.
func TestWindowKVSizing(t *testing.T) {
	path := filepath.Join(sharedDir(t), "models", "synth-gemma3-F32.gguf")
	info, err := Inspect(path)
	if err != nil {
		t.Fatal(err)
	}
	if info.SlidingWindow != 16 || info.NLayerSWA != 5 {
		t.Fatalf("window %d on %d layers, want 16 on 5", info.SlidingWindow, info.NLayerSWA)
	}
	const ctx = 1024
	m, err := Load(path, Options{ContextLength: ctx, KVTokens: 3 * ctx, MaxCached: 3, Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	held := info.SizeBytes + m.MemBytes()
	est := info.MemEstimate(ctx, 3*ctx)
	m.Close()
	if est < held || est > 2*held {
		t.Errorf("MemEstimate %d for %d held", est, held)
	}

	g := Info{NLayer: 48, NHeadKV: 8, HeadDim: 256, NHead: 16, NEmbd: 3840, NFF: 15360, NVocab: 262144, SlidingWindow: 1024, NLayerSWA: 40}
	const long = 128 << 10
	before := 2 * 2 * int64(g.NLayer*g.NHeadKV*g.HeadDim) * long
	// one more full-context sequence in the pool
	after := g.MemEstimate(long, 2*long) - g.MemEstimate(long, long)
	t.Logf("KV of one %d-position sequence, 48 layers of 8×256 KV, window 1024 on 40: %d MiB before, %d MiB with the window cache (global %d MiB, window %d MiB counting a cached one's)",
		long, before>>20, after>>20, (g.KVBytesPerToken()*long)>>20, (after-g.KVBytesPerToken()*long)>>20)
	if after*5 > before {
		t.Errorf("a sequence costs %d bytes, more than a fifth of %d", after, before)
	}
	for _, budget := range []int64{before, 3 * after, 10 * before} {
		n := g.KVTokensWithin(long, budget)
		if kv := g.KVBytesPerToken()*int64(n) + g.WindowKVBytes(long, n); kv > budget || n < long && budget >= before {
			t.Errorf("budget %d: a pool of %d positions takes %d", budget, n, kv)
		}
		if kv := g.KVBytesPerToken()*int64(n+1) + g.WindowKVBytes(long, n+1); kv <= budget {
			t.Errorf("budget %d: a pool of %d positions, but %d fit", budget, n, n+1)
		}
	}
	if n := (Info{NLayer: 4, NHeadKV: 2, HeadDim: 8}).KVTokensWithin(100, 1<<20); n != (1<<20)/(4*4*16) {
		t.Errorf("without window layers: %d positions", n)
	}
}
