// Package testshared finds the shared test data (models, llama.cpp
// reference outputs, tokenizer vectors, chat templates, captured client
// requests) that lives in a folder named shared beside the repository.
// Tests that need it skip with a clear message when it is absent, so a
// clone of the project alone still passes.
package testshared

import (
	"os"
	"path/filepath"
	"testing"
)

// ModuleRoot returns the folder holding go.mod above the working directory
// (a test's package folder), skipping t when there is none.
func ModuleRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Skip("go.mod not found above the test; shared test data unavailable")
		}
		dir = parent
	}
}

// Dir returns the shared data folder beside the repository, skipping t
// when it is absent.
func Dir(t testing.TB) string {
	t.Helper()
	shared := filepath.Join(ModuleRoot(t), "..", "shared")
	if _, err := os.Stat(shared); err != nil {
		t.Skipf("shared test data not found at %s (models, references and vectors live beside the repository)", shared)
	}
	return shared
}

// Path returns rel inside the shared data folder, skipping t when it is
// absent.
func Path(t testing.TB, rel string) string {
	t.Helper()
	p := filepath.Join(Dir(t), rel)
	if _, err := os.Stat(p); err != nil {
		t.Skipf("shared test data %s not found", p)
	}
	return p
}
