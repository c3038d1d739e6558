package engine

import (
	"math"
	"testing"

	"helexa/node/ggml"
)

// The CPU runner's Embed is the mean of the final hidden states (after
// the output norm), L2-normalised. The logits are the output head times
// those states, so the head times the embedding must point where the mean
// of every token's logits points; Embed must not touch the model's KV
// cache either.
func TestCPUEmbed(t *testing.T) {
	w := tinyModel(21, "qwen3")
	r, err := CPU{}.NewRunner(w, RunnerOptions{ContextLength: 16, Slots: 2, Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	er := r.(interface {
		Embed(tokens []int32) ([]float32, error)
	})
	tokens := []int32{1, 5, 9, 13, 17, 21, 25}
	nv, dim := w.H.NVocab, w.H.NEmbd

	// slot 0 holds a sequence before and after the embedding
	logits := make([]float32, nv)
	if err := ForwardSlot(r, 0, []int32{3, 4, 5}, 0, logits, false); err != nil {
		t.Fatal(err)
	}
	emb, err := er.Embed(tokens)
	if err != nil {
		t.Fatal(err)
	}
	if len(emb) != dim {
		t.Fatalf("embedding of %d floats, want %d", len(emb), dim)
	}
	var n2 float64
	for _, v := range emb {
		n2 += float64(v) * float64(v)
	}
	if math.Abs(n2-1) > 1e-5 {
		t.Errorf("|embedding|² = %g, want 1", n2)
	}

	all := make([]float32, len(tokens)*nv)
	if err := ForwardSlot(r, 1, tokens, 0, all, true); err != nil {
		t.Fatal(err)
	}
	mean := make([]float64, nv)
	for i := range tokens {
		for j := range nv {
			mean[j] += float64(all[i*nv+j]) / float64(len(tokens))
		}
	}
	out := make([]float32, nv*dim)
	if err := ggml.Dequantize(w.Output.Type, w.Output.Data, out); err != nil {
		t.Fatal(err)
	}
	proj := make([]float64, nv)
	for j := range nv {
		for i := range dim {
			proj[j] += float64(out[j*dim+i]) * float64(emb[i])
		}
	}
	if cos := cosine(proj, mean); cos < 0.99999 {
		t.Errorf("head·embedding vs mean logits: cosine %.7f", cos)
	}

	// the sequence in slot 0 continues as if nothing had happened
	next := make([]float32, nv)
	if err := ForwardSlot(r, 0, []int32{6}, 3, next, false); err != nil {
		t.Fatal(err)
	}
	want := make([]float32, nv)
	fresh, _ := CPU{}.NewRunner(w, RunnerOptions{ContextLength: 16, Threads: 2})
	defer fresh.Close()
	if err := ForwardSlot(fresh, 0, []int32{3, 4, 5, 6}, 0, want, false); err != nil {
		t.Fatal(err)
	}
	if d := maxDiff(next, want); d > 1e-5 {
		t.Errorf("logits after an embedding differ by %g", d)
	}

	if _, err := er.Embed(nil); err == nil {
		t.Error("empty input embedded")
	}
	if _, err := er.Embed(make([]int32, 17)); err == nil {
		t.Error("input longer than the context embedded")
	}
}

func cosine(a, b []float64) float64 {
	var ab, aa, bb float64
	for i := range a {
		ab += a[i] * b[i]
		aa += a[i] * a[i]
		bb += b[i] * b[i]
	}
	return ab / math.Sqrt(aa*bb)
}
