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

// kvBlock is the CPU backend's KV block size: a multiple of the
// attention kernels' sixteen keys, small enough that sequences waste
// little of the pool and prefixes are shared in useful pieces.
const kvBlock = 64

// BlockSize implements Backend.
func (CPU) BlockSize(int) int { return kvBlock }

// WindowKV implements WindowKVBackend: sliding-window layers can keep
// their keys and values in a cache of their own.
func (CPU) WindowKV() bool { return true }

var _ WindowKVBackend = CPU{}

// config holds the dimensions the forward pass uses, derived once.
type config struct {
	dim, nLayer, nHead, nKV, hd, nff, vocab int
	qDim, kvDim                             int // nHead*hd, nKV*hd
	ropeDims                                int
	nCtx                                    int // most positions of one sequence
	bs, blocks                              int // KV cache block size and count
	winBlocks                               int // blocks of the window layers' cache; 0: none
	nKVLayers, nWinLayers                   int // layers in the main cache and in the window layers'
	eps                                     float32
	neox                                    bool
	attnScale                               float32 // attention score scale
	embedScale                              float32 // token embeddings' factor (1: none)
	softcap                                 float32 // final logit cap; 0: none
	nExpert, nExpertUsed, nffExp            int     // mixture of experts; 0: dense
	normTopK                                bool
}

// runState is the scratch of one forward pass, allocated once.
type runState struct {
	x      []float32 // (maxBatch, dim) residual stream
	xb     []float32 // (maxBatch, dim) normed input of a sublayer
	q      []float32 // (maxBatch, qDim) queries
	k      []float32 // (maxBatch, kvDim) keys of the new tokens
	v      []float32 // (maxBatch, kvDim) values of the new tokens
	att    []float32 // (maxBatch, qDim) attention output
	hb     []float32 // (maxBatch, max(nff, nffExp)) FFN gate, then act(gate)*up
	hb2    []float32 // (maxBatch, max(nff, nffExp)) FFN up
	scores []float32 // (threads, attnWorkerLen) attention weights and key scratch per worker
	qa     []byte    // (maxBatch, qaStride) activations quantized for a matmul
	qp     []byte    // (maxBatch, qpStride) activations prepared for repacked or Q4_0/Q8_0 weights; nil without them
	xr     []float32 // (maxBatch, xrStride) float inputs of F16 (rounded to half) and repacked BF16 weights; nil without
	pos    []int     // (maxBatch) position of each row
	kvIdx  []int     // (maxBatch) offset of each row's K/V in a layer's cache
	kvIdxW []int     // (maxBatch) the same in a window layer's cache (unused without one)
	lrows  []int     // (maxBatch) rows whose logits are wanted
	logits []float32 // (maxBatch, vocab) logits of several items' rows
	items  []attnItem
	sub    []Item // one sub-batch's items

	// row-wise steps queued for the next matmul's workers (layers.go)
	rowOps  [maxRowOps]rowOp
	nRowOps int
	rowN    int // rows the queued steps cover

	// mixture of experts (nil for dense models)
	router []float32 // (maxBatch, nExpert) router probabilities
	sel    []int32   // (maxBatch, nExpertUsed) chosen experts, best first
	selW   []float32 // (maxBatch, nExpertUsed) their weights
	ex     []float32 // (maxBatch, dim) the rows one expert takes, gathered
	exIdx  []int     // (maxBatch) each gathered row's (row, choice) index
	eo     []float32 // (maxBatch, dim) one expert's outputs
	moe    []float32 // (maxBatch, nExpertUsed, dim) weighted outputs per choice
}

// kvCache is the model's keys and values in half precision, in blocks:
// (layer, block, KV head, position in block, head dim), so that one KV
// head's keys (and values) of a block are contiguous rows, which the
// attention of that head streams through. With a window layers' cache,
// the sliding-window layers are in wk, wv, laid out alike over their own
// blocks, and the others in k, v.
type kvCache struct {
	k, v   []uint16
	wk, wv []uint16
}

// layerF32 holds a layer's small vectors (norm weights, biases) in f32.
type layerF32 struct {
	attnNorm, ffnNorm         []float32 // (dim)
	postAttnNorm, postFFNNorm []float32 // (dim) or nil
	qNorm, kNorm              []float32 // (hd) or nil
	bq                        []float32 // (qDim) or nil
	bk, bv                    []float32 // (kvDim) or nil
	window                    int       // sliding window; 0: whole sequence
	win                       bool      // K/V in the window layers' cache
	kvl                       int       // index of the layer in its cache
	rope                      int       // index of the layer's RoPE table
}

