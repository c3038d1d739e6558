package engine

import (
	"fmt"
	"math"
	"os"
	"slices"
	"strings"
	"unicode"

	"helexa/node/cpu"
	"helexa/node/ggml"
	"helexa/node/gguf"
)

// The bert architecture: BERT-family sentence-embedding encoders (bge,
// all-MiniLM, e5…) as llama.cpp's converter writes them. The forward pass,
// top-down:
//
//	x  = token_embd[tok] + token_types[0] + position_embd[pos]
//	x  = LayerNorm(x)                                  token_embd_norm
//	per layer:
//	  q, k, v = x·Wq + bq, x·Wk + bk, x·Wv + bv
//	  a  = softmax(q·kᵀ/√d_head)·v, every token against every token
//	  x  = LayerNorm(x + a·Wo + bo)                    attn_output_norm
//	  x  = LayerNorm(x + GELU(x·Wup + bup)·Wdown + bdown)  layer_output_norm
//	e  = pool(x)  (bert.pooling_type: mean, or the first ([CLS]) or last token)
//	e /= ‖e‖₂
//
// There is no KV cache and nothing to generate: the runner implements
// EmbedRunner, and its ForwardBatch refuses with ErrNoGeneration. GELU is
// the tanh approximation, as llama.cpp computes it.

// Pooling is how an encoder turns its final hidden states into one vector.
type Pooling int

// Pooling kinds, numbered as GGUF's {arch}.pooling_type.
const (
	PoolNone Pooling = 0
	PoolMean Pooling = 1
	PoolCLS  Pooling = 2
	PoolLast Pooling = 3
	PoolRank Pooling = 4
)

func (p Pooling) String() string {
	switch p {
	case PoolNone:
		return "none"
	case PoolMean:
		return "mean"
	case PoolCLS:
		return "cls"
	case PoolLast:
		return "last"
	case PoolRank:
		return "rank"
	}
	return fmt.Sprintf("pooling %d", int(p))
}

// BertWeights are the tensors of a bert model beyond Weights.TokEmbd.
type BertWeights struct {
	TypeEmbd          *Tensor // token_types.weight (optional; row 0 is added)
	PosEmbd           *Tensor // position_embd.weight
	EmbNorm, EmbNormB *Tensor // token_embd_norm
	Layers            []BertLayer
	Pooling           Pooling
}

// BertLayer is one encoder layer.
type BertLayer struct {
	Wq, Bq, Wk, Bk, Wv, Bv *Tensor
	Wo, Bo                 *Tensor
	AttnNorm, AttnNormB    *Tensor // attn_output_norm
	Up, UpB, Down, DownB   *Tensor
	OutNorm, OutNormB      *Tensor // layer_output_norm
}

// all lists the bert tensors (nil for absent optional ones).
func (b *BertWeights) all() []*Tensor {
	ts := []*Tensor{b.TypeEmbd, b.PosEmbd, b.EmbNorm, b.EmbNormB}
	for i := range b.Layers {
		l := &b.Layers[i]
		ts = append(ts, l.Wq, l.Bq, l.Wk, l.Bk, l.Wv, l.Bv, l.Wo, l.Bo, l.AttnNorm, l.AttnNormB,
			l.Up, l.UpB, l.Down, l.DownB, l.OutNorm, l.OutNormB)
	}
	return ts
}

