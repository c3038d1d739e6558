package cuda

import (
	"bytes"
	"errors"
	"math"
	"strings"
	"testing"

	"helexa/node/engine"
	"helexa/node/ggml"
)

// batchModel is the small qwen3 model (per-head Q/K norms, NeoX RoPE) the
// batch tests run.
func batchModel(t *testing.T) *engine.Weights {
	t.Helper()
	w, err := engine.SyntheticWeights(engine.SyntheticSpec{Arch: "qwen3", Seed: 5, Type: ggml.Q8_0.String(),
		Vocab: 40, Dim: 64, Layers: 1, Heads: 4, KVHeads: 2, FFN: 96})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// emuOracle is the float64 reference runner of w, closed with the test.
func emuOracle(t *testing.T, w *engine.Weights, o engine.RunnerOptions) engine.Runner {
	t.Helper()
	ref, err := engine.NewOracle(w, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ref.Close() })
	return ref
}

// emuRunner loads w on a fresh emulated device (with the GEMM path);
// maxBatch > 0 caps the rows of a pass.
func emuRunner(t *testing.T, bin string, w *engine.Weights, o engine.RunnerOptions, maxBatch int) *Runner {
	t.Helper()
	plan, err := Estimate(w, o)
	if err != nil {
		t.Fatal(err)
	}
	if maxBatch > 0 {
		plan.MaxBatch = maxBatch
	}
	run, err := newRunner(&emuDevice{bin: bin, dir: t.TempDir(), allocsLeft: -1, withGEMM: true}, w, o, plan)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = run.Close() })
	return run
}

// withBuffers copies items, giving those in want a fresh logits buffer
// (every row's for those in all).
func withBuffers(items []engine.Item, nv int, want map[int]bool, all map[int]bool) []engine.Item {
	out := make([]engine.Item, len(items))
	for i, it := range items {
		it.Logits, it.All = nil, all[i]
		if want[i] {
			n := nv
			if all[i] {
				n *= len(it.Tokens)
			}
			it.Logits = make([]float32, n)
		}
		out[i] = it
	}
	return out
}

func item(slot int32, pos int, toks ...int32) engine.Item {
	return engine.Item{Blocks: []int32{slot}, Tokens: toks, Pos: pos}
}

// TestForwardBatchEmulated runs a batch of mixed items (decode rows of
// three sequences at different positions and slots, a prompt chunk, an
// item wanting every row's logits, an item wanting none) in one pass and
// compares every item's logits with the same item run alone through
// Forward (float32 rounding apart: 10 rows take the GEMM path, single
// decode rows the matrix-vector kernels) and with the float64 oracle. A
// decode step after it checks the keys and values the batch left,
// including those of the item without logits.
func TestForwardBatchEmulated(t *testing.T) {
	bin := needSlowEmulator(t)
	w := batchModel(t)
	nv := w.H.NVocab
	o := engine.RunnerOptions{ContextLength: 16, Slots: 6}
	batched := emuRunner(t, bin, w, o, 0)
	single := emuRunner(t, bin, w, o, 0)
	ref := emuOracle(t, w, o)

	// Histories: slots 0, 1 and 2 hold prompts of different lengths (one
	// batch without logits on the batched runner, one at a time on the
	// other).
	history := []engine.Item{item(0, 0, 3, 1, 4, 1, 5), item(1, 0, 9, 2, 6), item(2, 0, 5, 3, 5, 8, 9, 7, 9)}
	if err := batched.ForwardBatch(history); err != nil {
		t.Fatal(err)
	}
	if err := ref.ForwardBatch(history); err != nil {
		t.Fatal(err)
	}
	for _, it := range history {
		if err := single.Forward(int(it.Blocks[0]), it.Tokens, it.Pos, nil, false); err != nil {
			t.Fatal(err)
		}
	}

	run := func(name string, items []engine.Item, want, all map[int]bool) {
		t.Helper()
		got := withBuffers(items, nv, want, all)
		alone := withBuffers(items, nv, want, all)
		oracle := withBuffers(items, nv, want, all)
		if err := batched.ForwardBatch(got); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := ref.ForwardBatch(oracle); err != nil {
			t.Fatalf("%s: reference: %v", name, err)
		}
		for i, it := range alone {
			if err := single.Forward(int(it.Blocks[0]), it.Tokens, it.Pos, it.Logits, it.All); err != nil {
				t.Fatalf("%s: item %d alone: %v", name, i, err)
			}
		}
		for i := range got {
			if got[i].Logits == nil {
				continue
			}
			if res := compare("", got[i].Logits, f64(alone[i].Logits), 1e-5); !res.Pass {
				t.Errorf("%s item %d: batched vs alone: max error %.3g", name, i, res.MaxErr)
			} else {
				t.Logf("%s item %d: batched vs alone %.3g", name, i, res.MaxErr)
			}
			if res := compare("", got[i].Logits, f64(oracle[i].Logits), 1e-5); !res.Pass {
				t.Errorf("%s item %d: vs oracle: max error %.3g", name, i, res.MaxErr)
			}
		}
	}
	// 10 rows: decode rows of slots 0 and 1, a 4-token prompt in slot 3,
	// two rows of slot 2 with every row's logits, two rows of slot 4
	// without logits, in no order of slot.
	run("mixed", []engine.Item{item(1, 3, 11), item(3, 0, 2, 7, 1, 8), item(0, 5, 22), item(4, 0, 30, 31), item(2, 7, 13, 17)},
		map[int]bool{0: true, 1: true, 2: true, 3: false, 4: true}, map[int]bool{4: true})
	// A decode step of four sequences (matrix-vector kernels), slot 4's
	// reading the keys the item without logits wrote.
	run("decode", []engine.Item{item(4, 2, 5), item(0, 6, 6), item(3, 4, 12), item(2, 9, 39)},
		map[int]bool{0: true, 1: true, 2: true, 3: true}, nil)

	// The gpucheck row: a decode step of n sequences batched and one at a
	// time, below and from the GEMM threshold.
	newRunner := func(o engine.RunnerOptions) (engine.Runner, error) {
		plan, err := Estimate(w, o)
		if err != nil {
			return nil, err
		}
		return newRunner(&emuDevice{bin: bin, dir: t.TempDir(), allocsLeft: -1, withGEMM: true}, w, o, plan)
	}
	for _, n := range []int{3, 9} {
		if raceEnabled && n > 3 {
			continue
		}
		for _, res := range checkBatchedDecode("emu", w, newRunner, n, 4, 1e-5) {
			if res.Err != nil || !res.Pass {
				t.Errorf("%s: max error %.3g, %v", res.Op, res.MaxErr, res.Err)
			}
		}
	}
}

