package cuda

import (
	"fmt"
	"math/rand"

	"helexa/node/engine"
	"helexa/node/ggml"
)

// CheckRunner compares the CUDA runner with the float64 oracle
// (engine.Oracle) and the CPU engine on synthetic models of each weight type: decode one token at a time, a prefill
// through the GEMM path with every position's logits, a prompt longer than
// one chunk, and a second slot. One row per model and operation.
func (b *Backend) CheckRunner(seed int64) []CheckResult {
	var out []CheckResult
	types := []ggml.Type{ggml.F32, ggml.F16, ggml.BF16, ggml.Q8_0, ggml.Q4_0, ggml.Q4_1, ggml.Q5_0, ggml.Q5_1, ggml.Q4_K, ggml.Q5_K, ggml.Q6_K}
	for i, t := range types {
		// llama, then qwen3 (per-head Q/K norms, NeoX RoPE), then qwen2
		// (QKV biases), in turn.
		arch := []string{"llama", "qwen3", "qwen2"}[i%3]
		name := fmt.Sprintf("runner_%s", quantKernelSuffix[t])
		if arch != "llama" {
			name += "_" + arch
		}
		w, err := engine.SyntheticWeights(engine.SyntheticSpec{Arch: arch, Seed: uint64(seed) + uint64(i), Type: t.String(),
			Vocab: 300, Dim: 256, Layers: 2, Heads: 4, KVHeads: 2, FFN: 512})
		if err != nil {
			out = append(out, CheckResult{Op: name, Err: err})
			continue
		}
		out = append(out, b.checkRunnerOn(name, w)...)
		newRunner := func(o engine.RunnerOptions) (engine.Runner, error) { return b.NewRunner(w, o) }
		tol := 1e-3
		if !blockIsFloat(t) {
			tol = 1e-2 // TF32 GEMMs from 8 rows
		}
		for _, n := range []int{4, 16} {
			out = append(out, checkBatchedDecode(name, w, newRunner, n, 24, tol)...)
		}
	}
	return out
}

// checkBatchedDecode compares a decode step of n sequences run as one
// batch (one forward pass: matrix-vector kernels below 8 rows, the GEMM
// path from 8) with the same step one sequence at a time, and with the
// float64 oracle. The sequences' prompts, of different lengths up to
// maxPrompt, are prefilled in one batch too; each sequence decodes in
// its own slot at its own position. Two rows: "batched_decode_N vs one
// at a time" and "batched_decode_N" (against the oracle).
func checkBatchedDecode(name string, w *engine.Weights, newRunner func(engine.RunnerOptions) (engine.Runner, error), n, maxPrompt int, tol float64) []CheckResult {
	op := fmt.Sprintf("%s batched_decode_%d", name, n)
	fail := func(err error) []CheckResult { return []CheckResult{{Op: op, Err: err}} }
	// The context also bounds a pass (Plan.MaxBatch): the step must be one.
	o := engine.RunnerOptions{ContextLength: max(maxPrompt+2, n), Slots: n}
	ref, err := engine.NewOracle(w, o)
	if err != nil {
		return fail(fmt.Errorf("reference: %w", err))
	}
	defer ref.Close()
	run, err := newRunner(o)
	if err != nil {
		return fail(fmt.Errorf("load: %w", err))
	}
	defer run.Close()
	nv := w.H.NVocab
	r := rand.New(rand.NewSource(int64(n)))
	prefill := make([]engine.Item, n)
	step := make([]engine.Item, n)
	for i := range prefill {
		toks := make([]int32, 1+r.Intn(maxPrompt))
		for j := range toks {
			toks[j] = int32(r.Intn(nv))
		}
		blk := []int32{int32(i)}
		prefill[i] = engine.Item{Blocks: blk, Tokens: toks}
		step[i] = engine.Item{Blocks: blk, Tokens: []int32{int32(r.Intn(nv))}, Pos: len(toks)}
	}
	batched, single, want := make([]float32, n*nv), make([]float32, n*nv), make([]float32, n*nv)
	withLogits := func(dst []float32) []engine.Item {
		items := append([]engine.Item(nil), step...)
		for i := range items {
			items[i].Logits = dst[i*nv : (i+1)*nv]
		}
		return items
	}
	for _, x := range []struct {
		rn   engine.Runner
		what string
	}{{run, ""}, {ref, "reference: "}} {
		if err := x.rn.ForwardBatch(prefill); err != nil {
			return fail(fmt.Errorf("%sprefill: %w", x.what, err))
		}
	}
	if err := run.ForwardBatch(withLogits(batched)); err != nil {
		return fail(err)
	}
	if err := ref.ForwardBatch(withLogits(want)); err != nil {
		return fail(fmt.Errorf("reference: %w", err))
	}
	// One at a time: each rewrites its own position's keys and values
	// before reading them, so the batched step leaves nothing behind that
	// changes these.
	for i, it := range withLogits(single) {
		if err := run.ForwardBatch([]engine.Item{it}); err != nil {
			return fail(fmt.Errorf("sequence %d alone: %w", i, err))
		}
	}
	res := compare("", batched, f64(single), tol)
	res.Op = op + " vs one at a time"
	res2 := compare("", batched, f64(want), tol)
	res2.Op = op
	return []CheckResult{res, res2}
}

