package engine

import (
	"encoding/binary"
	"math"
	"math/rand"
	"testing"

	"helexa/node/ggml"
)

// randTensor makes an F32 tensor of rows×cols values from rng, scaled.
func randTensor(rng *rand.Rand, name string, scale float64, cols int, rows ...int) *Tensor {
	dims := append([]int{cols}, rows...)
	n := cols
	for _, r := range rows {
		n *= r
	}
	data := make([]byte, 4*n)
	for i := 0; i < n; i++ {
		binary.LittleEndian.PutUint32(data[4*i:], math.Float32bits(float32(rng.NormFloat64()*scale)))
	}
	return &Tensor{Name: name, Type: ggml.F32, Dims: dims, Data: data}
}

// onesish is a norm weight near 1.
func onesish(rng *rand.Rand, name string, n int) *Tensor {
	t := randTensor(rng, name, 0.1, n)
	for i := 0; i < n; i++ {
		v := math.Float32frombits(binary.LittleEndian.Uint32(t.Data[4*i:]))
		binary.LittleEndian.PutUint32(t.Data[4*i:], math.Float32bits(1+v))
	}
	return t
}

func tensorF64(t *Tensor) []float64 {
	if t == nil {
		return nil
	}
	out := make([]float64, len(t.Data)/4)
	for i := range out {
		out[i] = float64(math.Float32frombits(binary.LittleEndian.Uint32(t.Data[4*i:])))
	}
	return out
}

// tinyModel builds random weights of a small model of the given arch.
func tinyModel(seed int64, arch string) *Weights {
	rng := rand.New(rand.NewSource(seed))
	h := Hparams{Arch: arch, NVocab: 40, NEmbd: 32, NLayer: 2, NHead: 4, NHeadKV: 2, HeadDim: 16, NFF: 48,
		NCtxTrain: 64, NormEps: 1e-5, RopeTheta: 10000, RopeDims: 16}
	switch arch {
	case "qwen2", "qwen3":
		h.RopeStyle = RopeNeoX
		h.RopeTheta = 1e6
	case "llama3":
		h.RopeFreqs = []float32{1, 1, 1.5, 2, 3, 4, 6, 8}
	}
	q, kv := h.NHead*h.HeadDim, h.NHeadKV*h.HeadDim
	return randomWeights(rng, h, func(l *Layer) {
		if arch == "qwen2" {
			l.Bq = randTensor(rng, "bq", 0.5, q)
			l.Bk = randTensor(rng, "bk", 0.5, kv)
			l.Bv = randTensor(rng, "bv", 0.5, kv)
		}
		if arch == "qwen3" {
			l.QNorm = onesish(rng, "q_norm", h.HeadDim)
			l.KNorm = onesish(rng, "k_norm", h.HeadDim)
		}
	})
}

// randomWeights draws the F32 weights of a model shaped by h from rng: the
// embeddings, output norm and output, then layer after layer its norms and
// matrices, extra (when not nil) adding the layer's optional tensors right
// after them.
func randomWeights(rng *rand.Rand, h Hparams, extra func(l *Layer)) *Weights {
	q, kv := h.NHead*h.HeadDim, h.NHeadKV*h.HeadDim
	w := &Weights{H: h,
		TokEmbd: randTensor(rng, "tok", 1, h.NEmbd, h.NVocab),
		OutNorm: onesish(rng, "out_norm", h.NEmbd),
		Output:  randTensor(rng, "out", 0.3, h.NEmbd, h.NVocab),
	}
	for range h.NLayer {
		l := Layer{
			AttnNorm: onesish(rng, "attn_norm", h.NEmbd),
			Wq:       randTensor(rng, "wq", 0.3, h.NEmbd, q),
			Wk:       randTensor(rng, "wk", 0.3, h.NEmbd, kv),
			Wv:       randTensor(rng, "wv", 0.3, h.NEmbd, kv),
			Wo:       randTensor(rng, "wo", 0.2, q, h.NEmbd),
			FFNNorm:  onesish(rng, "ffn_norm", h.NEmbd),
			FFNGate:  randTensor(rng, "gate", 0.3, h.NEmbd, h.NFF),
			FFNUp:    randTensor(rng, "up", 0.3, h.NEmbd, h.NFF),
			FFNDown:  randTensor(rng, "down", 0.2, h.NFF, h.NEmbd),
		}
		if extra != nil {
			extra(&l)
		}
		w.Layers = append(w.Layers, l)
	}
	return w
}