// TestForwardBatchSpansPasses: with passes of at most 4 rows, items of
// 2, 5 and 1 rows run as [2, 2] and [3, 1]: the second item's rows and
// logits (every row's) split over two passes, its later rows reading the
// keys its earlier ones wrote in the pass before.
func TestForwardBatchSpansPasses(t *testing.T) {
	bin := needSlowEmulator(t)
	w := batchModel(t)
	nv := w.H.NVocab
	o := engine.RunnerOptions{ContextLength: 8, Slots: 3}
	run := emuRunner(t, bin, w, o, 4)
	ref := emuOracle(t, w, o)
	items := []engine.Item{item(0, 0, 1, 2), item(1, 0, 3, 4, 5, 6, 7), item(2, 0, 8)}
	want, all := map[int]bool{0: true, 1: true, 2: true}, map[int]bool{1: true}
	got, oracle := withBuffers(items, nv, want, all), withBuffers(items, nv, want, all)
	if err := run.ForwardBatch(got); err != nil {
		t.Fatal(err)
	}
	if err := ref.ForwardBatch(oracle); err != nil {
		t.Fatal(err)
	}
	for i := range got {
		if res := compare("", got[i].Logits, f64(oracle[i].Logits), 1e-5); !res.Pass {
			t.Errorf("item %d: max error %.3g", i, res.MaxErr)
		}
	}
	// A decode step after it sees the whole of each sequence.
	step := withBuffers([]engine.Item{item(1, 5, 9), item(0, 2, 10)}, nv, want, nil)
	stepRef := withBuffers([]engine.Item{item(1, 5, 9), item(0, 2, 10)}, nv, want, nil)
	if err := run.ForwardBatch(step); err != nil {
		t.Fatal(err)
	}
	if err := ref.ForwardBatch(stepRef); err != nil {
		t.Fatal(err)
	}
	for i := range step {
		if res := compare("", step[i].Logits, f64(stepRef[i].Logits), 1e-5); !res.Pass {
			t.Errorf("decode item %d: max error %.3g", i, res.MaxErr)
		}
	}
}

