package cuda

import (
	"fmt"
	"math"

	"helexa/node/engine"
	"helexa/node/ggml"
)

// ReferenceRunner is a plain float64 forward pass over engine.Weights on
// the CPU, written for clarity rather than speed: the oracle gpucheck
// compares the CUDA runner with, and a stand-in backend for tests. It
// implements engine.Runner for small models only (it keeps every matrix
// dequantized).
type ReferenceRunner struct {
	w    *engine.Weights
	o    engine.RunnerOptions
	mats map[*engine.Tensor][]float32
	vecs map[*engine.Tensor][]float32
	inv  []float64
	// kc, vc: (slots, layers) of (ctx, kvdim).
	kc, vc [][]float64
}

var _ engine.Runner = (*ReferenceRunner)(nil)

// NewReferenceRunner dequantizes w's matrices and allocates a float64 KV
// cache.
func NewReferenceRunner(w *engine.Weights, o engine.RunnerOptions) (*ReferenceRunner, error) {
	o, err := slotLayout(o)
	if err != nil {
		return nil, err
	}
	if _, err := Estimate(w, o); err != nil {
		return nil, err
	}
	r := &ReferenceRunner{w: w, o: o, mats: map[*engine.Tensor][]float32{}, vecs: map[*engine.Tensor][]float32{}, inv: ropeInvFreq(w.H)}
	for _, t := range linear(w) {
		if _, ok := r.mats[t]; ok {
			continue
		}
		m := make([]float32, elems(t))
		if err := ggml.Dequantize(t.Type, t.Data, m); err != nil {
			return nil, fmt.Errorf("%s: %w", t.Name, err)
		}
		r.mats[t] = m
	}
	for _, t := range vectors(w) {
		v, err := toF32(t)
		if err != nil {
			return nil, err
		}
		r.vecs[t] = v
	}
	kvdim := w.H.NHeadKV * w.H.HeadDim
	for i := 0; i < o.Slots*w.H.NLayer; i++ {
		r.kc = append(r.kc, make([]float64, o.ContextLength*kvdim))
		r.vc = append(r.vc, make([]float64, o.ContextLength*kvdim))
	}
	return r, nil
}

// MemBytes is the host memory of the dequantized matrices and cache.
func (r *ReferenceRunner) MemBytes() int64 {
	var n int64
	for _, m := range r.mats {
		n += 4 * int64(len(m))
	}
	return n + 16*int64(len(r.kc)*len(r.kc[0]))
}

// Close drops the runner's memory.
func (r *ReferenceRunner) Close() error {
	r.mats, r.kc, r.vc = nil, nil, nil
	return nil
}

// matvec returns t · x (t is rows × len(x)).
func (r *ReferenceRunner) matvec(t *engine.Tensor, x []float64) []float64 {
	m := r.mats[t]
	cols := t.Dims[0]
	out := make([]float64, t.Rows())
	for i := range out {
		row := m[i*cols : (i+1)*cols]
		var s float64
		for j, w := range row {
			s += float64(w) * x[j]
		}
		out[i] = s
	}
	return out
}

func (r *ReferenceRunner) rmsnorm(x []float64, w *engine.Tensor) []float64 {
	var ss float64
	for _, v := range x {
		ss += v * v
	}
	sc := 1 / math.Sqrt(ss/float64(len(x))+float64(r.w.H.NormEps))
	wv := r.vecs[w]
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = v * sc * float64(wv[i])
	}
	return out
}

func (r *ReferenceRunner) rope(x []float64, nhead, pos int) {
	h := r.w.H
	half := h.RopeDims / 2
	for hh := 0; hh < nhead; hh++ {
		v := x[hh*h.HeadDim:]
		for i := 0; i < half; i++ {
			a, b := 2*i, 2*i+1
			if h.RopeStyle == engine.RopeNeoX {
				a, b = i, i+half
			}
			s, c := math.Sincos(ropePos(h, pos) * r.inv[i])
			x0, x1 := v[a], v[b]
			v[a], v[b] = x0*c-x1*s, x0*s+x1*c
		}
	}
}

// Forward implements engine.Runner, one token at a time.
func (r *ReferenceRunner) Forward(slot int, tokens []int32, pos int, logits []float32, all bool) error {
	if err := checkForward(r.w.H, r.o, slot, tokens, pos, logits, all); err != nil {
		return err
	}
	for i, t := range tokens {
		out := r.step(slot, t, pos+i, logits != nil && (all || i == len(tokens)-1))
		if out == nil {
			continue
		}
		dst := logits[:r.w.H.NVocab]
		if all {
			dst = logits[i*r.w.H.NVocab : (i+1)*r.w.H.NVocab]
		}
		for j, v := range out {
			dst[j] = float32(v)
		}
	}
	return nil
}

