package cuda

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"helexa/node/engine"
)

// BenchResult is one model's speed on the device.
type BenchResult struct {
	WeightBytes   int64   // weight bytes a decode step reads (every matrix but untied embeddings)
	PrefillTokens int     // prompt length
	PrefillTokS   float64 // prompt tokens per second
	DecodeTokens  int
	DecodeTokS    float64 // generated tokens per second (batch 1)
	// BandwidthFrac is decode's share of the memory-bandwidth limit:
	// WeightBytes × DecodeTokS / bandwidth.
	BandwidthFrac float64
	// The same with each step replayed from a CUDA graph (0 when graphs
	// are unavailable).
	DecodeGraphTokS, BandwidthFracGraph float64
	GraphErr                            error
}

// Bench loads w, runs a prompt of prefill random tokens in one Forward
// (after one warm-up), then decode tokens one at a time, each returning
// its logits to the host. bandwidthGBs (DeviceInfo.BandwidthGBs) turns the
// decode speed into a fraction of the bandwidth limit.
func (b *Backend) Bench(w *engine.Weights, prefill, decode int, bandwidthGBs float64) (BenchResult, error) {
	res := BenchResult{PrefillTokens: prefill, DecodeTokens: decode}
	run, err := b.NewRunner(w, engine.RunnerOptions{ContextLength: prefill + decode + 1, Slots: 1})
	if err != nil {
		return res, err
	}
	defer run.Close()
	for _, t := range linear(w) {
		res.WeightBytes += int64(len(t.Data))
	}
	if w.Output != w.TokEmbd {
		// Untied embeddings: decode gathers one row, not the matrix.
		res.WeightBytes -= int64(len(w.TokEmbd.Data))
	}
	r := rand.New(rand.NewPCG(1, 2))
	toks := make([]int32, prefill+decode)
	for i := range toks {
		toks[i] = int32(r.IntN(w.H.NVocab))
	}
	logits := make([]float32, w.H.NVocab)
	// Warm-up: JIT, cuBLAS heuristics, first-touch.
	if err := engine.ForwardSlot(run, 0, toks[:prefill], 0, logits, false); err != nil {
		return res, fmt.Errorf("warm-up prefill: %w", err)
	}
	start := time.Now()
	if err := engine.ForwardSlot(run, 0, toks[:prefill], 0, logits, false); err != nil {
		return res, fmt.Errorf("prefill: %w", err)
	}
	res.PrefillTokS = float64(prefill) / time.Since(start).Seconds()
	start = time.Now()
	for i := 0; i < decode; i++ {
		if err := engine.ForwardSlot(run, 0, toks[prefill+i:prefill+i+1], prefill+i, logits, false); err != nil {
			return res, fmt.Errorf("decode step %d: %w", i, err)
		}
	}
	res.DecodeTokS = float64(decode) / time.Since(start).Seconds()
	if bandwidthGBs > 0 {
		res.BandwidthFrac = float64(res.WeightBytes) * res.DecodeTokS / (bandwidthGBs * 1e9)
	}
	cr, _ := run.(*Runner)
	if err := cr.SetGraphs(true); err != nil {
		res.GraphErr = err
		return res, nil
	}
	// One step to capture, then the same decode replayed.
	if err := engine.ForwardSlot(run, 0, toks[prefill:prefill+1], prefill, logits, false); err != nil {
		res.GraphErr = err
		return res, nil
	}
	start = time.Now()
	for i := 0; i < decode; i++ {
		if err := engine.ForwardSlot(run, 0, toks[prefill+i:prefill+i+1], prefill+i, logits, false); err != nil {
			res.GraphErr = fmt.Errorf("graph decode step %d: %w", i, err)
			return res, nil
		}
	}
	res.DecodeGraphTokS = float64(decode) / time.Since(start).Seconds()
	if bandwidthGBs > 0 {
		res.BandwidthFracGraph = float64(res.WeightBytes) * res.DecodeGraphTokS / (bandwidthGBs * 1e9)
	}
	return res, nil
}

// KernelTime measures one launch of the quantized matrix-vector kernel of
// w's first layer's FFN gate with device events, in microseconds averaged
// over n launches.
func (b *Backend) KernelTime(run engine.Runner, n int) (float64, error) {
	r, ok := run.(*Runner)
	if !ok {
		return 0, fmt.Errorf("not a CUDA runner")
	}
	var us float64
	err := b.exec(func() error {
		start, err := b.d.newEvent()
		if err != nil {
			return err
		}
		defer b.d.cuEventDestroy(start)
		end, err := b.d.newEvent()
		if err != nil {
			return err
		}
		defer b.d.cuEventDestroy(end)
		g := r.layers[0].gate
		if err := b.d.check("cuEventRecord", b.d.cuEventRecord(start, b.stream)); err != nil {
			return err
		}
		for i := 0; i < n; i++ {
			if err := r.matmul(g, r.xb, r.gate, 1, false); err != nil {
				return err
			}
		}
		if err := b.d.check("cuEventRecord", b.d.cuEventRecord(end, b.stream)); err != nil {
			return err
		}
		ms, err := b.d.elapsed(start, end)
		us = float64(ms) * 1e3 / float64(n)
		return err
	})
	return us, err
}

// Llama3_8B is Llama 3 8B's shape, for speed measurements with
// RandomWeights.
var Llama3_8B = engine.SyntheticSpec{Vocab: 128256, Dim: 4096, Layers: 32, Heads: 32, KVHeads: 8, FFN: 14336, RopeTheta: 500000, Seed: 1}

// BenchMixes are the weight mixes RandomWeights makes.
var BenchMixes = []string{"Q4_0", "Q8_0", "Q4_K", "Q6_K", "Q4_K_M"}

// RandomWeights is the model s with its matrices in mix (one of
// BenchMixes), made by engine.SyntheticWeights from random blocks with
// small finite scales: weights for speed measurements, made in seconds even
// at 8B parameters (quantizing real values would take minutes).
func RandomWeights(s engine.SyntheticSpec, mix string) (*engine.Weights, error) {
	if !slices.Contains(BenchMixes, mix) {
		return nil, fmt.Errorf("random weights: unknown mix %q (%s)", mix, strings.Join(BenchMixes, ", "))
	}
	s.Type, s.RandomBlocks = mix, true
	return engine.SyntheticWeights(s)
}
