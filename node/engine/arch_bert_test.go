package engine

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	"helexa/node/ggml"
)

// bertF64 is a float64 transcription of the bert forward pass, straight
// from the tensors: the check the runner is measured against.
func bertF64(t *testing.T, w *Weights, tokens []int32) []float64 {
	t.Helper()
	h, b := w.H, w.Bert
	mat := func(tn *Tensor) [][]float64 {
		rows, cols := tn.Rows(), tn.Dims[0]
		f := make([]float32, rows*cols)
		if err := ggml.Dequantize(tn.Type, tn.Data, f); err != nil {
			t.Fatal(err)
		}
		out := make([][]float64, rows)
		for r := range out {
			out[r] = make([]float64, cols)
			for c := range cols {
				out[r][c] = float64(f[r*cols+c])
			}
		}
		return out
	}
	vec := func(tn *Tensor) []float64 { return mat(tn)[0] }
	lin := func(wt, bias *Tensor, x []float64) []float64 {
		m := mat(wt)
		out := make([]float64, len(m))
		for r := range m {
			s := 0.0
			if bias != nil {
				s = vec(bias)[r]
			}
			for c, v := range m[r] {
				s += v * x[c]
			}
			out[r] = s
		}
		return out
	}
	ln := func(x []float64, wt, bias *Tensor) []float64 {
		g, bv := vec(wt), vec(bias)
		var mean, vr float64
		for _, v := range x {
			mean += v
		}
		mean /= float64(len(x))
		for _, v := range x {
			vr += (v - mean) * (v - mean)
		}
		vr /= float64(len(x))
		out := make([]float64, len(x))
		for i, v := range x {
			out[i] = (v-mean)/math.Sqrt(vr+float64(h.NormEps))*g[i] + bv[i]
		}
		return out
	}
	n, d, hd := len(tokens), h.NEmbd, h.HeadDim
	tok, pos := mat(w.TokEmbd), mat(b.PosEmbd)
	typ := mat(b.TypeEmbd)[0]
	x := make([][]float64, n)
	for i, id := range tokens {
		x[i] = make([]float64, d)
		for j := range d {
			x[i][j] = tok[id][j] + pos[i][j] + typ[j]
		}
		x[i] = ln(x[i], b.EmbNorm, b.EmbNormB)
	}
	for _, l := range b.Layers {
		q, k, v := make([][]float64, n), make([][]float64, n), make([][]float64, n)
		for i := range n {
			q[i], k[i], v[i] = lin(l.Wq, l.Bq, x[i]), lin(l.Wk, l.Bk, x[i]), lin(l.Wv, l.Bv, x[i])
		}
		for i := range n {
			att := make([]float64, d)
			for hh := range h.NHead {
				sc := make([]float64, n)
				mx := math.Inf(-1)
				for j := range n {
					var s float64
					for c := hh * hd; c < (hh+1)*hd; c++ {
						s += q[i][c] * k[j][c]
					}
					sc[j] = s / math.Sqrt(float64(hd))
					mx = math.Max(mx, sc[j])
				}
				var sum float64
				for j := range n {
					sc[j] = math.Exp(sc[j] - mx)
					sum += sc[j]
				}
				for j := range n {
					for c := hh * hd; c < (hh+1)*hd; c++ {
						att[c] += sc[j] / sum * v[j][c]
					}
				}
			}
			a := lin(l.Wo, l.Bo, att)
			for j := range d {
				a[j] += x[i][j]
			}
			x[i] = ln(a, l.AttnNorm, l.AttnNormB)
			up := lin(l.Up, l.UpB, x[i])
			for j, u := range up {
				up[j] = 0.5 * u * (1 + math.Tanh(math.Sqrt(2/math.Pi)*(u+0.044715*u*u*u)))
			}
			f := lin(l.Down, l.DownB, up)
			for j := range d {
				f[j] += x[i][j]
			}
			x[i] = ln(f, l.OutNorm, l.OutNormB)
		}
	}
	out := make([]float64, d)
	switch b.Pooling {
	case PoolCLS:
		copy(out, x[0])
	case PoolLast:
		copy(out, x[n-1])
	default:
		for i := range n {
			for j := range d {
				out[j] += x[i][j] / float64(n)
			}
		}
	}
	var s float64
	for _, v := range out {
		s += v * v
	}
	for j := range out {
		out[j] /= math.Sqrt(s)
	}
	return out
}

func TestBertMatchesFloat64(t *testing.T) {
	tokens := []int32{2, 40, 7, 99, 13, 13, 60, 3}
	for _, c := range []struct {
		typ    string
		maxAbs float64 // largest difference of a unit vector's component
	}{{"F32", 1e-6}, {"F16", 1e-3}, {"Q8_0", 6e-3}} {
		w, err := SyntheticWeights(SyntheticSpec{Arch: "bert", Vocab: 120, Dim: 64, Layers: 2, Heads: 4, FFN: 128, Ctx: 32, Type: c.typ, Seed: 7})
		if err != nil {
			t.Fatal(err)
		}
		r, err := newBertRunner(w, RunnerOptions{Threads: 3})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range []Pooling{PoolMean, PoolCLS, PoolLast} {
			w.Bert.Pooling = p
			got, err := r.Embed(tokens)
			if err != nil {
				t.Fatal(err)
			}
			want := bertF64(t, w, tokens)
			var worst, norm, dot float64
			for j := range want {
				worst = math.Max(worst, math.Abs(float64(got[j])-want[j]))
				norm += float64(got[j]) * float64(got[j])
				dot += float64(got[j]) * want[j]
			}
			t.Logf("%s %s: max |Δ| %.2g, cosine %.9f", c.typ, p, worst, dot/math.Sqrt(norm))
			if worst > c.maxAbs || math.Abs(norm-1) > 1e-5 {
				t.Errorf("%s %s pooling: max |Δ| %.3g (tolerance %g), ‖e‖² %.7f", c.typ, p, worst, c.maxAbs, norm)
			}
		}
		// an input is its own pass: the same tokens give the same vector
		// after another input ran
		w.Bert.Pooling = PoolMean
		a, _ := r.Embed(tokens)
		if _, err := r.Embed([]int32{5, 6}); err != nil {
			t.Fatal(err)
		}
		b, _ := r.Embed(tokens)
		for j := range a {
			if a[j] != b[j] {
				t.Fatalf("%s: embedding changed after another input: %v vs %v", c.typ, a[j], b[j])
			}
		}
		r.Close()
	}
}