func (b *Backend) checkRunnerOn(name string, w *engine.Weights) []CheckResult {
	// A context of 600 gives MaxBatch 512, so a 530-token prompt takes two
	// chunks.
	o := engine.RunnerOptions{ContextLength: 600, Slots: 2}
	fail := func(op string, err error) []CheckResult { return []CheckResult{{Op: name + " " + op, Err: err}} }
	ref, err := engine.NewOracle(w, o)
	if err != nil {
		return fail("reference", err)
	}
	defer ref.Close()
	cpu, err := engine.CPU{}.NewRunner(w, o)
	if err != nil {
		return fail("cpu engine", err)
	}
	defer cpu.Close()
	run, err := b.NewRunner(w, o)
	if err != nil {
		return fail("load", err)
	}
	defer run.Close()
	nv := w.H.NVocab
	r := rand.New(rand.NewSource(int64(len(name))))
	toks := make([]int32, 540)
	for i := range toks {
		toks[i] = int32(r.Intn(nv))
	}
	// Relative to the largest logit. Against the float64 reference: float32
	// sums, and TF32 GEMMs for quantized weights. Against the CPU engine,
	// which also rounds its KV cache to F16 and quantizes activations to 8
	// bits before quantized matmuls, as llama.cpp does. A wrong kernel is
	// off by order 1.
	tolRef, tolCPU := 1e-3, 2e-3
	if !blockIsFloat(w.Layers[0].Wq.Type) {
		tolRef, tolCPU = 1e-2, 5e-2
	}
	var out []CheckResult
	compareRun := func(op string, f func(rn engine.Runner, logits []float32) error, n int) {
		got, want, cpuOut := make([]float32, n*nv), make([]float32, n*nv), make([]float32, n*nv)
		for _, x := range []struct {
			rn   engine.Runner
			dst  []float32
			what string
		}{{run, got, ""}, {ref, want, "reference: "}, {cpu, cpuOut, "cpu engine: "}} {
			if err := f(x.rn, x.dst); err != nil {
				out = append(out, CheckResult{Op: name + " " + op, Err: fmt.Errorf("%s%w", x.what, err)})
				return
			}
		}
		res := compare("", got, f64(want), tolRef)
		res.Op = name + " " + op
		out = append(out, res)
		res = compare("", got, f64(cpuOut), tolCPU)
		res.Op = name + " " + op + " vs cpu engine"
		out = append(out, res)
	}
	// Prefill of 20 tokens (GEMM path), every position's logits.
	compareRun("prefill_all", func(rn engine.Runner, l []float32) error { return engine.ForwardSlot(rn, 0, toks[:20], 0, l, true) }, 20)
	// Decode 4 tokens after it, one at a time (matrix-vector path).
	compareRun("decode", func(rn engine.Runner, l []float32) error {
		for i := 0; i < 4; i++ {
			if err := engine.ForwardSlot(rn, 0, toks[20+i:21+i], 20+i, l[i*nv:(i+1)*nv], false); err != nil {
				return err
			}
		}
		return nil
	}, 4)
	// A short batch below the GEMM threshold on slot 1 (independent cache).
	compareRun("slot1_small_batch", func(rn engine.Runner, l []float32) error { return engine.ForwardSlot(rn, 1, toks[100:105], 0, l, true) }, 5)
	// Decode replayed from a captured graph (captured at the first step,
	// replayed at the next two).
	compareRun("decode_graph", func(rn engine.Runner, l []float32) error {
		if cr, ok := rn.(*Runner); ok {
			if err := cr.SetGraphs(true); err != nil {
				return err
			}
			defer cr.SetGraphs(false)
		}
		for i := 0; i < 3; i++ {
			if err := engine.ForwardSlot(rn, 0, toks[24+i:25+i], 24+i, l[i*nv:(i+1)*nv], false); err != nil {
				return err
			}
		}
		return nil
	}, 3)
	// Two chunks; only the last logits.
	compareRun("prefill_chunked", func(rn engine.Runner, l []float32) error { return engine.ForwardSlot(rn, 1, toks[:530], 0, l, false) }, 1)
	return out
}

func blockIsFloat(t ggml.Type) bool { return blockShape[t][0] == 1 }
