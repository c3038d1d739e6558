package mmapfile

import (
	"os"
	"path/filepath"
	"testing"
)

func TestAnon(t *testing.T) {
	a, err := NewAnon(3 << 20)
	if err != nil {
		t.Fatal(err)
	}
	b := a.Bytes()
	if len(b) != 3<<20 {
		t.Fatalf("len %d", len(b))
	}
	for i := range b {
		if b[i] != 0 {
			t.Fatalf("byte %d = %d, want zeroed memory", i, b[i])
		}
		b[i] = byte(i)
	}
	if b[12345] != byte(12345%256) {
		t.Fatal("memory does not keep what was written")
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	if z, err := NewAnon(0); err != nil || len(z.Bytes()) != 0 || z.Close() != nil {
		t.Fatalf("empty: %v", err)
	}
}

// Released pages of a file mapping read back the same contents.
func TestReleaseKeepsContents(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	want := make([]byte, 5*os.Getpagesize()+123)
	for i := range want {
		want[i] = byte(i * 7)
	}
	if err := os.WriteFile(path, want, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got := f.Bytes()
	_ = got[len(got)-1] // fault it in
	Release(got[100 : len(got)-50])
	Release(got[:10]) // no whole page: nothing to do
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("byte %d = %d after Release, want %d", i, got[i], want[i])
		}
	}
}
