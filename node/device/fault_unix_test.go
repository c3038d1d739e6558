//go:build unix

package device

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// truncatedMapping maps a file of two pages, then truncates it to
// nothing: reading the mapping faults (SIGBUS).
func truncatedMapping(t *testing.T) []byte {
	t.Helper()
	p := filepath.Join(t.TempDir(), "weights")
	size := 2 * os.Getpagesize()
	if err := os.WriteFile(p, make([]byte, size), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b, err := syscall.Mmap(int(f.Fd()), 0, size, syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Munmap(b) })
	if err := os.Truncate(p, 0); err != nil {
		t.Fatal(err)
	}
	return b
}

// TestFaultIsAnErrorNotPoison: a job faulting on a truncated mapping
// fails with ErrFault; the process survives and the worker takes more
// jobs.
func TestFaultIsAnErrorNotPoison(t *testing.T) {
	b := truncatedMapping(t)
	w := Start(Options{Name: "test"})
	defer w.Close()
	var sink byte
	err := w.Do(context.Background(), func() error {
		sink += b[os.Getpagesize()]
		return nil
	})
	if !errors.Is(err, ErrFault) || errors.Is(err, ErrPoisoned) {
		t.Fatalf("job reading a truncated mapping: %v, want ErrFault", err)
	}
	if w.Err() != nil {
		t.Fatalf("worker poisoned by a fault: %v", w.Err())
	}
	// CatchFault gives the same error inside a job, and other panics go on.
	err = w.Do(context.Background(), func() error {
		return CatchFault(func() error { sink += b[0]; return nil })
	})
	if !errors.Is(err, ErrFault) {
		t.Fatalf("CatchFault: %v", err)
	}
	err = w.Do(context.Background(), func() error {
		return CatchFault(func() error { panic("not a fault") })
	})
	if !errors.Is(err, ErrPoisoned) {
		t.Fatalf("a panic that is no fault: %v, want it to poison", err)
	}
	_ = sink
}
