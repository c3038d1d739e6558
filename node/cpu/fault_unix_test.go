//go:build unix

package cpu

import (
	"os"
	"path/filepath"
	"runtime/debug"
	"syscall"
	"testing"
)

// TestPoolFaultIsRecovered: a worker faulting on a truncated file mapping
// does not crash the process: Run re-raises it in the caller as a
// *WorkerPanic whose cause is the fault (a runtime.Error with Addr), and
// the pool keeps working.
func TestPoolFaultIsRecovered(t *testing.T) {
	p := filepath.Join(t.TempDir(), "weights")
	size := 4 * os.Getpagesize()
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
	defer syscall.Munmap(b)
	if err := os.Truncate(p, 0); err != nil {
		t.Fatal(err)
	}
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true)) // the caller is worker 0
	pool := NewPool(3)
	defer pool.Close()
	var sums [3]byte
	rec := func() (r any) {
		defer func() { r = recover() }()
		pool.Run(func(ith, nth int) {
			if ith == 2 { // a pool goroutine, not the caller
				sums[ith] += b[os.Getpagesize()]
			}
		})
		return nil
	}()
	wp, ok := rec.(*WorkerPanic)
	if !ok {
		t.Fatalf("Run after a worker's fault panicked with %T %v, want *WorkerPanic", rec, rec)
	}
	if _, ok := wp.Cause().(interface{ Addr() uintptr }); !ok {
		t.Fatalf("the cause %T %v is not a memory fault", wp.Cause(), wp.Cause())
	}
	if wp.Unwrap() == nil {
		t.Fatal("WorkerPanic does not unwrap to the fault")
	}
	ran := make([]bool, 3)
	pool.Run(func(ith, nth int) { ran[ith] = true })
	if !ran[0] || !ran[1] || !ran[2] {
		t.Fatalf("pool after a fault: %v", ran)
	}
}
