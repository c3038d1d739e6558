package engine

import (
	"errors"
	"fmt"
	"math"
	"slices"

	"helexa/node/ggml"
)

// Oracle is the project's one float64 reference forward pass: a direct
// transcription of the architectures (RMSNorm, RoPE in both layouts with
// frequency factors and linear scaling, grouped-query attention, QKV
// biases, per-head Q/K norms, SwiGLU) over dequantized weights, written
// for clarity rather than speed. The engine's tests, the CUDA checks
// (gpucheck) and the CUDA backend's tests compare with it. It implements
// Runner for small models only: every matrix is kept dequantized and the
// KV cache is float64, one whole context per sequence (one block each).
type Oracle struct {
	w    *Weights
	o    RunnerOptions
	mats map[*Tensor][]float32
	vecs map[*Tensor][]float64
	// inv is RoPE's inverse frequency per rotated pair (RopeDims/2);
	// invSWA that of sliding-window layers.
	inv, invSWA []float64
	// kc, vc: (slots, layers) of (ctx, kvdim).
	kc, vc [][]float64
}

var _ Runner = (*Oracle)(nil)

// NewOracle validates w, dequantizes its tensors and allocates a float64
// KV cache of o.ContextLength positions for each of o.Slots sequences.
func NewOracle(w *Weights, o RunnerOptions) (*Oracle, error) {
	bs, blocks := o.kvLayout()
	if bs != o.ContextLength {
		return nil, fmt.Errorf("oracle: KV blocks of %d positions: it keeps one block of the whole context (%d) per sequence", bs, o.ContextLength)
	}
	o.BlockSize, o.Blocks, o.Slots = bs, blocks, blocks
	if o.ContextLength <= 0 || o.Slots <= 0 {
		return nil, fmt.Errorf("oracle: context %d and slots %d must be positive", o.ContextLength, o.Slots)
	}
	if len(w.Layers) != w.H.NLayer {
		return nil, fmt.Errorf("oracle: %d layers, hyperparameters say %d", len(w.Layers), w.H.NLayer)
	}
	if err := w.validate(); err != nil {
		return nil, fmt.Errorf("oracle: %w", err)
	}
	switch w.H.Arch {
	case "llama", "qwen2", "qwen3", "qwen3moe", "gemma3":
	default:
		return nil, fmt.Errorf("oracle: %w: architecture %s (it transcribes llama, qwen2, qwen3, qwen3moe and gemma3)", ErrUnsupported, w.H.Arch)
	}
	r := &Oracle{w: w, o: o, mats: map[*Tensor][]float32{}, vecs: map[*Tensor][]float64{}, inv: oracleInvFreq(w.H)}
	if w.H.SWA != nil {
		hs := w.H
		hs.RopeTheta, hs.RopeFreqs, hs.RopeScaling.Factor = w.H.RopeThetaSWA, nil, 0
		r.invSWA = oracleInvFreq(hs)
	}
	for _, t := range w.all() {
		if t == nil || r.mats[t] != nil || r.vecs[t] != nil {
			continue
		}
		rb, err := ggml.RowBytes(t.Type, t.Dims[0])
		if err != nil {
			return nil, fmt.Errorf("oracle: %s: %w", t.Name, err)
		}
		v := make([]float32, t.Dims[0]*t.Rows())
		if err := ggml.Dequantize(t.Type, t.Data[:rb*t.Rows()], v); err != nil {
			return nil, fmt.Errorf("oracle: %s: %w", t.Name, err)
		}
		if len(t.Dims) == 1 {
			r.vecs[t] = f64s(v)
		} else {
			r.mats[t] = v
		}
	}
	kvdim := w.H.NHeadKV * w.H.HeadDim
	for range o.Slots * w.H.NLayer {
		r.kc = append(r.kc, make([]float64, o.ContextLength*kvdim))
		r.vc = append(r.vc, make([]float64, o.ContextLength*kvdim))
	}
	return r, nil
}

