package node

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestGate(t *testing.T) {
	ctx := context.Background()
	g := newGate(1, 2, 50*time.Millisecond)
	if err := g.acquire(ctx); err != nil {
		t.Fatal(err)
	}
	// two wait, in order; the third is refused at once
	order := make(chan int, 2)
	for i := range 2 {
		go func() {
			if err := g.acquire(ctx); err != nil {
				t.Error(err)
				return
			}
			order <- i
			g.release()
		}()
		for {
			if _, q := g.counts(); q == i+1 {
				break
			}
			time.Sleep(time.Millisecond)
		}
	}
	if err := g.acquire(ctx); !errors.Is(err, errQueueFull) {
		t.Fatalf("third waiter: %v, want queue full", err)
	}
	g.release()
	if a, b := <-order, <-order; a != 0 || b != 1 {
		t.Fatalf("waiters served %d then %d, want FIFO", a, b)
	}

	// a waiter gives up after maxWait
	if err := g.acquire(ctx); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := g.acquire(ctx); !errors.Is(err, errQueueTimeout) || time.Since(start) < 50*time.Millisecond {
		t.Fatalf("timed-out waiter: %v after %s", err, time.Since(start))
	}
	if _, q := g.counts(); q != 0 {
		t.Fatalf("a timed-out waiter stayed queued (%d)", q)
	}
	// a cancelled waiter leaves too
	cctx, cancel := context.WithCancel(ctx)
	go func() { time.Sleep(5 * time.Millisecond); cancel() }()
	if err := g.acquire(cctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled waiter: %v", err)
	}

	// close: new requests refused, idle once the running one ends
	idle := g.close()
	if err := g.acquire(ctx); !errors.Is(err, errDraining) {
		t.Fatalf("after close: %v", err)
	}
	select {
	case <-idle:
		t.Fatal("idle while a request runs")
	default:
	}
	g.release()
	select {
	case <-idle:
	case <-time.After(time.Second):
		t.Fatal("not idle after the last release")
	}
	if in, q := g.counts(); in != 0 || q != 0 {
		t.Fatalf("counts after drain: %d %d", in, q)
	}
}