func TestBertRefusesGenerationAndBadInput(t *testing.T) {
	w, err := SyntheticWeights(SyntheticSpec{Arch: "bert", Vocab: 50, Dim: 32, Layers: 1, Heads: 2, FFN: 64, Ctx: 8, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	r, err := newBertRunner(w, RunnerOptions{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := r.ForwardBatch([]Item{{Blocks: []int32{0}, Tokens: []int32{1}}}); !errors.Is(err, ErrNoGeneration) {
		t.Errorf("ForwardBatch: %v, want ErrNoGeneration", err)
	}
	for _, toks := range [][]int32{nil, make([]int32, 9), {50}, {-1}} {
		if _, err := r.Embed(toks); err == nil {
			t.Errorf("Embed(%v) succeeded", toks)
		}
	}
}

func TestBertValidateNamesTheTensor(t *testing.T) {
	w, err := SyntheticWeights(SyntheticSpec{Arch: "bert", Vocab: 50, Dim: 32, Layers: 2, Heads: 2, FFN: 64, Ctx: 8, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	w.Bert.Layers[1].Up.Dims = []int{32, 63}
	if err := w.validateBert(); !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "blk.1.ffn_up.weight") {
		t.Errorf("wrong shape: %v", err)
	}
	w.Bert.Layers[1].Up.Dims = []int{32, 64}
	w.Bert.Layers[0].OutNormB = nil
	if err := w.validateBert(); !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "blk.0.layer_output_norm.bias") {
		t.Errorf("missing tensor: %v", err)
	}
	w.Bert.Layers[0].OutNormB = w.Bert.Layers[0].OutNorm
	w.Bert.Pooling = PoolRank
	if err := w.validateBert(); !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "rank") {
		t.Errorf("rank pooling: %v", err)
	}
}

func TestBertSyntheticVocabHasNoDuplicates(t *testing.T) {
	toks, types := BertSyntheticVocab()
	seen := map[string]bool{}
	for _, s := range toks {
		if seen[s] {
			t.Errorf("%q twice (llama.cpp refuses such a vocabulary)", s)
		}
		seen[s] = true
	}
	if len(types) != len(toks) {
		t.Errorf("%d types for %d tokens", len(types), len(toks))
	}
}

// TestBertFusedQKVAndMissingBiases: a fused attn_qkv is read as its three
// parts, and the projection biases llama.cpp treats as optional may be
// absent; both still match the float64 pass.
func TestBertFusedQKVAndMissingBiases(t *testing.T) {
	w, err := SyntheticWeights(SyntheticSpec{Arch: "bert", Vocab: 60, Dim: 32, Layers: 2, Heads: 2, FFN: 64, Ctx: 16, Type: "Q8_0", Seed: 9})
	if err != nil {
		t.Fatal(err)
	}
	for i := range w.Bert.Layers {
		l := &w.Bert.Layers[i]
		fused := &Tensor{Name: fmt.Sprintf("blk.%d.attn_qkv.weight", i), Type: l.Wq.Type, Dims: []int{32, 96},
			Data: slices.Concat(l.Wq.Data, l.Wk.Data, l.Wv.Data)}
		if l.Wq, l.Wk, l.Wv, err = splitQKV(fused, 32); err != nil {
			t.Fatal(err)
		}
		fb := &Tensor{Name: fmt.Sprintf("blk.%d.attn_qkv.bias", i), Type: ggml.F32, Dims: []int{96},
			Data: slices.Concat(l.Bq.Data, l.Bk.Data, l.Bv.Data)}
		if l.Bq, l.Bk, l.Bv, err = splitQKV(fb, 32); err != nil {
			t.Fatal(err)
		}
		if l.Wk.Name != fmt.Sprintf("blk.%d.attn_k.weight", i) || l.Bv.Name != fmt.Sprintf("blk.%d.attn_v.bias", i) {
			t.Fatalf("names %s %s", l.Wk.Name, l.Bv.Name)
		}
		l.Bo, l.UpB = nil, nil
	}
	if err := w.validateBert(); err != nil {
		t.Fatal(err)
	}
	r, err := newBertRunner(w, RunnerOptions{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	tokens := []int32{2, 10, 11, 12, 3}
	got, err := r.Embed(tokens)
	if err != nil {
		t.Fatal(err)
	}
	want := bertF64(t, w, tokens)
	for j := range want {
		if math.Abs(float64(got[j])-want[j]) > 6e-3 {
			t.Fatalf("[%d] %v, want %v", j, got[j], want[j])
		}
	}
	if _, _, _, err := splitQKV(&Tensor{Name: "blk.0.attn_qkv.weight", Type: ggml.F32, Dims: []int{32, 95}, Data: make([]byte, 4*32*95)}, 32); !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "attn_qkv") {
		t.Errorf("wrong shape: %v", err)
	}
}
