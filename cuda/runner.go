package cuda

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"unsafe"

	"helexa/node/engine"
	"helexa/node/ggml"
)

// The matrix-vector kernels run mmvWarps warps per block, each computing
// mmvRowsPerWarp rows (MMV_ROWS in quant.cu).
const (
	mmvWarps       = 4
	mmvRowsPerWarp = 2
	mmvThreads     = 32 * mmvWarps
)

func mmvBlocks(rows int) int {
	per := mmvWarps * mmvRowsPerWarp
	return (rows + per - 1) / per
}

// gemmMinBatch is the chunk size from which prefill runs through cuBLAS
// (below it the matrix-vector kernels, one grid row per token, win).
const gemmMinBatch = 8

// devWeight is a matrix on the device in its file format.
type devWeight struct {
	ptr        devPtr
	typ        ggml.Type
	rows, cols int
	rowBytes   int
	mmv, deq   string // kernel names
	isFloat    bool
}

// devLayer holds one block's weights on the device. Vectors are float32;
// optional ones are 0.
type devLayer struct {
	attnNorm, ffnNorm              devPtr
	bq, bk, bv, qNorm, kNorm       devPtr
	wq, wk, wv, wo, gate, up, down *devWeight
}

// Runner is a model on one GPU: weights, KV cache and scratch, all
// allocated once by NewRunner. Its methods run on the device's worker.
type Runner struct {
	dev  runDevice
	h    engine.Hparams
	o    engine.RunnerOptions
	plan Plan

	allocs  []devPtr // everything to free
	tokEmbd *devWeight
	output  *devWeight
	outNorm devPtr
	layers  []devLayer
	kc, vc  devPtr // (slots, layers, ctx, kvdim) float32
	ropeCS  devPtr // (ctx, rdims/2, 2) float32: cos, sin

	// Scratch for MaxBatch tokens, float32 unless noted.
	x, xb    devPtr             // (B, dim)
	q, att   devPtr             // (B, nhead*hd)
	k, v     devPtr             // (B, kvdim)
	gate, up devPtr             // (B, ff)
	logits   devPtr             // (B, vocab)
	deq      devPtr             // dequantized tile (DequantElems)
	toks     devPtr             // (4B) int32: a pass's row arrays (rowArrays)
	hostToks []byte             // pinned, the same
	graphs   map[[2]int]uintptr // decode graph of each pass shape: rows, logit rows (nil: graphs off)
	parts    []passItem         // a pass's items, reused
	split    []engine.Item      // engine.SplitPasses's parts, reused
	memBytes int64
	closed   bool
}

var _ engine.Runner = (*Runner)(nil)