// TestForwardBatchRefusesBadItems: a batch with one bad item fails with an
// error naming it, before anything is queued: device memory (the KV cache
// included) and the good items' logits are untouched. Validation needs no
// kernels, so this runs without the emulator.
func TestForwardBatchRefusesBadItems(t *testing.T) {
	w := batchModel(t)
	nv := w.H.NVocab
	o := engine.RunnerOptions{ContextLength: 8, Slots: 2}
	plan, err := Estimate(w, o)
	if err != nil {
		t.Fatal(err)
	}
	dev := &emuDevice{allocsLeft: -1}
	run, err := newRunner(dev, w, o, plan)
	if err != nil {
		t.Fatal(err)
	}
	defer run.Close()
	good := func() engine.Item {
		it := item(0, 0, 1, 2)
		it.Logits = make([]float32, nv)
		for i := range it.Logits {
			it.Logits[i] = float32(math.Pi)
		}
		return it
	}
	before := bytes.Clone(dev.mem)
	for _, c := range []struct {
		bad  engine.Item
		want string
	}{
		{engine.Item{Tokens: []int32{1}}, "batch item 1: no KV block"},
		{item(2, 0, 1), "batch item 1: slot 2 out of range"},
		{item(-1, 0, 1), "batch item 1: slot -1 out of range"},
		{item(1, 0), "batch item 1: no tokens"},
		{item(1, 7, 1, 2), "batch item 1: positions 7..9 exceed the context of 8"},
		{item(1, -1, 1), "batch item 1: positions -1..0"},
		{item(1, 0, 1, int32(nv)), "batch item 1: token 40 at index 1 is outside the vocabulary"},
		{engine.Item{Blocks: []int32{1}, Tokens: []int32{1, 2}, Logits: make([]float32, 2*nv-1), All: true}, "batch item 1: logits buffer holds 79 floats, need 80"},
		{engine.Item{Blocks: []int32{1}, Tokens: []int32{1}, Logits: make([]float32, nv-1)}, "need 40"},
		{item(0, 2, 5), "batch items 0 and 1 both write slot 0"},
	} {
		g := good()
		err := run.ForwardBatch([]engine.Item{g, c.bad})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("bad item %+v: err = %v, want %q", c.bad, err, c.want)
		}
		if !bytes.Equal(dev.mem, before) {
			t.Fatalf("bad item %+v: device memory changed", c.bad)
		}
		for _, x := range g.Logits {
			if x != float32(math.Pi) {
				t.Fatalf("bad item %+v: the good item's logits were written", c.bad)
			}
		}
	}
	// Forward is a batch of one: the same checks, wrapped the same way.
	if err := run.Forward(1, []int32{1}, 8, nil, false); err == nil || !strings.Contains(err.Error(), "exceed the context") {
		t.Errorf("Forward past the context: %v", err)
	}
	if err := run.Close(); err != nil {
		t.Fatal(err)
	}
	if err := run.ForwardBatch([]engine.Item{good()}); !errors.Is(err, ErrClosedRunner) {
		t.Errorf("after Close: %v, want ErrClosedRunner", err)
	}
}

// TestDecodeGraphsEmulated: with graphs on, a pass below the GEMM
// threshold is captured once per shape (rows, logit rows) and replayed
// for later passes of that shape on other slots and positions: the
// emulated graph replays the recorded launches with their arguments
// unchanged, so the logits match the oracle only if every kernel reads
// the rows' ids, positions and slots from device memory.
func TestDecodeGraphsEmulated(t *testing.T) {
	bin := needSlowEmulator(t)
	w := batchModel(t)
	nv := w.H.NVocab
	o := engine.RunnerOptions{ContextLength: 8, Slots: 3}
	plan, err := Estimate(w, o)
	if err != nil {
		t.Fatal(err)
	}
	dev := &emuDevice{bin: bin, dir: t.TempDir(), allocsLeft: -1, withGraphs: true}
	run, err := newRunner(dev, w, o, plan)
	if err != nil {
		t.Fatal(err)
	}
	defer run.Close()
	if err := run.SetGraphs(true); err != nil {
		t.Fatal(err)
	}
	ref := emuOracle(t, w, o)
	all := map[int]bool{0: true, 1: true}
	for i, items := range [][]engine.Item{
		{item(0, 0, 1, 2, 3), item(1, 0, 4, 5)},  // 5 rows, 2 logit rows: captured
		{item(2, 0, 6, 7), item(0, 3, 8, 9, 10)}, // the same shape elsewhere: replayed
		{item(1, 2, 11)},                         // one row: captured
		{item(2, 2, 12)},                         // replayed on another slot
		{item(0, 6, 13)},                         // and position
	} {
		got, want := withBuffers(items, nv, all, nil), withBuffers(items, nv, all, nil)
		if err := run.ForwardBatch(got); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if err := ref.ForwardBatch(want); err != nil {
			t.Fatal(err)
		}
		for j := range got {
			if res := compare("", got[j].Logits, f64(want[j].Logits), 1e-5); !res.Pass {
				t.Errorf("step %d item %d: max error %.3g", i, j, res.MaxErr)
			}
		}
	}
	if len(dev.recorded) != 2 || dev.replays != 5 {
		t.Errorf("%d graphs captured, %d launched; want 2 and 5", len(dev.recorded), dev.replays)
	}
}
