package engine

import (
	"fmt"
	"os"

	"helexa/node/ggml"
	"helexa/node/gguf"
)

// archTraits are the per-architecture differences the loaders know about.
type archTraits struct {
	rope RopeStyle
}

var archs = map[string]archTraits{
	"llama": {rope: RopeNorm},
	"qwen2": {rope: RopeNeoX},
	"qwen3": {rope: RopeNeoX},
}

// weightsFromGGUF describes a GGUF file's model. The tensors' Data alias
// the file's mapping.
func weightsFromGGUF(path string, f *gguf.File) (*Weights, Info, error) {
	arch := f.Arch()
	if arch == "bert" {
		return bertFromGGUF(path, f) // an encoder: its own tensors and runner (arch_bert.go)
	}
	traits, ok := archs[arch]
	if !ok {
		return nil, Info{}, fmt.Errorf("%s: %w: architecture %q (supported: llama, qwen2, qwen3)", path, ErrUnsupported, arch)
	}
	u := func(key string, def int) int {
		if v, ok := f.Uint(arch + "." + key); ok {
			return int(v)
		}
		return def
	}
	fl := func(key string, def float32) float32 {
		if v, ok := f.Float(arch + "." + key); ok {
			return float32(v)
		}
		return def
	}
	h := Hparams{
		Arch:      arch,
		NEmbd:     u("embedding_length", 0),
		NLayer:    u("block_count", 0),
		NHead:     u("attention.head_count", 0),
		NFF:       u("feed_forward_length", 0),
		NCtxTrain: u("context_length", 0),
		NormEps:   fl("attention.layer_norm_rms_epsilon", 1e-5),
		RopeTheta: fl("rope.freq_base", 10000),
		RopeStyle: traits.rope,
	}
	h.NHeadKV = u("attention.head_count_kv", h.NHead)
	if h.NHead > 0 {
		h.HeadDim = u("attention.key_length", h.NEmbd/h.NHead)
	}
	h.RopeDims = u("rope.dimension_count", h.HeadDim)
	switch typ, _ := f.String(arch + ".rope.scaling.type"); typ {
	case "linear":
		if fac := fl("rope.scaling.factor", 0); fac > 0 {
			h.RopeFreqScale = 1 / fac
		}
	case "llama3":
		// Usually carried as the rope_freqs tensor (read below, which
		// wins); these keys are the fallback.
		h.RopeScaling.Factor = fl("rope.scaling.factor", 8)
		h.RopeScaling.LowFreqFactor = fl("rope.scaling.low_freq_factor", 1)
		h.RopeScaling.HighFreqFactor = fl("rope.scaling.high_freq_factor", 4)
		h.RopeScaling.OrigCtx = u("rope.scaling.original_context_length", 8192)
		if h.RopeDims > 0 && h.RopeDims%2 == 0 && h.RopeScaling.HighFreqFactor > h.RopeScaling.LowFreqFactor {
			h.RopeFreqs = llama3RopeFreqs(h)
		}
	}

	get := func(name string) *Tensor {
		ti, data, ok := f.Tensor(name)
		if !ok {
			return nil
		}
		dims := make([]int, len(ti.Dims))
		for i, d := range ti.Dims {
			dims[i] = int(d)
		}
		return &Tensor{Name: name, Type: ti.Type, Dims: dims, Data: data, Mapped: true}
	}
	w := &Weights{
		TokEmbd: get("token_embd.weight"),
		OutNorm: get("output_norm.weight"),
		Output:  get("output.weight"),
	}
	if w.TokEmbd != nil && len(w.TokEmbd.Dims) == 2 {
		h.NVocab = w.TokEmbd.Dims[1]
	}
	if rf := get("rope_freqs.weight"); rf != nil {
		freqs := make([]float32, rf.Rows()*rf.Dims[0])
		if err := ggml.Dequantize(rf.Type, rf.Data, freqs); err != nil {
			return nil, Info{}, fmt.Errorf("%s: rope_freqs.weight: %w", path, err)
		}
		h.RopeFreqs = freqs
	}
	if w.Output == nil {
		w.Output = w.TokEmbd
	}
	if h.NLayer < 0 || h.NLayer > 1<<12 {
		return nil, Info{}, fmt.Errorf("%s: %w: block_count %d", path, ErrUnsupported, h.NLayer)
	}
	w.Layers = make([]Layer, h.NLayer)
	for i := range w.Layers {
		p := fmt.Sprintf("blk.%d.", i)
		w.Layers[i] = Layer{
			AttnNorm: get(p + "attn_norm.weight"),
			Wq:       get(p + "attn_q.weight"),
			Wk:       get(p + "attn_k.weight"),
			Wv:       get(p + "attn_v.weight"),
			Wo:       get(p + "attn_output.weight"),
			Bq:       get(p + "attn_q.bias"),
			Bk:       get(p + "attn_k.bias"),
			Bv:       get(p + "attn_v.bias"),
			QNorm:    get(p + "attn_q_norm.weight"),
			KNorm:    get(p + "attn_k_norm.weight"),
			FFNNorm:  get(p + "ffn_norm.weight"),
			FFNGate:  get(p + "ffn_gate.weight"),
			FFNUp:    get(p + "ffn_up.weight"),
			FFNDown:  get(p + "ffn_down.weight"),
		}
	}
	w.H = h
	if err := w.validate(); err != nil {
		return nil, Info{}, fmt.Errorf("%s: %w", path, err)
	}

	info := Info{Path: path, Format: "gguf", Arch: arch}
	info.fill(w)
	if ft, ok := f.Uint("general.file_type"); ok && fileTypeNames[ft] != "" {
		info.Quant = fileTypeNames[ft]
	} else {
		info.Quant = dominantType(w.all())
	}
	if st, err := os.Stat(path); err == nil {
		info.SizeBytes = st.Size()
	}
	info.ChatTemplate, _ = f.String("tokenizer.chat_template")
	return w, info, nil
}