// NewRunner estimates the model's device memory, checks it against the
// device's real free memory (failing with ErrInsufficientMemory before
// allocating anything), then uploads the weights and allocates the KV
// cache and scratch. On any failure everything allocated is freed.
func (b *Backend) NewRunner(w *engine.Weights, o engine.RunnerOptions) (engine.Runner, error) {
	o, err := slotLayout(o)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", b.Name(), err)
	}
	plan, err := Estimate(w, o)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", b.Name(), err)
	}
	var r *Runner
	err = b.exec(func() error {
		var err error
		r, err = loadRunner(backendDevice{b}, w, o, plan, b.o.Reserve)
		if err == nil && b.o.Graphs {
			err = r.setGraphs(true)
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("%s: loading model: %w", b.Name(), err)
	}
	return r, nil
}

// loadRunner checks plan against dev's free memory (less reserve) before
// allocating anything, then loads.
func loadRunner(dev runDevice, w *engine.Weights, o engine.RunnerOptions, plan Plan, reserve int64) (*Runner, error) {
	free, err := dev.freeMemory()
	if err != nil {
		return nil, err
	}
	if err := Fits(plan, free, reserve); err != nil {
		return nil, err
	}
	return newRunner(dev, w, o, plan)
}

// newRunner uploads w and allocates the runner's state on dev (from the
// device's worker); on failure it frees what it allocated.
func newRunner(dev runDevice, w *engine.Weights, o engine.RunnerOptions, plan Plan) (*Runner, error) {
	r := &Runner{dev: dev, h: w.H, o: o, plan: plan}
	if err := r.load(w); err != nil {
		_ = r.free()
		return nil, err
	}
	return r, nil
}

func (r *Runner) alloc(n int64) (devPtr, error) {
	p, err := r.dev.alloc(n)
	if err != nil {
		return 0, err
	}
	r.allocs = append(r.allocs, p)
	r.memBytes += n
	return p, nil
}

// free releases every allocation (on the worker).
func (r *Runner) free() error {
	_ = r.setGraphs(false)
	var first error
	for _, p := range r.allocs {
		if err := r.dev.free(p); err != nil && first == nil {
			first = err
		}
	}
	r.allocs = nil
	if r.hostToks != nil {
		if err := r.dev.freeHost(r.hostToks); err != nil && first == nil {
			first = err
		}
		r.hostToks = nil
	}
	r.memBytes = 0
	return first
}

func (r *Runner) uploadMatrix(t *engine.Tensor) (*devWeight, error) {
	rb, err := rowBytes(t.Type, t.Dims[0])
	if err != nil {
		return nil, fmt.Errorf("%s: %w", t.Name, err)
	}
	p, err := r.alloc(int64(len(t.Data)))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", t.Name, err)
	}
	if err := r.dev.write(p, t.Data); err != nil {
		return nil, fmt.Errorf("uploading %s: %w", t.Name, err)
	}
	s := quantKernelSuffix[t.Type]
	return &devWeight{ptr: p, typ: t.Type, rows: t.Rows(), cols: t.Dims[0], rowBytes: rb,
		mmv: "mmv_" + s, deq: "dequant_" + s, isFloat: blockShape[t.Type][0] == 1}, nil
}

func (r *Runner) uploadFloats(v []float32) (devPtr, error) {
	p, err := r.alloc(int64(4 * len(v)))
	if err != nil {
		return 0, err
	}
	return p, r.dev.write(p, f32Bytes(v))
}

func (r *Runner) uploadVector(t *engine.Tensor) (devPtr, error) {
	if t == nil {
		return 0, nil
	}
	v, err := toF32(t)
	if err != nil {
		return 0, err
	}
	p, err := r.uploadFloats(v)
	if err != nil {
		return 0, fmt.Errorf("uploading %s: %w", t.Name, err)
	}
	return p, nil
}

