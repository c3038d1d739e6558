package engine

import (
	"fmt"
	"math"

	"helexa/node/cpu"
	"helexa/node/ggml"
)

// forward runs one pass over items, n <= maxBatch tokens in all: the
// rows of the pass are the items' tokens in order. Items with Logits get
// them: every token's (All) or the last token's.
func (r *cpuRunner) forward(items []Item, n int) error {
	c := &r.c
	s := &r.s
	dim := c.dim

	// 1. Embed: x[t] = token_embd[tokens[t]]; each row's position and
	// the offset of its K/V within a layer's cache.
	emb := r.w.TokEmbd
	rb, err := ggml.RowBytes(emb.Type, dim)
	if err != nil {
		return err
	}
	s.items = s.items[:0]
	t := 0
	for _, it := range items {
		s.items = append(s.items, attnItem{row: t, n: len(it.Tokens), pos: it.Pos, blocks: it.Blocks})
		for i, id := range it.Tokens {
			row := emb.Data[int(id)*rb : (int(id)+1)*rb]
			if err := ggml.Dequantize(emb.Type, row, s.x[t*dim:(t+1)*dim]); err != nil {
				return fmt.Errorf("embedding token %d: %w", id, err)
			}
			p := it.Pos + i
			s.pos[t] = p
			s.kvIdx[t] = (int(it.Blocks[p/c.bs])*c.bs + p%c.bs) * c.kvDim
			t++
		}
	}

	// 2. RoPE angles of every row's position, and the split of the
	// attention work (the same in every layer).
	r.ropeAngles(s.pos[:n])
	r.attn.plan(c, r.pool.Threads(), s.items)

	layerLen := c.blocks * c.bs * c.kvDim
	for l := range r.w.Layers {
		lw := &r.w.Layers[l]
		lf := &r.layers[l]

		// 3. Attention input: xb = rmsnorm(x) * attn_norm.
		for t := 0; t < n; t++ {
			rmsnorm(s.xb[t*dim:(t+1)*dim], s.x[t*dim:(t+1)*dim], lf.attnNorm, c.eps)
		}

		// 4. Projections q, k, v = xb·Wq, xb·Wk, xb·Wv (+ biases).
		r.mm.begin(s.xb, n, dim)
		r.mm.add(lw.Wq, s.q, c.qDim)
		r.mm.add(lw.Wk, s.k, c.kvDim)
		r.mm.add(lw.Wv, s.v, c.kvDim)
		r.runMatmul()
		addBias(s.q, lf.bq, n, c.qDim)
		addBias(s.k, lf.bk, n, c.kvDim)
		addBias(s.v, lf.bv, n, c.kvDim)

		// 5. Per-head Q/K norms (qwen3), then RoPE.
		for t := 0; t < n; t++ {
			if lf.qNorm != nil {
				for h := 0; h < c.nHead; h++ {
					x := s.q[t*c.qDim+h*c.hd : t*c.qDim+(h+1)*c.hd]
					rmsnorm(x, x, lf.qNorm, c.eps)
				}
			}
			if lf.kNorm != nil {
				for h := 0; h < c.nKV; h++ {
					x := s.k[t*c.kvDim+h*c.hd : t*c.kvDim+(h+1)*c.hd]
					rmsnorm(x, x, lf.kNorm, c.eps)
				}
			}
			r.rope(s.q[t*c.qDim:(t+1)*c.qDim], c.nHead, t)
			r.rope(s.k[t*c.kvDim:(t+1)*c.kvDim], c.nKV, t)
		}

		// 6. Store each row's k, v at its position of its sequence.
		kl := r.kv.k[l*layerLen : (l+1)*layerLen]
		vl := r.kv.v[l*layerLen : (l+1)*layerLen]
		for t := 0; t < n; t++ {
			o := s.kvIdx[t]
			cpu.ToF16(kl[o:o+c.kvDim], s.k[t*c.kvDim:(t+1)*c.kvDim])
			cpu.ToF16(vl[o:o+c.kvDim], s.v[t*c.kvDim:(t+1)*c.kvDim])
		}
		if emulateF16KV {
			ggml.RoundHalf(s.q[:n*c.qDim], s.q[:n*c.qDim])
		}

		// 7. Causal attention of every (token, head) against its own
		// sequence: att = softmax(q·K/√hd)·V.
		r.attn.k, r.attn.v = kl, vl
		r.pool.Run(r.attnFn)

		// 8. Output projection and residual: x += att·Wo.
		r.mm.begin(s.att, n, c.qDim)
		r.mm.add(lw.Wo, s.xb, dim)
		r.runMatmul()
		cpu.Add(s.xb[:n*dim], s.x[:n*dim])

		// 9. FFN input: xb = rmsnorm(x) * ffn_norm.
		for t := 0; t < n; t++ {
			rmsnorm(s.xb[t*dim:(t+1)*dim], s.x[t*dim:(t+1)*dim], lf.ffnNorm, c.eps)
		}

		// 10. SwiGLU: hb = silu(xb·Wgate) * (xb·Wup).
		r.mm.begin(s.xb, n, dim)
		r.mm.add(lw.FFNGate, s.hb, c.nff)
		r.mm.add(lw.FFNUp, s.hb2, c.nff)
		r.runMatmul()
		swiglu(s.hb[:n*c.nff], s.hb2[:n*c.nff])

		// 11. Down projection and residual: x += hb·Wdown.
		r.mm.begin(s.hb, n, c.nff)
		r.mm.add(lw.FFNDown, s.xb, dim)
		r.runMatmul()
		cpu.Add(s.xb[:n*dim], s.x[:n*dim])
	}

	// 12. Final norm and the output head, only for the rows whose logits
	// are wanted, gathered into consecutive rows of xb.
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

// rmsnorm writes x / rms(x) * w to out (out may alias x), rounding as
// ggml does: squares in float32 summed in float64, the mean and the
// scale in float32.
func rmsnorm(out, x, w []float32, eps float32) {
	var ss float64
	for _, v := range x {
		ss += float64(v * v)
	}
	mean := float32(ss / float64(len(x)))
	scale := 1 / float32(math.Sqrt(float64(mean+eps)))
	out = out[:len(x)]
	w = w[:len(x)]
	for i, v := range x {
		out[i] = v * scale * w[i]
	}
}

// addBias adds b to each of n rows of x (width d); b nil is no bias.
func addBias(x, b []float32, n, d int) {
	if b == nil {
		return
	}
	for t := 0; t < n; t++ {
		cpu.Add(b, x[t*d:(t+1)*d])
	}
}

// swiglu sets g[i] = silu(g[i]) * u[i] = g[i] / (1 + e^-g[i]) * u[i].
func swiglu(g, u []float32) {
	u = u[:len(g)]
	var e [64]float32
	for lo := 0; lo < len(g); lo += len(e) {
		gs := g[lo:min(lo+len(e), len(g))]
		es := e[:len(gs)]
		for i, v := range gs {
			es[i] = -v
		}
		cpu.Exp(es)
		us := u[lo : lo+len(gs)]
		for i, v := range gs {
			gs[i] = v / (1 + es[i]) * us[i]
		}
	}
}

// ropeAngles fills cos/sin for the rows at positions pos, computing
// theta in float32 the way ggml does (theta *= scale pair after pair).
func (r *cpuRunner) ropeAngles(pos []int) {
	half := r.c.ropeDims / 2
	for t, p := range pos {
		theta := float32(p)
		cs := r.s.cos[t*half : (t+1)*half]
		sn := r.s.sin[t*half : (t+1)*half]
		for i := 0; i < half; i++ {
			a := float64(r.ropeFreqScale * (theta / r.ropeFreqs[i]))
			cs[i] = float32(math.Cos(a))
			sn[i] = float32(math.Sin(a))
			theta *= r.ropeScale
		}
	}
}

// rope rotates the nh heads of x (token t of the batch) in place.
func (r *cpuRunner) rope(x []float32, nh, t int) {
	c := &r.c
	half := c.ropeDims / 2
	cs := r.s.cos[t*half : (t+1)*half]
	sn := r.s.sin[t*half : (t+1)*half]
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

// attnJob is the attention step's input for the pool: one layer's
// cache and the batch's items, each split into work units (a few
// consecutive tokens times a chunk of one KV group's query heads).
type attnJob struct {
	k, v  []uint16 // (blocks, bs, kvDim) this layer's cache
	items []attnItem
	units int // work units in all
}

// attnItem is one sequence's rows of the batch and how its attention is
// split into units.
type attnItem struct {
	row, n, pos int     // rows row..row+n-1 at positions pos..
	blocks      []int32 // the sequence's KV blocks
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
	scale := float32(1 / math.Sqrt(float64(c.hd)))
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
		kvOff := kvh * c.hd
		w := nq * c.hd // one token's queries of this unit
		for tt := range nt {
			row := (it.row+t0+tt)*c.qDim + h0*c.hd
			copy(qbuf[tt*w:(tt+1)*w], s.q[row:row+w])
		}
		// Scores against every key the block's last token sees, block by
		// block of the cache; earlier tokens' rows use only their causal
		// prefix.
		np := it.pos + t0 + nt
		for p0 := 0; p0 < np; p0 += c.bs {
			k := j.k[int(it.blocks[p0/c.bs])*c.bs*c.kvDim+kvOff:]
			cpu.ScoresF16G(scores[p0:], np, qbuf, c.hd, nt*nq, k, c.kvDim, c.hd, min(c.bs, np-p0), scale, scratch)
		}
		for tt := range nt {
			npos := it.pos + t0 + tt + 1
			for g := range nq {
				cpu.Softmax(scores[(tt*nq+g)*np:][:npos], emulateF16KV)
			}
		}
		// All rows mix the positions every token of the block sees in
		// one pass; each token then adds its own last few, continuing the
		// same in-order sums.
		ob := obuf[:nt*w]
		clear(ob)
		common := it.pos + t0 + 1
		r.mixBlocks(ob, scores, np, nt*nq, it.blocks, kvOff, 0, common)
		for tt := 1; tt < nt; tt++ {
			r.mixBlocks(ob[tt*w:], scores[tt*nq*np:], np, nq, it.blocks, kvOff, common, common+tt)
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
		v := r.attn.v[(int(blocks[b])*c.bs+p-b*c.bs)*c.kvDim+kvOff:]
		cpu.MixF16G(out, c.hd, w[p:], wStride, rows, v, c.kvDim, c.hd, end-p)
		p = end
	}
}