// bertFromGGUF describes a bert GGUF file. The tensors alias the mapping.
func bertFromGGUF(path string, f *gguf.File) (*Weights, Info, error) {
	const arch = "bert"
	u := func(key string, def int) int {
		if v, ok := f.Uint(arch + "." + key); ok {
			return int(v)
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
		NormEps:   1e-12,
	}
	if v, ok := f.Float(arch + ".attention.layer_norm_epsilon"); ok {
		h.NormEps = float32(v)
	}
	h.NHeadKV = h.NHead
	if h.NHead > 0 {
		h.HeadDim = h.NEmbd / h.NHead
	}
	h.RopeDims = h.HeadDim
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
	w := &Weights{TokEmbd: get("token_embd.weight")}
	if w.TokEmbd != nil && len(w.TokEmbd.Dims) == 2 {
		h.NVocab = w.TokEmbd.Dims[1]
	}
	if h.NLayer < 0 || h.NLayer > 1<<12 {
		return nil, Info{}, fmt.Errorf("%s: %w: bert block_count %d", path, ErrUnsupported, h.NLayer)
	}
	b := &BertWeights{
		TypeEmbd: get("token_types.weight"),
		PosEmbd:  get("position_embd.weight"),
		EmbNorm:  get("token_embd_norm.weight"),
		EmbNormB: get("token_embd_norm.bias"),
		Layers:   make([]BertLayer, h.NLayer),
		Pooling:  Pooling(u("pooling_type", int(PoolMean))),
	}
	for i := range b.Layers {
		p := fmt.Sprintf("blk.%d.", i)
		b.Layers[i] = BertLayer{
			Wq: get(p + "attn_q.weight"), Bq: get(p + "attn_q.bias"),
			Wk: get(p + "attn_k.weight"), Bk: get(p + "attn_k.bias"),
			Wv: get(p + "attn_v.weight"), Bv: get(p + "attn_v.bias"),
			Wo: get(p + "attn_output.weight"), Bo: get(p + "attn_output.bias"),
			AttnNorm: get(p + "attn_output_norm.weight"), AttnNormB: get(p + "attn_output_norm.bias"),
			Up: get(p + "ffn_up.weight"), UpB: get(p + "ffn_up.bias"),
			Down: get(p + "ffn_down.weight"), DownB: get(p + "ffn_down.bias"),
			OutNorm: get(p + "layer_output_norm.weight"), OutNormB: get(p + "layer_output_norm.bias"),
		}
		if qkv := get(p + "attn_qkv.weight"); qkv != nil && b.Layers[i].Wq == nil {
			l := &b.Layers[i]
			var err error
			if l.Wq, l.Wk, l.Wv, err = splitQKV(qkv, h.NEmbd); err != nil {
				return nil, Info{}, fmt.Errorf("%s: %w", path, err)
			}
			if bias := get(p + "attn_qkv.bias"); bias != nil {
				if l.Bq, l.Bk, l.Bv, err = splitQKV(bias, h.NEmbd); err != nil {
					return nil, Info{}, fmt.Errorf("%s: %w", path, err)
				}
			}
		}
	}
	w.H, w.Bert = h, b
	if err := w.validateBert(); err != nil {
		return nil, Info{}, fmt.Errorf("%s: %w", path, err)
	}
	info := Info{Path: path, Format: "gguf", Arch: arch}
	info.fill(w)
	info.ParamCount = bertParams(w)
	info.ActiveParamCount = info.ParamCount
	if ft, ok := f.Uint("general.file_type"); ok && fileTypeNames[ft] != "" {
		info.Quant = fileTypeNames[ft]
	} else {
		info.Quant = dominantType(append(b.all(), w.TokEmbd))
	}
	if st, err := os.Stat(path); err == nil {
		info.SizeBytes = st.Size()
	}
	return w, info, nil
}

// splitQKV views a fused Q/K/V tensor (a matrix of 3·d rows of d, or a
// vector of 3·d) as its three parts, without copying.
func splitQKV(t *Tensor, d int) (q, k, v *Tensor, err error) {
	vector := len(t.Dims) == 1
	want := []int{d, 3 * d}
	if vector {
		want = []int{3 * d}
	}
	if d <= 0 || !slices.Equal(t.Dims, want) {
		return nil, nil, nil, fmt.Errorf("%w: bert: tensor %s has shape %v, want %v", ErrUnsupported, t.Name, t.Dims, want)
	}
	rowLen, rows := t.Dims[0], d
	if vector {
		if t.Type.BlockSize() != 1 {
			return nil, nil, nil, fmt.Errorf("%w: bert: tensor %s has type %s, want a float type", ErrUnsupported, t.Name, t.Type)
		}
		rowLen, rows = d, 1
	}
	rb, err := ggml.RowBytes(t.Type, rowLen)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%w: bert: tensor %s: %v", ErrUnsupported, t.Name, err)
	}
	part := rb * rows
	if len(t.Data) < 3*part {
		return nil, nil, nil, fmt.Errorf("%w: bert: tensor %s holds %d bytes, want %d", ErrUnsupported, t.Name, len(t.Data), 3*part)
	}
	view := func(i int, name string) *Tensor {
		dims := []int{d, d}
		if vector {
			dims = []int{d}
		}
		return &Tensor{Name: name, Type: t.Type, Dims: dims, Data: t.Data[i*part : (i+1)*part : (i+1)*part], Mapped: t.Mapped}
	}
	base := strings.TrimSuffix(strings.TrimSuffix(t.Name, ".weight"), ".bias")
	suffix := strings.TrimPrefix(t.Name, base)
	base = strings.TrimSuffix(base, "attn_qkv")
	return view(0, base+"attn_q"+suffix), view(1, base+"attn_k"+suffix), view(2, base+"attn_v"+suffix), nil
}

