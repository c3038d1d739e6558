package node

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// copyModel copies a shared model into dir (a file the test may change).
func copyModel(t *testing.T, dir, name string) string {
	t.Helper()
	src, err := os.Open(filepath.Join(sharedDir(t), "models", name))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	p := filepath.Join(dir, name)
	dst, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestTruncatedModelFile: truncating the file of a loaded model (a copy
// over it) faults on its mapped weights. That fails the model, which is
// unloaded and marked failed; the neuron and its other models carry on.
func TestTruncatedModelFile(t *testing.T) {
	dir := t.TempDir()
	victim := copyModel(t, dir, "stories260K.gguf")
	copyModel(t, dir, "stories260K-F16.gguf")
	cfg := testConfig(dir)
	s, err := newServer(cfg, zerolog.New(zerolog.NewTestWriter(t)), realEngine())
	if err != nil {
		t.Fatal(err)
	}
	n := &testNeuron{s: s, srv: newHTTPTest(t, s), dir: dir}
	n.load(t, "stories260K", 64)
	n.load(t, "stories260K-F16", 64)
	body := func(m string) map[string]any {
		return map[string]any{"model": m, "prompt": "Once upon a time", "max_tokens": 8, "temperature": 0}
	}
	if st := n.do(t, "POST", "/v1/completions", body("stories260K"), nil); st != 200 {
		t.Fatalf("before truncating: %d", st)
	}
	if err := os.Truncate(victim, 0); err != nil {
		t.Fatal(err)
	}
	var e errEnvelope
	if st := n.do(t, "POST", "/v1/completions", body("stories260K"), &e); st != 500 || code(e) != "model_failed" {
		t.Fatalf("request on a truncated model: %d %+v, want 500 model_failed", st, e)
	}
	// The model is unloaded and failed, with a reason that names it, not
	// its path.
	var v modelEntry
	for deadline := time.Now().Add(30 * time.Second); ; {
		v = n.s.modelView("stories260K")
		if v.Status == statusFailed || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if v.Status != statusFailed || v.Error == "" || strings.Contains(v.Error, dir) {
		t.Fatalf("truncated model: %+v, want failed with a reason naming no path", v)
	}
	if st := n.do(t, "POST", "/v1/completions", body("stories260K"), &e); st != 404 {
		t.Fatalf("request after the failure: %d %+v", st, e)
	}
	// The other model, on the same device, still serves; the device is
	// healthy.
	for range 3 {
		if st := n.do(t, "POST", "/v1/completions", body("stories260K-F16"), nil); st != 200 {
			t.Fatalf("the other model after the fault: %d", st)
		}
	}
	var h healthBody
	n.do(t, "GET", "/health", nil, &h)
	if h.Devices[0].Error != "" {
		t.Fatalf("device after a model's fault: %+v", h)
	}
	// A fixed file loads again.
	copyModel(t, dir, "stories260K.gguf")
	n.s.rescanIfStale(0)
	n.load(t, "stories260K", 64)
	if st := n.do(t, "POST", "/v1/completions", body("stories260K"), nil); st != 200 {
		t.Fatalf("the replaced model: %d", st)
	}
}
