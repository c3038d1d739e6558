package engine

import (
	"errors"
	"fmt"
	"math"
	"unsafe"

	"helexa/node/cpu"
	"helexa/node/ggml"
	"helexa/node/mmapfile"
)

// maxBatch is the most tokens one pass of the CPU forward computes at
// once; longer inputs run in chunks of this many.
const maxBatch = 64

// emulateF16KV rounds the query and the attention weights to half
// precision as they enter the attention products, as llama.cpp's F16
// matmuls against its F16 K/V cache do, so logits track llama.cpp's
// closely. (The cache itself is always half precision.)
const emulateF16KV = true

// CPU is the CPU backend: Go kernels over memory-mapped weights, run on a
// persistent worker pool.
type CPU struct{}

var _ Backend = CPU{}

// Name implements Backend.
func (CPU) Name() string { return "cpu" }

// config holds the dimensions the forward pass uses, derived once.
type config struct {
	dim, nLayer, nHead, nKV, hd, nff, vocab int
	qDim, kvDim                             int // nHead*hd, nKV*hd
	ropeDims                                int
	nCtx, slots                             int
	eps                                     float32
	neox                                    bool
}

// runState is the scratch of one forward pass, allocated once.
type runState struct {
	x      []float32 // (maxBatch, dim) residual stream
	xb     []float32 // (maxBatch, dim) normed input of a sublayer
	q      []float32 // (maxBatch, qDim) queries
	k      []float32 // (maxBatch, kvDim) keys of the new tokens
	v      []float32 // (maxBatch, kvDim) values of the new tokens
	att    []float32 // (maxBatch, qDim) attention output
	hb     []float32 // (maxBatch, nff) FFN gate, then silu(gate)*up
	hb2    []float32 // (maxBatch, nff) FFN up
	scores []float32 // (threads, attnWorkerLen) attention weights and key scratch per worker
	cos    []float32 // (maxBatch, ropeDims/2)
	sin    []float32 // (maxBatch, ropeDims/2)
	qa     []byte    // (maxBatch, qaStride) activations quantized for a matmul
	qp     []byte    // (maxBatch, qpStride) activations prepared for repacked or Q4_0/Q8_0 weights; nil without them
	xr     []float32 // (maxBatch, xrStride) float inputs of F16 (rounded to half) and repacked BF16 weights; nil without
}

// kvCache is one slot's keys and values, in half precision.
type kvCache struct {
	k []uint16 // (layer, nCtx, kvDim)
	v []uint16 // (layer, nCtx, kvDim)
}

// layerF32 holds a layer's small vectors (norm weights, biases) in f32.
type layerF32 struct {
	attnNorm, ffnNorm []float32 // (dim)
	qNorm, kNorm      []float32 // (hd) or nil
	bq                []float32 // (qDim) or nil
	bk, bv            []float32 // (kvDim) or nil
}

type cpuRunner struct {
	w       *Weights
	c       config
	pool    *cpu.Pool
	layers  []layerF32
	outNorm []float32 // (dim)
	// rope: theta of pair i at position p is p*freqScale*scale^i/freqs[i],
	// computed in float32 as ggml does.
	ropeScale, ropeFreqScale float32
	ropeFreqs                []float32 // (ropeDims/2), 1 when absent
	kv                       []kvCache // (slots)
	s                        runState
	qaStride                 int
	xrStride                 int // widest input of an F16 or repacked BF16 weight, padded
	qpStride                 int // widest prepared input of a repacked, Q4_0 or Q8_0 weight, padded

	packMem *mmapfile.Anon // the repacked weights (repack.go); nil without
	mm      mmJob
	attn    attnJob
	// Jobs for the pool, built once so dispatching allocates nothing.
	dotFn, quantFn, attnFn func(ith, nth int)
}

