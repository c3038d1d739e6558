package engine

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
)

// batchedGreedy generates greedily for every prompt at once, the way the
// neuron's scheduler does: each pass holds the next token of every
// decoding sequence plus chunks of waiting prompts, up to budget tokens.
// It returns n tokens per prompt.
func batchedGreedy(t *testing.T, m *Model, prompts [][]int32, n, budget int) [][]int32 {
	t.Helper()
	type seq struct {
		s      *Seq
		prompt []int32
		done   int // prompt tokens fed
		out    []int32
		logits []float32
	}
	seqs := make([]*seq, len(prompts))
	for i, p := range prompts {
		s, cached, err := m.Pool().Start(p, nil)
		if err != nil {
			t.Fatal(err)
		}
		seqs[i] = &seq{s: s, prompt: p, done: cached, logits: make([]float32, m.NVocab())}
	}
	var items []SeqItem
	var owners []*seq
	for {
		items, owners = items[:0], owners[:0]
		left := budget
		for _, q := range seqs { // decoding sequences first
			if q.done == len(q.prompt) && len(q.out) < n {
				items = append(items, SeqItem{Seq: q.s, Tokens: q.out[len(q.out)-1:], Logits: q.logits})
				owners = append(owners, q)
				left--
			}
		}
		for _, q := range seqs {
			if q.done < len(q.prompt) && left > 0 {
				k := min(left, len(q.prompt)-q.done)
				it := SeqItem{Seq: q.s, Tokens: q.prompt[q.done : q.done+k]}
				if q.done+k == len(q.prompt) {
					it.Logits = q.logits
				}
				items = append(items, it)
				owners = append(owners, q)
				left -= k
			}
		}
		if len(items) == 0 {
			break
		}
		if err := m.ForwardBatch(items); err != nil {
			t.Fatal(err)
		}
		for i, it := range items {
			q := owners[i]
			if q.done < len(q.prompt) {
				q.done += len(it.Tokens)
			}
			if it.Logits != nil {
				q.out = append(q.out, argmax(q.logits))
			}
		}
	}
	out := make([][]int32, len(seqs))
	for i, q := range seqs {
		out[i] = q.out
		m.Pool().Finish(q.s, false)
	}
	return out
}

func argmax(x []float32) int32 {
	best := 0
	for i, v := range x {
		if v > x[best] {
			best = i
		}
	}
	return int32(best)
}

// Greedy output of every reference case, all run at once in one batch
// with chunked prefill, equals the reference until its first near-tie
// (a step whose reference top-1/top-2 gap is below the tolerance's).
func TestBatchedGreedyMatchesReferences(t *testing.T) {
	shared := sharedDir(t)
	refs, _ := filepath.Glob(filepath.Join(shared, "reference", "*.json"))
	if len(refs) == 0 {
		t.Skip("no reference files")
	}
	for _, refPath := range refs {
		t.Run(filepath.Base(refPath), func(t *testing.T) {
			if raceEnabled && len(refs) > 2 && filepath.Base(refPath) != "stories260K.json" {
				t.Skip("under the race detector only stories260K runs (the full run is the non-race suite's)")
			}
			ref, err := LoadReference(refPath)
			if err != nil {
				t.Fatal(err)
			}
			m, err := Load(modelFor(shared, refPath, ref), Options{ContextLength: 256, Slots: len(ref.Cases), Threads: 2})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			var prompts [][]int32
			n := 0
			for _, c := range ref.Cases {
				prompts = append(prompts, c.PromptTokens)
				n = max(n, len(c.CompletionTokens))
			}
			got := batchedGreedy(t, m, prompts, n, 24)
			gap := ToleranceFor(m.Info.Quant).Gap
			checked := 0
			for i, c := range ref.Cases {
				for j, want := range c.CompletionTokens {
					top := c.TopLogprobs[j]
					if len(top) > 1 && top[0].Logprob-top[1].Logprob < gap {
						break // a near-tie: the continuations may part here
					}
					if got[i][j] != want {
						t.Fatalf("case %d step %d: token %d in the batch, reference %d (ours so far %v)", i, j, got[i][j], want, got[i][:j+1])
					}
					checked++
				}
			}
			t.Logf("%d cases, %d steps checked before their first near-tie", len(ref.Cases), checked)
			if checked == 0 {
				t.Fatal("no step checked")
			}
		})
	}
}

