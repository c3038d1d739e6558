package tools

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"helexa/cuda"
	"helexa/internal/testshared"
	"helexa/node/engine"
)

// TestGPUCheckWithoutCUDA: on a host without a usable driver gpucheck
// fails with the driver's reason instead of crashing or passing.
func TestGPUCheckWithoutCUDA(t *testing.T) {
	if info, err := cuda.Discover(); err == nil && info.Available {
		t.Skip("this host has CUDA; gpucheck would run for real")
	}
	var out bytes.Buffer
	err := gpucheck(&out, gpucheckOptions{Shared: "../shared", Seed: 1})
	if !errors.Is(err, cuda.ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
	if !strings.Contains(err.Error(), cuda.DriverLibrary) {
		t.Errorf("error %q does not name %s", err, cuda.DriverLibrary)
	}
	if out.Len() != 0 {
		t.Errorf("printed %q before failing", out.String())
	}
}

// TestGPUCheckParityOnCPU runs gpucheck's parity path (engine loader,
// teacher forcing, tolerance classes, the table) with the CPU backend
// standing in for the GPU, on the small references.
func TestGPUCheckParityOnCPU(t *testing.T) {
	shared := testshared.Dir(t)
	if _, err := os.Stat(filepath.Join(shared, "reference")); err != nil {
		t.Skip("../shared/reference is absent")
	}
	patterns := []string{"stories260K*.json"}
	if !gpucheckRace {
		// A Hugging Face folder through the engine's loader (slow under
		// the race detector: a 128k vocabulary).
		patterns = append(patterns, "synth-hf-llama3.json")
	}
	for _, pattern := range patterns {
		var out bytes.Buffer
		failed, err := gpucheckParity(&out, engine.CPU{}, shared, pattern)
		if err != nil {
			t.Fatal(err)
		}
		t.Log("\n" + out.String())
		if failed || strings.Contains(out.String(), "skipped") {
			t.Errorf("%s: parity on the CPU did not pass:\n%s", pattern, out.String())
		}
		if strings.Count(out.String(), "pass") == 0 {
			t.Errorf("%s: no rows passed:\n%s", pattern, out.String())
		}
	}
}
