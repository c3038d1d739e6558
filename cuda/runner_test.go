package cuda

import (
	"context"
	"encoding/binary"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"helexa/node/device"
	"helexa/node/engine"
	"helexa/node/ggml"
)

func TestCheckForward(t *testing.T) {
	h := engine.Hparams{NVocab: 10}
	o := engine.RunnerOptions{ContextLength: 8, Slots: 2}
	f := func(slot int, toks []int32, pos, nlogits int, all bool, want string) {
		t.Helper()
		err := checkForward(h, o, slot, toks, pos, make([]float32, nlogits), all)
		switch {
		case want == "" && err != nil:
			t.Errorf("slot %d toks %v pos %d: %v", slot, toks, pos, err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
			t.Errorf("slot %d toks %v pos %d: err = %v, want %q", slot, toks, pos, err, want)
		}
	}
	f(0, []int32{1, 2}, 0, 10, false, "")
	f(1, []int32{1, 2}, 6, 20, true, "")
	f(2, []int32{1}, 0, 10, false, "slot 2 out of range")
	f(-1, []int32{1}, 0, 10, false, "out of range")
	f(0, nil, 0, 10, false, "no tokens")
	f(0, []int32{1, 2}, 7, 10, false, "exceed the context of 8")
	f(0, []int32{1}, -1, 10, false, "exceed")
	f(0, []int32{1, 10}, 0, 10, false, "token 10 at index 1")
	f(0, []int32{-3}, 0, 10, false, "token -3")
	f(0, []int32{1, 2}, 0, 19, true, "need 20")
	f(0, []int32{1}, 0, 9, false, "need 10")
}

// TestExecOnWorker runs the backend's job dispatch with a real device
// worker and no GPU: from outside, work goes to the worker's locked
// thread; from inside a job, it runs inline instead of deadlocking.
func TestExecOnWorker(t *testing.T) {
	b := &Backend{}
	b.worker = device.Start(device.Options{Name: "cuda:test", LockThread: true, Setup: func() error {
		b.tid = threadID()
		return nil
	}})
	defer b.worker.Close()

	var ran int
	if err := b.exec(func() error { ran = threadID(); return nil }); err != nil {
		t.Fatal(err)
	}
	if ran != b.tid {
		t.Errorf("job ran on thread %d, worker is %d", ran, b.tid)
	}

	done := make(chan error, 1)
	go func() {
		done <- b.worker.Do(context.Background(), func() error {
			return b.exec(func() error {
				if threadID() != b.tid {
					return errors.New("nested job left the worker thread")
				}
				return nil
			})
		})
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Error(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("exec from inside a job deadlocked")
	}

	// A driver error poisons the worker; later jobs fail at once.
	bad := &Error{Call: "cuLaunchKernel", Code: 700, Name: "CUDA_ERROR_ILLEGAL_ADDRESS"}
	if err := b.exec(func() error { return bad }); !errors.Is(err, device.ErrPoisoned) {
		t.Fatalf("err = %v", err)
	}
	if err := b.exec(func() error { return nil }); !errors.Is(err, device.ErrPoisoned) {
		t.Errorf("job after poisoning: %v", err)
	}
}

func TestRopeInvFreq(t *testing.T) {
	h := engine.Hparams{RopeTheta: 10000, RopeDims: 8}
	got := ropeInvFreq(h)
	for i, f := range got {
		want := math.Pow(10000, -2*float64(i)/8)
		if math.Abs(f-want) > 1e-15 {
			t.Errorf("freq %d = %v, want %v", i, f, want)
		}
	}
	// Per-pair factors divide.
	h.RopeFreqs = []float32{1, 2, 4, 8}
	for i, f := range ropeInvFreq(h) {
		if want := got[i] / float64(h.RopeFreqs[i]); math.Abs(f-want) > 1e-15 {
			t.Errorf("freq %d with factors = %v, want %v", i, f, want)
		}
	}
	// Llama 3 scaling: high frequencies kept, low ones divided by the
	// factor, the band between interpolated.
	h = engine.Hparams{RopeTheta: 500000, RopeDims: 128}
	h.RopeScaling.Factor, h.RopeScaling.LowFreqFactor, h.RopeScaling.HighFreqFactor, h.RopeScaling.OrigCtx = 8, 1, 4, 8192
	base := ropeInvFreq(engine.Hparams{RopeTheta: 500000, RopeDims: 128})
	scaled := ropeInvFreq(h)
	if scaled[0] != base[0] {
		t.Errorf("highest frequency changed: %v -> %v", base[0], scaled[0])
	}
	if last := len(base) - 1; math.Abs(scaled[last]-base[last]/8) > 1e-18 {
		t.Errorf("lowest frequency %v, want %v", scaled[last], base[last]/8)
	}
	for i := range base {
		if scaled[i] > base[i] || scaled[i] < base[i]/8-1e-18 {
			t.Errorf("freq %d = %v outside [%v, %v]", i, scaled[i], base[i]/8, base[i])
		}
	}
	// The table holds cos, sin of pos·freq.
	tab := ropeTable(engine.Hparams{RopeTheta: 10000, RopeDims: 4}, 3)
	if len(tab) != 3*2*2 || tab[0] != 1 || tab[1] != 0 {
		t.Fatalf("table %v", tab)
	}
	if c, s := tab[2*(2*2+1)], tab[2*(2*2+1)+1]; math.Abs(float64(c)-math.Cos(2*0.01)) > 1e-7 || math.Abs(float64(s)-math.Sin(2*0.01)) > 1e-7 {
		t.Errorf("pos 2 pair 1 = %v, %v", c, s)
	}
}

func TestHalfToFloat(t *testing.T) {
	f := func(h uint16, want float32) {
		t.Helper()
		got := halfToFloat(h)
		if got != want && !(math.IsNaN(float64(got)) && math.IsNaN(float64(want))) {
			t.Errorf("halfToFloat(%#04x) = %v, want %v", h, got, want)
		}
	}
	f(0x3c00, 1)
	f(0xc000, -2)
	f(0x7bff, 65504)
	f(0x0001, 5.960464477539063e-08)
	f(0x8001, -5.960464477539063e-08)
	f(0x03ff, 6.097555160522461e-05)
	f(0x8000, float32(math.Copysign(0, -1)))
	f(0x7c00, float32(math.Inf(1)))
	f(0x7e00, float32(math.NaN()))
	f(0x3555, 0.333251953125)
}

func TestToF32(t *testing.T) {
	data := make([]byte, 8)
	binary.LittleEndian.PutUint32(data, math.Float32bits(1.25))
	binary.LittleEndian.PutUint32(data[4:], math.Float32bits(-3))
	got, err := toF32(&engine.Tensor{Name: "n", Type: ggml.F32, Dims: []int{2}, Data: data})
	if err != nil || got[0] != 1.25 || got[1] != -3 {
		t.Errorf("F32: %v, %v", got, err)
	}
	bf := []byte{0x80, 0x3f, 0x00, 0xc0} // 1, -2 in bfloat16
	got, err = toF32(&engine.Tensor{Name: "n", Type: ggml.BF16, Dims: []int{2}, Data: bf})
	if err != nil || got[0] != 1 || got[1] != -2 {
		t.Errorf("BF16: %v, %v", got, err)
	}
	hf := []byte{0x00, 0x3c, 0x00, 0xc0} // 1, -2 in float16
	got, err = toF32(&engine.Tensor{Name: "n", Type: ggml.F16, Dims: []int{2}, Data: hf})
	if err != nil || got[0] != 1 || got[1] != -2 {
		t.Errorf("F16: %v, %v", got, err)
	}
	if _, err := toF32(&engine.Tensor{Name: "n", Type: ggml.F32, Dims: []int{3}, Data: data}); err == nil {
		t.Error("short F32 data accepted")
	}
	if _, err := toF32(&engine.Tensor{Name: "n", Type: ggml.Q8_0, Dims: []int{32}, Data: make([]byte, 34)}); err == nil {
		t.Error("quantized vector accepted")
	}
}

func TestRowBytesMatchesGGML(t *testing.T) {
	for typ := range blockShape {
		n := 256 * 3
		got, err := rowBytes(typ, n)
		if err != nil {
			t.Fatal(err)
		}
		want, err := ggml.RowBytes(typ, n)
		if err != nil || got != want {
			t.Errorf("type %d: rowBytes = %d, ggml says %d (%v)", typ, got, want, err)
		}
	}
}

// TestRandomWeights checks the speed-test weights: the shapes the
// backend accepts, the Q4_K_M mix, and finite values throughout.
func TestRandomWeights(t *testing.T) {
	small := engine.SyntheticSpec{Seed: 1, Dim: 256, Layers: 2, Heads: 4, KVHeads: 2, FFN: 512, Vocab: 64}
	for _, mix := range BenchMixes {
		w, err := RandomWeights(small, mix)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Estimate(w, engine.RunnerOptions{ContextLength: 32, Slots: 1}); err != nil {
			t.Fatalf("%s: %v", mix, err)
		}
		for _, m := range linear(w) {
			v := make([]float32, elems(m))
			if err := ggml.Dequantize(m.Type, m.Data, v); err != nil {
				t.Fatal(err)
			}
			for _, x := range v {
				if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) || math.Abs(float64(x)) > 10 {
					t.Fatalf("%s %s: value %v", mix, m.Name, x)
				}
			}
		}
		// llama.cpp's mix gives the last eighth of the layers Q6_K.
		if mix == "Q4_K_M" && (w.Output.Type != ggml.Q6_K || w.Layers[0].Wv.Type != ggml.Q4_K || w.Layers[1].Wv.Type != ggml.Q6_K) {
			t.Errorf("Q4_K_M mix: output %v, attn_v %v/%v", w.Output.Type, w.Layers[0].Wv.Type, w.Layers[1].Wv.Type)
		}
	}
	if _, err := RandomWeights(small, "Q3_K"); err == nil {
		t.Error("unknown mix accepted")
	}
}
