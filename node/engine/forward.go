package engine

import (
	"fmt"
	"math"

	"helexa/node/cpu"
	"helexa/node/ggml"
)

// forward runs one pass over items, n <= maxBatch tokens in all: the
// rows of the pass are the items' tokens in order. Items with Logits get
// them: every token's (All) or the last token's. The architecture's
// layer function (arch_*.go) computes each layer; the embedding and the
// output head are the same for all.
func (r *cpuRunner) forward(items []Item, n int) error {
	c := &r.c
	s := &r.s
	dim := c.dim

	// 1. Embed: x[t] = token_embd[tokens[t]] (· EmbedScale); each row's
	// position and the offset of its K/V within a layer's cache.
	emb := r.w.TokEmbd
	rb, err := ggml.RowBytes(emb.Type, dim)
	if err != nil {
		return err
	}
	s.items = s.items[:0]
	t := 0
	for _, it := range items {
		s.items = append(s.items, attnItem{row: t, n: len(it.Tokens), pos: it.Pos, blocks: it.Blocks, winBlocks: it.WinBlocks})
		for i, id := range it.Tokens {
			row := emb.Data[int(id)*rb : (int(id)+1)*rb]
			x := s.x[t*dim : (t+1)*dim]
			if err := ggml.Dequantize(emb.Type, row, x); err != nil {
				return fmt.Errorf("embedding token %d: %w", id, err)
			}
			if c.embedScale != 1 {
				for j := range x {
					x[j] *= c.embedScale
				}
			}
			p := it.Pos + i
			s.pos[t] = p
			s.kvIdx[t] = c.kvRow(it.Blocks, p, 0)
			if c.winBlocks > 0 {
				s.kvIdxW[t] = c.kvRow(it.WinBlocks, p, 0)
			}
			t++
		}
	}

	// 2. RoPE angles of every row's position (one table per RoPE base),
	// and the split of the attention work (the same in every layer).
	for i := range r.ropes {
		r.ropes[i].angles(s.pos[:n], c.ropeDims)
	}
	r.attn.plan(c, r.pool.Threads(), s.items)

	// 3. The layers.
	for l := range r.w.Layers {
		r.arch.layer(r, l, n)
	}

	// 4. Final norm and the output head, only for the rows whose logits
	// are wanted, gathered into consecutive rows of xb.
	r.flushRows()
	if r.embedSum != nil {
		r.poolHidden(n)
	}
	lr := s.lrows[:0]
	for i, it := range items {
		if it.Logits == nil {
			continue
		}
		first := s.items[i].row + len(it.Tokens) - 1
		if it.All {
			first = s.items[i].row
		}
		for t := first; t < s.items[i].row+len(it.Tokens); t++ {
			lr = append(lr, t)
		}
	}
	if len(lr) == 0 {
		return nil
	}
	for i, t := range lr {
		rmsnorm(s.xb[i*dim:(i+1)*dim], s.x[t*dim:(t+1)*dim], r.outNorm, c.eps)
	}
	// One item's logits go straight to its buffer; several items' go
	// through s.logits.
	out := s.logits
	direct := len(items) == 1
	if direct {
		out = items[0].Logits
	}
	r.mm.begin(s.xb, len(lr), dim)
	r.mm.add(r.w.Output, out, c.vocab)
	r.runMatmul()
	if c.softcap > 0 {
		softcap(out[:len(lr)*c.vocab], c.softcap)
	}
	if direct {
		return nil
	}
	k := 0
	for _, it := range items {
		if it.Logits == nil {
			continue
		}
		m := 1
		if it.All {
			m = len(it.Tokens)
		}
		copy(it.Logits[:m*c.vocab], s.logits[k*c.vocab:(k+m)*c.vocab])
		k += m
	}
	return nil
}

// poolHidden adds every row's final hidden state (after the output
// norm, before the head) to embedSum, for Embed.
func (r *cpuRunner) poolHidden(n int) {
	c, s := &r.c, &r.s
	for t := 0; t < n; t++ {
		h := s.xb[:c.dim]
		rmsnorm(h, s.x[t*c.dim:(t+1)*c.dim], r.outNorm, c.eps)
		for j, v := range h {
			r.embedSum[j] += float64(v)
		}
	}
}