// validateBert checks a bert model's hyperparameters and the presence,
// shape, type and size of every tensor.
func (w *Weights) validateBert() error {
	h := &w.H
	b := w.Bert
	if h.NEmbd <= 0 || h.NLayer <= 0 || h.NHead <= 0 || h.NFF <= 0 || h.NVocab <= 0 || h.NCtxTrain <= 0 {
		return fmt.Errorf("%w: bert: incomplete hyperparameters (embd %d, layers %d, heads %d, ffn %d, vocab %d, context %d)",
			ErrUnsupported, h.NEmbd, h.NLayer, h.NHead, h.NFF, h.NVocab, h.NCtxTrain)
	}
	if h.NEmbd%h.NHead != 0 {
		return fmt.Errorf("%w: bert: width %d is not a multiple of %d heads", ErrUnsupported, h.NEmbd, h.NHead)
	}
	if h.NormEps <= 0 {
		return fmt.Errorf("%w: bert: layer norm epsilon %g", ErrUnsupported, h.NormEps)
	}
	switch b.Pooling {
	case PoolMean, PoolCLS, PoolLast:
	case PoolNone:
		// one vector per token: served as the mean, the usual sentence
		// embedding
		b.Pooling = PoolMean
	default:
		return fmt.Errorf("%w: bert: pooling %s (rerankers are not served; mean, cls and last are)", ErrUnsupported, b.Pooling)
	}
	d, ff := h.NEmbd, h.NFF
	check := func(t *Tensor, what string, dims ...int) error {
		if t == nil {
			if optionalBertTensor(what) {
				return nil
			}
			return fmt.Errorf("%w: bert: tensor %s is missing", ErrUnsupported, what)
		}
		if !t.Type.Supported() {
			return fmt.Errorf("%w: bert: tensor %s has type %s, which the engine cannot compute with", ErrUnsupported, t.Name, t.Type)
		}
		if len(t.Dims) != len(dims) {
			return fmt.Errorf("%w: bert: tensor %s has shape %v, want %v", ErrUnsupported, t.Name, t.Dims, dims)
		}
		for i := range dims {
			if t.Dims[i] != dims[i] {
				return fmt.Errorf("%w: bert: tensor %s has shape %v, want %v", ErrUnsupported, t.Name, t.Dims, dims)
			}
		}
		rb, err := ggml.RowBytes(t.Type, t.Dims[0])
		if err != nil {
			return fmt.Errorf("%w: bert: tensor %s: %v", ErrUnsupported, t.Name, err)
		}
		if len(t.Data) < rb*t.Rows() {
			return fmt.Errorf("%w: bert: tensor %s holds %d bytes, want %d", ErrUnsupported, t.Name, len(t.Data), rb*t.Rows())
		}
		return nil
	}
	if err := check(w.TokEmbd, "token_embd.weight", d, h.NVocab); err != nil {
		return err
	}
	if err := check(b.PosEmbd, "position_embd.weight", d, h.NCtxTrain); err != nil {
		return err
	}
	if b.TypeEmbd != nil {
		if len(b.TypeEmbd.Dims) != 2 || b.TypeEmbd.Dims[1] < 1 {
			return fmt.Errorf("%w: bert: tensor token_types.weight has shape %v, want [%d n_types]", ErrUnsupported, b.TypeEmbd.Dims, d)
		}
		if err := check(b.TypeEmbd, "token_types.weight", d, b.TypeEmbd.Dims[1]); err != nil {
			return err
		}
	}
	if err := check(b.EmbNorm, "token_embd_norm.weight", d); err != nil {
		return err
	}
	if err := check(b.EmbNormB, "token_embd_norm.bias", d); err != nil {
		return err
	}
	for i := range b.Layers {
		l := &b.Layers[i]
		for _, c := range []struct {
			t    *Tensor
			what string
			dims []int
		}{
			{l.Wq, "attn_q.weight", []int{d, d}}, {l.Bq, "attn_q.bias", []int{d}},
			{l.Wk, "attn_k.weight", []int{d, d}}, {l.Bk, "attn_k.bias", []int{d}},
			{l.Wv, "attn_v.weight", []int{d, d}}, {l.Bv, "attn_v.bias", []int{d}},
			{l.Wo, "attn_output.weight", []int{d, d}}, {l.Bo, "attn_output.bias", []int{d}},
			{l.AttnNorm, "attn_output_norm.weight", []int{d}}, {l.AttnNormB, "attn_output_norm.bias", []int{d}},
			{l.Up, "ffn_up.weight", []int{d, ff}}, {l.UpB, "ffn_up.bias", []int{ff}},
			{l.Down, "ffn_down.weight", []int{ff, d}}, {l.DownB, "ffn_down.bias", []int{d}},
			{l.OutNorm, "layer_output_norm.weight", []int{d}}, {l.OutNormB, "layer_output_norm.bias", []int{d}},
		} {
			if err := check(c.t, fmt.Sprintf("blk.%d.%s", i, c.what), c.dims...); err != nil {
				return err
			}
		}
	}
	return nil
}

