package cuda

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestPTXMatchesSource fails when a committed .ptx was not regenerated
// (make ptx) after its .cu or common.cuh changed, or when a source has no
// PTX at all.
func TestPTXMatchesSource(t *testing.T) {
	common, err := os.ReadFile("kernels/common.cuh")
	if err != nil {
		t.Fatal(err)
	}
	srcs, err := filepath.Glob("kernels/*.cu")
	if err != nil || len(srcs) == 0 {
		t.Fatalf("no kernel sources: %v", err)
	}
	mods, err := ptxModules()
	if err != nil {
		t.Fatal(err)
	}
	if len(mods) != len(srcs) {
		t.Errorf("%d sources but %d embedded PTX modules", len(srcs), len(mods))
	}
	for _, src := range srcs {
		body, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(append(append([]byte{}, common...), body...))
		name := strings.TrimSuffix(filepath.Base(src), ".cu") + ".ptx"
		ptx, ok := mods[name]
		if !ok {
			t.Errorf("%s has no committed %s: run make ptx", src, name)
			continue
		}
		want := "// source-sha256: " + hex.EncodeToString(sum[:])
		if !bytes.Contains(ptx[:min(len(ptx), 512)], []byte(want)) {
			t.Errorf("%s is stale (its header lacks %q): run make ptx", name, want)
		}
	}
}

// TestPTXEntries checks the PTX parses as text with exactly the kernels
// the backend loads, for a target every GPU from Volta up can JIT.
func TestPTXEntries(t *testing.T) {
	mods, err := ptxModules()
	if err != nil {
		t.Fatal(err)
	}
	var all []string
	for name, ptx := range mods {
		s := string(ptx)
		if !strings.Contains(s, "\n.target sm_70\n") || !strings.Contains(s, "\n.version 6.4\n") || !strings.Contains(s, "\n.address_size 64\n") {
			t.Errorf("%s: not PTX ISA 6.4 for sm_70, 64-bit", name)
		}
		if strings.Contains(s, ".local") {
			t.Errorf("%s: uses local memory (register spills slow the kernels)", name)
		}
		if strings.Count(s, "{") != strings.Count(s, "}") {
			t.Errorf("%s: unbalanced braces", name)
		}
		all = append(all, ptxEntries(ptx)...)
	}
	sortStrings(all)
	if d := cmp.Diff(kernelNames(), all); d != "" {
		t.Errorf("kernel entries differ from the backend's list (-want +got):\n%s", d)
	}
}

func TestPTXEntriesParser(t *testing.T) {
	got := ptxEntries([]byte("// .entry fake in a comment\n.visible .entry rmsnorm(\n\t.param .u64 a\n)\n.visible .entry add(\n"))
	want := []string{"add", "rmsnorm"}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
}

// TestMMVRowsMatch keeps the Go launch geometry in step with quant.cu.
func TestMMVRowsMatch(t *testing.T) {
	src, err := os.ReadFile("kernels/quant.cu")
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("#define MMV_ROWS %d\n", mmvRowsPerWarp)
	if !strings.Contains(string(src), want) {
		t.Errorf("quant.cu does not say %q", want)
	}
}