// NewRunner implements Backend.
func (CPU) NewRunner(w *Weights, o RunnerOptions) (Runner, error) {
	h := w.H
	if o.ContextLength <= 0 {
		return nil, errors.New("cpu runner: context length must be positive")
	}
	if o.Slots <= 0 {
		o.Slots = 1
	}
	c := config{
		dim: h.NEmbd, nLayer: h.NLayer, nHead: h.NHead, nKV: h.NHeadKV, hd: h.HeadDim,
		nff: h.NFF, vocab: h.NVocab, qDim: h.NHead * h.HeadDim, kvDim: h.NHeadKV * h.HeadDim,
		ropeDims: h.RopeDims, nCtx: o.ContextLength, slots: o.Slots, eps: h.NormEps,
		neox: h.RopeStyle == RopeNeoX,
	}
	r := &cpuRunner{w: w, c: c}
	var err error
	f32 := func(t *Tensor) []float32 {
		if t == nil || err != nil {
			return nil
		}
		out := make([]float32, t.Rows()*t.Dims[0])
		if e := ggml.Dequantize(t.Type, t.Data, out); e != nil {
			err = fmt.Errorf("reading %s: %w", t.Name, e)
		}
		return out
	}
	r.layers = make([]layerF32, c.nLayer)
	for i := range w.Layers {
		l := &w.Layers[i]
		r.layers[i] = layerF32{attnNorm: f32(l.AttnNorm), ffnNorm: f32(l.FFNNorm), qNorm: f32(l.QNorm), kNorm: f32(l.KNorm),
			bq: f32(l.Bq), bk: f32(l.Bk), bv: f32(l.Bv)}
	}
	r.outNorm = f32(w.OutNorm)
	if err != nil {
		return nil, err
	}
	r.ropeScale = float32(math.Pow(float64(h.RopeTheta), -2/float64(c.ropeDims)))
	r.ropeFreqScale = h.RopeFreqScale
	if r.ropeFreqScale == 0 {
		r.ropeFreqScale = 1
	}
	r.ropeFreqs = make([]float32, c.ropeDims/2)
	for i := range r.ropeFreqs {
		r.ropeFreqs[i] = 1
		if h.RopeFreqs != nil {
			r.ropeFreqs[i] = h.RopeFreqs[i]
		}
	}

	// Activations are quantized per matmul into qa; size it for the
	// widest input row (dim, qDim or nff) in any type a weight asks for.
	for _, t := range w.all() {
		if t == nil || len(t.Dims) != 2 {
			continue
		}
		rb, e := ggml.RowBytes(ggml.VecDotType(t.Type), t.Dims[0])
		if e != nil {
			return nil, fmt.Errorf("tensor %s: %w", t.Name, e)
		}
		r.qaStride = max(r.qaStride, rb)
		if t.Type == ggml.F16 {
			r.xrStride = max(r.xrStride, t.Dims[0])
		}
		if t.Type == ggml.Q4_0 && ggml.PreparedQ4_0(t.Dims[0]) || t.Type == ggml.Q8_0 && ggml.PreparedQ8_0(t.Dims[0]) {
			r.qpStride = max(r.qpStride, ggml.PreparedQ4_0Bytes(t.Dims[0]))
		}
	}

	// Allocation: KV caches first (the big part), then scratch.
	kvLen := c.nLayer * c.nCtx * c.kvDim
	r.kv = make([]kvCache, c.slots)
	for i := range r.kv {
		r.kv[i] = kvCache{k: make([]uint16, kvLen), v: make([]uint16, kvLen)}
	}
	r.pool = cpu.NewPool(o.Threads)
	if err := r.repack(); err != nil {
		r.pool.Close()
		return nil, err
	}
	// Token rows of the activation buffers are padded by a cache line, so
	// that rows of a power-of-two width do not all map to the same L1
	// sets: the R16 kernels read eight of them side by side (measured:
	// F16 at eight tokens ran at 24 GMAC/s on 8 KiB rows, 55 padded).
	if r.qaStride > 0 {
		r.qaStride += 64
	}
	if r.qpStride > 0 {
		r.qpStride += 64
	}
	if r.xrStride > 0 {
		r.xrStride += 16
	}
	B := maxBatch
	r.s = runState{
		x: make([]float32, B*c.dim), xb: make([]float32, B*c.dim),
		q: make([]float32, B*c.qDim), k: make([]float32, B*c.kvDim), v: make([]float32, B*c.kvDim),
		att: make([]float32, B*c.qDim),
		hb:  make([]float32, B*c.nff), hb2: make([]float32, B*c.nff),
		scores: make([]float32, r.pool.Threads()*attnWorkerLen(&c)),
		cos:    make([]float32, B*c.ropeDims/2), sin: make([]float32, B*c.ropeDims/2),
		qa: make([]byte, B*r.qaStride),
	}
	if r.qpStride > 0 {
		r.s.qp = make([]byte, B*r.qpStride)
	}
	if r.xrStride > 0 {
		r.s.xr = make([]float32, B*r.xrStride)
	}
	r.dotFn = r.dotWorker
	r.quantFn = r.quantWorker
	r.attnFn = r.attnWorker
	return r, nil
}