// optionalBertTensor reports whether a bert tensor may be absent: the
// projections' and FFN's biases, as llama.cpp allows.
func optionalBertTensor(name string) bool {
	for _, s := range []string{"attn_q.bias", "attn_k.bias", "attn_v.bias", "attn_output.bias", "ffn_up.bias", "ffn_down.bias"} {
		if strings.HasSuffix(name, "."+s) {
			return true
		}
	}
	return false
}

// bertParams counts a bert model's parameters.
func bertParams(w *Weights) int64 {
	var n int64
	for _, t := range append(w.Bert.all(), w.TokEmbd) {
		if t == nil {
			continue
		}
		k := int64(1)
		for _, d := range t.Dims {
			k *= int64(d)
		}
		n += k
	}
	return n
}

// bertRunner is the CPU runner of a bert model.
type bertRunner struct {
	w    *Weights
	h    Hparams
	b    *BertWeights
	nCtx int
	pool *cpu.Pool

	// float32 copies of the vectors (norms, biases, the token type row)
	vec map[*Tensor][]float32
	// scratch, grown to the longest input seen
	x, t1, q, k, v, att, ff []float32
	qa                      []byte
	scores                  []float32 // per worker: one row of scores
}

// newBertRunner builds the CPU runner of a bert model; nCtx bounds an
// input (at most the trained context, as positions have embeddings only
// that far).
func newBertRunner(w *Weights, o RunnerOptions) (*bertRunner, error) {
	if w.Bert == nil {
		return nil, fmt.Errorf("%w: not a bert model", ErrUnsupported)
	}
	nCtx := o.ContextLength
	if nCtx <= 0 || nCtx > w.H.NCtxTrain {
		nCtx = w.H.NCtxTrain
	}
	r := &bertRunner{w: w, h: w.H, b: w.Bert, nCtx: nCtx, vec: map[*Tensor][]float32{}}
	toF32 := func(t *Tensor) error {
		if t == nil || r.vec[t] != nil {
			return nil
		}
		n := t.Dims[0]
		v := make([]float32, n)
		rb, err := ggml.RowBytes(t.Type, n)
		if err != nil {
			return fmt.Errorf("bert: %s: %w", t.Name, err)
		}
		if err := ggml.Dequantize(t.Type, t.Data[:rb], v); err != nil {
			return fmt.Errorf("bert: %s: %w", t.Name, err)
		}
		r.vec[t] = v
		return nil
	}
	vecs := []*Tensor{r.b.EmbNorm, r.b.EmbNormB, r.b.TypeEmbd}
	for i := range r.b.Layers {
		l := &r.b.Layers[i]
		vecs = append(vecs, l.Bq, l.Bk, l.Bv, l.Bo, l.AttnNorm, l.AttnNormB, l.UpB, l.DownB, l.OutNorm, l.OutNormB)
	}
	for _, t := range vecs {
		if err := toF32(t); err != nil {
			return nil, err
		}
	}
	r.pool = cpu.NewPool(o.Threads)
	return r, nil
}