// load runs on the worker.
func (r *Runner) load(w *engine.Weights) error {
	var err error
	if r.tokEmbd, err = r.uploadMatrix(w.TokEmbd); err != nil {
		return err
	}
	if w.Output == w.TokEmbd {
		r.output = r.tokEmbd
	} else if r.output, err = r.uploadMatrix(w.Output); err != nil {
		return err
	}
	if r.outNorm, err = r.uploadVector(w.OutNorm); err != nil {
		return err
	}
	r.layers = make([]devLayer, len(w.Layers))
	for i := range w.Layers {
		l, dl := &w.Layers[i], &r.layers[i]
		for _, m := range []struct {
			dst **devWeight
			t   *engine.Tensor
		}{{&dl.wq, l.Wq}, {&dl.wk, l.Wk}, {&dl.wv, l.Wv}, {&dl.wo, l.Wo}, {&dl.gate, l.FFNGate}, {&dl.up, l.FFNUp}, {&dl.down, l.FFNDown}} {
			if *m.dst, err = r.uploadMatrix(m.t); err != nil {
				return err
			}
		}
		for _, v := range []struct {
			dst *devPtr
			t   *engine.Tensor
		}{{&dl.attnNorm, l.AttnNorm}, {&dl.ffnNorm, l.FFNNorm}, {&dl.bq, l.Bq}, {&dl.bk, l.Bk}, {&dl.bv, l.Bv}, {&dl.qNorm, l.QNorm}, {&dl.kNorm, l.KNorm}} {
			if *v.dst, err = r.uploadVector(v.t); err != nil {
				return err
			}
		}
	}
	h, o, p := r.h, r.o, r.plan
	kvdim := int64(h.NHeadKV * h.HeadDim)
	if r.kc, err = r.alloc(p.KVBytes / 2); err != nil {
		return err
	}
	if r.vc, err = r.alloc(p.KVBytes / 2); err != nil {
		return err
	}
	for _, c := range []devPtr{r.kc, r.vc} {
		if err := r.dev.zero(c, p.KVBytes/2); err != nil {
			return err
		}
	}
	if r.ropeCS, err = r.uploadFloats(ropeTable(h, o.ContextLength)); err != nil {
		return err
	}
	B := int64(p.MaxBatch)
	qdim, dim, ff := int64(h.NHead*h.HeadDim), int64(h.NEmbd), int64(h.NFF)
	for _, s := range []struct {
		dst *devPtr
		n   int64
	}{{&r.x, B * dim}, {&r.xb, B * dim}, {&r.q, B * qdim}, {&r.att, B * qdim}, {&r.k, B * kvdim}, {&r.v, B * kvdim},
		{&r.gate, B * ff}, {&r.up, B * ff}, {&r.logits, B * int64(h.NVocab)}, {&r.deq, p.DequantElems}, {&r.toks, rowArrayInts * B}} {
		if *s.dst, err = r.alloc(4 * s.n); err != nil {
			return err
		}
	}
	if r.hostToks, err = r.dev.hostBuffer(int(4 * rowArrayInts * B)); err != nil {
		return err
	}
	return r.dev.sync()
}

// MemBytes is the device memory the runner holds.
func (r *Runner) MemBytes() int64 { return r.memBytes }

// Close frees the runner's device memory (on the worker).
func (r *Runner) Close() error {
	return r.dev.exec(func() error {
		if r.closed {
			return nil
		}
		r.closed = true
		return r.free()
	})
}

// ErrClosedRunner is returned by ForwardBatch (and Forward) after Close.
var ErrClosedRunner = errors.New("runner closed")

// checkForward validates one item of a batch (its slot, tokens, first
// position, logits buffer) before anything touches the device: bad input
// gets a clear error and changes nothing.
func checkForward(h engine.Hparams, o engine.RunnerOptions, slot int, tokens []int32, pos int, logits []float32, all bool) error {
	switch {
	case slot < 0 || slot >= o.Slots:
		return fmt.Errorf("slot %d out of range [0, %d)", slot, o.Slots)
	case len(tokens) == 0:
		return errors.New("no tokens to run")
	case pos < 0 || pos+len(tokens) > o.ContextLength:
		return fmt.Errorf("positions %d..%d exceed the context of %d", pos, pos+len(tokens), o.ContextLength)
	}
	for i, t := range tokens {
		if t < 0 || int(t) >= h.NVocab {
			return fmt.Errorf("token %d at index %d is outside the vocabulary of %d", t, i, h.NVocab)
		}
	}
	want := h.NVocab
	if all {
		want *= len(tokens)
	}
	if logits != nil && len(logits) < want {
		return fmt.Errorf("logits buffer holds %d floats, need %d", len(logits), want)
	}
	return nil
}

// BlockSize implements engine.Backend: the CUDA runner keeps each
// sequence's cache in one piece (a slot), so a block is a whole context.
func (b *Backend) BlockSize(nCtx int) int { return nCtx }

