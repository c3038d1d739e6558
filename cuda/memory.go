package cuda

import (
	"errors"
	"fmt"

	"helexa/node/engine"
	"helexa/node/ggml"
)

// Plan sizes everything a runner allocates on the device. It is computed
// from the weights' shapes alone (no device needed) so that the neuron can
// estimate and place a model before loading it.
type Plan struct {
	WeightBytes  int64 // device copies of the weights (norms and biases as float32)
	KVBytes      int64 // K and V caches: slots × layers × context × kv width × 2 × 4
	ScratchBytes int64 // activations for MaxBatch tokens, logits, dequantized tiles
	RopeBytes    int64 // cos/sin table for every position
	MaxBatch     int   // tokens per forward chunk
	DequantElems int64 // float32 elements of the dequantization tile
}

// Total is the device memory the runner takes.
func (p Plan) Total() int64 { return p.WeightBytes + p.KVBytes + p.ScratchBytes + p.RopeBytes }

// DefaultMaxBatch is the largest number of tokens one forward chunk
// carries (a longer prompt runs in several chunks).
const DefaultMaxBatch = 512

// dequantTileElems caps the float32 tile a quantized weight is expanded
// into for the prefill GEMM (128 MiB).
const dequantTileElems = 32 << 20

// DefaultReserve is memory left free on the device beyond a plan: the
// context, the JIT-compiled kernels and cuBLAS's workspace.
const DefaultReserve = 768 << 20

// linear lists a model's matrix weights (each uploaded in its own format).
func linear(w *engine.Weights) []*engine.Tensor {
	ts := []*engine.Tensor{w.TokEmbd}
	if w.Output != nil && w.Output != w.TokEmbd {
		ts = append(ts, w.Output)
	}
	for i := range w.Layers {
		l := &w.Layers[i]
		ts = append(ts, l.Wq, l.Wk, l.Wv, l.Wo, l.FFNGate, l.FFNUp, l.FFNDown)
	}
	return ts
}

// vectors lists a model's norm and bias vectors (uploaded as float32).
func vectors(w *engine.Weights) []*engine.Tensor {
	ts := []*engine.Tensor{w.OutNorm}
	for i := range w.Layers {
		l := &w.Layers[i]
		for _, t := range []*engine.Tensor{l.AttnNorm, l.FFNNorm, l.Bq, l.Bk, l.Bv, l.QNorm, l.KNorm} {
			if t != nil {
				ts = append(ts, t)
			}
		}
	}
	return ts
}

func elems(t *engine.Tensor) int64 {
	n := int64(1)
	for _, d := range t.Dims {
		n *= int64(d)
	}
	return n
}

// checkWeights verifies the model has every tensor the forward pass needs,
// in formats and shapes the kernels support.
// cudaArchs are the architectures the CUDA runner computes: llama-style
// blocks, with qwen2's biases and qwen3's Q/K norms. Mixtures of experts
// (qwen3moe) and gemma3's window, post-norms and GELU are CPU only.
var cudaArchs = map[string]bool{"llama": true, "qwen2": true, "qwen3": true}

func checkWeights(w *engine.Weights) error {
	h := w.H
	if !cudaArchs[h.Arch] {
		return fmt.Errorf("%w: architecture %q runs on the CPU only (CUDA computes %s)", engine.ErrUnsupported, h.Arch, "llama, qwen2, qwen3")
	}
	switch {
	case w.TokEmbd == nil || w.OutNorm == nil:
		return errors.New("model lacks token embeddings or output norm")
	case h.NLayer != len(w.Layers) || h.NLayer == 0:
		return fmt.Errorf("model has %d layers, hyperparameters say %d", len(w.Layers), h.NLayer)
	case h.NHead <= 0 || h.NHeadKV <= 0 || h.NHead%h.NHeadKV != 0:
		return fmt.Errorf("head counts %d/%d are not a grouped-query shape", h.NHead, h.NHeadKV)
	case h.HeadDim <= 0 || h.HeadDim > 256:
		return fmt.Errorf("head dimension %d is outside the attention kernel's 1..256", h.HeadDim)
	case h.RopeDims <= 0 || h.RopeDims > h.HeadDim || h.RopeDims%2 != 0:
		return fmt.Errorf("rope dimensions %d do not fit head dimension %d", h.RopeDims, h.HeadDim)
	case h.NVocab <= 0 || h.NEmbd <= 0 || h.NFF <= 0:
		return fmt.Errorf("model has vocab %d, width %d, FFN %d", h.NVocab, h.NEmbd, h.NFF)
	}
	for i := range w.Layers {
		l := &w.Layers[i]
		for _, t := range []*engine.Tensor{l.AttnNorm, l.Wq, l.Wk, l.Wv, l.Wo, l.FFNNorm, l.FFNGate, l.FFNUp, l.FFNDown} {
			if t == nil {
				return fmt.Errorf("layer %d lacks a tensor the llama-style block needs", i)
			}
		}
	}
	for _, t := range linear(w) {
		if t == nil {
			continue
		}
		if len(t.Dims) < 2 {
			return fmt.Errorf("%s: matrix with %d dims", t.Name, len(t.Dims))
		}
		rb, err := rowBytes(t.Type, t.Dims[0])
		if err != nil {
			return fmt.Errorf("%s: %w", t.Name, err)
		}
		if int64(rb)*int64(t.Rows()) != int64(len(t.Data)) {
			return fmt.Errorf("%s: %d bytes of data for %d rows of %d bytes", t.Name, len(t.Data), t.Rows(), rb)
		}
	}
	for _, t := range vectors(w) {
		switch t.Type {
		case ggml.F32, ggml.F16, ggml.BF16:
		default:
			return fmt.Errorf("%s: norm/bias of type %d (want F32, F16 or BF16)", t.Name, t.Type)
		}
	}
	return nil
}