// ForwardBatch refuses: an encoder has no logits.
func (r *bertRunner) ForwardBatch(items []Item) error {
	return fmt.Errorf("%w (architecture bert)", ErrNoGeneration)
}

// CopyKV refuses: an encoder keeps no KV cache.
func (r *bertRunner) CopyKV(dst, src int32, n int) error {
	return fmt.Errorf("%w: bert keeps no KV cache", ErrNoGeneration)
}

// MemBytes is the scratch the runner holds.
func (r *bertRunner) MemBytes() int64 {
	n := len(r.x) + len(r.t1) + len(r.q) + len(r.k) + len(r.v) + len(r.att) + len(r.ff) + len(r.scores)
	for _, v := range r.vec {
		n += len(v)
	}
	return 4*int64(n) + int64(len(r.qa))
}

// Close stops the worker pool.
func (r *bertRunner) Close() error {
	if r.pool != nil {
		r.pool.Close()
		r.pool = nil
	}
	return nil
}

// grow sizes the scratch for n tokens.
func (r *bertRunner) grow(n int) {
	d, ff := r.h.NEmbd, r.h.NFF
	if len(r.x) >= n*d && len(r.ff) >= n*ff {
		return
	}
	r.x = make([]float32, n*d)
	r.t1 = make([]float32, n*d)
	r.q = make([]float32, n*d)
	r.k = make([]float32, n*d)
	r.v = make([]float32, n*d)
	r.att = make([]float32, n*d)
	r.ff = make([]float32, n*ff)
	r.scores = make([]float32, r.pool.Threads()*n)
}