// oracleInvFreq is RoPE's inverse frequency of each rotated pair:
// theta^(-2i/dims), divided by the model's frequency factor when it has
// them (rope_freqs, or llama3's scaling keys).
func oracleInvFreq(h Hparams) []float64 {
	freqs := h.RopeFreqs
	if freqs == nil && h.RopeScaling.Factor != 0 && h.RopeScaling.HighFreqFactor > h.RopeScaling.LowFreqFactor {
		freqs = llama3RopeFreqs(h)
	}
	theta := float64(h.RopeTheta)
	if theta == 0 {
		theta = 10000
	}
	inv := make([]float64, h.RopeDims/2)
	for i := range inv {
		inv[i] = math.Pow(theta, -2*float64(i)/float64(h.RopeDims))
		if i < len(freqs) && freqs[i] != 0 {
			inv[i] /= float64(freqs[i])
		}
	}
	return inv
}

func f64s(v []float32) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}

// MemBytes is the host memory of the dequantized tensors and the cache.
func (r *Oracle) MemBytes() int64 {
	var n int64
	for _, m := range r.mats {
		n += 4 * int64(len(m))
	}
	for _, v := range r.vecs {
		n += 8 * int64(len(v))
	}
	if len(r.kc) > 0 {
		n += 16 * int64(len(r.kc)*len(r.kc[0]))
	}
	return n
}

// Close drops the runner's memory.
func (r *Oracle) Close() error {
	r.mats, r.vecs, r.kc, r.vc = nil, nil, nil, nil
	return nil
}

// ForwardBatch implements Runner, one item and one token at a time.
func (r *Oracle) ForwardBatch(items []Item) error {
	if r.kc == nil {
		return errors.New("oracle: forward after close")
	}
	if err := checkItems(r.o.ContextLength, r.o.Slots, r.o.ContextLength, r.w.H.NVocab, items); err != nil {
		return err
	}
	for _, it := range items {
		r.forward(int(it.Blocks[0]), it.Tokens, it.Pos, it.Logits, it.All)
	}
	return nil
}

// CopyKV implements Runner.
func (r *Oracle) CopyKV(dst, src int32, n int) error {
	if err := CheckCopyKV(dst, src, n, r.o.Slots, r.o.ContextLength); err != nil {
		return err
	}
	kvdim := r.w.H.NHeadKV * r.w.H.HeadDim
	for li := range r.w.H.NLayer {
		d, s := int(dst)*r.w.H.NLayer+li, int(src)*r.w.H.NLayer+li
		copy(r.kc[d][:n*kvdim], r.kc[s][:n*kvdim])
		copy(r.vc[d][:n*kvdim], r.vc[s][:n*kvdim])
	}
	return nil
}

// forward runs tokens of the sequence in slot; logits nil wants none.
func (r *Oracle) forward(slot int, tokens []int32, pos int, logits []float32, all bool) {
	h := r.w.H
	for i, t := range tokens {
		last := i == len(tokens)-1
		out := r.step(slot, t, pos+i, logits != nil && (all || last))
		if out == nil {
			continue
		}
		dst := logits[:h.NVocab]
		if all {
			dst = logits[i*h.NVocab : (i+1)*h.NVocab]
		}
		for j, v := range out {
			dst[j] = float32(v)
		}
	}
}

// matvec returns t · x (t is rows × len(x)).
func (r *Oracle) matvec(t *Tensor, x []float64) []float64 {
	m := r.mats[t]
	cols := t.Dims[0]
	out := make([]float64, t.Rows())
	for i := range out {
		var s float64
		for j, w := range m[i*cols : (i+1)*cols] {
			s += float64(w) * x[j]
		}
		out[i] = s
	}
	return out
}

func (r *Oracle) rmsnorm(x []float64, w *Tensor) []float64 {
	var ss float64
	for _, v := range x {
		ss += v * v
	}
	sc := 1 / math.Sqrt(ss/float64(len(x))+float64(r.w.H.NormEps))
	wv := r.vecs[w]
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = v * sc * wv[i]
	}
	return out
}

