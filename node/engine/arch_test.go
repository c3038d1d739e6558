package engine

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"helexa/node/ggml"
	"helexa/node/gguf"
)

// f32Tensor is a tensor of random F32 values of the given dims.
func f32Tensor(rng *rand.Rand, name string, scale float64, dims ...int) *Tensor {
	n := 1
	for _, d := range dims {
		n *= d
	}
	b := make([]byte, 4*n)
	for i := range n {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(float32(rng.NormFloat64()*scale)))
	}
	return &Tensor{Name: name, Type: 0, Dims: dims, Data: b}
}

// tinyMoE is tinyModel's qwen3 with its FFNs replaced by a mixture of
// four experts of 24 hidden units, two used per token.
func tinyMoE(seed uint64) *Weights {
	w := tinyModel(seed, "qwen3")
	rng := rand.New(rand.NewPCG(seed, 99))
	h := &w.H
	h.Arch, h.NExpert, h.NExpertUsed, h.NFFExp, h.ExpertNormTopK = "qwen3moe", 4, 2, 24, true
	for i := range w.Layers {
		l := &w.Layers[i]
		p := fmt.Sprintf("blk.%d.", i)
		l.FFNGate, l.FFNUp, l.FFNDown = nil, nil, nil
		l.FFNGateInp = f32Tensor(rng, p+"ffn_gate_inp.weight", 1, h.NEmbd, h.NExpert)
		l.FFNGateExps = f32Tensor(rng, p+"ffn_gate_exps.weight", 0.2, h.NEmbd, h.NFFExp, h.NExpert)
		l.FFNUpExps = f32Tensor(rng, p+"ffn_up_exps.weight", 0.2, h.NEmbd, h.NFFExp, h.NExpert)
		l.FFNDownExps = f32Tensor(rng, p+"ffn_down_exps.weight", 0.2, h.NFFExp, h.NEmbd, h.NExpert)
	}
	if err := w.validate(); err != nil {
		panic("BUG: " + err.Error())
	}
	return w
}

// tinyGemma is tinyModel's qwen3 as a gemma3: post-norms, embeddings
// scaled, a window of 16 on every layer but the last (period 2) with its
// own RoPE base, linear scaling on the global layer.
func tinyGemma(seed uint64) *Weights {
	w := tinyModel(seed, "qwen3")
	rng := rand.New(rand.NewPCG(seed, 98))
	h := &w.H
	h.Arch, h.EmbedScale = "gemma3", float32(math.Sqrt(float64(h.NEmbd)))
	h.SlidingWindow, h.SWA, h.RopeThetaSWA, h.RopeFreqScaleSWA = 16, swaPattern(h.NLayer, 2), 10000, 1
	h.RopeTheta, h.RopeFreqScale = 1e6, 0.125
	for i := range w.Layers {
		l := &w.Layers[i]
		p := fmt.Sprintf("blk.%d.", i)
		l.PostAttnNorm = f32Tensor(rng, p+"post_attention_norm.weight", 1, h.NEmbd)
		l.PostFFNNorm = f32Tensor(rng, p+"post_ffw_norm.weight", 1, h.NEmbd)
	}
	if err := w.validate(); err != nil {
		panic("BUG: " + err.Error())
	}
	return w
}