// Embed runs the encoder over tokens and returns the pooled,
// L2-normalised embedding.
func (r *bertRunner) Embed(tokens []int32) ([]float32, error) {
	n, d := len(tokens), r.h.NEmbd
	if n == 0 {
		return nil, fmt.Errorf("bert: embedding an empty input")
	}
	if n > r.nCtx {
		return nil, fmt.Errorf("bert: %d tokens exceed the context of %d", n, r.nCtx)
	}
	for i, id := range tokens {
		if id < 0 || int(id) >= r.h.NVocab {
			return nil, fmt.Errorf("bert: token %d at %d is outside the vocabulary of %d", id, i, r.h.NVocab)
		}
	}
	r.grow(n)
	x := r.x[:n*d]

	// embeddings: token + type 0 + position, then LayerNorm
	row := make([]float32, d)
	typ := r.vec[r.b.TypeEmbd]
	for i, id := range tokens {
		xi := x[i*d : (i+1)*d]
		if err := tensorRow(r.w.TokEmbd, int(id), xi); err != nil {
			return nil, err
		}
		if err := tensorRow(r.b.PosEmbd, i, row); err != nil {
			return nil, err
		}
		for j := range xi {
			xi[j] += row[j]
			if typ != nil {
				xi[j] += typ[j]
			}
		}
		layerNorm(xi, r.vec[r.b.EmbNorm], r.vec[r.b.EmbNormB], r.h.NormEps)
	}

	for li := range r.b.Layers {
		l := &r.b.Layers[li]
		q, k, v := r.q[:n*d], r.k[:n*d], r.v[:n*d]
		if err := r.matmul(l.Wq, x, n, q, r.vec[l.Bq]); err != nil {
			return nil, err
		}
		if err := r.matmul(l.Wk, x, n, k, r.vec[l.Bk]); err != nil {
			return nil, err
		}
		if err := r.matmul(l.Wv, x, n, v, r.vec[l.Bv]); err != nil {
			return nil, err
		}
		att := r.att[:n*d]
		r.attention(q, k, v, att, n)
		a := r.t1[:n*d]
		if err := r.matmul(l.Wo, att, n, a, r.vec[l.Bo]); err != nil {
			return nil, err
		}
		for i := range n {
			xi, ai := x[i*d:(i+1)*d], a[i*d:(i+1)*d]
			for j := range xi {
				xi[j] += ai[j]
			}
			layerNorm(xi, r.vec[l.AttnNorm], r.vec[l.AttnNormB], r.h.NormEps)
		}
		ff := r.ff[:n*r.h.NFF]
		if err := r.matmul(l.Up, x, n, ff, r.vec[l.UpB]); err != nil {
			return nil, err
		}
		for i, f := range ff {
			ff[i] = gelu(f)
		}
		if err := r.matmul(l.Down, ff, n, a, r.vec[l.DownB]); err != nil {
			return nil, err
		}
		for i := range n {
			xi, ai := x[i*d:(i+1)*d], a[i*d:(i+1)*d]
			for j := range xi {
				xi[j] += ai[j]
			}
			layerNorm(xi, r.vec[l.OutNorm], r.vec[l.OutNormB], r.h.NormEps)
		}
	}

	out := make([]float32, d)
	switch r.b.Pooling {
	case PoolCLS:
		copy(out, x[:d])
	case PoolLast:
		copy(out, x[(n-1)*d:])
	default:
		sum := make([]float64, d)
		for i := range n {
			for j, f := range x[i*d : (i+1)*d] {
				sum[j] += float64(f)
			}
		}
		for j := range out {
			out[j] = float32(sum[j] / float64(n))
		}
	}
	normalizeL2(out)
	return out, nil
}

// matmul computes out[t] = W·in[t] (+ bias) for the n rows of in: each
// row quantized once to W's activation type, each weight row dotted
// against every token, weight rows split over the pool.
func (r *bertRunner) matmul(w *Tensor, in []float32, n int, out []float32, bias []float32) error {
	cols, rows := w.Dims[0], w.Dims[1]
	at := ggml.VecDotType(w.Type)
	ab, err := ggml.RowBytes(at, cols)
	if err != nil {
		return fmt.Errorf("bert: %s: %w", w.Name, err)
	}
	if len(r.qa) < n*ab {
		r.qa = make([]byte, n*ab)
	}
	for t := range n {
		if err := ggml.QuantizeActivations(at, in[t*cols:(t+1)*cols], r.qa[t*ab:(t+1)*ab]); err != nil {
			return fmt.Errorf("bert: %s: %w", w.Name, err)
		}
	}
	rb, err := ggml.RowBytes(w.Type, cols)
	if err != nil {
		return fmt.Errorf("bert: %s: %w", w.Name, err)
	}
	qa := r.qa[:n*ab]
	errs := make([]error, r.pool.Threads())
	r.pool.Run(func(ith, nth int) {
		lo, hi := cpu.Split(rows, ith, nth)
		dots := make([]float32, n)
		for row := lo; row < hi; row++ {
			if err := ggml.VecDotN(w.Type, cols, w.Data[row*rb:(row+1)*rb], qa, ab, dots); err != nil {
				errs[ith] = err
				return
			}
			b := float32(0)
			if bias != nil {
				b = bias[row]
			}
			for t, v := range dots {
				out[t*rows+row] = v + b
			}
		}
	})
	for _, err := range errs {
		if err != nil {
			return fmt.Errorf("bert: %s: %w", w.Name, err)
		}
	}
	return nil
}

