package engine

import (
	"math"
	"sync"

	"helexa/node/cpu"
	"helexa/node/ggml"
)

// The pieces the architectures' layer functions (arch_*.go) are made of.
// Each works on the n rows of the current pass: the residual stream s.x
// and the sublayer buffer s.xb.

// norm sets out[t] = rmsnorm(in[t])·w for the n rows (out may be in).
// Like residual and a gated FFN's activation, it is queued (rowOps) and
// done by the next matmul's workers, row by row, just before they
// quantize that row (see runMatmul), so that the pass's row-wise work is
// shared by the workers instead of running on one while the others wait.
func (r *cpuRunner) norm(out, in, w []float32, n int) {
	r.queueRows(rowOp{kind: rowNorm, out: out, in: in, w: w, width: r.c.dim}, n)
}

// residual adds the sublayer's output to the residual stream: x += xb
// (queued, like norm).
func (r *cpuRunner) residual(n int) {
	r.queueRows(rowOp{kind: rowAdd, out: r.s.x, in: r.s.xb, width: r.c.dim}, n)
}

// rowOp is one queued row-wise step of a pass: rows are independent, so
// the queue can run row by row in any split of the rows.
type rowOp struct {
	kind    rowKind
	out, in []float32 // rows of width floats
	w       []float32 // rowNorm: the norm's weights
	width   int
	act     ffnAct // rowAct: out = act(out) ⊙ in
}

type rowKind uint8

const (
	rowNorm rowKind = iota // out = rmsnorm(in)·w
	rowAdd                 // out += in
	rowAct                 // out = act(out) ⊙ in
)

// maxRowOps is the most row steps queued between two matmuls (gemma3
// queues three: post-norm, residual, pre-norm).
const maxRowOps = 8

// queueRows queues op for rows 0..n-1; a queue of another row count, or
// a full one, is flushed first.
func (r *cpuRunner) queueRows(op rowOp, n int) {
	s := &r.s
	if s.nRowOps > 0 && (s.rowN != n || s.nRowOps == maxRowOps) {
		r.flushRows()
	}
	s.rowOps[s.nRowOps] = op
	s.nRowOps++
	s.rowN = n
}

// runRows does the queued steps for rows [lo, hi).
func (r *cpuRunner) runRows(lo, hi int) {
	s := &r.s
	for t := lo; t < hi; t++ {
		for i := range s.nRowOps {
			op := &s.rowOps[i]
			a, b := t*op.width, (t+1)*op.width
			switch op.kind {
			case rowNorm:
				rmsnorm(op.out[a:b], op.in[a:b], op.w, r.c.eps)
			case rowAdd:
				cpu.Add(op.in[a:b], op.out[a:b])
			case rowAct:
				op.act(op.out[a:b], op.in[a:b])
			}
		}
	}
}

// flushRows does the queued row steps now, on the pool when there are
// several rows.
func (r *cpuRunner) flushRows() {
	s := &r.s
	if s.nRowOps == 0 {
		return
	}
	if s.rowN > 1 {
		r.pool.Run(r.rowsFn)
	} else {
		r.runRows(0, s.rowN)
	}
	s.nRowOps = 0
}

// rowsWorker does worker ith's share of the queued rows.
func (r *cpuRunner) rowsWorker(ith, nth int) {
	lo, hi := cpu.Split(r.s.rowN, ith, nth)
	r.runRows(lo, hi)
}

// attention replaces xb by layer il's self-attention of it: Q/K/V
// projections (+ biases), per-head Q/K norms when the layer has them,
// RoPE with the layer's table, K/V stored at each row's position of its
// sequence, causal attention of every (token, head) against its own
// sequence (the layer's sliding window only, when it has one), and the
// output projection.
func (r *cpuRunner) attention(il, n int) {
	c, s := &r.c, &r.s
	lw, lf := &r.w.Layers[il], &r.layers[il]

	// q, k, v = xb·Wq, xb·Wk, xb·Wv (+ biases)
	r.mm.begin(s.xb, n, c.dim)
	r.mm.add(lw.Wq, s.q, c.qDim)
	r.mm.add(lw.Wk, s.k, c.kvDim)
	r.mm.add(lw.Wv, s.v, c.kvDim)
	r.runMatmul()

	// biases, per-head Q/K norms, RoPE, and each row's K/V stored at its
	// position of its sequence: row by row, on the pool when there are
	// several rows
	r.qkvLayer = il
	if n > 1 {
		r.qkvN = n
		r.pool.Run(r.qkvFn)
	} else {
		r.qkvRows(0, n)
	}

	// att = softmax(q·K·scale)·V
	kl, vl, _ := r.layerKV(il)
	r.attn.k, r.attn.v, r.attn.window, r.attn.win = kl, vl, lf.window, lf.win
	r.pool.Run(r.attnFn)

	// xb = att·Wo
	r.mm.begin(s.att, n, c.qDim)
	r.mm.add(lw.Wo, s.xb, c.dim)
	r.runMatmul()
}

