package ggml

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestGeneratedAssemblyIsFresh regenerates the kernels with asm_gen.go in a
// scratch folder and fails when a committed vecdot_*_amd64.s differs from
// what the generator writes now (someone edited one by hand, or changed
// the generator without running go generate).
func TestGeneratedAssemblyIsFresh(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the generator")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go command not on PATH")
	}
	src, err := os.ReadFile("asm_gen.go")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "asm_gen.go"), src, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(goBin, "run", "asm_gen.go")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go run asm_gen.go: %v\n%s", err, out)
	}
	made, err := filepath.Glob(filepath.Join(dir, "*.s"))
	if err != nil || len(made) == 0 {
		t.Fatalf("the generator wrote no .s files (%v)", err)
	}
	for _, p := range made {
		name := filepath.Base(p)
		want, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(name)
		if err != nil {
			t.Errorf("%s is generated but not committed: %v", name, err)
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from what asm_gen.go writes: run go generate ./node/ggml", name)
		}
	}
	committed, _ := filepath.Glob("vecdot*_amd64.s")
	if len(committed) != len(made) {
		t.Errorf("%d committed kernels, the generator writes %d", len(committed), len(made))
	}
}