// attention computes, per head, every token's softmax-weighted mix of all
// tokens' values (bidirectional, no mask), heads split over the pool.
func (r *bertRunner) attention(q, k, v, out []float32, n int) {
	d, hd, nh := r.h.NEmbd, r.h.HeadDim, r.h.NHead
	scale := float32(1 / math.Sqrt(float64(hd)))
	r.pool.Run(func(ith, nth int) {
		sc := r.scores[ith*n : (ith+1)*n]
		lo, hi := cpu.Split(nh*n, ith, nth)
		for job := lo; job < hi; job++ {
			hh, i := job/n, job%n
			qi := q[i*d+hh*hd : i*d+(hh+1)*hd]
			mx := float32(math.Inf(-1))
			for j := range n {
				s := cpu.Dot(qi, k[j*d+hh*hd:j*d+(hh+1)*hd]) * scale
				sc[j] = s
				mx = max(mx, s)
			}
			var sum float32
			for j := range n {
				e := float32(math.Exp(float64(sc[j] - mx)))
				sc[j] = e
				sum += e
			}
			o := out[i*d+hh*hd : i*d+(hh+1)*hd]
			clear(o)
			for j := range n {
				cpu.Axpy(sc[j]/sum, v[j*d+hh*hd:j*d+(hh+1)*hd], o)
			}
		}
	})
}

// tensorRow dequantizes row i of a matrix into dst.
func tensorRow(t *Tensor, i int, dst []float32) error {
	rb, err := ggml.RowBytes(t.Type, t.Dims[0])
	if err != nil {
		return fmt.Errorf("%s: %w", t.Name, err)
	}
	if err := ggml.Dequantize(t.Type, t.Data[i*rb:(i+1)*rb], dst); err != nil {
		return fmt.Errorf("%s row %d: %w", t.Name, i, err)
	}
	return nil
}

// layerNorm normalises x to mean 0 and variance 1, then scales by w and
// shifts by b.
func layerNorm(x, w, b []float32, eps float32) {
	var mean float64
	for _, f := range x {
		mean += float64(f)
	}
	mean /= float64(len(x))
	var vr float64
	for _, f := range x {
		dv := float64(f) - mean
		vr += dv * dv
	}
	vr /= float64(len(x))
	inv := 1 / math.Sqrt(vr+float64(eps))
	for i, f := range x {
		x[i] = float32((float64(f)-mean)*inv)*w[i] + b[i]
	}
}

// normalizeL2 scales v to unit Euclidean length (a zero vector stays zero).
func normalizeL2(v []float32) {
	var s float64
	for _, f := range v {
		s += float64(f) * float64(f)
	}
	if s == 0 {
		return
	}
	inv := 1 / math.Sqrt(s)
	for i, f := range v {
		v[i] = float32(float64(f) * inv)
	}
}

// bertBackend gives bert models their CPU runner, whatever backend the
// load asked for (the CUDA backend runs decoders only). Every input is its
// own pass, so the KV pool the model keeps is a formality of one block
// per sequence.
type bertBackend struct{}

func (bertBackend) Name() string { return "cpu" }

func (bertBackend) BlockSize(nCtx int) int { return nCtx }

func (bertBackend) NewRunner(w *Weights, o RunnerOptions) (Runner, error) {
	return newBertRunner(w, o)
}

// bertSyntheticTensors lists a synthetic bert model's tensors in GGUF
// order, with add and vec of SyntheticTensors.
func bertSyntheticTensors(h Hparams, add func(name string, layer int, in, rows int) error,
	vec func(name string, layer, n int, scale, bias float32)) error {
	d, f := h.NEmbd, h.NFF
	var err error
	try := func(name string, layer, in, rows int) {
		if err == nil {
			err = add(name, layer, in, rows)
		}
	}
	try("token_embd.weight", -1, d, h.NVocab)
	try("token_types.weight", -1, d, 2)
	try("position_embd.weight", -1, d, h.NCtxTrain)
	vec("token_embd_norm.weight", -1, d, 0.1, 1)
	vec("token_embd_norm.bias", -1, d, 0.1, 0)
	for l := range h.NLayer {
		p := fmt.Sprintf("blk.%d.", l)
		for _, m := range []string{"attn_q", "attn_k", "attn_v", "attn_output"} {
			try(p+m+".weight", l, d, d)
			vec(p+m+".bias", l, d, 0.1, 0)
		}
		vec(p+"attn_output_norm.weight", l, d, 0.1, 1)
		vec(p+"attn_output_norm.bias", l, d, 0.1, 0)
		try(p+"ffn_up.weight", l, d, f)
		vec(p+"ffn_up.bias", l, f, 0.1, 0)
		try(p+"ffn_down.weight", l, f, d)
		vec(p+"ffn_down.bias", l, d, 0.1, 0)
		vec(p+"layer_output_norm.weight", l, d, 0.1, 1)
		vec(p+"layer_output_norm.bias", l, d, 0.1, 0)
	}
	return err
}

