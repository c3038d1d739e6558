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

func TestSlotPool(t *testing.T) {
	p := newSlotPool(2)
	a := []int32{1, 2, 3, 4}
	s, cached, ok := p.take(a)
	if !ok || cached != 0 {
		t.Fatalf("first take: %d %d %v", s, cached, ok)
	}
	p.give(s, a)
	// the same prompt: all but the last token are cached
	s2, cached, _ := p.take(a)
	if s2 != s || cached != 3 {
		t.Fatalf("same prompt: slot %d cached %d", s2, cached)
	}
	p.give(s2, []int32{1, 2, 3, 4, 5, 6})
	// a different prompt takes the other (least recently used) slot
	s3, cached, _ := p.take([]int32{9, 9})
	if s3 == s || cached != 0 {
		t.Fatalf("unrelated prompt: slot %d cached %d", s3, cached)
	}
	// a continuation of the first conversation finds its slot while s3 is busy
	s4, cached, _ := p.take([]int32{1, 2, 3, 4, 5, 6, 7, 8})
	if s4 != s || cached != 6 {
		t.Fatalf("continuation: slot %d cached %d", s4, cached)
	}
	if _, _, ok := p.take(a); ok {
		t.Fatal("took a slot while every slot was busy")
	}
}