// softcap sets x[i] = c·tanh(x[i]/c).
func softcap(x []float32, c float32) {
	for i, v := range x {
		x[i] = c * float32(math.Tanh(float64(v/c)))
	}
}

// ropeTable is one RoPE variant's angles for the rows of a pass: theta
// of pair i at position p is p*freqScale*scale^i/freqs[i], computed in
// float32 as ggml does.
type ropeTable struct {
	scale, freqScale float32
	freqs            []float32 // (ropeDims/2), 1 when absent
	cos, sin         []float32 // (maxBatch, ropeDims/2)
}

// newRopeTable makes the table of base theta, linear scaling freqScale
// (0: 1) and per-pair divisors freqs (nil: 1) for ropeDims rotated dims.
func newRopeTable(theta, freqScale float32, freqs []float32, ropeDims int) ropeTable {
	rt := ropeTable{
		scale:     float32(math.Pow(float64(theta), -2/float64(ropeDims))),
		freqScale: freqScale,
		freqs:     make([]float32, ropeDims/2),
		cos:       make([]float32, maxBatch*ropeDims/2),
		sin:       make([]float32, maxBatch*ropeDims/2),
	}
	if rt.freqScale == 0 {
		rt.freqScale = 1
	}
	for i := range rt.freqs {
		rt.freqs[i] = 1
		if freqs != nil {
			rt.freqs[i] = freqs[i]
		}
	}
	return rt
}

// angles fills cos/sin for the rows at positions pos.
func (rt *ropeTable) angles(pos []int, ropeDims int) {
	half := ropeDims / 2
	for t, p := range pos {
		theta := float32(p)
		cs := rt.cos[t*half : (t+1)*half]
		sn := rt.sin[t*half : (t+1)*half]
		for i := 0; i < half; i++ {
			a := float64(rt.freqScale * (theta / rt.freqs[i]))
			cs[i] = float32(math.Cos(a))
			sn[i] = float32(math.Sin(a))
			theta *= rt.scale
		}
	}
}

// rope rotates the nh heads of x (token t of the batch) in place with
// table rt.
func (r *cpuRunner) rope(rt *ropeTable, x []float32, nh, t int) {
	c := &r.c
	half := c.ropeDims / 2
	cs := rt.cos[t*half : (t+1)*half]
	sn := rt.sin[t*half : (t+1)*half]
	for h := 0; h < nh; h++ {
		v := x[h*c.hd : (h+1)*c.hd]
		for i := 0; i < half; i++ {
			a, b := 2*i, 2*i+1
			if c.neox {
				a, b = i, i+half
			}
			x0, x1 := v[a], v[b]
			v[a] = x0*cs[i] - x1*sn[i]
			v[b] = x0*sn[i] + x1*cs[i]
		}
	}
}

// kvRow is the offset in a layer's cache of position p's row of one KV
// head, whose rows start kvOff into every block: a block holds bs
// positions of each KV head in turn, hd values per row.
func (c *config) kvRow(blocks []int32, p, kvOff int) int {
	return int(blocks[p/c.bs])*c.bs*c.kvDim + kvOff + p%c.bs*c.hd
}

// attnJob is the attention step's input for the pool: one layer's
// cache and the batch's items, each split into work units (a few
// consecutive tokens times a chunk of one KV group's query heads).
type attnJob struct {
	k, v   []uint16 // (blocks, bs, kvDim) this layer's cache
	window int      // sliding window of this layer; 0: whole sequence
	win    bool     // the layer's cache is the window layers' (attnItem.winBlocks)
	items  []attnItem
	units  int // work units in all
}

// attnItem is one sequence's rows of the batch and how its attention is
// split into units.
type attnItem struct {
	row, n, pos int     // rows row..row+n-1 at positions pos..
	blocks      []int32 // the sequence's KV blocks
	winBlocks   []int32 // its blocks in the window layers' cache
	chunk, tb   int     // query heads and tokens per unit (attnSplit)
	first       int     // index of the item's first unit
}