// fill sets Info's shape fields from validated weights.
func (i *Info) fill(w *Weights) {
	h := w.H
	i.ContextLength = h.NCtxTrain
	i.NVocab, i.NLayer, i.NEmbd = h.NVocab, h.NLayer, h.NEmbd
	i.NHead, i.NHeadKV, i.HeadDim, i.NFF = h.NHead, h.NHeadKV, h.HeadDim, h.NFF
	seen := map[*Tensor]bool{}
	for _, t := range w.all() {
		if t == nil || seen[t] {
			continue
		}
		seen[t] = true
		n := int64(1)
		for _, d := range t.Dims {
			n *= int64(d)
		}
		i.ParamCount += n
	}
}

// all lists every tensor (nil for absent optional ones).
func (w *Weights) all() []*Tensor {
	ts := []*Tensor{w.TokEmbd, w.OutNorm, w.Output}
	for i := range w.Layers {
		l := &w.Layers[i]
		ts = append(ts, l.AttnNorm, l.Wq, l.Wk, l.Wv, l.Wo, l.Bq, l.Bk, l.Bv, l.QNorm, l.KNorm,
			l.FFNNorm, l.FFNGate, l.FFNUp, l.FFNDown)
	}
	return ts
}

// validate checks hyperparameters, the presence and shape of every
// required tensor, and that each tensor's type is one the engine computes
// with and its data is complete.
func (w *Weights) validate() error {
	h := &w.H
	if h.NEmbd <= 0 || h.NLayer <= 0 || h.NHead <= 0 || h.NHeadKV <= 0 || h.HeadDim <= 0 || h.NFF <= 0 || h.NVocab <= 0 {
		return fmt.Errorf("%w: incomplete hyperparameters (embd %d, layers %d, heads %d/%d, head dim %d, ffn %d, vocab %d)",
			ErrUnsupported, h.NEmbd, h.NLayer, h.NHead, h.NHeadKV, h.HeadDim, h.NFF, h.NVocab)
	}
	if h.NHead%h.NHeadKV != 0 {
		return fmt.Errorf("%w: %d heads is not a multiple of %d KV heads", ErrUnsupported, h.NHead, h.NHeadKV)
	}
	if h.RopeDims <= 0 || h.RopeDims > h.HeadDim || h.RopeDims%2 != 0 {
		return fmt.Errorf("%w: rope dimension %d for head dim %d", ErrUnsupported, h.RopeDims, h.HeadDim)
	}
	if h.RopeFreqs != nil && len(h.RopeFreqs) < h.RopeDims/2 {
		return fmt.Errorf("%w: %d rope frequency factors for %d rotated dims", ErrUnsupported, len(h.RopeFreqs), h.RopeDims)
	}
	if h.NCtxTrain <= 0 {
		h.NCtxTrain = 2048
	}
	if h.NormEps <= 0 {
		h.NormEps = 1e-5
	}
	q, kv := h.NHead*h.HeadDim, h.NHeadKV*h.HeadDim
	check := func(t *Tensor, what string, optional bool, dims ...int) error {
		if t == nil {
			if optional {
				return nil
			}
			return fmt.Errorf("%w: tensor %s is missing", ErrUnsupported, what)
		}
		if !t.Type.Supported() {
			return fmt.Errorf("%w: tensor %s has type %s, which the engine cannot compute with", ErrUnsupported, t.Name, t.Type)
		}
		if len(t.Dims) != len(dims) {
			return fmt.Errorf("%w: tensor %s has shape %v, want %v", ErrUnsupported, t.Name, t.Dims, dims)
		}
		for i := range dims {
			if t.Dims[i] != dims[i] {
				return fmt.Errorf("%w: tensor %s has shape %v, want %v", ErrUnsupported, t.Name, t.Dims, dims)
			}
		}
		rb, err := ggml.RowBytes(t.Type, t.Dims[0])
		if err != nil {
			return fmt.Errorf("%w: tensor %s: %v", ErrUnsupported, t.Name, err)
		}
		if len(t.Data) < rb*t.Rows() {
			return fmt.Errorf("%w: tensor %s holds %d bytes, want %d", ErrUnsupported, t.Name, len(t.Data), rb*t.Rows())
		}
		return nil
	}
	if err := check(w.TokEmbd, "token embeddings", false, h.NEmbd, h.NVocab); err != nil {
		return err
	}
	if err := check(w.OutNorm, "output norm", false, h.NEmbd); err != nil {
		return err
	}
	if err := check(w.Output, "output", false, h.NEmbd, h.NVocab); err != nil {
		return err
	}
	for i := range w.Layers {
		l := &w.Layers[i]
		for _, c := range []struct {
			t        *Tensor
			what     string
			optional bool
			dims     []int
		}{
			{l.AttnNorm, "attention norm", false, []int{h.NEmbd}},
			{l.Wq, "attention q", false, []int{h.NEmbd, q}},
			{l.Wk, "attention k", false, []int{h.NEmbd, kv}},
			{l.Wv, "attention v", false, []int{h.NEmbd, kv}},
			{l.Wo, "attention output", false, []int{q, h.NEmbd}},
			{l.Bq, "q bias", true, []int{q}},
			{l.Bk, "k bias", true, []int{kv}},
			{l.Bv, "v bias", true, []int{kv}},
			{l.QNorm, "q norm", true, []int{h.HeadDim}},
			{l.KNorm, "k norm", true, []int{h.HeadDim}},
			{l.FFNNorm, "ffn norm", false, []int{h.NEmbd}},
			{l.FFNGate, "ffn gate", false, []int{h.NEmbd, h.NFF}},
			{l.FFNUp, "ffn up", false, []int{h.NEmbd, h.NFF}},
			{l.FFNDown, "ffn down", false, []int{h.NFF, h.NEmbd}},
		} {
			if err := check(c.t, fmt.Sprintf("layer %d %s", i, c.what), c.optional, c.dims...); err != nil {
				return err
			}
		}
	}
	return nil
}
