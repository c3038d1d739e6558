package node

import (
	"os"
	"path/filepath"
	"sort"
	"testing"
)

// TestFollowSymlinks: by default a models folder serves only what lies
// inside it, links between its own files included; follow_symlinks lets
// links lead out of it.
func TestFollowSymlinks(t *testing.T) {
	outside := t.TempDir()
	copyModel(t, outside, "stories260K.gguf")
	hf := filepath.Join(outside, "hf")
	if err := os.Mkdir(hf, 0o755); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	copyModel(t, dir, "stories260K-F16.gguf")
	// a link to a model outside, a folder of links to files outside, and
	// an alias inside the folder
	link := func(old, new string) {
		t.Helper()
		if err := os.Symlink(old, new); err != nil {
			t.Fatal(err)
		}
	}
	link(filepath.Join(outside, "stories260K.gguf"), filepath.Join(dir, "escape.gguf"))
	link(filepath.Join(dir, "stories260K-F16.gguf"), filepath.Join(dir, "alias.gguf"))
	if err := os.WriteFile(filepath.Join(hf, "config.json"), []byte(`{}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(hf, "model.safetensors"), []byte(`x`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "hfl"), 0o755); err != nil {
		t.Fatal(err)
	}
	link(filepath.Join(hf, "config.json"), filepath.Join(dir, "hfl", "config.json"))
	link(filepath.Join(hf, "model.safetensors"), filepath.Join(dir, "hfl", "model.safetensors"))

	ids := func(follow bool) []string {
		list, skipped, err := scanDirs([]string{dir}, follow)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, f := range list {
			out = append(out, f.id)
		}
		if !follow && len(skipped) != 2 {
			t.Errorf("skipped %v, want the two links out", skipped)
		}
		sort.Strings(out)
		return out
	}
	if got := ids(false); !equalStrings(got, []string{"alias", "stories260K-F16"}) {
		t.Fatalf("default: %v, want only what lies inside the folder", got)
	}
	if got := ids(true); !equalStrings(got, []string{"alias", "escape", "hfl", "stories260K-F16"}) {
		t.Fatalf("follow_symlinks: %v", got)
	}

	// Through the neuron: the link out is not a model by default.
	cfg := testConfig(dir)
	cfg.FollowSymlinks = false
	n := startNeuron(t, cfg, (&synthEngine{}).hooks())
	var e errEnvelope
	if st := n.do(t, "POST", "/models/load", map[string]any{"model": "escape"}, &e); st != 404 {
		t.Fatalf("load through a link out of the folder: %d %+v", st, e)
	}
	n.load(t, "alias", 64)
	cfg.FollowSymlinks = true
	n2 := startNeuron(t, cfg, (&synthEngine{}).hooks())
	n2.load(t, "escape", 64)
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
