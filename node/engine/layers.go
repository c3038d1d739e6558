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
func (r *cpuRunner) norm(out, in, w []float32, n int) {
	d := r.c.dim
	for t := 0; t < n; t++ {
		rmsnorm(out[t*d:(t+1)*d], in[t*d:(t+1)*d], w, r.c.eps)
	}
}

// residual adds the sublayer's output to the residual stream: x += xb.
func (r *cpuRunner) residual(n int) {
	cpu.Add(r.s.xb[:n*r.c.dim], r.s.x[:n*r.c.dim])
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
	addBias(s.q, lf.bq, n, c.qDim)
	addBias(s.k, lf.bk, n, c.kvDim)
	addBias(s.v, lf.bv, n, c.kvDim)

	// per-head Q/K norms, then RoPE
	rt := &r.ropes[lf.rope]
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
		r.rope(rt, s.q[t*c.qDim:(t+1)*c.qDim], c.nHead, t)
		r.rope(rt, s.k[t*c.kvDim:(t+1)*c.kvDim], c.nKV, t)
	}

	// each row's k, v at its position of its sequence
	kl, vl, kvIdx := r.layerKV(il)
	for t := 0; t < n; t++ {
		o := kvIdx[t]
		cpu.ToF16(kl[o:o+c.kvDim], s.k[t*c.kvDim:(t+1)*c.kvDim])
		cpu.ToF16(vl[o:o+c.kvDim], s.v[t*c.kvDim:(t+1)*c.kvDim])
	}
	if emulateF16KV {
		ggml.RoundHalf(s.q[:n*c.qDim], s.q[:n*c.qDim])
	}

	// att = softmax(q·K·scale)·V
	r.attn.k, r.attn.v, r.attn.window, r.attn.win = kl, vl, lf.window, lf.win
	r.pool.Run(r.attnFn)

	// xb = att·Wo
	r.mm.begin(s.att, n, c.qDim)
	r.mm.add(lw.Wo, s.xb, c.dim)
	r.runMatmul()
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
	act(s.hb[:n*nff], s.hb2[:n*nff])
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