// naiveForward is a direct float64 transcription of the architecture: the
// logits of every token of a sequence starting at position 0.
func naiveForward(w *Weights, tokens []int32) [][]float64 {
	h := w.H
	q, kvd := h.NHead*h.HeadDim, h.NHeadKV*h.HeadDim
	matvec := func(t *Tensor, x []float64) []float64 {
		m := tensorF64(t)
		cols := t.Dims[0]
		out := make([]float64, t.Rows())
		for r := range out {
			for c := 0; c < cols; c++ {
				out[r] += m[r*cols+c] * x[c]
			}
		}
		return out
	}
	norm := func(x []float64, wt *Tensor) []float64 {
		ws := tensorF64(wt)
		ss := 0.0
		for _, v := range x {
			ss += v * v
		}
		s := 1 / math.Sqrt(ss/float64(len(x))+float64(h.NormEps))
		out := make([]float64, len(x))
		for i := range x {
			out[i] = x[i] * s * ws[i]
		}
		return out
	}
	rope := func(x []float64, pos int) {
		half := h.RopeDims / 2
		for i := 0; i < half; i++ {
			theta := float64(pos) * math.Pow(float64(h.RopeTheta), -2*float64(i)/float64(h.RopeDims))
			if h.RopeFreqs != nil {
				theta /= float64(h.RopeFreqs[i])
			}
			a, b := 2*i, 2*i+1
			if h.RopeStyle == RopeNeoX {
				a, b = i, i+half
			}
			x0, x1 := x[a], x[b]
			x[a] = x0*math.Cos(theta) - x1*math.Sin(theta)
			x[b] = x0*math.Sin(theta) + x1*math.Cos(theta)
		}
	}
	addB := func(x []float64, b *Tensor) {
		for i, v := range tensorF64(b) {
			x[i] += v
		}
	}
	emb := tensorF64(w.TokEmbd)
	kc := make([][][]float64, h.NLayer) // layer, pos, kvd
	vc := make([][][]float64, h.NLayer)
	var out [][]float64
	for pos, tok := range tokens {
		x := append([]float64(nil), emb[int(tok)*h.NEmbd:(int(tok)+1)*h.NEmbd]...)
		for l := range w.Layers {
			L := &w.Layers[l]
			xb := norm(x, L.AttnNorm)
			qv, kv, vv := matvec(L.Wq, xb), matvec(L.Wk, xb), matvec(L.Wv, xb)
			addB(qv, L.Bq)
			addB(kv, L.Bk)
			addB(vv, L.Bv)
			for hh := 0; hh < h.NHead; hh++ {
				if L.QNorm != nil {
					copy(qv[hh*h.HeadDim:], norm(qv[hh*h.HeadDim:(hh+1)*h.HeadDim], L.QNorm))
				}
				rope(qv[hh*h.HeadDim:(hh+1)*h.HeadDim], pos)
			}
			for hh := 0; hh < h.NHeadKV; hh++ {
				if L.KNorm != nil {
					copy(kv[hh*h.HeadDim:], norm(kv[hh*h.HeadDim:(hh+1)*h.HeadDim], L.KNorm))
				}
				rope(kv[hh*h.HeadDim:(hh+1)*h.HeadDim], pos)
			}
			kc[l] = append(kc[l], kv)
			vc[l] = append(vc[l], vv)
			att := make([]float64, q)
			for hh := 0; hh < h.NHead; hh++ {
				g := hh / (h.NHead / h.NHeadKV)
				sc := make([]float64, pos+1)
				mx := math.Inf(-1)
				for p := 0; p <= pos; p++ {
					for d := 0; d < h.HeadDim; d++ {
						sc[p] += qv[hh*h.HeadDim+d] * kc[l][p][g*h.HeadDim+d]
					}
					sc[p] /= math.Sqrt(float64(h.HeadDim))
					mx = math.Max(mx, sc[p])
				}
				sum := 0.0
				for p := range sc {
					sc[p] = math.Exp(sc[p] - mx)
					sum += sc[p]
				}
				for p := range sc {
					for d := 0; d < h.HeadDim; d++ {
						att[hh*h.HeadDim+d] += sc[p] / sum * vc[l][p][g*h.HeadDim+d]
					}
				}
			}
			for i, v := range matvec(L.Wo, att) {
				x[i] += v
			}
			xb = norm(x, L.FFNNorm)
			g, u := matvec(L.FFNGate, xb), matvec(L.FFNUp, xb)
			for i := range g {
				g[i] = g[i] / (1 + math.Exp(-g[i])) * u[i]
			}
			for i, v := range matvec(L.FFNDown, g) {
				x[i] += v
			}
		}
		out = append(out, matvec(w.Output, norm(x, w.OutNorm)))
	}
	_ = kvd
	return out
}

// The CPU runner computes what a direct float64 transcription of each
// architecture variant computes: RoPE styles and frequency factors, GQA,
// QKV biases (qwen2) and per-head Q/K norms (qwen3).
func TestForwardMatchesNaive(t *testing.T) {
	for _, arch := range []string{"llama", "llama3", "qwen2", "qwen3"} {
		t.Run(arch, func(t *testing.T) {
			w := tinyModel(7, arch)
			if err := w.validate(); err != nil {
				t.Fatal(err)
			}
			r, err := CPU{}.NewRunner(w, RunnerOptions{ContextLength: 32, Slots: 1, Threads: 2})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			tokens := []int32{3, 17, 0, 39, 8, 8, 21, 5, 30, 11}
			nv := w.H.NVocab
			got := make([]float32, len(tokens)*nv)
			if err := ForwardSlot(r, 0, tokens, 0, got, true); err != nil {
				t.Fatal(err)
			}
			want := naiveForward(w, tokens)
			worst := 0.0
			for i := range tokens {
				for j := 0; j < nv; j++ {
					worst = math.Max(worst, math.Abs(float64(got[i*nv+j])-want[i][j]))
				}
			}
			// Half-precision K/V (as llama.cpp keeps them) bounds the
			// agreement; logits here are of order 1-10.
			if worst > 0.02 {
				t.Errorf("max |logit - naive| = %g", worst)
			}
			t.Logf("max |logit - naive| = %.2g", worst)
		})
	}
}