// slotLayout checks that o asks for one KV block per sequence and sets
// Slots to the block count.
func slotLayout(o engine.RunnerOptions) (engine.RunnerOptions, error) {
	bs, blocks := o.KVLayout()
	if bs != o.ContextLength {
		return o, fmt.Errorf("KV blocks of %d positions: the CUDA runner keeps one block of the whole context (%d) per sequence", bs, o.ContextLength)
	}
	o.BlockSize, o.Blocks, o.Slots = bs, blocks, blocks
	return o, nil
}

// ForwardBatch implements engine.Runner: the items' rows go through in
// passes of at most Plan.MaxBatch rows (an item longer than what a pass
// has left continues in the next). A pass runs the matrix products, norms
// and the embedding gather once over all its rows; RoPE, the KV-cache
// write and attention read each row's position and slot (Blocks[0]) from
// arrays copied to the device with the token ids, so a pass costs the same
// launches per layer whatever its number of items. The output head runs
// only on the rows whose logits are wanted. Every item is checked before
// anything is queued: a bad one fails the call and nothing is written.
func (r *Runner) ForwardBatch(items []engine.Item) error {
	if err := checkItems(r.h, r.o, items); err != nil {
		return err
	}
	return r.dev.exec(func() error {
		if r.closed {
			return ErrClosedRunner
		}
		var err error
		r.split, err = engine.SplitPasses(items, r.plan.MaxBatch, r.h.NVocab, r.split, r.passItems)
		clear(r.split[:cap(r.split)]) // hold no caller's buffers
		clear(r.parts[:cap(r.parts)])
		return err
	})
}

// passItems runs one pass of engine.SplitPasses's parts (slot: each
// part's one block).
func (r *Runner) passItems(parts []engine.Item, rows int) error {
	ps := r.parts[:0]
	for _, p := range parts {
		ps = append(ps, passItem{slot: p.Blocks[0], pos: p.Pos, tokens: p.Tokens, logits: p.Logits, all: p.All})
	}
	r.parts = ps
	return r.pass(ps, rows)
}

// passItem is one item's share of a pass: tokens at positions pos.. of
// slot's sequence; logits (nil: none wanted) receives every row's logits
// when all, else the last row's.
type passItem struct {
	slot   int32
	pos    int
	tokens []int32
	logits []float32
	all    bool
}

// checkItems validates a batch as checkForward does each item, and that no
// two items write the same slot: each item's rows would otherwise race in
// the KV-cache write and read keys the other has not written yet.
func checkItems(h engine.Hparams, o engine.RunnerOptions, items []engine.Item) error {
	for i, it := range items {
		if len(it.Blocks) == 0 {
			return fmt.Errorf("batch item %d: no KV block", i)
		}
		if err := checkForward(h, o, int(it.Blocks[0]), it.Tokens, it.Pos, it.Logits, it.All); err != nil {
			return fmt.Errorf("batch item %d: %w", i, err)
		}
		for j := range i {
			if items[j].Blocks[0] == it.Blocks[0] {
				return fmt.Errorf("batch items %d and %d both write slot %d", j, i, it.Blocks[0])
			}
		}
	}
	return nil
}

// rowArrayInts is the int32s per row of a pass's arrays (rowArrays).
const rowArrayInts = 4

// rowArrays are the int32 arrays a pass of n rows copies to the device
// (r.toks) in one piece, each n long but the last: token ids, positions,
// slots, then the rows whose logits are wanted.
func rowArrays(base devPtr, n int) (ids, pos, slots, out devPtr) {
	s := devPtr(4 * n)
	return base, base + s, base + 2*s, base + 3*s
}