// plan splits every item into work units for nth workers.
func (j *attnJob) plan(c *config, nth int, items []attnItem) {
	group := c.nHead / c.nKV
	// Items share the workers: a single one may split finer.
	per := max(1, (nth+len(items)-1)/len(items))
	j.items, j.units = items, 0
	for i := range items {
		it := &items[i]
		it.chunk, it.tb = attnSplit(it.n, c.nKV, group, per)
		it.first = j.units
		nc := (group + it.chunk - 1) / it.chunk
		j.units += (it.n + it.tb - 1) / it.tb * c.nKV * nc
	}
}

// attnPrefetch is how many positions' values an attention unit asks for
// before it scores the keys.
const attnPrefetch = 128

// attnPiece is how many keys the scoring takes between prefetches: the
// scoring kernels' block of sixteen.
const attnPiece = 16

// attnRows is the most query rows (tokens times heads of one KV group)
// an attention item scores at once: the keys are converted once for all
// of them.
const attnRows = 12

// attnWorkerLen is the length of each worker's share of runState.scores:
// attnRows rows of nCtx attention weights, the key scratch of
// cpu.ScoresF16G, and attnRows gathered queries and outputs, rounded up
// to whole cache lines.
func attnWorkerLen(c *config) int {
	n := attnRows*c.nCtx + cpu.ScoresScratch(c.hd) + 2*attnRows*c.hd
	return (n + 15) &^ 15
}

// attnSplit chooses the shape of the attention items of n tokens: chunk
// query heads of one KV group (the group split into near-equal chunks of
// at most cpu.AttnMaxGroup) times tb consecutive tokens (at most attnRows
// rows in all). Both shrink while there would be fewer items than
// workers (decode with few KV heads, short prompts).
func attnSplit(n, nKV, group, nth int) (chunk, tb int) {
	chunk = min(group, cpu.AttnMaxGroup)
	nc := (group + chunk - 1) / chunk
	chunk = (group + nc - 1) / nc
	for chunk > 1 && n*nKV*((group+chunk-1)/chunk) < nth {
		chunk--
	}
	items := nKV * ((group + chunk - 1) / chunk)
	tb = max(1, min(n, attnRows/chunk))
	for tb > 1 && (n+tb-1)/tb*items < nth {
		tb--
	}
	return chunk, tb
}

