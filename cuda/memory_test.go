package cuda

import (
	"errors"
	"strings"
	"testing"

	"helexa/node/engine"
	"helexa/node/ggml"
)

// tensor makes a tensor of type typ with dims, its data zeroed.
func tensor(name string, typ ggml.Type, dims ...int) *engine.Tensor {
	t := &engine.Tensor{Name: name, Type: typ, Dims: dims}
	rb, err := rowBytes(typ, dims[0])
	if err != nil {
		panic("BUG: test tensor: " + err.Error())
	}
	t.Data = make([]byte, rb*t.Rows())
	return t
}

// llamaWeights builds a small llama-shaped model with weights of type typ.
func llamaWeights(typ ggml.Type, dim, layers, heads, kvHeads, ff, vocab int, tied bool) *engine.Weights {
	hd := dim / heads
	w := &engine.Weights{H: engine.Hparams{Arch: "llama", NVocab: vocab, NEmbd: dim, NLayer: layers, NHead: heads,
		NHeadKV: kvHeads, HeadDim: hd, NFF: ff, NormEps: 1e-5, RopeTheta: 10000, RopeDims: hd}}
	w.TokEmbd = tensor("token_embd.weight", typ, dim, vocab)
	w.Output = w.TokEmbd
	if !tied {
		w.Output = tensor("output.weight", typ, dim, vocab)
	}
	w.OutNorm = tensor("output_norm.weight", ggml.F32, dim)
	for i := 0; i < layers; i++ {
		w.Layers = append(w.Layers, engine.Layer{
			AttnNorm: tensor("attn_norm", ggml.F32, dim),
			Wq:       tensor("attn_q", typ, dim, heads*hd),
			Wk:       tensor("attn_k", typ, dim, kvHeads*hd),
			Wv:       tensor("attn_v", typ, dim, kvHeads*hd),
			Wo:       tensor("attn_output", typ, heads*hd, dim),
			FFNNorm:  tensor("ffn_norm", ggml.F32, dim),
			FFNGate:  tensor("ffn_gate", typ, dim, ff),
			FFNUp:    tensor("ffn_up", typ, dim, ff),
			FFNDown:  tensor("ffn_down", typ, ff, dim),
		})
	}
	return w
}

func TestEstimate(t *testing.T) {
	w := llamaWeights(ggml.Q4_0, 256, 2, 4, 2, 512, 1024, false)
	p, err := Estimate(w, engine.RunnerOptions{ContextLength: 128, Slots: 3})
	if err != nil {
		t.Fatal(err)
	}
	// Weights: every matrix's bytes, vectors as float32.
	q40 := func(cols, rows int) int64 { return int64(cols/32*18) * int64(rows) }
	wantW := 2*q40(256, 1024) + 4*256
	for i := 0; i < 2; i++ {
		wantW += q40(256, 256) + 2*q40(256, 128) + q40(256, 256) + 2*q40(256, 512) + q40(512, 256) + 2*4*256
	}
	if p.WeightBytes != wantW {
		t.Errorf("WeightBytes = %d, want %d", p.WeightBytes, wantW)
	}
	if want := int64(3 * 2 * 128 * 128 * 2 * 4); p.KVBytes != want {
		t.Errorf("KVBytes = %d, want %d", p.KVBytes, want)
	}
	if p.MaxBatch != 128 {
		t.Errorf("MaxBatch = %d, want the context length 128", p.MaxBatch)
	}
	if p.DequantElems != 256*1024 {
		t.Errorf("DequantElems = %d, want the largest matrix", p.DequantElems)
	}
	if want := int64(128 * 32 * 2 * 4); p.RopeBytes != want {
		t.Errorf("RopeBytes = %d, want %d", p.RopeBytes, want)
	}
	// Scratch: per row x, xb, q, att, k, v, gate, up and logits as float32
	// and four int32s (token id, position, slot, output row); the tile.
	b := int64(128)
	if want := 4*b*(2*256+2*256+2*128+2*512+1024) + 4*256*1024 + 4*4*b; p.ScratchBytes != want {
		t.Errorf("ScratchBytes = %d, want %d", p.ScratchBytes, want)
	}
	if p.Total() != p.WeightBytes+p.KVBytes+p.ScratchBytes+p.RopeBytes || p.ScratchBytes <= 0 {
		t.Errorf("Total %d of %+v", p.Total(), p)
	}

	// Tied embeddings are uploaded once.
	tied, err := Estimate(llamaWeights(ggml.Q4_0, 256, 2, 4, 2, 512, 1024, true), engine.RunnerOptions{ContextLength: 128, Slots: 3})
	if err != nil {
		t.Fatal(err)
	}
	if d := p.WeightBytes - tied.WeightBytes; d != q40(256, 1024) {
		t.Errorf("tying saved %d bytes, want one embedding matrix", d)
	}

	// A longer context than the batch caps the batch.
	p2, err := Estimate(w, engine.RunnerOptions{ContextLength: 4096, Slots: 1})
	if err != nil || p2.MaxBatch != DefaultMaxBatch {
		t.Errorf("MaxBatch = %d, %v", p2.MaxBatch, err)
	}
}

