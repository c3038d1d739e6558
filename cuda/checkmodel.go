package cuda

import (
	"errors"
	"fmt"

	"helexa/node/engine"
	"helexa/node/ggml"
	"helexa/node/gguf"
)

// LoadGGUF maps a llama-family GGUF file (llama, mistral, qwen2, qwen3)
// onto engine.Weights, for gpucheck and the backend's tests; the neuron
// loads models through the engine. The tensors stay memory-mapped: call
// close when done with the weights.
func LoadGGUF(path string) (w *engine.Weights, close func() error, err error) {
	f, err := gguf.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer func() {
		if err != nil {
			f.Close()
		}
	}()
	arch := f.Arch()
	u := func(key string) int {
		v, _ := f.Uint(arch + "." + key)
		return int(v)
	}
	fl := func(key string, def float64) float32 {
		if v, ok := f.Float(arch + "." + key); ok {
			return float32(v)
		}
		return float32(def)
	}
	h := engine.Hparams{
		Arch: arch, NEmbd: u("embedding_length"), NLayer: u("block_count"), NHead: u("attention.head_count"),
		NHeadKV: u("attention.head_count_kv"), NFF: u("feed_forward_length"), NCtxTrain: u("context_length"),
		NormEps: fl("attention.layer_norm_rms_epsilon", 1e-5), RopeTheta: fl("rope.freq_base", 10000),
	}
	if h.NHeadKV == 0 {
		h.NHeadKV = h.NHead
	}
	if h.NHead == 0 || h.NEmbd == 0 || h.NLayer == 0 {
		return nil, nil, fmt.Errorf("%s: missing %s hyperparameters", path, arch)
	}
	h.HeadDim = h.NEmbd / h.NHead
	if k := u("attention.key_length"); k != 0 {
		h.HeadDim = k
	}
	h.RopeDims = h.HeadDim
	if d := u("rope.dimension_count"); d != 0 {
		h.RopeDims = d
	}
	switch arch {
	case "llama", "mistral":
		h.RopeStyle = engine.RopeNorm
	case "qwen2", "qwen3":
		h.RopeStyle = engine.RopeNeoX
	default:
		return nil, nil, fmt.Errorf("%s: architecture %q is not llama-family", path, arch)
	}
	var missing []string
	tensor := func(name string, required bool) *engine.Tensor {
		ti, data, ok := f.Tensor(name)
		if !ok {
			if required {
				missing = append(missing, name)
			}
			return nil
		}
		dims := make([]int, len(ti.Dims))
		for i, d := range ti.Dims {
			dims[i] = int(d)
		}
		return &engine.Tensor{Name: name, Type: ti.Type, Dims: dims, Data: data}
	}
	w = &engine.Weights{H: h}
	w.TokEmbd = tensor("token_embd.weight", true)
	w.OutNorm = tensor("output_norm.weight", true)
	w.Output = tensor("output.weight", false)
	if w.Output == nil {
		w.Output = w.TokEmbd
	}
	if rf := tensor("rope_freqs.weight", false); rf != nil {
		v, err := toF32(rf)
		if err != nil {
			return nil, nil, err
		}
		w.H.RopeFreqs = v
	}
	for i := 0; i < h.NLayer; i++ {
		p := fmt.Sprintf("blk.%d.", i)
		w.Layers = append(w.Layers, engine.Layer{
			AttnNorm: tensor(p+"attn_norm.weight", true),
			Wq:       tensor(p+"attn_q.weight", true),
			Wk:       tensor(p+"attn_k.weight", true),
			Wv:       tensor(p+"attn_v.weight", true),
			Wo:       tensor(p+"attn_output.weight", true),
			Bq:       tensor(p+"attn_q.bias", false),
			Bk:       tensor(p+"attn_k.bias", false),
			Bv:       tensor(p+"attn_v.bias", false),
			QNorm:    tensor(p+"attn_q_norm.weight", false),
			KNorm:    tensor(p+"attn_k_norm.weight", false),
			FFNNorm:  tensor(p+"ffn_norm.weight", true),
			FFNGate:  tensor(p+"ffn_gate.weight", true),
			FFNUp:    tensor(p+"ffn_up.weight", true),
			FFNDown:  tensor(p+"ffn_down.weight", true),
		})
	}
	if len(missing) > 0 {
		return nil, nil, fmt.Errorf("%s: missing tensors %v", path, missing)
	}
	if w.TokEmbd == nil || len(w.TokEmbd.Dims) < 2 {
		return nil, nil, errors.New("token embeddings are not a matrix")
	}
	w.H.NVocab = w.TokEmbd.Dims[1]
	return w, f.Close, nil
}

// WeightClass names the tolerance class of a model's weights: "f32" (F32
// and BF16), "f16", or "quant".
func WeightClass(w *engine.Weights) string {
	switch w.Layers[0].Wq.Type {
	case ggml.F32, ggml.BF16:
		return "f32"
	case ggml.F16:
		return "f16"
	}
	return "quant"
}