// attnWorker computes worker ith's share of the attention units: up to
// cpu.AttnMaxGroup query heads of one KV group for a few consecutive
// tokens of one item, which all read the same keys and values, so each
// cached row is converted once per unit. Within an item the token blocks
// go in the order first, last, second, second to last, ...: causal
// attention costs grow with the token, and this order gives contiguous
// shares the same work.
func (r *cpuRunner) attnWorker(ith, nth int) {
	c := &r.c
	j := &r.attn
	s := &r.s
	scale := c.attnScale
	group := c.nHead / c.nKV
	wl := attnWorkerLen(c)
	buf := s.scores[ith*wl : (ith+1)*wl]
	scores := buf[:attnRows*c.nCtx]
	scratch := buf[attnRows*c.nCtx : attnRows*c.nCtx+cpu.ScoresScratch(c.hd)]
	qbuf := buf[attnRows*c.nCtx+cpu.ScoresScratch(c.hd):][:attnRows*c.hd]
	obuf := buf[attnRows*c.nCtx+cpu.ScoresScratch(c.hd)+attnRows*c.hd:][:attnRows*c.hd]
	lo, hi := cpu.Split(j.units, ith, nth)
	ii := 0
	for unit := lo; unit < hi; unit++ {
		for ii+1 < len(j.items) && j.items[ii+1].first <= unit {
			ii++
		}
		it := &j.items[ii]
		blocks := it.blocks
		if j.win {
			blocks = it.winBlocks
		}
		chunk, tb := it.chunk, it.tb
		nc := (group + chunk - 1) / chunk
		nb := (it.n + tb - 1) / tb
		u, rest := (unit-it.first)/(c.nKV*nc), (unit-it.first)%(c.nKV*nc)
		b := u / 2
		if u%2 == 1 {
			b = nb - 1 - u/2
		}
		t0 := b * tb
		nt := min(tb, it.n-t0)
		kvh := rest / nc
		h0 := kvh*group + (rest%nc)*chunk
		nq := min(chunk, (kvh+1)*group-h0)
		kvOff := kvh * c.bs * c.hd // the KV head's rows within a block
		w := nq * c.hd             // one token's queries of this unit
		for tt := range nt {
			row := (it.row+t0+tt)*c.qDim + h0*c.hd
			copy(qbuf[tt*w:(tt+1)*w], s.q[row:row+w])
		}
		// Scores against every key the block's last token sees, block by
		// block of the cache; earlier tokens' rows use only their causal
		// prefix. A sliding-window layer reads only from the first token's
		// window on (rounded down to the kernels' sixteen keys).
		np := it.pos + t0 + nt
		lo := 0
		if j.window > 0 {
			lo = max(0, it.pos+t0-j.window+1) &^ 15
		}
		// the first values the mix below reads (up to attnPrefetch
		// positions), requested now so they arrive while the keys are
		// scored; past them the hardware prefetcher has the stream (a
		// long context's every value asked for at once stalled the loads)
		for p0 := lo; p0 < min(np, lo+attnPrefetch); {
			b := p0 / c.bs
			end := min(np, lo+attnPrefetch, (b+1)*c.bs)
			o := c.kvRow(blocks, p0, kvOff)
			cpu.Prefetch(j.v[o : o+(end-p0)*c.hd])
			p0 = end
		}
		for p0 := lo; p0 < np; {
			b := p0 / c.bs
			end := min(np, (b+1)*c.bs)
			at := c.kvRow(blocks, b*c.bs, kvOff)
			var next []uint16 // the next block's keys of this head
			if end < np {
				next = j.k[c.kvRow(blocks, end, kvOff):][:c.bs*c.hd]
			}
			// In pieces of attnPiece keys, each asking for the same rows
			// of the next block's keys and (past what was asked for
			// above) of this block's values: the loads stay spread over
			// the scoring instead of coming in bursts at block starts.
			for s0 := p0; s0 < end; s0 += attnPiece {
				n := min(attnPiece, end-s0)
				i := s0 - b*c.bs // row within the block
				if next != nil {
					cpu.Prefetch(next[i*c.hd : (i+n)*c.hd])
				}
				if s0 >= lo+attnPrefetch {
					cpu.Prefetch(j.v[at+i*c.hd : at+(i+n)*c.hd])
				}
				cpu.ScoresF16G(scores[s0:], np, qbuf, c.hd, nt*nq, j.k[at+i*c.hd:], c.hd, c.hd, n, scale, scratch)
			}
			p0 = end
		}
		for tt := range nt {
			npos := it.pos + t0 + tt + 1
			first := lo
			if j.window > 0 {
				first = max(lo, npos-j.window)
			}
			for g := range nq {
				row := scores[(tt*nq+g)*np:]
				clear(row[lo:first]) // before the window: weight 0
				cpu.Softmax(row[first:npos], emulateF16KV)
			}
		}
		// All rows mix the positions every token of the block sees in
		// one pass; each token then adds its own last few, continuing the
		// same in-order sums.
		ob := obuf[:nt*w]
		clear(ob)
		common := it.pos + t0 + 1
		r.mixBlocks(ob, scores, np, nt*nq, blocks, kvOff, lo, common)
		for tt := 1; tt < nt; tt++ {
			r.mixBlocks(ob[tt*w:], scores[tt*nq*np:], np, nq, blocks, kvOff, common, common+tt)
		}
		for tt := range nt {
			row := (it.row+t0+tt)*c.qDim + h0*c.hd
			copy(s.att[row:row+w], ob[tt*w:(tt+1)*w])
		}
	}
}

// mixBlocks adds the weighted values of positions [from, to) of the
// sequence in blocks to rows rows of out (see cpu.MixF16G), block by
// block in position order, so the sums are those of one pass.
func (r *cpuRunner) mixBlocks(out, w []float32, wStride, rows int, blocks []int32, kvOff, from, to int) {
	c := &r.c
	for p := from; p < to; {
		b := p / c.bs
		end := min(to, (b+1)*c.bs)
		if end < to {
			// the next block's values: requested as its keys were
			// scored, now asked for again on their way into L1
			o := c.kvRow(blocks, end, kvOff)
			cpu.Prefetch(r.attn.v[o : o+min(c.bs, to-end)*c.hd])
		}
		v := r.attn.v[c.kvRow(blocks, p, kvOff):]
		cpu.MixF16G(out, c.hd, w[p:], wStride, rows, v, c.hd, c.hd, end-p)
		p = end
	}
}
