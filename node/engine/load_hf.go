package engine

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"helexa/node/ggml"
	"helexa/node/safetensors"
)

// hfConfig is the part of a Hugging Face config.json the engine reads.
type hfConfig struct {
	Architectures         []string `json:"architectures"`
	ModelType             string   `json:"model_type"`
	HiddenSize            int      `json:"hidden_size"`
	NumHiddenLayers       int      `json:"num_hidden_layers"`
	NumAttentionHeads     int      `json:"num_attention_heads"`
	NumKeyValueHeads      int      `json:"num_key_value_heads"`
	HeadDim               int      `json:"head_dim"`
	IntermediateSize      int      `json:"intermediate_size"`
	RMSNormEps            float64  `json:"rms_norm_eps"`
	RopeTheta             float64  `json:"rope_theta"`
	MaxPositionEmbeddings int      `json:"max_position_embeddings"`
	TieWordEmbeddings     bool     `json:"tie_word_embeddings"`
	VocabSize             int      `json:"vocab_size"`
	RopeScaling           *struct {
		RopeType                      string  `json:"rope_type"`
		Type                          string  `json:"type"`
		Factor                        float64 `json:"factor"`
		LowFreqFactor                 float64 `json:"low_freq_factor"`
		HighFreqFactor                float64 `json:"high_freq_factor"`
		OriginalMaxPositionEmbeddings int     `json:"original_max_position_embeddings"`
	} `json:"rope_scaling"`
}

// hfArch maps a config.json architecture to the engine architecture
// that declares it (archDef.hf); "" when none does.
func hfArch(name string) string {
	for _, a := range archRegistry {
		if slices.Contains(a.hf, name) {
			return a.name
		}
	}
	return ""
}

// hfArchNames lists the config.json architectures the engine loads.
func hfArchNames() string {
	var names []string
	for _, a := range archNames() {
		names = append(names, archRegistry[a].hf...)
	}
	return strings.Join(names, ", ")
}

var hfTypes = map[string]ggml.Type{"F32": ggml.F32, "F16": ggml.F16, "BF16": ggml.BF16}