// pass runs one pass of n <= MaxBatch rows made of parts, then copies the
// wanted logits into the parts' buffers.
func (r *Runner) pass(parts []passItem, n int) error {
	d := r.dev
	put := func(i int, v int32) { binary.LittleEndian.PutUint32(r.hostToks[4*i:], uint32(v)) }
	row, nout := 0, 0
	for _, p := range parts {
		for j, t := range p.tokens {
			put(row, t)
			put(n+row, int32(p.pos+j))
			put(2*n+row, p.slot)
			if p.all || (p.logits != nil && j == len(p.tokens)-1) {
				put(3*n+nout, int32(row))
				nout++
			}
			row++
		}
	}
	// The rows' arrays go to the device first; every kernel reads them
	// there, so a captured graph serves any pass of the same shape.
	if err := d.write(r.toks, r.hostToks[:4*(3*n+nout)]); err != nil {
		return err
	}
	if r.graphs != nil && n < gemmMinBatch {
		key := [2]int{n, nout}
		g, ok := r.graphs[key]
		if !ok {
			var err error
			if g, err = d.capture(func() error { return r.enqueue(n, nout) }); err != nil {
				return fmt.Errorf("capturing the decode graph of %d rows: %w", n, err)
			}
			r.graphs[key] = g
		}
		if err := d.launchGraph(g); err != nil {
			return err
		}
	} else if err := r.enqueue(n, nout); err != nil {
		return err
	}
	// The output rows are in the parts' order.
	nv := r.h.NVocab
	o := 0
	for _, p := range parts {
		if p.logits == nil {
			continue
		}
		k := 1
		if p.all {
			k = len(p.tokens)
		}
		if err := d.download(f32Bytes(p.logits[:k*nv]), r.logits+devPtr(4*o*nv)); err != nil {
			return err
		}
		o += k
	}
	return d.sync()
}

// CopyKV implements engine.Runner: the first n positions of slot src's
// cache, every layer, go to slot dst.
func (r *Runner) CopyKV(dst, src int32, n int) error {
	if err := engine.CheckCopyKV(dst, src, n, r.o.Slots, r.o.ContextLength); err != nil {
		return err
	}
	kvdim := int64(r.h.NHeadKV * r.h.HeadDim)
	kvLayer := int64(r.o.ContextLength) * kvdim * 4
	return r.dev.exec(func() error {
		if r.closed {
			return ErrClosedRunner
		}
		for li := range int64(r.h.NLayer) {
			d := devPtr((int64(dst)*int64(r.h.NLayer) + li) * kvLayer)
			s := devPtr((int64(src)*int64(r.h.NLayer) + li) * kvLayer)
			for _, base := range []devPtr{r.kc, r.vc} {
				if err := r.dev.copy(base+d, base+s, int64(n)*kvdim*4); err != nil {
					return err
				}
			}
		}
		return r.dev.sync()
	})
}

// Forward runs tokens at positions pos.. of slot's sequence: a batch of
// one item. If all is false, logits (nil: none wanted) receives the last
// token's logits; if true, every token's.
func (r *Runner) Forward(slot int, tokens []int32, pos int, logits []float32, all bool) error {
	return engine.ForwardSlot(r, slot, tokens, pos, logits, all)
}

// setGraphs turns decode graphs on or off (on the worker); off destroys
// the captured ones.
func (r *Runner) setGraphs(on bool) error {
	for _, g := range r.graphs {
		r.dev.destroyGraph(g)
	}
	r.graphs = nil
	if on {
		if err := r.dev.graphs(); err != nil {
			return fmt.Errorf("CUDA graphs unavailable: %w", err)
		}
		r.graphs = map[[2]int]uintptr{}
	}
	return nil
}

// SetGraphs turns decode graphs on or off for this runner.
func (r *Runner) SetGraphs(on bool) error {
	return r.dev.exec(func() error { return r.setGraphs(on) })
}