// A sequence's logits in a batch equal its logits alone: rows of a pass
// do not mix, and the paged cache is read in the order one piece would
// be. (The attention split follows the batch, so float32 sums may be
// grouped differently: differences stay at rounding level.)
func TestBatchEqualsAlone(t *testing.T) {
	m := loadStories(t, Options{ContextLength: 200, KVTokens: 1024, Threads: 2})
	nv := m.NVocab()
	prompts := [][]int32{{1, 5, 9, 200}, {1, 7, 7, 7, 7, 7, 7, 7, 30, 31, 32}, {1, 400, 3}}
	// Long enough to cross KV blocks.
	long := []int32{1}
	for i := range 150 {
		long = append(long, int32(3+i%400))
	}
	prompts = append(prompts, long)
	alone := make([][]float32, len(prompts))
	for i, p := range prompts {
		s, _, err := m.Pool().Start(p, nil)
		if err != nil {
			t.Fatal(err)
		}
		alone[i] = make([]float32, nv)
		if err := m.ForwardBatch([]SeqItem{{Seq: s, Tokens: p, Logits: alone[i]}}); err != nil {
			t.Fatal(err)
		}
		m.Pool().Finish(s, false)
	}
	var items []SeqItem
	for _, p := range prompts {
		s, _, err := m.Pool().Start(p, nil)
		if err != nil {
			t.Fatal(err)
		}
		items = append(items, SeqItem{Seq: s, Tokens: p, Logits: make([]float32, nv)})
	}
	// more rows than one pass: items continue in the next
	if err := m.ForwardBatch(items); err != nil {
		t.Fatal(err)
	}
	for i, it := range items {
		if d := maxDiff(it.Logits, alone[i]); d > 1e-4 {
			t.Errorf("prompt %d: logits in the batch differ from alone by up to %g", i, d)
		} else {
			t.Logf("prompt %d: max |Δ| %g", i, d)
		}
		m.Pool().Finish(it.Seq, false)
	}
	if m.Pool().FreeBlocks() != m.Pool().Blocks() {
		t.Errorf("%d of %d blocks free after every sequence ended", m.Pool().FreeBlocks(), m.Pool().Blocks())
	}
}