// MemBytes implements Runner. Repacked weights are not counted: they
// stand in for the mapped pages they were copied from, which are released.
func (r *cpuRunner) MemBytes() int64 {
	n := int64(0)
	for _, kv := range r.kv {
		n += 2 * int64(len(kv.k)+len(kv.v))
	}
	s := &r.s
	n += 4 * int64(len(s.x)+len(s.xb)+len(s.q)+len(s.k)+len(s.v)+len(s.att)+len(s.hb)+len(s.hb2)+len(s.scores)+len(s.cos)+len(s.sin)+len(s.xr))
	return n + int64(len(s.qa)) + int64(len(s.qp))
}

// Close implements Runner.
func (r *cpuRunner) Close() error {
	if r.pool != nil {
		r.pool.Close()
		r.pool = nil
	}
	if r.packMem != nil {
		_ = r.packMem.Close()
		r.packMem = nil
		r.mm.packed = nil
	}
	r.kv = nil
	return nil
}

// Forward implements Runner.
func (r *cpuRunner) Forward(slot int, tokens []int32, pos int, logits []float32, all bool) error {
	c := &r.c
	if r.pool == nil {
		return errors.New("forward on a closed runner")
	}
	if err := checkForward(c.slots, c.nCtx, c.vocab, slot, tokens, pos, logits, all); err != nil {
		return err
	}
	for start := 0; start < len(tokens); start += maxBatch {
		end := min(start+maxBatch, len(tokens))
		var out []float32
		switch {
		case all:
			out = logits[start*c.vocab : end*c.vocab]
		case end == len(tokens):
			out = logits[:c.vocab]
		}
		if err := r.forward(slot, tokens[start:end], pos+start, out, all); err != nil {
			return err
		}
	}
	return nil
}

// checkForward validates a forward call's arguments.
func checkForward(slots, nCtx, vocab, slot int, tokens []int32, pos int, logits []float32, all bool) error {
	if slot < 0 || slot >= slots {
		return fmt.Errorf("slot %d out of range [0, %d)", slot, slots)
	}
	if len(tokens) == 0 {
		return errors.New("no tokens to evaluate")
	}
	if pos < 0 || pos+len(tokens) > nCtx {
		return fmt.Errorf("positions %d..%d exceed the context of %d tokens", pos, pos+len(tokens), nCtx)
	}
	for i, t := range tokens {
		if t < 0 || int(t) >= vocab {
			return fmt.Errorf("token %d (at %d) outside the vocabulary of %d", t, i, vocab)
		}
	}
	want := vocab
	if all {
		want = len(tokens) * vocab
	}
	if len(logits) < want {
		return fmt.Errorf("logits buffer holds %d floats, need %d", len(logits), want)
	}
	return nil
}

// f32View returns an F32 tensor's data as floats, without copying; nil
// when the data is not 4-byte aligned.
func f32View(b []byte) []float32 {
	if len(b) < 4 || uintptr(unsafe.Pointer(&b[0]))%4 != 0 {
		return nil
	}
	return unsafe.Slice((*float32)(unsafe.Pointer(&b[0])), len(b)/4)
}
