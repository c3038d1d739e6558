package engine

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"helexa/node/ggml"
	"helexa/node/gguf"
)

// archDef is one model architecture: the hyperparameters and tensors it
// reads and the CPU forward pass of one of its layers. Each architecture
// lives in its own file (arch_<name>.go), which reads top-down as its
// forward pass and registers it; the pieces they share (attention over
// the KV pool, norms, RoPE, FFN kinds, experts) are the runner's methods
// in layers.go.
type archDef struct {
	name string
	// hf lists the Hugging Face config.json "architectures" loaded as
	// this architecture (load_hf.go).
	hf []string
	// rope is how the GGUF file's Q/K rows pair dimensions for RoPE.
	rope RopeStyle
	// gguf reads the architecture's own GGUF keys into h, after the keys
	// every architecture has (readGGUFHparams); nil when it has none.
	gguf func(h *Hparams, k ggufKeys) error
	// tensors declares layer il's tensors: names, shapes, which are
	// optional.
	tensors func(h *Hparams, il int) []tensorDecl
	// layer is the CPU forward pass of layer il over the pass's n rows:
	// it reads and updates the residual stream r.s.x.
	layer func(r *cpuRunner, il, n int)
	// check validates the architecture's own hyperparameters; nil when
	// the common checks suffice.
	check func(h *Hparams) error
}

// archRegistry holds every architecture, by GGUF name.
var archRegistry = map[string]*archDef{}

// registerArch adds a to the registry; called from each architecture's
// file at init.
func registerArch(a *archDef) {
	if _, dup := archRegistry[a.name]; dup {
		panic("BUG: architecture " + a.name + " registered twice")
	}
	archRegistry[a.name] = a
}

