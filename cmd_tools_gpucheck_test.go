package main

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"helexa/cuda"
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
