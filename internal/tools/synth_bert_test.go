package tools

import (
	"bytes"
	"context"
	"math"
	"path/filepath"
	"slices"
	"testing"

	"helexa/node/engine"
)

// TestSynthBert: --arch bert writes an encoder with a WordPiece vocabulary
// that the engine loads as an embedding-only model holding exactly the
// spec's weights.
func TestSynthBert(t *testing.T) {
	s := synthSpec{Arch: "bert", Dim: 64, Layers: 2, Heads: 4, KVHeads: 4, FFN: 128, Type: "Q8_0", Seed: 3, Ctx: 64, Name: "tiny-bert", NormEps: 1e-12, Pooling: "cls"}
	out := filepath.Join(t.TempDir(), "bert.gguf")
	if _, err := writeSynth(context.Background(), s, nil, out); err != nil {
		t.Fatal(err)
	}
	m, err := engine.Load(out, engine.Options{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if m.Info.Arch != "bert" || !m.EmbeddingOnly() || !m.CanEmbed() || m.EmbedDim() != 64 || m.NCtx() != 64 {
		t.Fatalf("loaded %+v: embedding-only %v, dim %d, ctx %d", m.Info, m.EmbeddingOnly(), m.EmbedDim(), m.NCtx())
	}
	if m.Weights().Bert.Pooling != engine.PoolCLS {
		t.Errorf("pooling %v, want cls", m.Weights().Bert.Pooling)
	}
	ids := m.Tok.Encode("Hello, world!", true, false)
	want := []int32{2}
	for _, w := range []string{"▁hello", "▁,", "▁world", "▁!"} {
		id, ok := m.Tok.Lookup(w)
		if !ok {
			t.Fatalf("%q not in the vocabulary", w)
		}
		want = append(want, id)
	}
	want = append(want, 3)
	if !slices.Equal(ids, want) {
		t.Fatalf("Encode = %v, want %v", ids, want)
	}
	e, err := m.Embed(context.Background(), ids)
	if err != nil {
		t.Fatal(err)
	}
	var n float64
	for _, v := range e {
		n += float64(v) * float64(v)
	}
	if math.Abs(n-1) > 1e-5 {
		t.Errorf("‖e‖² = %v", n)
	}
	// the file holds the spec's weights
	ref, err := engine.SyntheticWeights(engine.SyntheticSpec{Arch: "bert", Vocab: m.Info.NVocab, Dim: 64, Layers: 2, Heads: 4, FFN: 128, Ctx: 64, Type: "Q8_0", Seed: 3, NormEps: 1e-12})
	if err != nil {
		t.Fatal(err)
	}
	got := m.Weights()
	if !bytes.Equal(got.TokEmbd.Data, ref.TokEmbd.Data) || !bytes.Equal(got.Bert.Layers[1].Down.Data, ref.Bert.Layers[1].Down.Data) ||
		!bytes.Equal(got.Bert.PosEmbd.Data, ref.Bert.PosEmbd.Data) {
		t.Error("the file's weights differ from the spec's")
	}
	if _, err := m.Embed(context.Background(), make([]int32, 65)); err == nil {
		t.Error("65 tokens fit a context of 64")
	}
	if err := m.Forward(0, []int32{2}, 0, make([]float32, m.NVocab())); err == nil {
		t.Error("an encoder generated logits")
	}
}
