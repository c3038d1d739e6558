package cuda

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"time"

	"helexa/node/engine"
	"helexa/node/ggml"
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

// Shape is a llama model's size, for RandomWeights.
type Shape struct {
	Dim, Layers, Heads, KVHeads, FFN, Vocab int
}

// Llama3_8B is Llama 3 8B's shape.
var Llama3_8B = Shape{Dim: 4096, Layers: 32, Heads: 32, KVHeads: 8, FFN: 14336, Vocab: 128256}

// RandomWeights makes a model of shape s whose quantized blocks are random
// bytes with small finite scales: weights for speed measurements, made in
// seconds even at 8B parameters (quantizing real values would take
// minutes). mix is "Q4_0", "Q8_0", "Q4_K", "Q6_K", or "Q4_K_M" (Q4_K, with
// Q6_K for the output and for attn_v and ffn_down of every other layer).
func RandomWeights(seed uint64, s Shape, mix string) (*engine.Weights, error) {
	base, hi := ggml.Type(0), ggml.Type(0)
	switch mix {
	case "Q4_0":
		base, hi = ggml.Q4_0, ggml.Q4_0
	case "Q8_0":
		base, hi = ggml.Q8_0, ggml.Q8_0
	case "Q4_K":
		base, hi = ggml.Q4_K, ggml.Q4_K
	case "Q6_K":
		base, hi = ggml.Q6_K, ggml.Q6_K
	case "Q4_K_M":
		base, hi = ggml.Q4_K, ggml.Q6_K
	default:
		return nil, fmt.Errorf("random weights: unknown mix %q", mix)
	}
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	hd := s.Dim / s.Heads
	mat := func(name string, t ggml.Type, cols, rows int) (*engine.Tensor, error) {
		rb, err := rowBytes(t, cols)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		data := make([]byte, rb*rows)
		fillRandomBlocks(r, t, data)
		return &engine.Tensor{Name: name, Type: t, Dims: []int{cols, rows}, Data: data}, nil
	}
	ones := func(name string, n int) *engine.Tensor {
		v := make([]float32, n)
		for i := range v {
			v[i] = 1
		}
		return &engine.Tensor{Name: name, Type: ggml.F32, Dims: []int{n}, Data: append([]byte{}, f32Bytes(v)...)}
	}
	w := &engine.Weights{H: engine.Hparams{Arch: "llama", NVocab: s.Vocab, NEmbd: s.Dim, NLayer: s.Layers, NHead: s.Heads,
		NHeadKV: s.KVHeads, HeadDim: hd, NFF: s.FFN, NormEps: 1e-5, RopeTheta: 500000, RopeDims: hd}}
	var err error
	if w.TokEmbd, err = mat("token_embd.weight", base, s.Dim, s.Vocab); err != nil {
		return nil, err
	}
	if w.Output, err = mat("output.weight", hi, s.Dim, s.Vocab); err != nil {
		return nil, err
	}
	w.OutNorm = ones("output_norm.weight", s.Dim)
	for i := 0; i < s.Layers; i++ {
		p := fmt.Sprintf("blk.%d.", i)
		vt := base
		if i%2 == 0 {
			vt = hi
		}
		var l engine.Layer
		for _, m := range []struct {
			dst        **engine.Tensor
			name       string
			t          ggml.Type
			cols, rows int
		}{{&l.Wq, "attn_q", base, s.Dim, s.Heads * hd}, {&l.Wk, "attn_k", base, s.Dim, s.KVHeads * hd},
			{&l.Wv, "attn_v", vt, s.Dim, s.KVHeads * hd}, {&l.Wo, "attn_output", base, s.Heads * hd, s.Dim},
			{&l.FFNGate, "ffn_gate", base, s.Dim, s.FFN}, {&l.FFNUp, "ffn_up", base, s.Dim, s.FFN},
			{&l.FFNDown, "ffn_down", vt, s.FFN, s.Dim}} {
			if *m.dst, err = mat(p+m.name+".weight", m.t, m.cols, m.rows); err != nil {
				return nil, err
			}
		}
		l.AttnNorm, l.FFNNorm = ones(p+"attn_norm.weight", s.Dim), ones(p+"ffn_norm.weight", s.Dim)
		w.Layers = append(w.Layers, l)
	}
	return w, nil
}

// fillRandomBlocks fills data with random blocks of type t whose f16
// scales are small and finite (so no NaN or Inf reaches the logits).
func fillRandomBlocks(r *rand.Rand, t ggml.Type, data []byte) {
	for i := 0; i+8 <= len(data); i += 8 {
		binary.LittleEndian.PutUint64(data[i:], r.Uint64())
	}
	bs := blockShape[t]
	var scales []int // byte offsets of f16 scale fields in a block
	switch t {
	case ggml.Q4_0, ggml.Q8_0:
		scales = []int{0}
	case ggml.Q4_K, ggml.Q5_K:
		scales = []int{0, 2}
	case ggml.Q6_K:
		scales = []int{208}
	}
	const small = 0x1400 // f16 for about 0.001
	for b := 0; b+bs[1] <= len(data); b += bs[1] {
		for _, off := range scales {
			binary.LittleEndian.PutUint16(data[b+off:], small+uint16(data[b+off]&0x3f))
		}
	}
}