// enqueue queues the forward pass of the n rows whose arrays are on the
// device (rowArrays): every layer, then, when nout > 0, the output norm
// and projection of the nout rows listed into r.logits.
func (r *Runner) enqueue(n, nout int) error {
	d, h := r.dev, r.h
	dim, hd := h.NEmbd, h.HeadDim
	qdim, kvdim, ff := h.NHead*hd, h.NHeadKV*hd, h.NFF
	eps := h.NormEps
	ids, posv, slots, outRows := rowArrays(r.toks, n)

	// 1. Embedding rows gathered into x.
	if err := r.gather(r.tokEmbd, ids, r.x, n); err != nil {
		return err
	}
	// The cache is (slots, layers, ctx, kvdim): a layer's cache of slot 0
	// starts at li·kvLayer, the next slot's slotStride floats on.
	kvLayer := int64(r.o.ContextLength) * int64(kvdim) * 4
	slotStride := int64(h.NLayer) * int64(r.o.ContextLength) * int64(kvdim)
	for li := range r.layers {
		l := &r.layers[li]
		// 2. Attention norm; Q, K, V projections (+ bias).
		if err := r.rmsnorm(r.x, l.attnNorm, r.xb, n, dim, eps, 0); err != nil {
			return err
		}
		for _, p := range []struct {
			w    *devWeight
			y, b devPtr
			wd   int
		}{{l.wq, r.q, l.bq, qdim}, {l.wk, r.k, l.bk, kvdim}, {l.wv, r.v, l.bv, kvdim}} {
			if err := r.matmul(p.w, r.xb, p.y, n, false); err != nil {
				return err
			}
			if p.b != 0 {
				if err := launch1D(d, "add_bias", int64(n*p.wd), p.y, p.b, int64(n*p.wd), p.wd); err != nil {
					return err
				}
			}
		}
		// 3. Per-head Q/K norms (qwen3).
		if l.qNorm != 0 {
			if err := r.rmsnorm(r.q, l.qNorm, r.q, n*h.NHead, hd, eps, 0); err != nil {
				return err
			}
		}
		if l.kNorm != 0 {
			if err := r.rmsnorm(r.k, l.kNorm, r.k, n*h.NHeadKV, hd, eps, 0); err != nil {
				return err
			}
		}
		// 4. RoPE on Q and K, each row at its own position.
		neox := 0
		if h.RopeStyle == engine.RopeNeoX {
			neox = 1
		}
		half := h.RopeDims / 2
		if err := launch1D(d, "rope", int64(n*(h.NHead+h.NHeadKV)*half), r.q, r.k, r.ropeCS, n, h.NHead, h.NHeadKV, hd, h.RopeDims, posv, neox); err != nil {
			return err
		}
		// 5. K and V into each row's slot and position.
		off := uint64(int64(li) * kvLayer)
		kc, vc := r.kc+off, r.vc+off
		if err := launch1D(d, "kv_write", int64(n*kvdim), r.k, r.v, kc, vc, n, kvdim, posv, slots, slotStride); err != nil {
			return err
		}
		// 6. Attention of each row over its slot's positions 0..pos;
		// output projection added to the residual.
		scale := float32(1 / math.Sqrt(float64(hd)))
		if err := d.launch("attention", h.NHead, n, 256, r.q, kc, vc, r.att, h.NHead, h.NHeadKV, hd, posv, slots, slotStride, scale); err != nil {
			return err
		}
		if err := r.matmul(l.wo, r.att, r.x, n, true); err != nil {
			return err
		}
		// 7. FFN: norm, SwiGLU, down projection added to the residual.
		if err := r.rmsnorm(r.x, l.ffnNorm, r.xb, n, dim, eps, 0); err != nil {
			return err
		}
		if err := r.ffnGLU(l, n, ff); err != nil {
			return err
		}
		if err := r.matmul(l.down, r.gate, r.x, n, true); err != nil {
			return err
		}
	}
	if nout == 0 {
		return nil
	}
	// 8. Output norm of the rows wanted, gathered into xb, and projection.
	if err := r.rmsnorm(r.x, r.outNorm, r.xb, nout, dim, eps, outRows); err != nil {
		return err
	}
	return r.matmul(r.output, r.xb, r.logits, nout, false)
}