func TestEstimateRejects(t *testing.T) {
	f := func(name string, mutate func(w *engine.Weights), o engine.RunnerOptions, want string) {
		t.Helper()
		w := llamaWeights(ggml.Q8_0, 64, 1, 2, 1, 96, 64, true)
		mutate(w)
		_, err := Estimate(w, o)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v, want it to mention %q", name, err, want)
		}
	}
	ok := engine.RunnerOptions{ContextLength: 16, Slots: 1}
	f("unsupported type", func(w *engine.Weights) { w.Layers[0].Wq.Type = ggml.Q2_K }, ok, "not supported")
	f("ragged row", func(w *engine.Weights) {
		w.Layers[0].FFNDown = &engine.Tensor{Name: "ffn_down", Type: ggml.Q8_0, Dims: []int{40, 64}, Data: make([]byte, 64*34)}
	}, ok, "not a multiple")
	f("short data", func(w *engine.Weights) { w.Layers[0].Wk.Data = w.Layers[0].Wk.Data[:10] }, ok, "bytes of data")
	f("missing tensor", func(w *engine.Weights) { w.Layers[0].FFNUp = nil }, ok, "layer 0 lacks")
	f("layer count", func(w *engine.Weights) { w.H.NLayer = 3 }, ok, "layers")
	f("heads", func(w *engine.Weights) { w.H.NHeadKV = 3 }, ok, "grouped-query")
	f("head dim", func(w *engine.Weights) { w.H.HeadDim = 512 }, ok, "head dimension")
	f("rope dims", func(w *engine.Weights) { w.H.RopeDims = 7 }, ok, "rope dimensions")
	f("norm type", func(w *engine.Weights) { w.OutNorm.Type = ggml.Q8_0 }, ok, "norm/bias")
	f("no output", func(w *engine.Weights) { w.Output = nil }, ok, "output projection")
	f("gemma3", func(w *engine.Weights) { w.H.Arch = "gemma3" }, ok, `architecture "gemma3" runs on the CPU only`)
	f("qwen3moe", func(w *engine.Weights) { w.H.Arch = "qwen3moe" }, ok, `architecture "qwen3moe" runs on the CPU only`)
	f("context", func(w *engine.Weights) {}, engine.RunnerOptions{ContextLength: 0, Slots: 1}, "context length")
	f("slots", func(w *engine.Weights) {}, engine.RunnerOptions{ContextLength: 8, Slots: 0}, "slots")
}

func TestFits(t *testing.T) {
	p := Plan{WeightBytes: 600 << 20, KVBytes: 200 << 20, ScratchBytes: 100 << 20, RopeBytes: 100 << 20}
	if err := Fits(p, 2000<<20, 1000<<20); err != nil {
		t.Errorf("exact fit: %v", err)
	}
	err := Fits(p, 2000<<20-1, 1000<<20)
	if !errors.Is(err, ErrInsufficientMemory) {
		t.Fatalf("err = %v, want ErrInsufficientMemory", err)
	}
	for _, s := range []string{"1000 MiB", "1999 MiB free"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q lacks %q", err, s)
		}
	}
}

func TestPlace(t *testing.T) {
	devs := []DeviceInfo{{Index: 0, MemFreeMB: 8000}, {Index: 1, MemFreeMB: 20000}, {Index: 2, MemFreeMB: 20000}, {Index: 3, MemFreeMB: 500}}
	f := func(needMB, reserveMB int64, want int, wantErr bool) {
		t.Helper()
		got, err := Place(needMB<<20, devs, reserveMB<<20)
		if wantErr {
			if !errors.Is(err, ErrInsufficientMemory) {
				t.Errorf("Place(%d) = %d, %v; want ErrInsufficientMemory", needMB, got, err)
			}
			return
		}
		if err != nil || got != want {
			t.Errorf("Place(%d) = %d, %v; want %d", needMB, got, err, want)
		}
	}
	f(100, 0, 1, false)     // most free, lowest index on ties
	f(19500, 500, 1, false) // exact fit with reserve
	f(19501, 500, -1, true) // one byte over everywhere
	f(100000, 0, -1, true)  // too big for any device
	f(7000, 1000, 1, false) // fits 0 too, but 1 has more room
	if _, err := Place(1, nil, 0); !errors.Is(err, ErrInsufficientMemory) {
		t.Errorf("no devices: %v", err)
	}
}