// rope rotates the first RopeDims values of each of nhead heads of x for
// position pos: adjacent pairs (llama) or halves (NeoX), with inverse
// frequencies inv and linear scaling freqScale (0: none).
func (r *Oracle) rope(x []float64, nhead, pos int, inv []float64, freqScale float32) {
	h := r.w.H
	p := float64(pos)
	if freqScale != 0 {
		p *= float64(freqScale)
	}
	half := h.RopeDims / 2
	for hh := range nhead {
		v := x[hh*h.HeadDim:]
		for i := range half {
			a, b := 2*i, 2*i+1
			if h.RopeStyle == RopeNeoX {
				a, b = i, i+half
			}
			s, c := math.Sincos(p * inv[i])
			x0, x1 := v[a], v[b]
			v[a], v[b] = x0*c-x1*s, x0*s+x1*c
		}
	}
}

// step runs one token at pos through every layer, writing its K and V to
// slot's cache, and returns its logits when wantLogits.
func (r *Oracle) step(slot int, tok int32, pos int, wantLogits bool) []float64 {
	w, h := r.w, r.w.H
	hd, dim := h.HeadDim, h.NEmbd
	kvdim := h.NHeadKV * hd
	x := f64s(r.mats[w.TokEmbd][int(tok)*dim : (int(tok)+1)*dim])
	if h.EmbedScale != 0 {
		for i := range x {
			x[i] *= float64(h.EmbedScale)
		}
	}
	for li := range w.Layers {
		l := &w.Layers[li]
		inv, freqScale, first := r.inv, h.RopeFreqScale, 0
		if h.LayerSWA(li) {
			// a sliding window: its own RoPE base, the last SlidingWindow positions
			inv, freqScale, first = r.invSWA, h.RopeFreqScaleSWA, max(0, pos-h.SlidingWindow+1)
		}
		// 1. attention: norm, projections (+ biases), per-head norms, RoPE
		xb := r.rmsnorm(x, l.AttnNorm)
		q, k, v := r.matvec(l.Wq, xb), r.matvec(l.Wk, xb), r.matvec(l.Wv, xb)
		for _, p := range []struct {
			y []float64
			b *Tensor
		}{{q, l.Bq}, {k, l.Bk}, {v, l.Bv}} {
			if p.b != nil {
				for i, bv := range r.vecs[p.b] {
					p.y[i] += bv
				}
			}
		}
		if l.QNorm != nil {
			for hh := range h.NHead {
				copy(q[hh*hd:(hh+1)*hd], r.rmsnorm(q[hh*hd:(hh+1)*hd], l.QNorm))
			}
		}
		if l.KNorm != nil {
			for hh := range h.NHeadKV {
				copy(k[hh*hd:(hh+1)*hd], r.rmsnorm(k[hh*hd:(hh+1)*hd], l.KNorm))
			}
		}
		r.rope(q, h.NHead, pos, inv, freqScale)
		r.rope(k, h.NHeadKV, pos, inv, freqScale)
		// 2. the cache, then softmax(q·k/√hd)·v over positions 0..pos,
		// each query head reading its group's KV head
		kc, vc := r.kc[slot*h.NLayer+li], r.vc[slot*h.NLayer+li]
		copy(kc[pos*kvdim:], k)
		copy(vc[pos*kvdim:], v)
		att := make([]float64, h.NHead*hd)
		g := h.NHead / h.NHeadKV
		scale := 1 / math.Sqrt(float64(hd))
		if h.AttnScale != 0 {
			scale = float64(h.AttnScale)
		}
		for hh := range h.NHead {
			kvh := hh / g
			s := make([]float64, pos+1)
			m := math.Inf(-1)
			for t := first; t <= pos; t++ {
				var d float64
				for i := range hd {
					d += q[hh*hd+i] * kc[t*kvdim+kvh*hd+i]
				}
				s[t] = d * scale
				m = math.Max(m, s[t])
			}
			var sum float64
			for t := first; t <= pos; t++ {
				s[t] = math.Exp(s[t] - m)
				sum += s[t]
			}
			for t := first; t <= pos; t++ {
				for i := range hd {
					att[hh*hd+i] += s[t] / sum * vc[t*kvdim+kvh*hd+i]
				}
			}
		}
		o := r.matvec(l.Wo, att)
		if l.PostAttnNorm != nil {
			o = r.rmsnorm(o, l.PostAttnNorm)
		}
		for i, v := range o {
			x[i] += v
		}
		// 3. feed-forward: norm, gated FFN (or the mixture of experts),
		// post-norm, residual
		xb = r.rmsnorm(x, l.FFNNorm)
		var f []float64
		if l.FFNGateInp != nil {
			f = r.moe(l, xb)
		} else {
			f = r.gatedFFN(l.FFNGate, l.FFNUp, l.FFNDown, 0, xb)
		}
		if l.PostFFNNorm != nil {
			f = r.rmsnorm(f, l.PostFFNNorm)
		}
		for i, d := range f {
			x[i] += d
		}
	}
	if !wantLogits {
		return nil
	}
	// 4. output norm and logits (soft-capped when the model says)
	logits := r.matvec(w.Output, r.rmsnorm(x, w.OutNorm))
	if c := float64(h.FinalSoftcap); c > 0 {
		for i, v := range logits {
			logits[i] = c * math.Tanh(v/c)
		}
	}
	return logits
}

