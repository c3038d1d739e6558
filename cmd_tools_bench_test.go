package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestToolsBench(t *testing.T) {
	model := filepath.Join("..", "shared", "models", "stories260K.gguf")
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
}