// ffnGLU computes gate = silu(xb · gateᵀ) * (xb · upᵀ) into r.gate: one
// fused matrix-vector kernel for small batches when both weights share a
// format, else two products and the SwiGLU kernel.
func (r *Runner) ffnGLU(l *devLayer, n, ff int) error {
	d := r.dev
	if r.useMMV(n) && l.gate.typ == l.up.typ && l.gate.rowBytes == l.up.rowBytes {
		g := l.gate
		return d.launch("mmv_glu_"+quantKernelSuffix[g.typ], mmvBlocks(g.rows), n, mmvThreads,
			g.ptr, l.up.ptr, r.xb, r.gate, g.cols, g.rows, int64(g.rowBytes))
	}
	if err := r.matmul(l.gate, r.xb, r.gate, n, false); err != nil {
		return err
	}
	if err := r.matmul(l.up, r.xb, r.up, n, false); err != nil {
		return err
	}
	return launch1D(d, "swiglu", int64(n*ff), r.gate, r.up, r.gate, int64(n*ff))
}

// useMMV reports whether n tokens go through the matrix-vector kernels
// rather than a GEMM.
func (r *Runner) useMMV(n int) bool { return n < gemmMinBatch || !r.dev.hasGEMM() }

// rmsnorm normalises rows of n floats; with idx non-zero (int32 on the
// device) row i of out is row idx[i] of x.
func (r *Runner) rmsnorm(x, w, out devPtr, rows, n int, eps float32, idx devPtr) error {
	return r.dev.launch("rmsnorm", rows, 1, normThreads(n), x, w, out, n, eps, idx)
}

func normThreads(n int) int {
	return min(256, (n+31)/32*32)
}

// gather dequantizes rows ids (int32 on the device) of w into dst.
func (r *Runner) gather(w *devWeight, ids, dst devPtr, n int) error {
	work := int64(n) * int64(w.cols)
	if !w.isFloat {
		work /= 32
	}
	return launch1D(r.dev, w.deq, work, w.ptr, ids, dst, w.cols, n, int64(w.rowBytes), 0)
}

// matmul computes y (n, rows) = x (n, cols) · wᵀ, adding to y when acc.
// Small batches use the matrix-vector kernel (weights read once per
// token, straight from their blocks); larger ones a cuBLAS GEMM over
// dequantized tiles of w.
func (r *Runner) matmul(w *devWeight, x, y devPtr, n int, acc bool) error {
	d := r.dev
	if r.useMMV(n) {
		a := 0
		if acc {
			a = 1
		}
		return d.launch(w.mmv, mmvBlocks(w.rows), n, mmvThreads, w.ptr, x, y, w.cols, w.rows, int64(w.rowBytes), a)
	}
	beta := float32(0)
	if acc {
		beta = 1
	}
	if w.typ == ggml.F32 {
		return d.gemm(n, w.rows, w.cols, x, w.cols, w.ptr, w.cols, y, w.rows, beta, false)
	}
	tile := max(1, int(r.plan.DequantElems/int64(w.cols)))
	tf32 := !w.isFloat
	for r0 := 0; r0 < w.rows; r0 += tile {
		tr := min(tile, w.rows-r0)
		work := int64(tr) * int64(w.cols)
		if !w.isFloat {
			work /= 32
		}
		if err := launch1D(d, w.deq, work, w.ptr, uint64(0), r.deq, w.cols, tr, int64(w.rowBytes), r0); err != nil {
			return err
		}
		if err := d.gemm(n, tr, w.cols, x, w.cols, r.deq, w.cols, y+uint64(4*r0), w.rows, beta, tf32); err != nil {
			return err
		}
	}
	return nil
}

// f32Bytes views a float32 slice as bytes (little-endian hosts).
func f32Bytes(v []float32) []byte {
	if len(v) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&v[0])), 4*len(v))
}

