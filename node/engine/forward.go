package engine

import (
	"fmt"
	"math"

	"helexa/node/cpu"
	"helexa/node/ggml"
)

// forward runs n <= maxBatch tokens at positions pos.. of slot. out, when
// non-nil, receives logits: every token's (all) or the last token's.
func (r *cpuRunner) forward(slot int, tokens []int32, pos int, out []float32, all bool) error {
	c := &r.c
	s := &r.s
	n := len(tokens)
	kv := &r.kv[slot]
	dim := c.dim

	// 1. Embed: x[t] = token_embd[tokens[t]].
	emb := r.w.TokEmbd
	rb, err := ggml.RowBytes(emb.Type, dim)
	if err != nil {
		return err
	}
	for t, id := range tokens {
		row := emb.Data[int(id)*rb : (int(id)+1)*rb]
		if err := ggml.Dequantize(emb.Type, row, s.x[t*dim:(t+1)*dim]); err != nil {
			return fmt.Errorf("embedding token %d: %w", id, err)
		}
	}

	// 2. RoPE angles of every position in the batch.
	r.ropeAngles(pos, n)

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

		// 6. Store k, v at positions pos.. of the cache.
		base := l * c.nCtx * c.kvDim
		kc := kv.k[base+pos*c.kvDim : base+(pos+n)*c.kvDim]
		vc := kv.v[base+pos*c.kvDim : base+(pos+n)*c.kvDim]
		cpu.ToF16(kc, s.k[:n*c.kvDim])
		cpu.ToF16(vc, s.v[:n*c.kvDim])
		if emulateF16KV {
			ggml.RoundHalf(s.q[:n*c.qDim], s.q[:n*c.qDim])
		}

		// 7. Causal attention of every (token, head): att = softmax(q·K/√hd)·V.
		r.attn = attnJob{k: kv.k[base : base+c.nCtx*c.kvDim], v: kv.v[base : base+c.nCtx*c.kvDim], pos: pos, n: n}
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

	if out == nil {
		return nil
	}
	// 12. Final norm and logits, for every token or only the last.
	first := 0
	if !all {
		first = n - 1
	}
	for t := first; t < n; t++ {
		rmsnorm(s.xb[t*dim:(t+1)*dim], s.x[t*dim:(t+1)*dim], r.outNorm, c.eps)
	}
	r.mm.begin(s.xb[first*dim:n*dim], n-first, dim)
	r.mm.add(r.w.Output, out, c.vocab)
	r.runMatmul()
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

// ropeAngles fills cos/sin for positions pos..pos+n-1, computing theta in
// float32 the way ggml does (theta *= scale pair after pair).
func (r *cpuRunner) ropeAngles(pos, n int) {
	half := r.c.ropeDims / 2
	for t := 0; t < n; t++ {
		theta := float32(pos + t)
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

// attnJob is the attention step's input for the pool.
type attnJob struct {
	k, v   []uint16 // (nCtx, kvDim) this layer's cache
	pos, n int
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

// attnWorker computes worker ith's share of the attention items: up to
// cpu.AttnMaxGroup query heads of one KV group for a few consecutive
// tokens, which all read the same keys and values, so each cached row is
// converted once per item. The static split (cpu.Split) runs over the
// token blocks in an order that balances causal attention's growing cost.
func (r *cpuRunner) attnWorker(ith, nth int) {
	c := &r.c
	j := &r.attn
	s := &r.s
	scale := float32(1 / math.Sqrt(float64(c.hd)))
	group := c.nHead / c.nKV
	chunk, tb := attnSplit(j.n, c.nKV, group, nth)
	nc := (group + chunk - 1) / chunk
	nb := (j.n + tb - 1) / tb
	wl := attnWorkerLen(c)
	buf := s.scores[ith*wl : (ith+1)*wl]
	scores := buf[:attnRows*c.nCtx]
	scratch := buf[attnRows*c.nCtx : attnRows*c.nCtx+cpu.ScoresScratch(c.hd)]
	qbuf := buf[attnRows*c.nCtx+cpu.ScoresScratch(c.hd):][:attnRows*c.hd]
	obuf := buf[attnRows*c.nCtx+cpu.ScoresScratch(c.hd)+attnRows*c.hd:][:attnRows*c.hd]
	lo, hi := cpu.Split(nb*c.nKV*nc, ith, nth)
	for item := lo; item < hi; item++ {
		// Token blocks in the order first, last, second, second to
		// last, ...: causal attention costs grow with the token, and
		// this order gives each worker's contiguous share the same work.
		u, rest := item/(c.nKV*nc), item%(c.nKV*nc)
		b := u / 2
		if u%2 == 1 {
			b = nb - 1 - u/2
		}
		t0 := b * tb
		nt := min(tb, j.n-t0)
		kvh := rest / nc
		h0 := kvh*group + (rest%nc)*chunk
		nq := min(chunk, (kvh+1)*group-h0)
		kvOff := kvh * c.hd
		w := nq * c.hd // one token's queries of this item
		for tt := range nt {
			row := (t0+tt)*c.qDim + h0*c.hd
			copy(qbuf[tt*w:(tt+1)*w], s.q[row:row+w])
		}
		// Scores against every key the block's last token sees; earlier
		// tokens' rows use only their causal prefix.
		np := j.pos + t0 + nt
		cpu.ScoresF16G(scores, np, qbuf, c.hd, nt*nq, j.k[kvOff:], c.kvDim, c.hd, np, scale, scratch)
		for tt := range nt {
			npos := j.pos + t0 + tt + 1
			for g := range nq {
				cpu.Softmax(scores[(tt*nq+g)*np:][:npos], emulateF16KV)
			}
		}
		// All rows mix the positions every token of the block sees in
		// one pass; each token then adds its own last few, continuing the
		// same in-order sums.
		ob := obuf[:nt*w]
		clear(ob)
		common := j.pos + t0 + 1
		cpu.MixF16G(ob, c.hd, scores, np, nt*nq, j.v[kvOff:], c.kvDim, c.hd, common)
		for tt := 1; tt < nt; tt++ {
			cpu.MixF16G(ob[tt*w:], c.hd, scores[tt*nq*np+common:], np, nq, j.v[common*c.kvDim+kvOff:], c.kvDim, c.hd, tt)
		}
		for tt := range nt {
			row := (t0+tt)*c.qDim + h0*c.hd
			copy(s.att[row:row+w], ob[tt*w:(tt+1)*w])
		}
	}
}
