package tools

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"helexa/internal/testshared"
)

func TestToolsBench(t *testing.T) {
	model := filepath.Join(testshared.Dir(t), "models", "stories260K.gguf")
	if _, err := os.Stat(model); err != nil {
		t.Skipf("shared test data not found at ../shared: %v", err)
	}
	var out bytes.Buffer
	if err := runBench(context.Background(), &out, benchOptions{Model: model, Prompt: 16, Gen: 4, Threads: 1, Reps: 2, JSON: true}); err != nil {
		t.Fatal(err)
	}
	var rs []struct {
		ModelFilename string    `json:"model_filename"`
		NPrompt       int       `json:"n_prompt"`
		NGen          int       `json:"n_gen"`
		NThreads      int       `json:"n_threads"`
		AvgTs         float64   `json:"avg_ts"`
		SamplesTs     []float64 `json:"samples_ts"`
	}
	if err := json.Unmarshal(out.Bytes(), &rs); err != nil {
		t.Fatal(err)
	}
	if len(rs) != 2 || rs[0].NPrompt != 16 || rs[1].NGen != 4 || rs[0].ModelFilename != "stories260K.gguf" ||
		rs[0].NThreads != 1 || len(rs[1].SamplesTs) != 2 || rs[0].AvgTs <= 0 {
		t.Fatalf("results %+v", rs)
	}

	out.Reset()
	if err := runBench(context.Background(), &out, benchOptions{Model: model, Prompt: 8, Gen: 0, Threads: 1, Reps: 1}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "pp8") || strings.Contains(out.String(), "tg") {
		t.Errorf("table:\n%s", out.String())
	}
	if err := runBench(context.Background(), &out, benchOptions{Model: model, Prompt: 0, Gen: 0, Reps: 1}); err == nil {
		t.Error("-p 0 -n 0 accepted")
	}

	// batched decode tests: B sequences' tokens counted
	out.Reset()
	if err := runBench(context.Background(), &out, benchOptions{Model: model, Prompt: 8, Gen: 3, Threads: 1, Reps: 1, Parallel: []int{3}}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "tg3 x3") {
		t.Errorf("table:\n%s", out.String())
	}
	// at a depth: the tests start after 40 positions
	out.Reset()
	if err := runBench(context.Background(), &out, benchOptions{Model: model, Prompt: 8, Gen: 3, Depth: 40, Threads: 1, Reps: 1, Parallel: []int{2}, JSON: true}); err != nil {
		t.Fatal(err)
	}
	var ds []struct {
		NDepth int     `json:"n_depth"`
		AvgTs  float64 `json:"avg_ts"`
	}
	if err := json.Unmarshal(out.Bytes(), &ds); err != nil {
		t.Fatal(err)
	}
	if len(ds) != 3 || ds[0].NDepth != 40 || ds[2].NDepth != 40 || ds[1].AvgTs <= 0 {
		t.Errorf("results at depth 40: %+v", ds)
	}
	if err := runBench(context.Background(), &out, benchOptions{Model: model, Prompt: 8, Gen: 3, Depth: -1, Reps: 1}); err == nil {
		t.Error("-d -1 accepted")
	}
	if err := runBench(context.Background(), &out, benchOptions{Model: model, Prompt: 8, Gen: 0, Reps: 1, Parallel: []int{2}}); err == nil {
		t.Error("--parallel with -n 0 accepted")
	}
}

func TestToolsBenchCold(t *testing.T) {
	model := filepath.Join(testshared.Dir(t), "models", "synth-25m-Q8_0.gguf")
	if _, err := os.Stat(model); err != nil {
		t.Skipf("shared test data not found at ../shared: %v", err)
	}
	var out bytes.Buffer
	if err := runBench(context.Background(), &out, benchOptions{Model: model, Prompt: 8, Threads: 1, Reps: 1, JSON: true, Cold: true}); err != nil {
		t.Fatal(err)
	}
	var rs []coldResult
	if err := json.Unmarshal(out.Bytes(), &rs); err != nil {
		t.Fatal(err)
	}
	if len(rs) != 1 {
		t.Fatalf("results %+v", rs)
	}
	r := rs[0]
	if r.ModelFilename != "synth-25m-Q8_0.gguf" || r.NPrompt != 8 || r.NThreads != 1 || r.LoadMs <= 0 || r.TTFTMs <= 0 ||
		r.FileMiB < 20 || r.RunnerMiB <= 0 {
		t.Fatalf("result %+v", r)
	}
	if _, err := os.Stat("/proc/self/status"); err == nil {
		// Resident memory: the weights once (mapped or repacked), the KV
		// cache and scratch, and the test binary itself.
		if r.RSSFirstMiB < r.FileMiB/2 || r.RSSFirstMiB > r.FileMiB+r.RunnerMiB+256 {
			t.Errorf("resident %.1f MiB for a %.1f MiB file", r.RSSFirstMiB, r.FileMiB)
		}
	}
	out.Reset()
	if err := runBench(context.Background(), &out, benchOptions{Model: model, Prompt: 4, Threads: 1, Reps: 1, Cold: true}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "first token of 4 after load") {
		t.Errorf("text: %s", out.String())
	}
}