// archNames lists the registered architectures, sorted.
func archNames() []string {
	names := make([]string, 0, len(archRegistry))
	for n := range archRegistry {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// lookupArch finds an architecture by name, or fails with ErrUnsupported
// naming it and listing those the engine has.
func lookupArch(name string) (*archDef, error) {
	if a, ok := archRegistry[name]; ok {
		return a, nil
	}
	return nil, fmt.Errorf("%w: architecture %q (supported: %s)", ErrUnsupported, name, strings.Join(archNames(), ", "))
}

// Architectures lists the architectures the engine runs.
func Architectures() []string { return archNames() }

// ggufKeys reads one architecture's GGUF keys ("<arch>.<key>").
type ggufKeys struct {
	f    *gguf.File
	arch string
}

func (k ggufKeys) uint(key string, def int) int {
	if v, ok := k.f.Uint(k.arch + "." + key); ok {
		return int(v)
	}
	return def
}

func (k ggufKeys) float(key string, def float32) float32 {
	if v, ok := k.f.Float(k.arch + "." + key); ok {
		return float32(v)
	}
	return def
}

func (k ggufKeys) bool(key string, def bool) bool {
	if v, ok := k.f.Bool(k.arch + "." + key); ok {
		return v
	}
	return def
}

func (k ggufKeys) str(key string) (string, bool) { return k.f.String(k.arch + "." + key) }

// tensorDecl declares one tensor of a layer.
type tensorDecl struct {
	name     string                  // GGUF name after "blk.N."
	field    func(l *Layer) **Tensor // where it lives in Layer
	optional bool
	dims     []int // ggml's ne
}

// The shared declarations the architectures compose.

// declAttn: the attention norm and the Q/K/V/output projections, with
// optional Q/K/V biases (qwen2) and per-head Q/K norms (required when
// qkNorm).
func declAttn(h *Hparams, qkNorm bool) []tensorDecl {
	q, kv := h.NHead*h.HeadDim, h.NHeadKV*h.HeadDim
	return []tensorDecl{
		{"attn_norm.weight", func(l *Layer) **Tensor { return &l.AttnNorm }, false, []int{h.NEmbd}},
		{"attn_q.weight", func(l *Layer) **Tensor { return &l.Wq }, false, []int{h.NEmbd, q}},
		{"attn_k.weight", func(l *Layer) **Tensor { return &l.Wk }, false, []int{h.NEmbd, kv}},
		{"attn_v.weight", func(l *Layer) **Tensor { return &l.Wv }, false, []int{h.NEmbd, kv}},
		{"attn_output.weight", func(l *Layer) **Tensor { return &l.Wo }, false, []int{q, h.NEmbd}},
		{"attn_q.bias", func(l *Layer) **Tensor { return &l.Bq }, true, []int{q}},
		{"attn_k.bias", func(l *Layer) **Tensor { return &l.Bk }, true, []int{kv}},
		{"attn_v.bias", func(l *Layer) **Tensor { return &l.Bv }, true, []int{kv}},
		{"attn_q_norm.weight", func(l *Layer) **Tensor { return &l.QNorm }, !qkNorm, []int{h.HeadDim}},
		{"attn_k_norm.weight", func(l *Layer) **Tensor { return &l.KNorm }, !qkNorm, []int{h.HeadDim}},
	}
}

// declFFN: the FFN norm and a gated FFN's gate, up and down matrices.
func declFFN(h *Hparams) []tensorDecl {
	return []tensorDecl{
		{"ffn_norm.weight", func(l *Layer) **Tensor { return &l.FFNNorm }, false, []int{h.NEmbd}},
		{"ffn_gate.weight", func(l *Layer) **Tensor { return &l.FFNGate }, false, []int{h.NEmbd, h.NFF}},
		{"ffn_up.weight", func(l *Layer) **Tensor { return &l.FFNUp }, false, []int{h.NEmbd, h.NFF}},
		{"ffn_down.weight", func(l *Layer) **Tensor { return &l.FFNDown }, false, []int{h.NFF, h.NEmbd}},
	}
}

// declMoE: the FFN norm, the router and the 3-D expert matrices.
func declMoE(h *Hparams) []tensorDecl {
	return []tensorDecl{
		{"ffn_norm.weight", func(l *Layer) **Tensor { return &l.FFNNorm }, false, []int{h.NEmbd}},
		{"ffn_gate_inp.weight", func(l *Layer) **Tensor { return &l.FFNGateInp }, false, []int{h.NEmbd, h.NExpert}},
		{"ffn_gate_exps.weight", func(l *Layer) **Tensor { return &l.FFNGateExps }, false, []int{h.NEmbd, h.NFFExp, h.NExpert}},
		{"ffn_up_exps.weight", func(l *Layer) **Tensor { return &l.FFNUpExps }, false, []int{h.NEmbd, h.NFFExp, h.NExpert}},
		{"ffn_down_exps.weight", func(l *Layer) **Tensor { return &l.FFNDownExps }, false, []int{h.NFFExp, h.NEmbd, h.NExpert}},
	}
}

// declPostNorms: gemma's norms of the attention and FFN outputs.
func declPostNorms(h *Hparams) []tensorDecl {
	return []tensorDecl{
		{"post_attention_norm.weight", func(l *Layer) **Tensor { return &l.PostAttnNorm }, false, []int{h.NEmbd}},
		{"post_ffw_norm.weight", func(l *Layer) **Tensor { return &l.PostFFNNorm }, false, []int{h.NEmbd}},
	}
}

// readGGUFHparams reads the keys every architecture has.
func readGGUFHparams(k ggufKeys, a *archDef) (Hparams, error) {
	h := Hparams{
		Arch:      k.arch,
		NEmbd:     k.uint("embedding_length", 0),
		NLayer:    k.uint("block_count", 0),
		NHead:     k.uint("attention.head_count", 0),
		NFF:       k.uint("feed_forward_length", 0),
		NCtxTrain: k.uint("context_length", 0),
		NormEps:   k.float("attention.layer_norm_rms_epsilon", 1e-5),
		RopeTheta: k.float("rope.freq_base", 10000),
		RopeStyle: a.rope,
	}
	h.NHeadKV = k.uint("attention.head_count_kv", h.NHead)
	if h.NHead > 0 {
		h.HeadDim = k.uint("attention.key_length", h.NEmbd/h.NHead)
	}
	if v := k.uint("attention.value_length", h.HeadDim); v != h.HeadDim {
		return h, fmt.Errorf("%w: value head size %d differs from key head size %d", ErrUnsupported, v, h.HeadDim)
	}
	h.RopeDims = k.uint("rope.dimension_count", h.HeadDim)
	typ, _ := k.str("rope.scaling.type")
	switch typ {
	case "", "none":
	case "linear":
		if fac := k.float("rope.scaling.factor", 0); fac > 0 {
			h.RopeFreqScale = 1 / fac
		}
	case "llama3":
		// Usually carried as the rope_freqs tensor (read by the loader,
		// which wins); these keys are the fallback.
		h.RopeScaling.Factor = k.float("rope.scaling.factor", 8)
		h.RopeScaling.LowFreqFactor = k.float("rope.scaling.low_freq_factor", 1)
		h.RopeScaling.HighFreqFactor = k.float("rope.scaling.high_freq_factor", 4)
		h.RopeScaling.OrigCtx = k.uint("rope.scaling.original_context_length", 8192)
		if h.RopeDims > 0 && h.RopeDims%2 == 0 && h.RopeScaling.HighFreqFactor > h.RopeScaling.LowFreqFactor {
			h.RopeFreqs = llama3RopeFreqs(h)
		}
	default:
		return h, fmt.Errorf("%w: %s rope scaling type %q", ErrUnsupported, k.arch, typ)
	}
	if h.NLayer < 0 || h.NLayer > 1<<12 {
		return h, fmt.Errorf("%w: block_count %d", ErrUnsupported, h.NLayer)
	}
	if a.gguf != nil {
		if err := a.gguf(&h, k); err != nil {
			return h, err
		}
	}
	return h, nil
}

// swaPattern marks layers sliding-window in a pattern of period n: the
// last layer of every n is global (gemma3: five local, one global). n 0
// makes every layer local.
func swaPattern(layers, n int) []bool {
	swa := make([]bool, layers)
	for l := range swa {
		swa[l] = n == 0 || l%n < n-1
	}
	return swa
}

// checkTensor validates t against its declaration: presence, shape, a
// type the engine computes with, complete data.
func checkTensor(t *Tensor, what string, optional bool, dims []int) error {
	if t == nil {
		if optional {
			return nil
		}
		return fmt.Errorf("%w: tensor %s is missing", ErrUnsupported, what)
	}
	if !t.Type.Supported() {
		return fmt.Errorf("%w: tensor %s has type %s, which the engine cannot compute with", ErrUnsupported, t.Name, t.Type)
	}
	if !slices.Equal(t.Dims, dims) {
		return fmt.Errorf("%w: tensor %s has shape %v, want %v", ErrUnsupported, t.Name, t.Dims, dims)
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

// expertSlices cuts validated 3-D expert tensors into each expert's 2-D
// matrices: expert e's rows are the e-th run of rows of the data, so the
// slices alias the mapping and go through the ordinary matmul kernels.
func expertSlices(l *Layer, nExpert int) {
	slice := func(t *Tensor, e int) *Tensor {
		rb, _ := ggml.RowBytes(t.Type, t.Dims[0]) // validated
		n := t.Dims[1] * rb
		return &Tensor{Name: fmt.Sprintf("%s[%d]", t.Name, e), Type: t.Type, Dims: []int{t.Dims[0], t.Dims[1]},
			Data: t.Data[e*n : (e+1)*n : (e+1)*n], Mapped: t.Mapped}
	}
	l.Experts = make([]Expert, nExpert)
	for e := range l.Experts {
		l.Experts[e] = Expert{Gate: slice(l.FFNGateExps, e), Up: slice(l.FFNUpExps, e), Down: slice(l.FFNDownExps, e)}
	}
}

// gelu is GELU's tanh approximation in float32, as ggml computes it.
func gelu(x float32) float32 {
	const a, s = 0.044715, 0.79788456080286535587989211986876
	return 0.5 * x * (1 + float32(math.Tanh(float64(s*x*(1+a*x*x)))))
}
