package mmapfile

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

func TestOpenReadsContents(t *testing.T) {
	dir := t.TempDir()
	want := bytes.Repeat([]byte("helexa\x00\x01"), 1000)
	p := filepath.Join(dir, "f.bin")
	if err := os.WriteFile(p, want, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(f.Bytes(), want) {
		t.Fatalf("mapped contents differ from file")
	}
	if f.Len() != int64(len(want)) {
		t.Fatalf("Len = %d, want %d", f.Len(), len(want))
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if f.Bytes() != nil {
		t.Fatalf("Bytes after Close should be nil")
	}
	if err := f.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestOpenEmpty(t *testing.T) {
	p := filepath.Join(t.TempDir(), "empty")
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Bytes()) != 0 || f.Len() != 0 {
		t.Fatalf("empty file mapped to %d bytes", len(f.Bytes()))
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := Open(filepath.Join(dir, "missing")); err == nil {
		t.Fatal("missing file: want error")
	}
	if _, err := Open(dir); err == nil {
		t.Fatal("directory: want error")
	}
}