// ForwardBatch implements engine.Runner, one item after the other (each
// item's sequence in one block, its slot).
func (r *ReferenceRunner) ForwardBatch(items []engine.Item) error {
	for i, it := range items {
		if len(it.Blocks) == 0 {
			return fmt.Errorf("batch item %d: no KV block", i)
		}
		if err := r.Forward(int(it.Blocks[0]), it.Tokens, it.Pos, it.Logits, it.All); err != nil {
			return fmt.Errorf("batch item %d: %w", i, err)
		}
	}
	return nil
}

// CopyKV implements engine.Runner.
func (r *ReferenceRunner) CopyKV(dst, src int32, n int) error {
	if dst < 0 || int(dst) >= r.o.Slots || src < 0 || int(src) >= r.o.Slots || n < 0 || n > r.o.ContextLength {
		return fmt.Errorf("copying %d positions from KV slot %d to %d: out of range", n, src, dst)
	}
	kvdim := r.w.H.NHeadKV * r.w.H.HeadDim
	for li := range r.w.H.NLayer {
		d, s := int(dst)*r.w.H.NLayer+li, int(src)*r.w.H.NLayer+li
		copy(r.kc[d][:n*kvdim], r.kc[s][:n*kvdim])
		copy(r.vc[d][:n*kvdim], r.vc[s][:n*kvdim])
	}
	return nil
}

func (r *ReferenceRunner) step(slot int, tok int32, pos int, wantLogits bool) []float64 {
	w, h := r.w, r.w.H
	hd, dim := h.HeadDim, h.NEmbd
	kvdim := h.NHeadKV * hd
	x := f64(r.mats[w.TokEmbd][int(tok)*dim : (int(tok)+1)*dim])
	for li := range w.Layers {
		l := &w.Layers[li]
		xb := r.rmsnorm(x, l.AttnNorm)
		q, k, v := r.matvec(l.Wq, xb), r.matvec(l.Wk, xb), r.matvec(l.Wv, xb)
		for _, p := range []struct {
			y []float64
			b *engine.Tensor
		}{{q, l.Bq}, {k, l.Bk}, {v, l.Bv}} {
			if p.b != nil {
				for i, bv := range r.vecs[p.b] {
					p.y[i] += float64(bv)
				}
			}
		}
		if l.QNorm != nil {
			for hh := 0; hh < h.NHead; hh++ {
				copy(q[hh*hd:(hh+1)*hd], r.rmsnorm(q[hh*hd:(hh+1)*hd], l.QNorm))
			}
		}
		if l.KNorm != nil {
			for hh := 0; hh < h.NHeadKV; hh++ {
				copy(k[hh*hd:(hh+1)*hd], r.rmsnorm(k[hh*hd:(hh+1)*hd], l.KNorm))
			}
		}
		r.rope(q, h.NHead, pos)
		r.rope(k, h.NHeadKV, pos)
		kc, vc := r.kc[slot*h.NLayer+li], r.vc[slot*h.NLayer+li]
		copy(kc[pos*kvdim:], k)
		copy(vc[pos*kvdim:], v)
		att := make([]float64, h.NHead*hd)
		g := h.NHead / h.NHeadKV
		scale := 1 / math.Sqrt(float64(hd))
		for hh := 0; hh < h.NHead; hh++ {
			kvh := hh / g
			s := make([]float64, pos+1)
			m := math.Inf(-1)
			for t := 0; t <= pos; t++ {
				var d float64
				for i := 0; i < hd; i++ {
					d += q[hh*hd+i] * kc[t*kvdim+kvh*hd+i]
				}
				s[t] = d * scale
				m = math.Max(m, s[t])
			}
			var sum float64
			for t := range s {
				s[t] = math.Exp(s[t] - m)
				sum += s[t]
			}
			for t := 0; t <= pos; t++ {
				for i := 0; i < hd; i++ {
					att[hh*hd+i] += s[t] / sum * vc[t*kvdim+kvh*hd+i]
				}
			}
		}
		for i, o := range r.matvec(l.Wo, att) {
			x[i] += o
		}
		xb = r.rmsnorm(x, l.FFNNorm)
		gate, up := r.matvec(l.FFNGate, xb), r.matvec(l.FFNUp, xb)
		for i := range gate {
			gate[i] = gate[i] / (1 + math.Exp(-gate[i])) * up[i]
		}
		for i, d := range r.matvec(l.FFNDown, gate) {
			x[i] += d
		}
	}
	if !wantLogits {
		return nil
	}
	return r.matvec(w.Output, r.rmsnorm(x, w.OutNorm))
}
