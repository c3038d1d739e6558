package engine

import (
	"fmt"
	"os"

	"helexa/node/ggml"
	"helexa/node/gguf"
)

// weightsFromGGUF describes a GGUF file's model. The tensors' Data alias
// the file's mapping.
func weightsFromGGUF(path string, f *gguf.File) (*Weights, Info, error) {
	if f.Arch() == "bert" {
		return bertFromGGUF(path, f) // an encoder: its own tensors and runner (arch_bert.go)
	}
	a, err := lookupArch(f.Arch())
	if err != nil {
		return nil, Info{}, fmt.Errorf("%s: %w", path, err)
	}
	h, err := readGGUFHparams(ggufKeys{f: f, arch: a.name}, a)
	if err != nil {
		return nil, Info{}, fmt.Errorf("%s: %w", path, err)
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
	w.Layers = make([]Layer, h.NLayer)
	for i := range w.Layers {
		p := fmt.Sprintf("blk.%d.", i)
		for _, d := range a.tensors(&h, i) {
			*d.field(&w.Layers[i]) = get(p + d.name)
		}
	}
	w.H = h
	if err := w.validate(); err != nil {
		return nil, Info{}, fmt.Errorf("%s: %w", path, err)
	}

	info := Info{Path: path, Format: "gguf", Arch: a.name}
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
	i.NExpert, i.NExpertUsed = h.NExpert, h.NExpertUsed
	if n := h.NLayerSWA(); n > 0 {
		i.SlidingWindow, i.NLayerSWA = h.SlidingWindow, n
	}
	seen := map[*Tensor]bool{}
	var experts int64
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
		if len(t.Dims) == 3 && h.NExpert > 0 {
			experts += n
		}
	}
	// A token goes through the dense parts and NExpertUsed of the
	// NExpert experts.
	i.ActiveParamCount = i.ParamCount
	if h.NExpert > 0 {
		i.ActiveParamCount = i.ParamCount - experts + experts*int64(h.NExpertUsed)/int64(h.NExpert)
	}
}

// all lists every tensor (nil for absent optional ones); the experts'
// 2-D slices are not listed apart from their 3-D tensors.
func (w *Weights) all() []*Tensor {
	ts := []*Tensor{w.TokEmbd, w.OutNorm, w.Output}
	for i := range w.Layers {
		l := &w.Layers[i]
		ts = append(ts, l.AttnNorm, l.Wq, l.Wk, l.Wv, l.Wo, l.Bq, l.Bk, l.Bv, l.QNorm, l.KNorm,
			l.FFNNorm, l.FFNGate, l.FFNUp, l.FFNDown, l.PostAttnNorm, l.PostFFNNorm,
			l.FFNGateInp, l.FFNGateExps, l.FFNUpExps, l.FFNDownExps)
	}
	return ts
}

// validate checks hyperparameters, the presence and shape of every
// tensor the architecture declares, and that each tensor's type is one
// the engine computes with and its data is complete. MoE layers get
// their experts' 2-D slices.
func (w *Weights) validate() error {
	h := &w.H
	a, err := lookupArch(h.Arch)
	if err != nil {
		return err
	}
	if h.NEmbd <= 0 || h.NLayer <= 0 || h.NHead <= 0 || h.NHeadKV <= 0 || h.HeadDim <= 0 || h.NFF <= 0 && h.NFFExp <= 0 || h.NVocab <= 0 {
		return fmt.Errorf("%w: %s: incomplete hyperparameters (embd %d, layers %d, heads %d/%d, head dim %d, ffn %d, vocab %d)",
			ErrUnsupported, h.Arch, h.NEmbd, h.NLayer, h.NHead, h.NHeadKV, h.HeadDim, h.NFF, h.NVocab)
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
	if h.SlidingWindow < 0 || h.SWA != nil && len(h.SWA) != h.NLayer {
		return fmt.Errorf("%w: sliding window %d over %d of %d layers", ErrUnsupported, h.SlidingWindow, len(h.SWA), h.NLayer)
	}
	if a.check != nil {
		if err := a.check(h); err != nil {
			return err
		}
	}
	if h.NCtxTrain <= 0 {
		h.NCtxTrain = 2048
	}
	if h.NormEps <= 0 {
		h.NormEps = 1e-5
	}
	if err := checkTensor(w.TokEmbd, "token_embd (token embeddings)", false, []int{h.NEmbd, h.NVocab}); err != nil {
		return err
	}
	if err := checkTensor(w.OutNorm, "output_norm", false, []int{h.NEmbd}); err != nil {
		return err
	}
	if err := checkTensor(w.Output, "output", false, []int{h.NEmbd, h.NVocab}); err != nil {
		return err
	}
	for i := range w.Layers {
		l := &w.Layers[i]
		for _, d := range a.tensors(h, i) {
			if err := checkTensor(*d.field(l), fmt.Sprintf("blk.%d.%s", i, d.name), d.optional, d.dims); err != nil {
				return fmt.Errorf("%s: %w", h.Arch, err)
			}
		}
		if l.FFNGateExps != nil {
			expertSlices(l, h.NExpert)
		}
	}
	return nil
}