type cpuRunner struct {
	w       *Weights
	arch    *archDef
	c       config
	pool    *cpu.Pool
	layers  []layerF32
	outNorm []float32 // (dim)
	// ropes: the RoPE tables, [0] for global layers, [1] for sliding-
	// window layers with their own base.
	ropes    []ropeTable
	kv       kvCache
	kvBlocks int            // blocks in kv (c.blocks, or Embed's scratch)
	winKV    int            // blocks in kv.wk (c.winBlocks, or Embed's scratch)
	kvMem    *mmapfile.Anon // holds kv
	s        runState
	qaStride int
	xrStride int // widest input of an F16 or repacked BF16 weight, padded
	qpStride int // widest prepared input of a repacked, Q4_0 or Q8_0 weight, padded
	// embedSum, during Embed, receives the sum of the final hidden states.
	embedSum []float64
	// routerHook, when set (tests), sees every row's router probabilities
	// and its choice of experts (indices and weights, before their
	// renormalisation) and may change the choice.
	routerHook func(il, pos int, probs []float32, sel []int32, w []float32)

	// bf16Round: repacked BF16 weights take bfloat16 activations
	// (RunnerOptions.BF16Activations, on a CPU with AVX512-BF16)
	bf16Round bool

	packMem *mmapfile.Anon // the repacked weights (repack.go); nil without
	mm      mmJob
	attn    attnJob
	// qkvLayer and qkvN are the layer and rows of the current qkvWorker job.
	qkvLayer, qkvN int
	// Jobs for the pool, built once so dispatching allocates nothing.
	dotFn, quantFn, attnFn, rowsFn, qkvFn func(ith, nth int)
	forwardFn                             func(items []Item, n int) error // r.forward
}