// gatedFFN is down(act(gate·x) ⊙ up·x) over rows [e·n, (e+1)·n) of the
// gate and up matrices and the e-th block of down's rows (expert e of 3-D
// tensors; 0 for a dense FFN): SiLU, or GELU's tanh approximation for
// gemma3.
func (r *Oracle) gatedFFN(gate, up, down *Tensor, e int, x []float64) []float64 {
	n := gate.Dims[1]
	gv, uv := r.matvecRows(gate, e*n, n, x), r.matvecRows(up, e*n, n, x)
	for i, g := range gv {
		if r.w.H.Arch == "gemma3" {
			gv[i] = 0.5 * g * (1 + math.Tanh(math.Sqrt(2/math.Pi)*(g+0.044715*g*g*g))) * uv[i]
		} else {
			gv[i] = g / (1 + math.Exp(-g)) * uv[i]
		}
	}
	return r.matvecRows(down, e*down.Dims[1], down.Dims[1], gv)
}

// moe is the mixture of experts of layer l for x: softmax router, the
// top NExpertUsed, their weights renormalised (ExpertNormTopK), the
// weighted sum of their FFNs.
func (r *Oracle) moe(l *Layer, x []float64) []float64 {
	h := r.w.H
	p := r.matvec(l.FFNGateInp, x)
	m := math.Inf(-1)
	for _, v := range p {
		m = math.Max(m, v)
	}
	var z float64
	for i, v := range p {
		p[i] = math.Exp(v - m)
		z += p[i]
	}
	chosen := make([]int, 0, h.NExpertUsed)
	var wsum float64
	for range h.NExpertUsed {
		best := -1
		for e := range p {
			if !slices.Contains(chosen, e) && (best < 0 || p[e] > p[best]) {
				best = e
			}
		}
		chosen = append(chosen, best)
		wsum += p[best] / z
	}
	out := make([]float64, h.NEmbd)
	for _, e := range chosen {
		wt := p[e] / z
		if h.ExpertNormTopK {
			wt /= wsum
		}
		for i, v := range r.gatedFFN(l.FFNGateExps, l.FFNUpExps, l.FFNDownExps, e, x) {
			out[i] += wt * v
		}
	}
	return out
}

// matvecRows returns rows [row0, row0+n) of t · x.
func (r *Oracle) matvecRows(t *Tensor, row0, n int, x []float64) []float64 {
	m := r.mats[t]
	cols := t.Dims[0]
	out := make([]float64, n)
	for i := range out {
		var s float64
		for j, w := range m[(row0+i)*cols : (row0+i+1)*cols] {
			s += float64(w) * x[j]
		}
		out[i] = s
	}
	return out
}