// toF32 converts a norm or bias vector to float32.
func toF32(t *engine.Tensor) ([]float32, error) {
	n := int(elems(t))
	out := make([]float32, n)
	switch t.Type {
	case ggml.F32:
		if len(t.Data) < 4*n {
			return nil, fmt.Errorf("%s: %d bytes for %d floats", t.Name, len(t.Data), n)
		}
		for i := range out {
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(t.Data[4*i:]))
		}
	case ggml.F16, ggml.BF16:
		if len(t.Data) < 2*n {
			return nil, fmt.Errorf("%s: %d bytes for %d halves", t.Name, len(t.Data), n)
		}
		for i := range out {
			u := binary.LittleEndian.Uint16(t.Data[2*i:])
			if t.Type == ggml.BF16 {
				out[i] = math.Float32frombits(uint32(u) << 16)
			} else {
				out[i] = halfToFloat(u)
			}
		}
	default:
		return nil, fmt.Errorf("%s: vector of type %d (want F32, F16 or BF16)", t.Name, t.Type)
	}
	return out, nil
}

// halfToFloat converts an IEEE binary16 value.
func halfToFloat(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := int32(h>>10) & 0x1f
	mant := uint32(h) & 0x3ff
	switch {
	case exp == 0 && mant == 0:
		return math.Float32frombits(sign)
	case exp == 0: // subnormal: mant · 2⁻²⁴
		v := float32(mant) / (1 << 24)
		if sign != 0 {
			v = -v
		}
		return v
	case exp == 31:
		return math.Float32frombits(sign | 0xff<<23 | mant<<13)
	}
	return math.Float32frombits(sign | uint32(exp-15+127)<<23 | mant<<13)
}

// ropeInvFreq returns the inverse frequency of each rotated pair:
// θ^(-2i/rdims), divided by the model's per-pair factors when it has them
// and rescaled by Llama 3's rule when configured.
func ropeInvFreq(h engine.Hparams) []float64 {
	half := h.RopeDims / 2
	inv := make([]float64, half)
	theta := float64(h.RopeTheta)
	if theta == 0 {
		theta = 10000
	}
	sc := h.RopeScaling
	for i := range inv {
		f := math.Pow(theta, -2*float64(i)/float64(h.RopeDims))
		if i < len(h.RopeFreqs) && h.RopeFreqs[i] != 0 {
			f /= float64(h.RopeFreqs[i])
		} else if sc.Factor != 0 && sc.OrigCtx > 0 && sc.HighFreqFactor != sc.LowFreqFactor {
			wavelen := 2 * math.Pi / f
			lowWave := float64(sc.OrigCtx) / float64(sc.LowFreqFactor)
			highWave := float64(sc.OrigCtx) / float64(sc.HighFreqFactor)
			switch {
			case wavelen < highWave:
			case wavelen > lowWave:
				f /= float64(sc.Factor)
			default:
				s := (float64(sc.OrigCtx)/wavelen - float64(sc.LowFreqFactor)) / float64(sc.HighFreqFactor-sc.LowFreqFactor)
				f = (1-s)*f/float64(sc.Factor) + s*f
			}
		}
		inv[i] = f
	}
	return inv
}

// ropePos is the position RoPE rotates by: p times the linear scale.
func ropePos(h engine.Hparams, p int) float64 {
	if h.RopeFreqScale != 0 {
		return float64(p) * float64(h.RopeFreqScale)
	}
	return float64(p)
}

// ropeTable is (ctx, rdims/2, 2): cos and sin of pos·freq_i in float64,
// stored as float32.
func ropeTable(h engine.Hparams, ctx int) []float32 {
	inv := ropeInvFreq(h)
	half := len(inv)
	t := make([]float32, ctx*half*2)
	for p := 0; p < ctx; p++ {
		for i, f := range inv {
			s, c := math.Sincos(ropePos(h, p) * f)
			t[2*(p*half+i)] = float32(c)
			t[2*(p*half+i)+1] = float32(s)
		}
	}
	return t
}
