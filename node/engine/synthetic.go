package engine

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"strings"

	"helexa/node/ggml"
)

// SyntheticSpec is a model with seeded random weights: its shape, its
// architecture variant and the type of its matrices. SyntheticWeights
// builds it in memory; `helexa tools synth` streams the same tensors
// (SyntheticTensors, SyntheticRow) into a GGUF file.
type SyntheticSpec struct {
	// Arch is "llama" (the default), "llama3" (llama with RoPE frequency
	// factors), "qwen2" (QKV biases, NeoX RoPE), "qwen3" (per-head Q/K
	// norms, NeoX RoPE) or "bert" (an encoder, arch_bert.go; FFN is its
	// hidden size, Ctx its number of positions).
	Arch string
	// Vocab, Dim, Layers, Heads, KVHeads (0: Heads), HeadDim (0:
	// Dim/Heads) and FFN shape the model; Ctx (0: 2048) is the trained
	// context it records.
	Vocab, Dim, Layers, Heads, KVHeads, HeadDim, FFN, Ctx int
	// Type is the matrices' type: a ggml type name ("F32", the default,
	// "F16", "BF16", "Q8_0", "Q4_0", "Q4_K", "Q6_K", …) or "Q4_K_M"
	// (Q4_K, with Q6_K for the output and for attn_v and ffn_down of some
	// layers, as llama.cpp's mix). A matrix whose rows do not fit the
	// type's blocks falls back to Q8_0, then F16. Norms and biases are
	// F32.
	Type string
	Seed uint64
	// RopeTheta (0: 10000, or 1e6 for qwen) and NormEps (0: 1e-5).
	RopeTheta, NormEps float32
	// RandomBlocks fills quantized matrices with random blocks whose
	// scales are small and finite instead of quantizing random values:
	// made in seconds at billions of parameters, for speed measurements,
	// where the values do not matter. Float matrices are unaffected.
	RandomBlocks bool
}

// SyntheticTensor is one tensor of a synthetic model: its GGUF name, the
// layer it belongs to (-1: none), its type, its dims (Dims[0] is the row
// length) and its values' distribution: normal with standard deviation
// Scale, plus Bias.
type SyntheticTensor struct {
	Name        string
	Layer       int
	Type        ggml.Type
	Dims        []int
	Scale, Bias float32
}

// Rows is the number of rows of the tensor.
func (t SyntheticTensor) Rows() int {
	n := 1
	for _, d := range t.Dims[1:] {
		n *= d
	}
	return n
}

// syntheticTypes are the weight types a synthetic model may use.
var syntheticTypes = func() map[string]ggml.Type {
	m := map[string]ggml.Type{"Q4_K_M": ggml.Q4_K}
	for _, t := range []ggml.Type{ggml.F32, ggml.F16, ggml.BF16, ggml.Q8_0, ggml.Q4_0, ggml.Q4_1, ggml.Q5_0, ggml.Q5_1, ggml.Q4_K, ggml.Q5_K, ggml.Q6_K} {
		m[t.String()] = t
	}
	return m
}()

// Hparams returns the spec's hyperparameters with the defaults filled in.
func (s SyntheticSpec) Hparams() (Hparams, error) {
	if s.Arch == "" {
		s.Arch = "llama"
	}
	if s.KVHeads == 0 {
		s.KVHeads = s.Heads
	}
	if s.Ctx == 0 {
		s.Ctx = 2048
	}
	switch {
	case s.Vocab <= 0 || s.Dim <= 0 || s.Layers <= 0 || s.Heads <= 0 || s.KVHeads <= 0 || s.FFN <= 0 || s.Ctx <= 0 || s.HeadDim < 0:
		return Hparams{}, fmt.Errorf("synthetic model: vocab %d, dim %d, layers %d, heads %d/%d, ffn %d and ctx %d must be positive",
			s.Vocab, s.Dim, s.Layers, s.Heads, s.KVHeads, s.FFN, s.Ctx)
	case s.HeadDim == 0 && s.Dim%s.Heads != 0:
		return Hparams{}, fmt.Errorf("synthetic model: dim %d is not a multiple of %d heads", s.Dim, s.Heads)
	case s.Heads%s.KVHeads != 0:
		return Hparams{}, fmt.Errorf("synthetic model: %d heads is not a multiple of %d KV heads", s.Heads, s.KVHeads)
	}
	h := Hparams{Arch: s.Arch, NVocab: s.Vocab, NEmbd: s.Dim, NLayer: s.Layers, NHead: s.Heads, NHeadKV: s.KVHeads,
		HeadDim: s.HeadDim, NFF: s.FFN, NCtxTrain: s.Ctx, NormEps: s.NormEps, RopeTheta: s.RopeTheta}
	if h.HeadDim == 0 {
		h.HeadDim = s.Dim / s.Heads
	}
	if h.HeadDim%2 != 0 {
		return Hparams{}, fmt.Errorf("synthetic model: head size %d must be even (RoPE)", h.HeadDim)
	}
	h.RopeDims = h.HeadDim
	if h.NormEps == 0 {
		h.NormEps = 1e-5
	}
	switch s.Arch {
	case "llama":
	case "llama3":
		h.Arch = "llama"
		// llama3's scaling over a short original context, so the
		// factors differ from pair to pair even in a tiny model.
		h.RopeScaling.Factor, h.RopeScaling.LowFreqFactor, h.RopeScaling.HighFreqFactor = 8, 1, 4
		h.RopeScaling.OrigCtx = 64
		h.RopeFreqs = llama3RopeFreqs(h)
	case "qwen2", "qwen3":
		h.RopeStyle = RopeNeoX
		if h.RopeTheta == 0 {
			h.RopeTheta = 1e6
		}
	case "bert":
		if h.NHeadKV != h.NHead || h.HeadDim*h.NHead != h.NEmbd {
			return Hparams{}, fmt.Errorf("synthetic model: bert needs as many KV heads as heads and dim = heads × head size")
		}
		if s.NormEps == 0 {
			h.NormEps = 1e-12
		}
	default:
		return Hparams{}, fmt.Errorf("synthetic model: %w: architecture %q (llama, llama3, qwen2, qwen3, bert)", ErrUnsupported, s.Arch)
	}
	if h.RopeTheta == 0 {
		h.RopeTheta = 10000
	}
	return h, nil
}