// runLogits runs tokens from position 0 on a fresh CPU runner, in one
// batch or one token at a time, and returns every token's logits.
func runLogits(t *testing.T, w *Weights, tokens []int32, oneByOne bool) []float32 {
	t.Helper()
	r, err := CPU{}.NewRunner(w, RunnerOptions{ContextLength: 128, BlockSize: kvBlock, Blocks: 2, Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	nv := w.H.NVocab
	out := make([]float32, len(tokens)*nv)
	blocks := []int32{1, 0}
	if !oneByOne {
		if err := r.ForwardBatch([]Item{{Blocks: blocks, Tokens: tokens, Logits: out, All: true}}); err != nil {
			t.Fatal(err)
		}
		return out
	}
	for i := range tokens {
		if err := r.ForwardBatch([]Item{{Blocks: blocks, Tokens: tokens[i : i+1], Pos: i, Logits: out[i*nv : (i+1)*nv]}}); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func tokenRun(n, vocab int) []int32 {
	ts := make([]int32, n)
	for i := range ts {
		ts[i] = int32(1 + (i*7)%(vocab-1))
	}
	return ts
}

// A prompt computed in one batch (experts over the rows grouped by
// expert, windows over many rows) gives what decoding it token by token
// gives, past the window and past one pass of maxBatch rows.
func TestNewArchsBatchMatchesDecode(t *testing.T) {
	for _, tc := range []struct {
		name string
		w    *Weights
	}{{"qwen3moe", tinyMoE(31)}, {"gemma3", tinyGemma(32)}} {
		t.Run(tc.name, func(t *testing.T) {
			tokens := tokenRun(maxBatch+13, tc.w.H.NVocab)
			batch := runLogits(t, tc.w, tokens, false)
			dec := runLogits(t, tc.w, tokens, true)
			if d := maxDiff(batch, dec); d > 1e-4 || math.IsNaN(d) {
				t.Errorf("batch and decode differ by %g", d)
			}
		})
	}
}

// Several sequences in one batch, whose tokens choose different experts,
// get what each gets alone.
func TestMoEBatchOfSequences(t *testing.T) {
	w := tinyMoE(33)
	nv := w.H.NVocab
	r, err := CPU{}.NewRunner(w, RunnerOptions{ContextLength: 64, BlockSize: kvBlock, Blocks: 3, Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	seqs := [][]int32{{1, 2, 3, 4, 5}, {9}, {30, 31, 32}}
	got := make([][]float32, len(seqs))
	items := make([]Item, len(seqs))
	for i, s := range seqs {
		got[i] = make([]float32, len(s)*nv)
		items[i] = Item{Blocks: []int32{int32(i)}, Tokens: s, Logits: got[i], All: true}
	}
	if err := r.ForwardBatch(items); err != nil {
		t.Fatal(err)
	}
	for i, s := range seqs {
		if d := maxDiff(got[i], runLogits(t, w, s, false)); d > 1e-5 {
			t.Errorf("sequence %d: batched and alone differ by %g", i, d)
		}
	}
}

// The router: softmax probabilities, the top two by probability, the
// lower index first among equals.
func TestMoERouting(t *testing.T) {
	p := []float32{0.1, 2, -1, 1.5}
	routerSoftmax(p)
	var sum float64
	for _, v := range p {
		sum += float64(v)
	}
	if math.Abs(sum-1) > 1e-6 {
		t.Fatalf("softmax sums to %g", sum)
	}
	sel, w := make([]int32, 2), make([]float32, 2)
	chooseExperts(p, sel, w)
	if sel[0] != 1 || sel[1] != 3 || w[0] != p[1] || w[1] != p[3] {
		t.Errorf("chose %v %v from %v", sel, w, p)
	}
	// equal scores: the lower index first
	chooseExperts([]float32{0.25, 0.25, 0.25, 0.25}, sel, w)
	if sel[0] != 0 || sel[1] != 1 {
		t.Errorf("ties chose %v", sel)
	}
}

// Sliding-window layers read only their window: with every layer
// windowed, keys and values older than the window can be garbage (NaN)
// without changing the next token's logits.
func TestSlidingWindowReadsOnlyWindow(t *testing.T) {
	w := tinyGemma(34)
	w.H.SWA = swaPattern(w.H.NLayer, 0) // every layer local
	nv := w.H.NVocab
	tokens := tokenRun(40, nv)
	r, err := CPU{}.NewRunner(w, RunnerOptions{ContextLength: 64, BlockSize: 16, Blocks: 4, Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	blocks := []int32{0, 1, 2, 3}
	if err := r.ForwardBatch([]Item{{Blocks: blocks, Tokens: tokens}}); err != nil {
		t.Fatal(err)
	}
	want := make([]float32, nv)
	if err := r.ForwardBatch([]Item{{Blocks: blocks, Tokens: []int32{7}, Pos: 40, Logits: want}}); err != nil {
		t.Fatal(err)
	}
	// block 0 holds positions 0..15; position 40's window starts at 25
	cr := r.(*cpuRunner)
	c := &cr.c
	nan := uint16(0x7e00)
	for l := range c.nLayer {
		base := l * c.blocks * c.bs * c.kvDim
		for i := range c.bs * c.kvDim {
			cr.kv.k[base+i], cr.kv.v[base+i] = nan, nan
		}
	}
	got := make([]float32, nv)
	if err := r.ForwardBatch([]Item{{Blocks: blocks, Tokens: []int32{7}, Pos: 40, Logits: got}}); err != nil {
		t.Fatal(err)
	}
	if d := maxDiff(got, want); d != 0 || math.IsNaN(d) {
		t.Errorf("logits changed by %g when positions outside the window changed", d)
	}
	// a global layer does read them
	w.H.SWA[w.H.NLayer-1] = false
	r2, err := CPU{}.NewRunner(w, RunnerOptions{ContextLength: 64, BlockSize: 16, Blocks: 4, Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	if err := r2.ForwardBatch([]Item{{Blocks: blocks, Tokens: tokens}}); err != nil {
		t.Fatal(err)
	}
	c2 := r2.(*cpuRunner)
	for i := range c.bs * c.kvDim {
		c2.kv.v[i] = nan // layer 0, block 0
	}
	l := c.nLayer - 1
	base := l * c.blocks * c.bs * c.kvDim
	for i := range c.bs * c.kvDim {
		c2.kv.v[base+i] = nan
	}
	if err := r2.ForwardBatch([]Item{{Blocks: blocks, Tokens: []int32{7}, Pos: 40, Logits: got}}); err != nil {
		t.Fatal(err)
	}
	if !math.IsNaN(float64(got[0])) {
		t.Error("a global layer did not read the start of the sequence")
	}
}

// qwen3moe and gemma3 GGUF files load their keys and tensors and compute
// what the in-memory weights do.
func TestGGUFNewArchs(t *testing.T) {
	for _, tc := range []struct {
		name string
		w    *Weights
	}{{"qwen3moe", tinyMoE(41)}, {"gemma3", tinyGemma(42)}} {
		t.Run(tc.name, func(t *testing.T) {
			path := writeGGUF(t, tc.w, tc.name)
			f, err := gguf.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			w, info, err := weightsFromGGUF(path, f)
			if err != nil {
				t.Fatal(err)
			}
			if info.Arch != tc.name || w.H.NExpert != tc.w.H.NExpert || w.H.SlidingWindow != tc.w.H.SlidingWindow {
				t.Fatalf("info %+v, hparams %+v", info, w.H)
			}
			tokens := tokenRun(20, w.H.NVocab)
			if tc.name == "gemma3" {
				// the file's default pattern (6) differs from tinyGemma's
				w.H.SWA = tc.w.H.SWA
			}
			if d := maxDiff(runLogits(t, w, tokens, false), runLogits(t, tc.w, tokens, false)); d != 0 {
				t.Errorf("file and in-memory weights differ by %g", d)
			}
		})
	}
}

// Parameter counts: a mixture of experts is active in its dense parts
// and NExpertUsed of NExpert experts.
func TestInfoParamCounts(t *testing.T) {
	w := tinyMoE(43)
	var info Info
	info.fill(w)
	h := w.H
	expert := int64(3 * h.NEmbd * h.NFFExp) // gate, up, down of one expert
	perLayer := int64(2*h.NEmbd + h.NEmbd*h.NHead*h.HeadDim*2 + 2*h.NEmbd*h.NHeadKV*h.HeadDim + 2*h.HeadDim + h.NEmbd*h.NExpert)
	dense := int64(h.NLayer)*perLayer + int64(2*h.NEmbd*h.NVocab+h.NEmbd)
	if h.NVocab*h.NEmbd == 0 || w.Output == w.TokEmbd {
		t.Fatal("test model must have an untied head")
	}
	if want := dense + int64(h.NLayer*h.NExpert)*expert; info.ParamCount != want {
		t.Errorf("params %d, want %d", info.ParamCount, want)
	}
	if want := dense + int64(h.NLayer*h.NExpertUsed)*expert; info.ActiveParamCount != want {
		t.Errorf("active params %d, want %d", info.ActiveParamCount, want)
	}
	if info.NExpert != 4 || info.NExpertUsed != 2 {
		t.Errorf("experts %d/%d", info.NExpert, info.NExpertUsed)
	}
	var dinfo Info
	dinfo.fill(tinyModel(1, "llama"))
	if dinfo.ActiveParamCount != dinfo.ParamCount || dinfo.ParamCount == 0 {
		t.Errorf("dense model: %d active of %d", dinfo.ActiveParamCount, dinfo.ParamCount)
	}
}

// Unknown architectures and mis-shaped tensors are refused at load with
// ErrUnsupported, naming the architecture or the tensor; never a panic.
func TestRefusals(t *testing.T) {
	expect := func(name string, w *Weights, arch, want string) {
		t.Helper()
		_, _, _, err := LoadWeights(writeGGUF(t, w, arch))
		if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want ErrUnsupported naming %q", name, err, want)
		}
	}
	expect("unknown architecture", tinyModel(1, "llama"), "mamba9", `architecture "mamba9"`)

	w := tinyMoE(2)
	w.Layers[1].FFNUpExps.Dims = []int{w.H.NEmbd, w.H.NFFExp * w.H.NExpert} // 2-D
	expect("2-D experts", w, "qwen3moe", "blk.1.ffn_up_exps.weight")

	w = tinyMoE(3)
	d := w.Layers[0].FFNDownExps
	d.Dims = []int{d.Dims[1], d.Dims[0], d.Dims[2]} // transposed
	expect("transposed down experts", w, "qwen3moe", "blk.0.ffn_down_exps.weight")

	w = tinyMoE(4)
	w.Layers[0].FFNGateInp = nil
	expect("no router", w, "qwen3moe", "blk.0.ffn_gate_inp.weight")

	w = tinyMoE(5)
	w.H.NExpertUsed = 5
	expect("more used experts than experts", w, "qwen3moe", "5 used per token")

	w = tinyMoE(5)
	w.H.NExpert, w.H.NExpertUsed = 1000, 100
	expect("a hundred experts per token", w, "qwen3moe", "100 used per token")

	w = tinyGemma(6)
	w.Layers[1].PostFFNNorm = nil
	expect("gemma3 without a post-FFN norm", w, "gemma3", "blk.1.post_ffw_norm.weight")

	w = tinyGemma(7)
	w.Layers[0].Wq.Dims = []int{w.H.NEmbd, w.H.NHead * w.H.HeadDim / 2}
	w.Layers[0].Wq.Data = w.Layers[0].Wq.Data[:len(w.Layers[0].Wq.Data)/2]
	expect("gemma3 with a narrow attn_q", w, "gemma3", "blk.0.attn_q.weight")

	// a dense model's FFN under the MoE architecture
	expect("qwen3 as qwen3moe", tinyModel(8, "qwen3"), "qwen3moe", "qwen3moe")
}

// One layer's mixture of experts, computed by the runner over a few rows
// at once, against a direct float64 transcription: router softmax, the
// top NExpertUsed, weights renormalised, Σ w·down(silu(gate·x) ⊙ up·x).
func TestMoEMatchesTranscription(t *testing.T) {
	w := tinyMoE(44)
	h := w.H
	r, err := CPU{}.NewRunner(w, RunnerOptions{ContextLength: 16, Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	cr := r.(*cpuRunner)
	const n = 5
	rng := rand.New(rand.NewPCG(1, 2))
	in := make([]float32, n*h.NEmbd)
	for i := range in {
		in[i] = float32(rng.NormFloat64())
	}
	copy(cr.s.xb, in)
	cr.moe(1, n)

	l := &w.Layers[1]
	mat := func(tt *Tensor, e, rows, cols int) func(row, col int) float64 {
		v := f32View(tt.Data)
		return func(row, col int) float64 { return float64(v[(e*rows+row)*cols+col]) }
	}
	router := mat(l.FFNGateInp, 0, h.NExpert, h.NEmbd)
	for row := range n {
		x := in[row*h.NEmbd : (row+1)*h.NEmbd]
		p := make([]float64, h.NExpert)
		var z float64
		for e := range p {
			for i, xi := range x {
				p[e] += router(e, i) * float64(xi)
			}
		}
		mx := slicesMax(p)
		for e := range p {
			p[e] = math.Exp(p[e] - mx)
			z += p[e]
		}
		for e := range p {
			p[e] /= z
		}
		chosen := []int{}
		for range h.NExpertUsed {
			best := -1
			for e := range p {
				if !containsInt(chosen, e) && (best < 0 || p[e] > p[best]) {
					best = e
				}
			}
			chosen = append(chosen, best)
		}
		var wsum float64
		for _, e := range chosen {
			wsum += p[e]
		}
		want := make([]float64, h.NEmbd)
		for _, e := range chosen {
			gate, up, down := mat(l.FFNGateExps, e, h.NFFExp, h.NEmbd), mat(l.FFNUpExps, e, h.NFFExp, h.NEmbd), mat(l.FFNDownExps, e, h.NEmbd, h.NFFExp)
			a := make([]float64, h.NFFExp)
			for j := range a {
				var g, u float64
				for i, xi := range x {
					g += gate(j, i) * float64(xi)
					u += up(j, i) * float64(xi)
				}
				a[j] = g / (1 + math.Exp(-g)) * u
			}
			for o := range want {
				var d float64
				for j, aj := range a {
					d += down(o, j) * aj
				}
				want[o] += p[e] / wsum * d
			}
		}
		for o, v := range want {
			if got := float64(cr.s.xb[row*h.NEmbd+o]); math.Abs(got-v) > 1e-4*(1+math.Abs(v)) {
				t.Fatalf("row %d, output %d: %g, want %g", row, o, got, v)
			}
		}
	}
}

func slicesMax(x []float64) float64 {
	m := x[0]
	for _, v := range x {
		m = max(m, v)
	}
	return m
}

func containsInt(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// The CPU runner computes what the float64 oracle's transcription of
// qwen3moe and gemma3 computes, past gemma's window (16) so that window
// and global layers, their two RoPE tables and the scaling all count.
func TestNewArchsMatchOracle(t *testing.T) {
	for _, tc := range []struct {
		name string
		w    *Weights
	}{{"qwen3moe", tinyMoE(45)}, {"gemma3", tinyGemma(46)}} {
		t.Run(tc.name, func(t *testing.T) {
			tokens := tokenRun(40, tc.w.H.NVocab)
			got := runLogits(t, tc.w, tokens, false)
			want := oracleLogits(t, tc.w, tokens)
			nv := tc.w.H.NVocab
			worst := 0.0
			for i := range tokens {
				for j := range nv {
					worst = math.Max(worst, math.Abs(float64(got[i*nv+j])-want[i][j]))
				}
			}
			if worst > 0.02 || math.IsNaN(worst) {
				t.Errorf("max |logit - oracle| = %g", worst)
			}
			t.Logf("max |logit - oracle| = %.2g", worst)
		})
	}
}

// Quantized experts go through the same repacked kernels as dense
// weights: every expert's 2-D slice of a Q4_K_M file is repacked where
// this CPU has the R16 kernels.
func TestExpertsRepacked(t *testing.T) {
	path := filepath.Join(sharedDir(t), "models", "synth-qwen3moe-Q4_K_M.gguf")
	w, _, closeW, err := LoadWeights(path)
	if err != nil {
		t.Fatal(err)
	}
	defer closeW()
	r, err := CPU{}.NewRunner(w, RunnerOptions{ContextLength: 64, Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	cr := r.(*cpuRunner)
	n := 0
	for _, l := range w.Layers {
		if len(l.Experts) != w.H.NExpert {
			t.Fatalf("%d expert slices, want %d", len(l.Experts), w.H.NExpert)
		}
		for _, e := range l.Experts {
			for _, m := range []*Tensor{e.Gate, e.Up, e.Down} {
				if !ggml.HaveR16(m.Type) {
					continue
				}
				n++
				if _, ok := cr.mm.packed[m]; !ok {
					t.Errorf("%s (%s) not repacked", m.Name, m.Type)
				}
			}
		}
	}
	if n == 0 {
		t.Skip("this CPU has no R16 kernels for the experts' types")
	}
}