// A prompt sharing a prefix with a finished, cached sequence reuses its
// whole blocks and copies the partial one, with the same logits as
// computing it all.
func TestPrefixReuse(t *testing.T) {
	m := loadStories(t, Options{ContextLength: 512, KVTokens: 2048, Slots: 2, Threads: 2})
	nv := m.NVocab()
	base := []int32{1}
	for i := range 150 {
		base = append(base, int32(3+(i*7)%400))
	}
	p := m.Pool()
	s, _, err := p.Start(base, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.ForwardBatch([]SeqItem{{Seq: s, Tokens: base}}); err != nil {
		t.Fatal(err)
	}
	p.Finish(s, true)
	next := append(slices.Clone(base), 17, 18, 19)
	s2, cached, err := p.Start(next, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cached != len(base) {
		t.Fatalf("cached %d tokens, want %d", cached, len(base))
	}
	if s2.shared != len(base)/p.BlockSize() {
		t.Errorf("shared %d blocks, want %d", s2.shared, len(base)/p.BlockSize())
	}
	got := make([]float32, nv)
	if err := m.ForwardBatch([]SeqItem{{Seq: s2, Tokens: next[cached:], Logits: got}}); err != nil {
		t.Fatal(err)
	}
	p.Finish(s2, false)
	p.DropCache()
	s3, cached, err := p.Start(next, nil)
	if err != nil || cached != 0 {
		t.Fatalf("fresh start: cached %d, %v", cached, err)
	}
	want := make([]float32, nv)
	if err := m.ForwardBatch([]SeqItem{{Seq: s3, Tokens: next, Logits: want}}); err != nil {
		t.Fatal(err)
	}
	p.Finish(s3, false)
	if d := maxDiff(got, want); d > 1e-4 {
		t.Errorf("logits after prefix reuse differ from a full computation by up to %g", d)
	} else {
		t.Logf("max |Δ| %g", d)
	}
	if p.FreeBlocks() != p.Blocks() {
		t.Errorf("%d of %d blocks free", p.FreeBlocks(), p.Blocks())
	}
}

// The pool refuses what it cannot hold, changing nothing.
func TestKVPoolFull(t *testing.T) {
	p := NewKVPool(4, 16, 2)
	a, _, err := p.Start(make([]int32, 40), nil) // 3 blocks
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := p.Start(make([]int32, 20), []*Seq{}); !errors.Is(err, ErrKVFull) {
		t.Fatalf("second start: %v, want ErrKVFull", err)
	}
	if p.FreeBlocks() != 1 {
		t.Fatalf("%d free after a refused start, want 1", p.FreeBlocks())
	}
	a.Tokens = append(a.Tokens, make([]int32, 40)...)
	if err := p.Grow(a, 64); err != nil {
		t.Fatal(err)
	}
	if err := p.Grow(a, 65); !errors.Is(err, ErrKVFull) {
		t.Fatalf("grow past the pool: %v", err)
	}
	p.Finish(a, true)
	// the cached sequence gives its blocks back when a new one needs them
	b, _, err := p.Start([]int32{9, 9, 9}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Grow(b, 64); err != nil {
		t.Fatal(fmt.Errorf("cached blocks were not reclaimed: %w", err))
	}
	if p.Cached() != 0 {
		t.Errorf("%d cached after reclaiming", p.Cached())
	}
	p.Finish(b, false)
	if p.FreeBlocks() != 4 {
		t.Errorf("%d free at the end, want 4", p.FreeBlocks())
	}
}

// Prefix reuse as conversations use it: the same prompt again reuses all
// but its last token, a continuation finds its earlier turn, an unrelated
// prompt nothing; running sequences lend their whole blocks too.
func TestKVPoolPrefixes(t *testing.T) {
	p := NewKVPool(16, 4, 4)
	a := []int32{1, 2, 3, 4, 5, 6}
	s, cached, err := p.Start(a, nil)
	if err != nil || cached != 0 {
		t.Fatalf("first start: cached %d, %v", cached, err)
	}
	s.Tokens = append(s.Tokens, a...)
	p.Finish(s, true)
	s2, cached, _ := p.Start(a, nil)
	if cached != 5 {
		t.Fatalf("same prompt: cached %d, want 5", cached)
	}
	if c := p.takeCopies(); s2.shared != 1 || len(c) != 1 {
		t.Fatalf("same prompt: %d shared blocks and %d copies, want 1 shared and the partial one copied", s2.shared, len(c))
	} else {
		p.copied(c)
	}
	s2.Tokens = append(s2.Tokens, a[5], 7, 8, 9)
	if err := p.Grow(s2, len(s2.Tokens)); err != nil {
		t.Fatal(err)
	}
	p.Finish(s2, true)
	if p.Cached() != 1 {
		t.Fatalf("%d cached, want 1: the longer turn replaces the shorter", p.Cached())
	}
	s3, cached, _ := p.Start([]int32{9, 9}, nil)
	if cached != 0 {
		t.Fatalf("unrelated prompt: cached %d", cached)
	}
	s4, cached, _ := p.Start([]int32{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}, []*Seq{s3})
	if cached != 9 {
		t.Fatalf("continuation: cached %d, want 9", cached)
	}
	// a running sequence lends its whole blocks
	s4.Tokens = append(s4.Tokens[:0], 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11)
	s5, cached, _ := p.Start([]int32{1, 2, 3, 4, 5, 6, 7, 8, 0}, []*Seq{s3, s4})
	if cached != 8 || s5.shared != 2 {
		t.Fatalf("from a running sequence: cached %d, shared %d; want 8 and 2", cached, s5.shared)
	}
	for _, x := range []*Seq{s3, s4, s5} {
		p.Finish(x, false)
	}
	p.DropCache()
	p.copied(p.takeCopies())
	if p.FreeBlocks() != p.Blocks() {
		t.Fatalf("%d of %d blocks free at the end", p.FreeBlocks(), p.Blocks())
	}
}

// TestSplitPasses: items of 2, 5 and 1 tokens in passes of at most 4 rows
// run as [2, 2] and [3, 1]; an item with All gets its own rows' logits in
// each part, one without only on its last part, one without logits none;
// an error from a pass stops the split.
func TestSplitPasses(t *testing.T) {
	const vocab = 3
	all := make([]float32, 5*vocab)
	last := make([]float32, vocab)
	items := []Item{
		{Blocks: []int32{0}, Tokens: []int32{1, 2}, Pos: 0, Logits: last},
		{Blocks: []int32{1}, Tokens: []int32{3, 4, 5, 6, 7}, Pos: 10, Logits: all, All: true},
		{Blocks: []int32{2}, Tokens: []int32{8}, Pos: 4},
	}
	type part struct {
		tokens    []int32
		pos, nlog int
		all       bool
	}
	var got [][]part
	var rowsSeen []int
	scratch, err := SplitPasses(items, 4, vocab, nil, func(parts []Item, rows int) error {
		var ps []part
		for _, p := range parts {
			ps = append(ps, part{append([]int32(nil), p.Tokens...), p.Pos, len(p.Logits), p.All})
		}
		got = append(got, ps)
		rowsSeen = append(rowsSeen, rows)
		return nil
	})
	if err != nil || len(scratch) != 0 {
		t.Fatalf("err %v, scratch %d", err, len(scratch))
	}
	want := [][]part{
		{{[]int32{1, 2}, 0, vocab, false}, {[]int32{3, 4}, 10, 2 * vocab, true}},
		{{[]int32{5, 6, 7}, 12, 3 * vocab, true}, {[]int32{8}, 4, 0, false}},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) || fmt.Sprint(rowsSeen) != "[4 4]" {
		t.Fatalf("passes %v (rows %v), want %v", got, rowsSeen, want)
	}
	calls := 0
	boom := errors.New("boom")
	if _, err := SplitPasses(items, 4, vocab, nil, func([]Item, int) error { calls++; return boom }); !errors.Is(err, boom) || calls != 1 {
		t.Errorf("a failing pass: err %v after %d calls", err, calls)
	}
}