// weightsFromHF describes a Hugging Face folder's model. The tensors'
// Data alias the safetensors mapping.
func weightsFromHF(dir string, sm *safetensors.Model) (*Weights, Info, error) {
	cfgPath := filepath.Join(dir, "config.json")
	b, err := os.ReadFile(cfgPath)
	if err != nil {
		return nil, Info{}, fmt.Errorf("reading model config: %w", err)
	}
	var c hfConfig
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, Info{}, fmt.Errorf("%s: %w: %v", cfgPath, ErrUnsupported, err)
	}
	arch := ""
	for _, a := range c.Architectures {
		if arch = hfArch(a); arch != "" {
			break
		}
	}
	if arch == "" {
		return nil, Info{}, fmt.Errorf("%s: %w: architectures %v (supported: %s)",
			cfgPath, ErrUnsupported, c.Architectures, hfArchNames())
	}
	h := Hparams{
		Arch:      arch,
		NVocab:    c.VocabSize,
		NEmbd:     c.HiddenSize,
		NLayer:    c.NumHiddenLayers,
		NHead:     c.NumAttentionHeads,
		NHeadKV:   c.NumKeyValueHeads,
		HeadDim:   c.HeadDim,
		NFF:       c.IntermediateSize,
		NCtxTrain: c.MaxPositionEmbeddings,
		NormEps:   float32(c.RMSNormEps),
		RopeTheta: float32(c.RopeTheta),
		// Hugging Face keeps Q/K in rotate-half order: rotate (i, i+d/2).
		RopeStyle: RopeNeoX,
	}
	if h.NHeadKV == 0 {
		h.NHeadKV = h.NHead
	}
	if h.HeadDim == 0 && h.NHead > 0 {
		h.HeadDim = h.NEmbd / h.NHead
	}
	if h.RopeTheta == 0 {
		h.RopeTheta = 10000
	}
	h.RopeDims = h.HeadDim
	if rs := c.RopeScaling; rs != nil {
		typ := rs.RopeType
		if typ == "" {
			typ = rs.Type
		}
		switch typ {
		case "llama3":
			h.RopeScaling.Factor = float32(rs.Factor)
			h.RopeScaling.LowFreqFactor = float32(rs.LowFreqFactor)
			h.RopeScaling.HighFreqFactor = float32(rs.HighFreqFactor)
			h.RopeScaling.OrigCtx = rs.OriginalMaxPositionEmbeddings
			h.RopeFreqs = llama3RopeFreqs(h)
		case "linear":
			if rs.Factor > 0 {
				h.RopeFreqScale = float32(1 / rs.Factor)
			}
		case "", "default":
		default:
			return nil, Info{}, fmt.Errorf("%s: %w: rope_scaling type %q", cfgPath, ErrUnsupported, typ)
		}
	}

	var convErr error
	get := func(name string) *Tensor {
		st, ok := sm.Tensor(name)
		if !ok {
			return nil
		}
		typ, ok := hfTypes[st.DType]
		if !ok {
			if convErr == nil {
				convErr = fmt.Errorf("%w: tensor %s has dtype %s (supported: F32, F16, BF16)", ErrUnsupported, name, st.DType)
			}
			return nil
		}
		// PyTorch shapes list the contiguous dimension last; ggml first.
		dims := make([]int, len(st.Shape))
		for i, d := range st.Shape {
			dims[len(dims)-1-i] = d
		}
		return &Tensor{Name: name, Type: typ, Dims: dims, Data: st.Data, Mapped: true}
	}
	w := &Weights{
		TokEmbd: get("model.embed_tokens.weight"),
		OutNorm: get("model.norm.weight"),
		Output:  get("lm_head.weight"),
	}
	if w.Output == nil {
		w.Output = w.TokEmbd
	}
	if h.NVocab == 0 && w.TokEmbd != nil && len(w.TokEmbd.Dims) == 2 {
		h.NVocab = w.TokEmbd.Dims[1]
	}
	if h.NLayer < 0 || h.NLayer > 1<<12 {
		return nil, Info{}, fmt.Errorf("%s: %w: num_hidden_layers %d", cfgPath, ErrUnsupported, h.NLayer)
	}
	w.Layers = make([]Layer, h.NLayer)
	for i := range w.Layers {
		p := fmt.Sprintf("model.layers.%d.", i)
		w.Layers[i] = Layer{
			AttnNorm: get(p + "input_layernorm.weight"),
			Wq:       get(p + "self_attn.q_proj.weight"),
			Wk:       get(p + "self_attn.k_proj.weight"),
			Wv:       get(p + "self_attn.v_proj.weight"),
			Wo:       get(p + "self_attn.o_proj.weight"),
			Bq:       get(p + "self_attn.q_proj.bias"),
			Bk:       get(p + "self_attn.k_proj.bias"),
			Bv:       get(p + "self_attn.v_proj.bias"),
			QNorm:    get(p + "self_attn.q_norm.weight"),
			KNorm:    get(p + "self_attn.k_norm.weight"),
			FFNNorm:  get(p + "post_attention_layernorm.weight"),
			FFNGate:  get(p + "mlp.gate_proj.weight"),
			FFNUp:    get(p + "mlp.up_proj.weight"),
			FFNDown:  get(p + "mlp.down_proj.weight"),
		}
	}
	w.H = h
	if convErr != nil {
		return nil, Info{}, fmt.Errorf("%s: %w", dir, convErr)
	}
	if err := w.validate(); err != nil {
		return nil, Info{}, fmt.Errorf("%s: %w", dir, err)
	}
	info := Info{Path: dir, Format: "safetensors", Arch: arch}
	info.fill(w)
	info.Quant = dominantType(w.all())
	if ents, err := os.ReadDir(dir); err == nil {
		for _, e := range ents {
			if strings.HasSuffix(e.Name(), ".safetensors") {
				if fi, err := e.Info(); err == nil {
					info.SizeBytes += fi.Size()
				}
			}
		}
	}
	info.ChatTemplate = hfChatTemplate(dir)
	return w, info, nil
}

// llama3RopeFreqs computes Llama 3's per-pair frequency divisors: long
// wavelengths are slowed by Factor, short ones kept, and the band between
// interpolated smoothly.
func llama3RopeFreqs(h Hparams) []float32 {
	s := h.RopeScaling
	lowWavelen := float64(s.OrigCtx) / float64(s.LowFreqFactor)
	highWavelen := float64(s.OrigCtx) / float64(s.HighFreqFactor)
	n := h.RopeDims / 2
	out := make([]float32, n)
	for i := range out {
		freq := 1 / math.Pow(float64(h.RopeTheta), float64(2*i)/float64(h.RopeDims))
		wavelen := 2 * math.Pi / freq
		switch {
		case wavelen < highWavelen:
			out[i] = 1
		case wavelen > lowWavelen:
			out[i] = s.Factor
		default:
			smooth := (float64(s.OrigCtx)/wavelen - float64(s.LowFreqFactor)) / float64(s.HighFreqFactor-s.LowFreqFactor)
			out[i] = float32(1 / ((1-smooth)/float64(s.Factor) + smooth))
		}
	}
	return out
}
