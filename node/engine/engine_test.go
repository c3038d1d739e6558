package engine

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"testing"
)

func loadStories(t *testing.T, o Options) *Model {
	t.Helper()
	m, err := Load(filepath.Join(sharedDir(t), "models", "stories260K.gguf"), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func TestInspect(t *testing.T) {
	shared := sharedDir(t)
	f := func(name string, want Info) {
		t.Helper()
		got, err := Inspect(filepath.Join(shared, "models", name))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got.Format != want.Format || got.Arch != want.Arch || got.Quant != want.Quant ||
			got.NEmbd != want.NEmbd || got.NLayer != want.NLayer || got.NHead != want.NHead ||
			got.NHeadKV != want.NHeadKV || got.HeadDim != want.HeadDim || got.NFF != want.NFF ||
			got.NVocab != want.NVocab || got.ContextLength != want.ContextLength {
			t.Errorf("%s: got %+v\nwant %+v", name, got, want)
		}
		if got.SizeBytes <= 0 || got.ParamCount <= 0 {
			t.Errorf("%s: size %d, params %d", name, got.SizeBytes, got.ParamCount)
		}
		if est := got.MemEstimate(1024, 2); est <= got.SizeBytes {
			t.Errorf("%s: MemEstimate %d not above the weights' %d", name, est, got.SizeBytes)
		}
	}
	// stories260K has no context_length key: the default 2048 applies.
	f("stories260K.gguf", Info{Format: "gguf", Arch: "llama", Quant: "F32", NEmbd: 64, NLayer: 5, NHead: 8, NHeadKV: 4, HeadDim: 8, NFF: 172, NVocab: 512, ContextLength: 2048})
	f("stories260K-F16.gguf", Info{Format: "gguf", Arch: "llama", Quant: "F16", NEmbd: 64, NLayer: 5, NHead: 8, NHeadKV: 4, HeadDim: 8, NFF: 172, NVocab: 512, ContextLength: 2048})
	f("synth-25m-Q4_K_M.gguf", Info{Format: "gguf", Arch: "llama", Quant: "Q4_K_M", NEmbd: 512, NLayer: 8, NHead: 8, NHeadKV: 4, HeadDim: 64, NFF: 1536, NVocab: 512, ContextLength: 2048})
	f("synth-hf-llama3", Info{Format: "safetensors", Arch: "llama", Quant: "BF16", NEmbd: 128, NLayer: 4, NHead: 2, NHeadKV: 1, HeadDim: 64, NFF: 384, NVocab: 128256, ContextLength: 2048})

	// The memory estimate grows with context and slots.
	info, _ := Inspect(filepath.Join(shared, "models", "stories260K.gguf"))
	if a, b := info.MemEstimate(256, 1), info.MemEstimate(512, 2); b <= a {
		t.Errorf("MemEstimate(512,2) = %d not above MemEstimate(256,1) = %d", b, a)
	}
}

func TestInspectRejectsBadFiles(t *testing.T) {
	shared := sharedDir(t)
	dir := t.TempDir()
	good, err := os.ReadFile(filepath.Join(shared, "models", "stories260K.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	f := func(name string, data []byte) {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := Inspect(p); err == nil {
			t.Errorf("Inspect(%s) succeeded", name)
		}
		if m, err := Load(p, Options{}); err == nil {
			m.Close()
			t.Errorf("Load(%s) succeeded", name)
		}
	}
	f("empty.gguf", nil)
	f("header.gguf", good[:64])
	f("truncated.gguf", good[:len(good)/2])
	f("text.gguf", []byte("not a model at all"))
	if _, err := Inspect(filepath.Join(dir, "missing.gguf")); err == nil {
		t.Error("Inspect of a missing file succeeded")
	}
	// A folder without config.json is not a HF model.
	if _, err := Inspect(dir); err == nil {
		t.Error("Inspect of a folder without a model succeeded")
	}
}

func TestForwardRejectsBadInput(t *testing.T) {
	m := loadStories(t, Options{ContextLength: 32, Slots: 2, Threads: 2})
	logits := make([]float32, m.NVocab())
	f := func(what string, slot int, tokens []int32, pos int, logits []float32) {
		t.Helper()
		if err := m.Forward(slot, tokens, pos, logits); err == nil {
			t.Errorf("%s: Forward succeeded", what)
		}
	}
	f("slot -1", -1, []int32{1}, 0, logits)
	f("slot 2", 2, []int32{1}, 0, logits)
	f("no tokens", 0, nil, 0, logits)
	f("past context", 0, []int32{1, 2}, 31, logits)
	f("negative pos", 0, []int32{1}, -1, logits)
	f("token too big", 0, []int32{1, int32(m.NVocab())}, 0, logits)
	f("negative token", 0, []int32{-1}, 0, logits)
	f("short logits", 0, []int32{1}, 0, logits[:10])
	if err := m.ForwardAll(0, []int32{1, 2}, 0, logits); err == nil {
		t.Error("ForwardAll with room for one row succeeded")
	}
	f("past the sequence", 0, []int32{1}, 5, logits)
	// The model still works afterwards, up to the end of its context.
	prompt := make([]int32, 30)
	for i := range prompt {
		prompt[i] = int32(1 + i)
	}
	if err := m.Forward(0, prompt, 0, logits); err != nil {
		t.Fatal(err)
	}
	if err := m.Forward(0, []int32{1, 2}, 30, logits); err != nil {
		t.Fatal(err)
	}
}

// Batched prefill, chunked prefill and token-by-token decode compute the
// same logits; slots are independent.
func TestPrefillMatchesDecode(t *testing.T) {
	m := loadStories(t, Options{ContextLength: 256, Slots: 2, Threads: 2})
	nv := m.NVocab()
	n := maxBatch + 13 // more than one chunk
	tokens := make([]int32, n)
	for i := range tokens {
		tokens[i] = int32(1 + (i*37)%(nv-1))
	}
	all := make([]float32, n*nv)
	if err := m.ForwardAll(0, tokens, 0, all); err != nil {
		t.Fatal(err)
	}
	// Slot 1 gets something else first; slot 0 must be unaffected.
	junk := make([]float32, nv)
	if err := m.Forward(1, []int32{5, 6, 7}, 0, junk); err != nil {
		t.Fatal(err)
	}
	one := make([]float32, nv)
	for i, tok := range tokens {
		if err := m.Forward(1, []int32{tok}, i, one); err != nil {
			t.Fatal(err)
		}
		if d := maxDiff(one, all[i*nv:(i+1)*nv]); d > 1e-3 {
			t.Fatalf("token %d: decode and prefill logits differ by %g", i, d)
		}
	}
	last := make([]float32, nv)
	if err := m.Forward(0, tokens, 0, last); err != nil {
		t.Fatal(err)
	}
	if d := maxDiff(last, all[(n-1)*nv:]); d > 1e-5 {
		t.Fatalf("Forward and ForwardAll last logits differ by %g", d)
	}
	for _, v := range last {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			t.Fatal("non-finite logit")
		}
	}
}

func maxDiff(a, b []float32) float64 {
	d := 0.0
	for i := range a {
		d = math.Max(d, math.Abs(float64(a[i]-b[i])))
	}
	return d
}

// Decode steps and prefills allocate nothing, on every weight type.
func TestDecodeDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	for _, name := range []string{"stories260K.gguf", "stories260K-F16.gguf", "synth-hf-llama3", "synth-25m-Q4_K_M.gguf", "synth-25m-Q8_0.gguf"} {
		m, err := Load(filepath.Join(sharedDir(t), "models", name), Options{ContextLength: 64, Threads: 2})
		if err != nil {
			t.Fatal(err)
		}
		logits := make([]float32, m.NVocab())
		prompt := []int32{1, 2, 3, 4, 5, 6, 7, 8}
		pos := 0
		allocs := testing.AllocsPerRun(5, func() {
			if err := m.Forward(0, prompt[pos%8:pos%8+1], pos, logits); err != nil {
				t.Fatal(err)
			}
			pos++
		})
		if allocs != 0 {
			t.Errorf("%s: decode step allocates %.1f times", name, allocs)
		}
		allocs = testing.AllocsPerRun(2, func() {
			if err := m.Forward(0, prompt, 0, logits); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("%s: prefill allocates %.1f times", name, allocs)
		}
		m.Close()
	}
}

func TestClosedModel(t *testing.T) {
	m, err := Load(filepath.Join(sharedDir(t), "models", "stories260K.gguf"), Options{ContextLength: 16})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if err := m.Forward(0, []int32{1}, 0, make([]float32, 512)); err == nil {
		t.Error("Forward after Close succeeded")
	}
	if err := m.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestLoadHFExtras(t *testing.T) {
	m, err := Load(filepath.Join(sharedDir(t), "models", "synth-hf-llama3"), Options{ContextLength: 16})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if m.Tok == nil || m.Tok.VocabSize() == 0 {
		t.Fatal("no tokenizer")
	}
	if m.Info.ChatTemplate == "" {
		t.Error("HF chat template not found")
	}
	if m.NCtx() != 16 || m.Slots() != 1 || m.NVocab() != 128256 {
		t.Errorf("NCtx %d Slots %d NVocab %d", m.NCtx(), m.Slots(), m.NVocab())
	}
}

func TestLlama3RopeFreqs(t *testing.T) {
	h := Hparams{RopeTheta: 500000, RopeDims: 128}
	h.RopeScaling.Factor, h.RopeScaling.LowFreqFactor, h.RopeScaling.HighFreqFactor, h.RopeScaling.OrigCtx = 8, 1, 4, 8192
	f := llama3RopeFreqs(h)
	if len(f) != 64 || f[0] != 1 || f[63] != 8 {
		t.Fatalf("freqs: first %v last %v (len %d); want 1 … 8", f[0], f[len(f)-1], len(f))
	}
	for i := 1; i < len(f); i++ {
		if f[i] < f[i-1] {
			t.Fatalf("factors not monotonic at %d: %v < %v", i, f[i], f[i-1])
		}
	}
}

func TestErrUnsupported(t *testing.T) {
	dir := t.TempDir()
	cfg := `{"architectures":["GPT2LMHeadModel"],"hidden_size":8}`
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile(filepath.Join(sharedDir(t), "models", "synth-hf-llama3", "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "model.safetensors"), src, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Inspect(dir)
	if !errors.Is(err, ErrUnsupported) {
		t.Fatalf("Inspect of a GPT-2 config: %v, want ErrUnsupported", err)
	}
}

// MemEstimate covers what a loaded model really holds.
func TestMemEstimateCoversLoad(t *testing.T) {
	for _, name := range []string{"stories260K.gguf", "synth-25m-Q4_K_M.gguf"} {
		path := filepath.Join(sharedDir(t), "models", name)
		info, err := Inspect(path)
		if err != nil {
			t.Fatal(err)
		}
		const ctx, slots = 512, 3
		m, err := Load(path, Options{ContextLength: ctx, Slots: slots, Threads: 2})
		if err != nil {
			t.Fatal(err)
		}
		held := info.SizeBytes + m.MemBytes()
		est := info.MemEstimate(ctx, ctx*slots)
		m.Close()
		if est < held || est > 2*held {
			t.Errorf("%s: MemEstimate %d for %d held", name, est, held)
		}
	}
}

type panicRunner struct{ Runner }

func (panicRunner) ForwardBatch([]Item) error { panic("backend bug") }

// A panicking backend fails the call with ErrForwardPanic.
func TestForwardRecoversPanics(t *testing.T) {
	m := loadStories(t, Options{ContextLength: 8})
	real := m.runner
	m.runner = panicRunner{real}
	err := m.Forward(0, []int32{1}, 0, make([]float32, m.NVocab()))
	m.runner = real
	if !errors.Is(err, ErrForwardPanic) {
		t.Fatalf("err = %v, want ErrForwardPanic", err)
	}
}