// weightType is the type of a matrix of rows of rowLen: the spec's type,
// the Q4_K_M mix, or the fallback when rowLen does not fit the blocks.
func (s SyntheticSpec) weightType(name string, layer, rowLen int) (ggml.Type, error) {
	typ := strings.ToUpper(s.Type)
	if typ == "" {
		typ = "F32"
	}
	t, ok := syntheticTypes[typ]
	if !ok {
		return 0, fmt.Errorf("synthetic model: weight type %q not supported", s.Type)
	}
	if typ == "Q4_K_M" {
		moreBits := func(i, n int) bool { return i < n/8 || i >= 7*n/8 || (i-n/8)%3 == 2 }
		switch {
		case name == "output.weight":
			t = ggml.Q6_K
		case (strings.HasSuffix(name, ".attn_v.weight") || strings.HasSuffix(name, ".ffn_down.weight")) && moreBits(layer, s.Layers):
			t = ggml.Q6_K
		}
	}
	for _, fb := range []ggml.Type{t, ggml.Q8_0, ggml.F16} {
		if rowLen%fb.BlockSize() == 0 {
			return fb, nil
		}
	}
	return ggml.F16, nil
}

// SyntheticTensors lists the spec's tensors in GGUF order: embeddings,
// output norm, output, then each layer's.
func SyntheticTensors(s SyntheticSpec) ([]SyntheticTensor, error) {
	h, err := s.Hparams()
	if err != nil {
		return nil, err
	}
	var out []SyntheticTensor
	add := func(name string, layer int, in, rows int) error {
		t, err := s.weightType(name, layer, in)
		if err != nil {
			return err
		}
		out = append(out, SyntheticTensor{Name: name, Layer: layer, Type: t, Dims: []int{in, rows}, Scale: float32(1 / math.Sqrt(float64(in)))})
		return nil
	}
	vec := func(name string, layer, n int, scale, bias float32) {
		out = append(out, SyntheticTensor{Name: name, Layer: layer, Type: ggml.F32, Dims: []int{n}, Scale: scale, Bias: bias})
	}
	d, q, kv, f := h.NEmbd, h.NHead*h.HeadDim, h.NHeadKV*h.HeadDim, h.NFF
	if s.Arch == "bert" {
		if err := bertSyntheticTensors(h, add, vec); err != nil {
			return nil, err
		}
		for i := range out {
			if out[i].Name == "token_types.weight" {
				out[i].Type = ggml.F32 // added whole, never quantized (as llama-quantize leaves it)
			}
		}
		return out, nil
	}
	if err := add("token_embd.weight", -1, d, h.NVocab); err != nil {
		return nil, err
	}
	out[0].Scale = 1
	vec("output_norm.weight", -1, d, 0.1, 1)
	if err := add("output.weight", -1, d, h.NVocab); err != nil {
		return nil, err
	}
	for l := range h.NLayer {
		p := fmt.Sprintf("blk.%d.", l)
		vec(p+"attn_norm.weight", l, d, 0.1, 1)
		for _, m := range []struct {
			name     string
			in, rows int
		}{{"attn_q", d, q}, {"attn_k", d, kv}, {"attn_v", d, kv}, {"attn_output", q, d}} {
			if err := add(p+m.name+".weight", l, m.in, m.rows); err != nil {
				return nil, err
			}
		}
		switch s.Arch {
		case "qwen2":
			vec(p+"attn_q.bias", l, q, 0.1, 0)
			vec(p+"attn_k.bias", l, kv, 0.1, 0)
			vec(p+"attn_v.bias", l, kv, 0.1, 0)
		case "qwen3":
			vec(p+"attn_q_norm.weight", l, h.HeadDim, 0.1, 1)
			vec(p+"attn_k_norm.weight", l, h.HeadDim, 0.1, 1)
		}
		vec(p+"ffn_norm.weight", l, d, 0.1, 1)
		for _, m := range []struct {
			name     string
			in, rows int
		}{{"ffn_gate", d, f}, {"ffn_down", f, d}, {"ffn_up", d, f}} {
			if err := add(p+m.name+".weight", l, m.in, m.rows); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// tensorKey mixes a tensor's name into the seed, so each tensor's values
// do not depend on the others.
func tensorKey(name string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(name))
	return h.Sum64()
}

// SyntheticRow writes the values of row r of t in a model of seed to row
// (t.Dims[0] floats). Each row has its own generator, so rows can be made
// in any order and on any number of goroutines.
func SyntheticRow(seed uint64, t SyntheticTensor, r int, row []float32) {
	rng := rand.New(rand.NewPCG(seed^tensorKey(t.Name), uint64(r)))
	for i := range row {
		row[i] = float32(rng.NormFloat64())*t.Scale + t.Bias
	}
}

// SyntheticWeights builds the spec's model in memory.
func SyntheticWeights(s SyntheticSpec) (*Weights, error) {
	h, err := s.Hparams()
	if err != nil {
		return nil, err
	}
	ts, err := SyntheticTensors(s)
	if err != nil {
		return nil, err
	}
	if s.Arch == "bert" {
		return bertSyntheticWeights(s, h, ts)
	}
	w := &Weights{H: h, Layers: make([]Layer, h.NLayer)}
	for _, st := range ts {
		t, err := syntheticTensor(s, st)
		if err != nil {
			return nil, err
		}
		name := st.Name
		if st.Layer >= 0 {
			name = strings.TrimPrefix(name, fmt.Sprintf("blk.%d.", st.Layer))
		}
		var dst **Tensor
		if st.Layer < 0 {
			dst = map[string]**Tensor{"token_embd.weight": &w.TokEmbd, "output_norm.weight": &w.OutNorm, "output.weight": &w.Output}[name]
		} else {
			l := &w.Layers[st.Layer]
			dst = map[string]**Tensor{
				"attn_norm.weight": &l.AttnNorm, "attn_q.weight": &l.Wq, "attn_k.weight": &l.Wk, "attn_v.weight": &l.Wv,
				"attn_output.weight": &l.Wo, "attn_q.bias": &l.Bq, "attn_k.bias": &l.Bk, "attn_v.bias": &l.Bv,
				"attn_q_norm.weight": &l.QNorm, "attn_k_norm.weight": &l.KNorm, "ffn_norm.weight": &l.FFNNorm,
				"ffn_gate.weight": &l.FFNGate, "ffn_up.weight": &l.FFNUp, "ffn_down.weight": &l.FFNDown,
			}[name]
		}
		if dst == nil {
			return nil, fmt.Errorf("BUG: synthetic tensor %s has no place in Weights", st.Name)
		}
		*dst = t
	}
	return w, nil
}

// syntheticTensor makes one tensor's data.
func syntheticTensor(s SyntheticSpec, st SyntheticTensor) (*Tensor, error) {
	rows := st.Rows()
	rb, err := ggml.RowBytes(st.Type, st.Dims[0])
	if err != nil {
		return nil, fmt.Errorf("synthetic model: %s: %w", st.Name, err)
	}
	t := &Tensor{Name: st.Name, Type: st.Type, Dims: append([]int(nil), st.Dims...), Data: make([]byte, rb*rows)}
	if s.RandomBlocks && st.Type.BlockSize() > 1 {
		if err := fillRandomBlocks(rand.New(rand.NewPCG(s.Seed^tensorKey(st.Name), 0)), st.Type, t.Data); err != nil {
			return nil, fmt.Errorf("synthetic model: %s: %w", st.Name, err)
		}
		return t, nil
	}
	row := make([]float32, st.Dims[0])
	for r := range rows {
		SyntheticRow(s.Seed, st, r, row)
		if err := ggml.QuantizeRow(st.Type, row, t.Data[r*rb:(r+1)*rb]); err != nil {
			return nil, fmt.Errorf("synthetic model: %s: %w", st.Name, err)
		}
	}
	return t, nil
}

// blockScales are the byte offsets of the f16 scale fields in a block of
// each type fillRandomBlocks can fill.
var blockScales = map[ggml.Type][]int{
	ggml.Q4_0: {0}, ggml.Q8_0: {0}, ggml.Q4_K: {0, 2}, ggml.Q5_K: {0, 2}, ggml.Q6_K: {208},
}

// fillRandomBlocks fills data with random blocks of type t whose f16
// scales are small and finite (so no NaN or Inf reaches the logits).
func fillRandomBlocks(r *rand.Rand, t ggml.Type, data []byte) error {
	scales, ok := blockScales[t]
	if !ok {
		return errors.New("random blocks: no block layout for " + t.String())
	}
	for i := 0; i+8 <= len(data); i += 8 {
		binary.LittleEndian.PutUint64(data[i:], r.Uint64())
	}
	const small = 0x1400 // f16 for about 0.001
	bb := t.BlockBytes()
	for b := 0; b+bb <= len(data); b += bb {
		for _, off := range scales {
			binary.LittleEndian.PutUint16(data[b+off:], small+uint16(data[b+off]&0x3f))
		}
	}
	return nil
}