// NewRunner implements Backend.
func (CPU) NewRunner(w *Weights, o RunnerOptions) (Runner, error) {
	h := w.H
	if o.ContextLength <= 0 {
		return nil, errors.New("cpu runner: context length must be positive")
	}
	c := config{
		dim: h.NEmbd, nLayer: h.NLayer, nHead: h.NHead, nKV: h.NHeadKV, hd: h.HeadDim,
		nff: h.NFF, vocab: h.NVocab, qDim: h.NHead * h.HeadDim, kvDim: h.NHeadKV * h.HeadDim,
		ropeDims: h.RopeDims, nCtx: o.ContextLength, eps: h.NormEps,
		neox:      h.RopeStyle == RopeNeoX,
		attnScale: h.AttnScale, embedScale: h.EmbedScale, softcap: h.FinalSoftcap,
		nExpert: h.NExpert, nExpertUsed: h.NExpertUsed, nffExp: h.NFFExp, normTopK: h.ExpertNormTopK,
	}
	if c.attnScale == 0 {
		c.attnScale = float32(1 / math.Sqrt(float64(c.hd)))
	}
	if c.embedScale == 0 {
		c.embedScale = 1
	}
	a, err := lookupArch(h.Arch)
	if err != nil {
		return nil, fmt.Errorf("cpu runner: %w", err)
	}
	c.bs, c.blocks = o.kvLayout()
	if c.bs <= 0 || c.bs%16 != 0 && c.bs != c.nCtx {
		// whole groups of sixteen keys keep the blocked attention sums
		// identical to one pass over the cache
		return nil, fmt.Errorf("cpu runner: KV block size %d is not a multiple of 16", c.bs)
	}
	r := &cpuRunner{w: w, arch: a, c: c, bf16Round: o.BF16Activations && ggml.HaveR16BF16Rounded()}
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
	winKV := o.WindowBlocks > 0 && h.NLayerSWA() > 0
	for i := range w.Layers {
		l := &w.Layers[i]
		lf := &r.layers[i]
		*lf = layerF32{attnNorm: f32(l.AttnNorm), ffnNorm: f32(l.FFNNorm), qNorm: f32(l.QNorm), kNorm: f32(l.KNorm),
			bq: f32(l.Bq), bk: f32(l.Bk), bv: f32(l.Bv), postAttnNorm: f32(l.PostAttnNorm), postFFNNorm: f32(l.PostFFNNorm)}
		if h.LayerSWA(i) {
			lf.window, lf.rope = h.SlidingWindow, 1
		}
		if winKV && lf.window > 0 {
			lf.win, lf.kvl = true, c.nWinLayers
			c.nWinLayers++
		} else {
			lf.kvl = c.nKVLayers
			c.nKVLayers++
		}
	}
	if winKV {
		c.winBlocks = o.WindowBlocks
	}
	r.c = c
	r.outNorm = f32(w.OutNorm)
	if err != nil {
		return nil, err
	}
	r.ropes = []ropeTable{newRopeTable(h.RopeTheta, h.RopeFreqScale, h.RopeFreqs, c.ropeDims)}
	if h.SWA != nil {
		theta := h.RopeThetaSWA
		if theta == 0 {
			theta = h.RopeTheta
		}
		r.ropes = append(r.ropes, newRopeTable(theta, h.RopeFreqScaleSWA, nil, c.ropeDims))
	}

	// Activations are quantized per matmul into qa; size it for the
	// widest input row (dim, qDim or nff) in any type a weight asks for.
	for _, t := range append(w.all(), w.matmulWeights()...) {
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
	// (Fresh memory: pages are touched, and so resident, only as
	// sequences reach them.)
	kvLen := c.nKVLayers * c.blocks * c.bs * c.kvDim
	winLen := c.nWinLayers * c.winBlocks * c.bs * c.kvDim
	kvMem, err := mmapfile.NewAnon(2 * 2 * (kvLen + winLen))
	if err != nil {
		return nil, fmt.Errorf("cpu runner: allocating the KV cache (%d MiB): %w", 4*(kvLen+winLen)>>20, err)
	}
	r.kvMem = kvMem
	all := unsafe.Slice((*uint16)(unsafe.Pointer(&kvMem.Bytes()[0])), 2*(kvLen+winLen))
	r.kv = kvCache{k: all[:kvLen:kvLen], v: all[kvLen : 2*kvLen : 2*kvLen]}
	if winLen > 0 {
		w := all[2*kvLen:]
		r.kv.wk, r.kv.wv = w[:winLen:winLen], w[winLen:]
	}
	r.kvBlocks, r.winKV = c.blocks, c.winBlocks
	r.pool = cpu.NewPool(o.Threads)
	if err := r.repack(); err != nil {
		r.pool.Close()
		_ = r.kvMem.Close()
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
	nff := max(c.nff, c.nffExp)
	r.s = runState{
		x: make([]float32, B*c.dim), xb: make([]float32, B*c.dim),
		q: make([]float32, B*c.qDim), k: make([]float32, B*c.kvDim), v: make([]float32, B*c.kvDim),
		att: make([]float32, B*c.qDim),
		hb:  make([]float32, B*nff), hb2: make([]float32, B*nff),
		scores: make([]float32, r.pool.Threads()*attnWorkerLen(&c)),
		qa:     make([]byte, B*r.qaStride),
		pos:    make([]int, B), kvIdx: make([]int, B), lrows: make([]int, B),
		kvIdxW: make([]int, B),
		items:  make([]attnItem, 0, B), sub: make([]Item, 0, B),
		logits: make([]float32, B*c.vocab),
	}
	if r.qpStride > 0 {
		r.s.qp = make([]byte, B*r.qpStride)
	}
	if c.nExpert > 0 {
		k := c.nExpertUsed
		r.s.router, r.s.sel, r.s.selW = make([]float32, B*c.nExpert), make([]int32, B*k), make([]float32, B*k)
		r.s.ex, r.s.exIdx, r.s.eo = make([]float32, B*c.dim), make([]int, B), make([]float32, B*c.dim)
		r.s.moe = make([]float32, B*k*c.dim)
	}
	if r.xrStride > 0 {
		r.s.xr = make([]float32, B*r.xrStride)
	}
	r.dotFn = r.dotWorker
	r.quantFn = r.quantWorker
	r.attnFn = r.attnWorker
	r.rowsFn = r.rowsWorker
	r.qkvFn = r.qkvWorker
	r.forwardFn = r.forward
	return r, nil
}

// MemBytes implements Runner. Repacked weights are not counted: they
// stand in for the mapped pages they were copied from, which are released.
func (r *cpuRunner) MemBytes() int64 {
	n := 2 * int64(len(r.kv.k)+len(r.kv.v)+len(r.kv.wk)+len(r.kv.wv))
	s := &r.s
	n += 4 * int64(len(s.x)+len(s.xb)+len(s.q)+len(s.k)+len(s.v)+len(s.att)+len(s.hb)+len(s.hb2)+len(s.scores)+len(s.xr)+len(s.logits))
	n += 4 * int64(len(s.router)+len(s.selW)+len(s.ex)+len(s.eo)+len(s.moe)+len(s.sel)+2*len(s.exIdx))
	for _, rt := range r.ropes {
		n += 4 * int64(len(rt.cos)+len(rt.sin))
	}
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
	r.kv = kvCache{}
	if r.kvMem != nil {
		_ = r.kvMem.Close()
		r.kvMem = nil
	}
	return nil
}

// ForwardBatch implements Runner. The batch's tokens go through in
// passes of at most maxBatch rows; an item that does not fit the rest of
// a pass continues in the next, after its first tokens' K/V are stored.
func (r *cpuRunner) ForwardBatch(items []Item) error {
	c := &r.c
	if r.pool == nil {
		return errors.New("forward on a closed runner")
	}
	if err := checkItems(c.bs, c.blocks, c.nCtx, c.vocab, items); err != nil {
		return err
	}
	if c.winBlocks > 0 {
		for i, it := range items {
			if err := checkWindow(c.bs, c.winBlocks, r.window(), it); err != nil {
				return fmt.Errorf("batch item %d: %w", i, err)
			}
		}
	}
	var err error
	r.s.sub, err = SplitPasses(items, maxBatch, c.vocab, r.s.sub, r.forwardFn)
	return err
}

// CopyKV implements Runner (the layers of the main cache).
func (r *cpuRunner) CopyKV(dst, src int32, n int) error {
	c := &r.c
	if err := CheckCopyKV(dst, src, n, c.blocks, c.bs); err != nil {
		return err
	}
	copyBlocks(r.kv.k, r.kv.v, c.nKVLayers, c.blocks, c, dst, src, n)
	return nil
}

// CopyWindowKV implements WindowKVRunner.
func (r *cpuRunner) CopyWindowKV(dst, src int32, n int) error {
	c := &r.c
	if c.winBlocks == 0 {
		return errors.New("copying KV blocks: the runner has no sliding-window layers' cache")
	}
	if err := CheckCopyKV(dst, src, n, c.winBlocks, c.bs); err != nil {
		return err
	}
	copyBlocks(r.kv.wk, r.kv.wv, c.nWinLayers, c.winBlocks, c, dst, src, n)
	return nil
}

// copyBlocks copies the first n positions of block src to block dst in
// every layer of a cache of layers × blocks blocks (each KV head's
// positions together in a block, as kvCache lays them out).
func copyBlocks(k, v []uint16, layers, blocks int, c *config, dst, src int32, n int) {
	bl := c.bs * c.kvDim
	for l := range layers {
		base := l * blocks * bl
		for h := range c.nKV {
			d := base + int(dst)*bl + h*c.bs*c.hd
			s := base + int(src)*bl + h*c.bs*c.hd
			copy(k[d:d+n*c.hd], k[s:s+n*c.hd])
			copy(v[d:d+n*c.hd], v[s:s+n*c.hd])
		}
	}
}

// window is the sliding window of the model's window layers (0: none).
func (r *cpuRunner) window() int { return r.w.H.SlidingWindow }

// layerKV returns layer il's keys and values in the cache it lives in
// and the offsets of the pass's rows there.
func (r *cpuRunner) layerKV(il int) (k, v []uint16, idx []int) {
	c, lf := &r.c, &r.layers[il]
	if lf.win {
		n := r.winKV * c.bs * c.kvDim
		return r.kv.wk[lf.kvl*n : (lf.kvl+1)*n], r.kv.wv[lf.kvl*n : (lf.kvl+1)*n], r.s.kvIdxW
	}
	n := r.kvBlocks * c.bs * c.kvDim
	return r.kv.k[lf.kvl*n : (lf.kvl+1)*n], r.kv.v[lf.kvl*n : (lf.kvl+1)*n], r.s.kvIdx
}

// checkWindow validates an item's table in a window layers' cache of
// blocks blocks of bs positions: the blocks its window layers read, from
// that of position Pos-window+1 to its last.
func checkWindow(bs, blocks, window int, it Item) error {
	end := it.Pos + len(it.Tokens)
	need := (end + bs - 1) / bs
	if len(it.WinBlocks) < need {
		return fmt.Errorf("positions up to %d need %d window KV blocks, the item has %d", end, need, len(it.WinBlocks))
	}
	for i := max(0, it.Pos-window+1) / bs; i < need; i++ {
		if b := it.WinBlocks[i]; b < 0 || int(b) >= blocks {
			return fmt.Errorf("window KV block %d (positions from %d) out of range [0, %d)", b, i*bs, blocks)
		}
	}
	return nil
}

// checkItems validates a batch against a KV cache of blocks blocks of bs
// positions, sequences of at most nCtx positions and vocab logits.
func checkItems(bs, blocks, nCtx, vocab int, items []Item) error {
	for i, it := range items {
		if err := checkItem(bs, blocks, nCtx, vocab, it); err != nil {
			return fmt.Errorf("batch item %d: %w", i, err)
		}
	}
	return nil
}

func checkItem(bs, blocks, nCtx, vocab int, it Item) error {
	if len(it.Tokens) == 0 {
		return errors.New("no tokens to evaluate")
	}
	end := it.Pos + len(it.Tokens)
	if it.Pos < 0 || end > nCtx {
		return fmt.Errorf("positions %d..%d exceed the context of %d tokens", it.Pos, end, nCtx)
	}
	if need := (end + bs - 1) / bs; len(it.Blocks) < need {
		return fmt.Errorf("positions up to %d need %d KV blocks, the item has %d", end, need, len(it.Blocks))
	}
	for _, b := range it.Blocks[:(end+bs-1)/bs] {
		if b < 0 || int(b) >= blocks {
			return fmt.Errorf("KV block %d out of range [0, %d)", b, blocks)
		}
	}
	for i, t := range it.Tokens {
		if t < 0 || int(t) >= vocab {
			return fmt.Errorf("token %d (at %d) outside the vocabulary of %d", t, i, vocab)
		}
	}
	if it.Logits != nil {
		want := vocab
		if it.All {
			want = len(it.Tokens) * vocab
		}
		if len(it.Logits) < want {
			return fmt.Errorf("logits buffer holds %d floats, need %d", len(it.Logits), want)
		}
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

// Embed runs tokens in a fresh context (a scratch KV cache of their
// length; the model's pool is not touched) and returns the mean of their
// final hidden states (after the output norm, before the output head),
// L2-normalised: NEmbd floats. Like ForwardBatch, it is for the model's
// one goroutine at a time.
func (r *cpuRunner) Embed(tokens []int32) (emb []float32, err error) {
	defer func() {
		if p := recover(); p != nil {
			emb, err = nil, fmt.Errorf("embedding: %w: %v", ErrForwardPanic, p)
		}
	}()
	c := &r.c
	if r.pool == nil {
		return nil, errors.New("embedding on a closed runner")
	}
	if len(tokens) == 0 {
		return nil, errors.New("embedding: no tokens")
	}
	if len(tokens) > c.nCtx {
		return nil, fmt.Errorf("embedding: %d tokens exceed the context of %d", len(tokens), c.nCtx)
	}
	blocks := (len(tokens) + c.bs - 1) / c.bs
	kvLen := c.nKVLayers * blocks * c.bs * c.kvDim
	kv, kvBlocks, nBlocks, winKV, nWin := r.kv, r.kvBlocks, c.blocks, r.winKV, c.winBlocks
	r.kv = kvCache{k: make([]uint16, kvLen), v: make([]uint16, kvLen)}
	r.kvBlocks, c.blocks = blocks, blocks
	ids := make([]int32, blocks)
	for i := range ids {
		ids[i] = int32(i)
	}
	var winIDs []int32
	if nWin > 0 {
		// the window layers' scratch: the same blocks, in their own cache
		winLen := c.nWinLayers * blocks * c.bs * c.kvDim
		r.kv.wk, r.kv.wv = make([]uint16, winLen), make([]uint16, winLen)
		r.winKV, c.winBlocks, winIDs = blocks, blocks, ids
	}
	sum := make([]float64, c.dim)
	r.embedSum = sum
	defer func() {
		r.kv, r.kvBlocks, c.blocks, r.winKV, c.winBlocks, r.embedSum = kv, kvBlocks, nBlocks, winKV, nWin, nil
	}()
	if err := r.ForwardBatch([]Item{{Blocks: ids, WinBlocks: winIDs, Tokens: tokens}}); err != nil {
		return nil, fmt.Errorf("embedding: %w", err)
	}
	var norm float64
	for i := range sum {
		sum[i] /= float64(len(tokens))
		norm += sum[i] * sum[i]
	}
	out := make([]float32, c.dim)
	if norm = math.Sqrt(norm); norm > 0 {
		for i, v := range sum {
			out[i] = float32(v / norm)
		}
	}
	return out, nil
}
