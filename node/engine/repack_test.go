package engine

import (
	"math"
	"math/rand"
	"path/filepath"
	"testing"

	"helexa/node/ggml"
	"helexa/node/gguf"
)

// r16Model is a small llama whose every matmul fits the R16 layout, its
// weights in ty.
func r16Model(t *testing.T, ty ggml.Type) *Weights {
	t.Helper()
	s := SyntheticSpec{Seed: 12, Type: ty.String(), Vocab: 48, Dim: 64, Layers: 2, Heads: 4, KVHeads: 2, HeadDim: 16, FFN: 96, Ctx: 64}
	if ty.BlockSize() == ggml.QKK { // super-blocks of 256 columns
		s.Dim, s.FFN, s.HeadDim = 256, 256, 64
	}
	w, err := SyntheticWeights(s)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range w.matmulWeights() {
		if m.Type != ty {
			t.Fatalf("%s is %s, want %s", m.Name, m.Type, ty)
		}
	}
	if err := w.validate(); err != nil {
		t.Fatal(err)
	}
	return w
}

// Every repacked (R16) matmul of a model gives what the row-by-row kernels
// give on the same input, up to the order of float32 additions, for one
// token and for batches that leave partial token tiles, with the rows
// split over the pool's workers. (Whole forward passes are compared with
// llama.cpp's references in TestReferences; comparing two forward passes
// with each other is not a sharp test, since 8-bit activations can turn a
// last-bit difference into a flipped rounding.)
func TestR16MatchesRowKernels(t *testing.T) {
	for _, ty := range []ggml.Type{ggml.Q8_0, ggml.Q4_0, ggml.Q4_K, ggml.Q5_K, ggml.Q6_K, ggml.F16, ggml.BF16} {
		t.Run(ty.String(), func(t *testing.T) {
			if !ggml.HaveR16(ty) {
				t.Skipf("this CPU has no R16 kernels for %s", ty)
			}
			w := r16Model(t, ty)
			newRunner := func(r16 bool) *cpuRunner {
				useR16 = r16
				defer func() { useR16 = true }()
				r, err := CPU{}.NewRunner(w, RunnerOptions{ContextLength: 32, Slots: 1, Threads: 2})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { r.Close() })
				return r.(*cpuRunner)
			}
			packed, rows := newRunner(true), newRunner(false)
			if len(packed.mm.packed) != 15 || len(rows.mm.packed) != 0 {
				t.Fatalf("%d and %d repacked weights, want 15 and 0", len(packed.mm.packed), len(rows.mm.packed))
			}
			rng := rand.New(rand.NewSource(int64(ty)))
			for _, wt := range w.matmulWeights() {
				cols, nr := wt.Dims[0], wt.Rows()
				for _, n := range []int{1, 3, 13, maxBatch} {
					in := make([]float32, n*cols)
					for i := range in {
						in[i] = float32(rng.NormFloat64())
					}
					run := func(r *cpuRunner) []float32 {
						out := make([]float32, n*nr)
						r.mm.begin(in, n, cols)
						r.mm.add(wt, out, nr)
						r.runMatmul()
						return out
					}
					got, want := run(packed), run(rows)
					for i := range got {
						if d := math.Abs(float64(got[i] - want[i])); d > 1e-4*max(1, math.Abs(float64(want[i]))) {
							t.Fatalf("%s, %d tokens: output %d (token %d, row %d) = %g, row kernels %g",
								wt.Name, n, i, i/nr, i%nr, got[i], want[i])
						}
					}
				}
			}
		})
	}
}