// bertSyntheticWeights builds a synthetic bert model in memory from its
// tensor list.
func bertSyntheticWeights(s SyntheticSpec, h Hparams, ts []SyntheticTensor) (*Weights, error) {
	b := &BertWeights{Layers: make([]BertLayer, h.NLayer), Pooling: PoolMean}
	w := &Weights{H: h, Bert: b}
	for _, st := range ts {
		t, err := syntheticTensor(s, st)
		if err != nil {
			return nil, err
		}
		var dst **Tensor
		if st.Layer < 0 {
			dst = map[string]**Tensor{"token_embd.weight": &w.TokEmbd, "token_types.weight": &b.TypeEmbd,
				"position_embd.weight": &b.PosEmbd, "token_embd_norm.weight": &b.EmbNorm, "token_embd_norm.bias": &b.EmbNormB}[st.Name]
		} else {
			l := &b.Layers[st.Layer]
			dst = map[string]**Tensor{
				"attn_q.weight": &l.Wq, "attn_q.bias": &l.Bq, "attn_k.weight": &l.Wk, "attn_k.bias": &l.Bk,
				"attn_v.weight": &l.Wv, "attn_v.bias": &l.Bv, "attn_output.weight": &l.Wo, "attn_output.bias": &l.Bo,
				"attn_output_norm.weight": &l.AttnNorm, "attn_output_norm.bias": &l.AttnNormB,
				"ffn_up.weight": &l.Up, "ffn_up.bias": &l.UpB, "ffn_down.weight": &l.Down, "ffn_down.bias": &l.DownB,
				"layer_output_norm.weight": &l.OutNorm, "layer_output_norm.bias": &l.OutNormB,
			}[strings.TrimPrefix(st.Name, fmt.Sprintf("blk.%d.", st.Layer))]
		}
		if dst == nil {
			return nil, fmt.Errorf("BUG: synthetic tensor %s has no place in BertWeights", st.Name)
		}
		*dst = t
	}
	if err := w.validateBert(); err != nil {
		return nil, fmt.Errorf("synthetic model: %w", err)
	}
	return w, nil
}

// BertSyntheticVocab is a small WordPiece vocabulary in GGUF's
// phantom-space form for synthetic bert models: [PAD] [UNK] [CLS] [SEP]
// [MASK], every printable ASCII character as a word start (▁c) and, for
// letters and digits, as a continuation, then a few whole words. Types
// are GGUF token types (3 control, 1 normal).
func BertSyntheticVocab() (tokens []string, types []int32) {
	tokens = []string{"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"}
	for c := '!'; c <= '~'; c++ {
		tokens = append(tokens, "▁"+string(c))
	}
	for c := '!'; c <= '~'; c++ {
		if unicode.IsLetter(c) || unicode.IsDigit(c) {
			tokens = append(tokens, string(c))
		}
	}
	for _, w := range []string{"the", "hello", "world", "quick", "brown", "fox", "jumps", "over", "lazy", "dog",
		"embed", "token", "model", "sentence", "search", "query", "document"} {
		tokens = append(tokens, "▁"+w)
	}
	tokens = append(tokens, "ing", "ed", "ings", "er", "ly")
	types = make([]int32, len(tokens))
	for i, t := range tokens {
		types[i] = 1
		if strings.HasPrefix(t, "[") && strings.HasSuffix(t, "]") {
			types[i] = 3
		}
	}
	return tokens, types
}

// EmbeddingOnlyArch reports whether models of arch compute embeddings and
// cannot generate (encoders).
func EmbeddingOnlyArch(arch string) bool { return arch == "bert" }