// Estimate plans a runner for w with options o. It fails on a model the
// backend cannot run.
func Estimate(w *engine.Weights, o engine.RunnerOptions) (Plan, error) {
	if err := checkWeights(w); err != nil {
		return Plan{}, err
	}
	if o.ContextLength <= 0 || o.Slots <= 0 {
		return Plan{}, fmt.Errorf("context length %d and slots %d must be positive", o.ContextLength, o.Slots)
	}
	h := w.H
	var p Plan
	seen := map[*engine.Tensor]bool{}
	var maxElems int64
	for _, t := range linear(w) {
		if t == nil || seen[t] {
			continue
		}
		seen[t] = true
		p.WeightBytes += int64(len(t.Data))
		if e := elems(t); e > maxElems {
			maxElems = e
		}
	}
	if w.Output == nil {
		return Plan{}, errors.New("model lacks an output projection")
	}
	for _, t := range vectors(w) {
		p.WeightBytes += 4 * elems(t)
	}
	kvdim := int64(h.NHeadKV * h.HeadDim)
	p.KVBytes = int64(o.Slots) * int64(h.NLayer) * int64(o.ContextLength) * kvdim * 2 * 4
	p.MaxBatch = min(DefaultMaxBatch, o.ContextLength)
	b := int64(p.MaxBatch)
	qdim := int64(h.NHead * h.HeadDim)
	dim, ff := int64(h.NEmbd), int64(h.NFF)
	act := b * (2*dim + 2*qdim + 2*kvdim + 2*ff) // x, xb, q, att, k, v, gate, up
	logits := b * int64(h.NVocab)
	p.DequantElems = min(maxElems, dequantTileElems)
	// + each row's token id, position, slot and output row (rowArrays).
	p.ScratchBytes = 4*(act+logits+p.DequantElems) + 4*rowArrayInts*b
	p.RopeBytes = int64(o.ContextLength) * int64(h.RopeDims/2) * 2 * 4
	return p, nil
}

// Fits reports whether a plan fits free bytes of device memory with
// reserve bytes left over; the error wraps ErrInsufficientMemory and
// gives both numbers.
func Fits(p Plan, free, reserve int64) error {
	need := p.Total() + reserve
	if need > free {
		return fmt.Errorf("%w: model needs %d MiB (weights %d, KV %d, scratch %d) plus %d MiB reserve, device has %d MiB free",
			ErrInsufficientMemory, p.Total()>>20, p.WeightBytes>>20, p.KVBytes>>20, p.ScratchBytes>>20, reserve>>20, free>>20)
	}
	return nil
}

// Place picks the device for a load needing need bytes: among those where
// it fits with reserve bytes to spare, the one with the most free memory
// (the lowest index on ties). It is a pure function of its inputs.
func Place(need int64, devs []DeviceInfo, reserve int64) (int, error) {
	best, bestFree := -1, int64(-1)
	var most int64
	for _, d := range devs {
		free := d.MemFreeMB << 20
		most = max(most, free)
		if need+reserve <= free && free > bestFree {
			best, bestFree = d.Index, free
		}
	}
	if best < 0 {
		return -1, fmt.Errorf("%w: model needs %d MiB plus %d MiB reserve, the most any device has free is %d MiB",
			ErrInsufficientMemory, need>>20, reserve>>20, most>>20)
	}
	return best, nil
}