// A model whose output matrix is its token embeddings (tied, as many small
// models ship) repacks that matrix for the logits and releases its mapped
// pages; embedding lookups then read the released rows back from the page
// cache. Decode through such a file gives the logits of the row kernels.
func TestR16TiedEmbeddings(t *testing.T) {
	if !ggml.HaveR16(ggml.Q8_0) {
		t.Skip("this CPU has no R16 kernels for Q8_0")
	}
	w := r16Model(t, ggml.Q8_0)
	w.Output = nil // tied: the loader uses token_embd.weight
	path := writeGGUF(t, w, "llama")
	run := func(r16 bool) []float32 {
		useR16 = r16
		defer func() { useR16 = true }()
		f, err := gguf.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		fw, _, err := weightsFromGGUF(path, f)
		if err != nil {
			t.Fatal(err)
		}
		if fw.Output != fw.TokEmbd || !fw.TokEmbd.Mapped {
			t.Fatal("the loaded model is not tied to mapped embeddings")
		}
		r, err := CPU{}.NewRunner(fw, RunnerOptions{ContextLength: 16, Threads: 2})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		if got := len(r.(*cpuRunner).mm.packed); r16 && got != 15 {
			t.Fatalf("%d repacked weights, want 15 (the tied output among them)", got)
		}
		nv := fw.H.NVocab
		out := make([]float32, 4*nv)
		for i, tok := range []int32{5, 47, 0, 21} {
			if err := ForwardSlot(r, 0, []int32{tok}, i, out[i*nv:(i+1)*nv], false); err != nil {
				t.Fatal(err)
			}
		}
		return out
	}
	packed, rows := run(true), run(false)
	var sum float64
	for i := range packed {
		sum += math.Abs(float64(packed[i] - rows[i]))
	}
	// as in a full forward pass, 8-bit activations may flip a rounding now
	// and then; wrong embeddings would be off everywhere
	if worst, mean := maxDiff(packed, rows), sum/float64(len(packed)); worst > 0.5 || mean > 0.02 {
		t.Errorf("|R16 - rows|: max %g, mean %g", worst, mean)
	}
}

// With BF16Activations (what Load sets for a GGUF), repacked BF16 weights
// multiply activations rounded to bfloat16 where the CPU has AVX512-BF16:
// each output moves from the float32 product by at most the rounding of
// the activations (2^-9 of the products' magnitudes), and not by nothing.
func TestR16BF16Activations(t *testing.T) {
	if !ggml.HaveR16(ggml.BF16) || !ggml.HaveR16BF16Rounded() {
		t.Skip("this CPU has no AVX512-BF16 R16 kernels")
	}
	w := r16Model(t, ggml.BF16)
	newRunner := func(round bool) *cpuRunner {
		r, err := CPU{}.NewRunner(w, RunnerOptions{ContextLength: 32, Slots: 1, Threads: 2, BF16Activations: round})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close() })
		return r.(*cpuRunner)
	}
	rounded, exact := newRunner(true), newRunner(false)
	if !rounded.bf16Round || exact.bf16Round {
		t.Fatal("BF16Activations not taken")
	}
	rng := rand.New(rand.NewSource(3))
	for _, wt := range w.matmulWeights() {
		cols, nr := wt.Dims[0], wt.Rows()
		wf := make([]float32, nr*cols)
		if err := ggml.Dequantize(ggml.BF16, wt.Data, wf); err != nil {
			t.Fatal(err)
		}
		for _, n := range []int{1, 13} {
			in := make([]float32, n*cols)
			for i := range in {
				in[i] = float32(rng.NormFloat64())
			}
			run := func(r *cpuRunner) []float32 {
				out := make([]float32, n*nr)
				r.mm.begin(in, n, cols)
				r.mm.add(wt, out, nr)
				r.runMatmul()
				return out
			}
			got, want := run(rounded), run(exact)
			moved := false
			for i := range got {
				var mag float64
				for k := range cols {
					mag += math.Abs(float64(wf[(i%nr)*cols+k]) * float64(in[(i/nr)*cols+k]))
				}
				d := math.Abs(float64(got[i] - want[i]))
				if d > 0x1p-9*mag+1e-5*mag {
					t.Fatalf("%s, %d tokens: output %d = %g, float32 activations %g (magnitude %g)", wt.Name, n, i, got[i], want[i], mag)
				}
				moved = moved || d > 0
			}
			if !moved {
				t.Errorf("%s, %d tokens: rounding the activations changed nothing", wt.Name, n)
			}
		}
	}
}

// Load asks for bfloat16 activations for a GGUF (llama.cpp's arithmetic
// on that file) and not for a Hugging Face folder, whose BF16 weights are
// compared with references computed in float32.
func TestLoadBF16Activations(t *testing.T) {
	for _, c := range []struct {
		name string
		want bool
	}{{"stories260K.gguf", ggml.HaveR16BF16Rounded()}, {"synth-hf-llama3", false}} {
		m, err := Load(filepath.Join(sharedDir(t), "models", c.name), Options{ContextLength: 16, Threads: 1})
		if err != nil {
			t.Fatal(err)
		}
		if got := m.runner.(*cpuRunner).bf16Round; got != c.want {
			t.Errorf("%s: bfloat16 activations %v, want %v", c.name, got, c.want)
		}
		m.Close()
	}
}
