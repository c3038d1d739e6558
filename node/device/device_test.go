package device

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestJobsRunOnOneGoroutineInOrder(t *testing.T) {
	w := Start(Options{Name: "cpu"})
	defer w.Close()
	var running atomic.Int32
	var order []int
	var wg sync.WaitGroup
	var mu sync.Mutex
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := w.Do(context.Background(), func() error {
				if running.Add(1) != 1 {
					t.Error("two jobs ran at once")
				}
				mu.Lock()
				order = append(order, i)
				mu.Unlock()
				running.Add(-1)
				return nil
			})
			if err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if len(order) != 50 {
		t.Fatalf("ran %d jobs", len(order))
	}
}

func TestErrorsPassThroughAndPoison(t *testing.T) {
	w := Start(Options{Name: "cuda:0"})
	defer w.Close()
	plain := errors.New("bad request")
	if err := w.Do(context.Background(), func() error { return plain }); !errors.Is(err, plain) {
		t.Fatalf("got %v", err)
	}
	if w.Err() != nil {
		t.Fatal("plain error poisoned the worker")
	}
	fatal := fmt.Errorf("cuLaunchKernel: CUDA_ERROR_ILLEGAL_ADDRESS: %w", ErrPoisoned)
	if err := w.Do(context.Background(), func() error { return fatal }); !errors.Is(err, ErrPoisoned) {
		t.Fatalf("got %v", err)
	}
	ran := false
	err := w.Do(context.Background(), func() error { ran = true; return nil })
	if !errors.Is(err, ErrPoisoned) || ran {
		t.Fatalf("job after poison: err=%v ran=%v", err, ran)
	}
	if !errors.Is(w.Err(), ErrPoisoned) {
		t.Fatalf("Err() = %v", w.Err())
	}
}

func TestPanicPoisonsInsteadOfCrashing(t *testing.T) {
	w := Start(Options{Name: "cpu"})
	defer w.Close()
	err := w.Do(context.Background(), func() error { panic("index out of range") })
	if !errors.Is(err, ErrPoisoned) {
		t.Fatalf("got %v", err)
	}
}

func TestSetupFailurePoisons(t *testing.T) {
	w := Start(Options{Name: "cuda:1", LockThread: true, Setup: func() error { return errors.New("cuCtxSetCurrent: CUDA_ERROR_INVALID_CONTEXT") }})
	defer w.Close()
	if err := w.Do(context.Background(), func() error { return nil }); !errors.Is(err, ErrPoisoned) {
		t.Fatalf("got %v", err)
	}
}

func TestContextCancelledBeforeStart(t *testing.T) {
	w := Start(Options{Name: "cpu"})
	defer w.Close()
	release := make(chan struct{})
	go func() { _ = w.Do(context.Background(), func() error { <-release; return nil }) }()
	time.Sleep(10 * time.Millisecond) // let the blocking job start
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	ran := false
	err := w.Do(ctx, func() error { ran = true; return nil })
	close(release)
	if !errors.Is(err, context.DeadlineExceeded) || ran {
		t.Fatalf("err=%v ran=%v", err, ran)
	}
}

func TestCloseRefusesNewJobsAndRunsTeardown(t *testing.T) {
	var torn atomic.Bool
	w := Start(Options{Name: "cpu", Teardown: func() { torn.Store(true) }})
	w.Close()
	w.Close() // idempotent
	if !torn.Load() {
		t.Error("teardown did not run")
	}
	if err := w.Do(context.Background(), func() error { return nil }); !errors.Is(err, ErrClosed) {
		t.Fatalf("got %v", err)
	}
}

// A scheduler calls Do every step: it allocates nothing.
func TestDoDoesNotAllocate(t *testing.T) {
	w := Start(Options{Name: "cpu"})
	defer w.Close()
	n := 0
	fn := func() error { n++; return nil }
	ctx := context.Background()
	if allocs := testing.AllocsPerRun(100, func() {
		if err := w.Do(ctx, fn); err != nil {
			t.Fatal(err)
		}
	}); allocs != 0 {
		t.Errorf("Do allocates %v times per call, want 0", allocs)
	}
	if n != 101 { // AllocsPerRun runs it once more to warm up
		t.Errorf("fn ran %d times, want 101", n)
	}
}