// qkvRows finishes rows [lo, hi) of layer r.qkvLayer's projections:
// biases, per-head Q/K norms, RoPE with the layer's table, the row's K
// and V stored in half precision at its position of its sequence, and
// the queries rounded to half precision.
func (r *cpuRunner) qkvRows(lo, hi int) {
	c, s := &r.c, &r.s
	il := r.qkvLayer
	lf := &r.layers[il]
	rt := &r.ropes[lf.rope]
	kl, vl, kvIdx := r.layerKV(il)
	for t := lo; t < hi; t++ {
		q := s.q[t*c.qDim : (t+1)*c.qDim]
		k := s.k[t*c.kvDim : (t+1)*c.kvDim]
		v := s.v[t*c.kvDim : (t+1)*c.kvDim]
		if lf.bq != nil {
			cpu.Add(lf.bq, q)
		}
		if lf.bk != nil {
			cpu.Add(lf.bk, k)
		}
		if lf.bv != nil {
			cpu.Add(lf.bv, v)
		}
		if lf.qNorm != nil {
			for h := 0; h < c.nHead; h++ {
				x := q[h*c.hd : (h+1)*c.hd]
				rmsnorm(x, x, lf.qNorm, c.eps)
			}
		}
		if lf.kNorm != nil {
			for h := 0; h < c.nKV; h++ {
				x := k[h*c.hd : (h+1)*c.hd]
				rmsnorm(x, x, lf.kNorm, c.eps)
			}
		}
		r.rope(rt, q, c.nHead, t)
		r.rope(rt, k, c.nKV, t)
		// a block holds each KV head's positions together (kvCache)
		for h, o := 0, kvIdx[t]; h < c.nKV; h, o = h+1, o+c.bs*c.hd {
			cpu.ToF16(kl[o:o+c.hd], k[h*c.hd:(h+1)*c.hd])
			cpu.ToF16(vl[o:o+c.hd], v[h*c.hd:(h+1)*c.hd])
		}
		if emulateF16KV {
			ggml.RoundHalf(q, q)
		}
	}
}

// qkvWorker finishes worker ith's share of the rows (qkvRows).
func (r *cpuRunner) qkvWorker(ith, nth int) {
	lo, hi := cpu.Split(r.qkvN, ith, nth)
	r.qkvRows(lo, hi)
}

// ffnAct is a gated FFN's activation: g[i] = act(g[i]) * u[i].
type ffnAct func(g, u []float32)

// ffn replaces xb by layer il's gated FFN of it:
// down(act(gate(xb)) ⊙ up(xb)).
func (r *cpuRunner) ffn(il, n int, act ffnAct) {
	c, s := &r.c, &r.s
	lw := &r.w.Layers[il]
	nff := lw.FFNGate.Dims[1]
	r.mm.begin(s.xb, n, c.dim)
	r.mm.add(lw.FFNGate, s.hb, nff)
	r.mm.add(lw.FFNUp, s.hb2, nff)
	r.runMatmul()
	r.queueRows(rowOp{kind: rowAct, out: s.hb, in: s.hb2, width: nff, act: act}, n)
	r.mm.begin(s.hb, n, nff)
	r.mm.add(lw.FFNDown, s.xb, c.dim)
	r.runMatmul()
}

// moe replaces xb by layer il's mixture of experts of it: the router
// scores every expert for each row (softmax), the top NExpertUsed are
// chosen (their weights renormalised with ExpertNormTopK), and the row's
// output is Σ w_e·expert_e(xb) in the order of the choice. The rows are
// grouped by expert, so each chosen expert's weights are read once per
// pass, and an expert no row chose is not read at all.
func (r *cpuRunner) moe(il, n int) {
	c, s := &r.c, &r.s
	lw := &r.w.Layers[il]
	ne, k, nff := c.nExpert, c.nExpertUsed, c.nffExp

	// router: probabilities of every expert for every row, the top k
	r.mm.begin(s.xb, n, c.dim)
	r.mm.add(lw.FFNGateInp, s.router, ne)
	r.runMatmul()
	for t := 0; t < n; t++ {
		p := s.router[t*ne : (t+1)*ne]
		routerSoftmax(p)
		sel, w := s.sel[t*k:(t+1)*k], s.selW[t*k:(t+1)*k]
		chooseExperts(p, sel, w)
		if r.routerHook != nil {
			r.routerHook(il, s.pos[t], p, sel, w)
		}
		if c.normTopK {
			var sum float64
			for _, v := range w {
				sum += float64(v)
			}
			d := max(float32(sum), 6.103515625e-5)
			for i := range w {
				w[i] /= d
			}
		}
	}

	// One row (a decode step): its experts all read the same input, so
	// their gate and up products go out in one dispatch.
	if n == 1 && 2*k <= maxOps && 2*k <= maxBatch {
		r.mm.begin(s.xb, 1, c.dim)
		for i, e := range s.sel[:k] {
			ex := &lw.Experts[e]
			r.mm.add(ex.Gate, s.hb[2*i*nff:], nff)
			r.mm.add(ex.Up, s.hb[(2*i+1)*nff:], nff)
		}
		r.runMatmul()
		for i, e := range s.sel[:k] {
			h := s.hb[2*i*nff : (2*i+1)*nff]
			swiglu(h, s.hb[(2*i+1)*nff:(2*i+2)*nff])
			r.mm.begin(h, 1, nff)
			r.mm.add(lw.Experts[e].Down, s.eo, c.dim)
			r.runMatmul()
			w := s.selW[i]
			dst := s.moe[i*c.dim : (i+1)*c.dim]
			for d, v := range s.eo[:c.dim] {
				dst[d] = v * w
			}
		}
	} else {
		r.moeGrouped(il, n)
	}

	// xb = Σ over the choices, in order
	for t := 0; t < n; t++ {
		out := s.xb[t*c.dim : (t+1)*c.dim]
		copy(out, s.moe[t*k*c.dim:(t*k+1)*c.dim])
		for i := 1; i < k; i++ {
			cpu.Add(s.moe[(t*k+i)*c.dim:(t*k+i+1)*c.dim], out)
		}
	}
}

