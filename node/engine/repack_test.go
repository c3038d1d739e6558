package engine

import (
	"encoding/binary"
	"math"
	"math/rand"
	"testing"

	"helexa/node/ggml"
)

// convertTensor re-encodes an F32 tensor as ty, row by row.
func convertTensor(t *testing.T, src *Tensor, ty ggml.Type) *Tensor {
	t.Helper()
	cols, rows := src.Dims[0], src.Rows()
	rb, err := ggml.RowBytes(ty, cols)
	if err != nil {
		t.Fatal(err)
	}
	out := &Tensor{Name: src.Name, Type: ty, Dims: src.Dims, Data: make([]byte, rows*rb)}
	row := make([]float32, cols)
	for r := range rows {
		for k := range row {
			row[k] = math.Float32frombits(binary.LittleEndian.Uint32(src.Data[4*(r*cols+k):]))
		}
		if err := ggml.QuantizeRow(ty, row, out.Data[r*rb:(r+1)*rb]); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// r16Model is a small llama whose every matmul fits the R16 layout, its
// weights in ty.
func r16Model(t *testing.T, ty ggml.Type) *Weights {
	t.Helper()
	w := tinyModel(11, "llama")
	h := &w.H
	h.NEmbd, h.NFF, h.NVocab, h.NHead, h.NHeadKV, h.HeadDim, h.RopeDims = 64, 96, 48, 4, 2, 16, 16
	if ty.BlockSize() == ggml.QKK { // super-blocks of 256 columns
		h.NEmbd, h.NFF, h.HeadDim, h.RopeDims = 256, 256, 64, 64
	}
	rng := rand.New(rand.NewSource(12))
	fresh := func(name string, cols, rows int) *Tensor {
		return convertTensor(t, randTensor(rng, name, 0.3, cols, rows), ty)
	}
	q, kv := h.NHead*h.HeadDim, h.NHeadKV*h.HeadDim
	w.TokEmbd = randTensor(rng, "tok", 1, h.NEmbd, h.NVocab)
	w.OutNorm = onesish(rng, "out_norm", h.NEmbd)
	w.Output = fresh("out", h.NEmbd, h.NVocab)
	for i := range w.Layers {
		l := &w.Layers[i]
		l.AttnNorm = onesish(rng, "attn_norm", h.NEmbd)
		l.FFNNorm = onesish(rng, "ffn_norm", h.NEmbd)
		l.Wq, l.Wk, l.Wv = fresh("wq", h.NEmbd, q), fresh("wk", h.NEmbd, kv), fresh("wv", h.NEmbd, kv)
		l.Wo = fresh("wo", q, h.NEmbd)
		l.FFNGate, l.FFNUp = fresh("gate", h.NEmbd, h.NFF), fresh("up", h.NEmbd, h.NFF)
		l.FFNDown = fresh("down", h.NFF, h.NEmbd)
	}
	if err := w.validate(); err != nil {
		t.Fatal(err)
	}
	return w
}

// The repacked (R16) matmuls give the logits the row-by-row kernels give,
// up to the order of float32 additions, for prefill and decode.
func TestR16MatchesRowKernels(t *testing.T) {
	for _, ty := range []ggml.Type{ggml.Q8_0, ggml.Q4_0, ggml.Q4_K, ggml.Q5_K, ggml.Q6_K, ggml.F16, ggml.BF16} {
		t.Run(ty.String(), func(t *testing.T) {
			if !ggml.HaveR16(ty) {
				t.Skipf("this CPU has no R16 kernels for %s", ty)
			}
			w := r16Model(t, ty)
			tokens := []int32{3, 17, 0, 39, 8, 8, 21, 5, 30, 11, 47, 2, 9}
			nv := w.H.NVocab
			run := func(r16 bool) []float32 {
				useR16 = r16
				defer func() { useR16 = true }()
				r, err := CPU{}.NewRunner(w, RunnerOptions{ContextLength: 32, Slots: 1, Threads: 2})
				if err != nil {
					t.Fatal(err)
				}
				defer r.Close()
				if got := len(r.(*cpuRunner).mm.packed); r16 && got != 15 || !r16 && got != 0 {
					t.Fatalf("r16=%v: %d repacked weights", r16, got)
				}
				out := make([]float32, (len(tokens)+1)*nv)
				if err := r.Forward(0, tokens, 0, out[:len(tokens)*nv], true); err != nil {
					t.Fatal(err)
				}
				// one decode step after the prefill
				if err := r.Forward(0, []int32{4}, len(tokens), out[len(tokens)*nv:], false); err != nil {
					t.Fatal(err)
				}
				return out
			}
			packed, rows := run(true), run(false)
			// Half-precision K/V rounding turns summation-order differences
			// into ~1e-3; a wrong kernel is off by whole units.
			if d := maxDiff(packed, rows); d > 1e-2 {
				t.Errorf("max |R16 - rows| = %g over logits of order 1-10", d)
			}
		})
	}
}