// moeGrouped runs each expert over the rows that chose it; the weighted
// outputs land at (row, choice) of s.moe.
func (r *cpuRunner) moeGrouped(il, n int) {
	c, s := &r.c, &r.s
	lw := &r.w.Layers[il]
	ne, k, nff := c.nExpert, c.nExpertUsed, c.nffExp
	for e := range ne {
		m := 0
		for i, x := range s.sel[:n*k] {
			if int(x) == e {
				t := i / k
				copy(s.ex[m*c.dim:(m+1)*c.dim], s.xb[t*c.dim:(t+1)*c.dim])
				s.exIdx[m] = i
				m++
			}
		}
		if m == 0 {
			continue
		}
		ex := &lw.Experts[e]
		r.mm.begin(s.ex, m, c.dim)
		r.mm.add(ex.Gate, s.hb, nff)
		r.mm.add(ex.Up, s.hb2, nff)
		r.runMatmul()
		swiglu(s.hb[:m*nff], s.hb2[:m*nff])
		r.mm.begin(s.hb, m, nff)
		r.mm.add(ex.Down, s.eo, c.dim)
		r.runMatmul()
		for j := range m {
			i := s.exIdx[j]
			w := s.selW[i]
			dst := s.moe[i*c.dim : (i+1)*c.dim]
			for d, v := range s.eo[j*c.dim : (j+1)*c.dim] {
				dst[d] = v * w
			}
		}
	}
}

// routerSoftmax is the router's softmax in float32, the sum in float64,
// as ggml's soft_max.
func routerSoftmax(x []float32) {
	mx := x[0]
	for _, v := range x[1:] {
		mx = max(mx, v)
	}
	var sum float64
	for i, v := range x {
		e := float32(math.Exp(float64(v - mx)))
		x[i] = e
		sum += float64(e)
	}
	inv := float32(1 / sum)
	for i := range x {
		x[i] *= inv
	}
}

// chooseExperts writes the indices of the len(sel) largest entries of p to sel,
// largest first (the lower index first among equals), and their values
// to w.
func chooseExperts(p []float32, sel []int32, w []float32) {
	for i := range sel {
		best := -1
		for e, v := range p {
			taken := false
			for _, s := range sel[:i] {
				if int(s) == e {
					taken = true
					break
				}
			}
			if !taken && (best < 0 || v > p[best]) {
				best = e
			}
		}
		sel[i], w[i] = int32(best), p[best]
	}
}

// rmsnorm writes x / rms(x) * w to out (out may alias x), rounding as
// ggml does (cpu.RMSNorm).
func rmsnorm(out, x, w []float32, eps float32) { cpu.RMSNorm(out, x, w, eps) }

// swiglu sets g[i] = silu(g[i]) * u[i] = g[i] / (1 + e^-g[i]) * u[i].
func swiglu(g, u []float32) { cpu.SiLUMul(g, u) }

// geluTable holds ggml's GELU of every half-precision input, rounded to
// half precision: ggml's CPU GEGLU looks its activations up there.
var geluTable = sync.OnceValue(func() *[1 << 16]float32 {
	var t [1 << 16]float32
	for i := range t {
		t[i] = ggml.FP16ToFP32(ggml.FP32ToFP16(gelu(ggml.FP16ToFP32(uint16(i)))))
	}
	return &t
})

// geglu sets g[i] = gelu(g[i]) * u[i], GELU's tanh approximation as
// ggml's CPU backend computes it: the input rounded to half precision
// and the result looked up in half precision, 0 below -10 and the
// identity above 10.
func geglu(g, u []float32) {
	u = u[:len(g)]
	t := geluTable()
	for i, v := range g {
		switch {
		case v <= -10:
			g[i] = 0
		case v >= 10:
			g[i] = v * u[i]
		default:
			g[i] = t[ggml.FP32ToFP16(v)] * u[i]
		}
	}
}
