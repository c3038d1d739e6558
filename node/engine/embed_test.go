package engine

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeEmbedRunner records overlapping calls: ForwardBatch and Embed each
// hold the runner for a moment.
type fakeEmbedRunner struct {
	busy, overlaps atomic.Int32
	embeds         atomic.Int32
	dim            int
	panics         bool
}

func (f *fakeEmbedRunner) enter() {
	if f.busy.Add(1) > 1 {
		f.overlaps.Add(1)
	}
	time.Sleep(200 * time.Microsecond)
	f.busy.Add(-1)
}

func (f *fakeEmbedRunner) ForwardBatch(items []Item) error {
	f.enter()
	return nil
}
func (f *fakeEmbedRunner) CopyKV(dst, src int32, n int) error { return nil }
func (f *fakeEmbedRunner) MemBytes() int64                    { return 0 }
func (f *fakeEmbedRunner) Close() error                       { return nil }

func (f *fakeEmbedRunner) Embed(tokens []int32) ([]float32, error) {
	if f.panics {
		panic("runner bug")
	}
	f.enter()
	f.embeds.Add(1)
	v := make([]float32, f.dim)
	v[int(tokens[0])%f.dim] = 1
	return v, nil
}

// plainRunner computes no embeddings.
type plainRunner struct{ fakeEmbedRunner }

func (*plainRunner) Embed() {} // not EmbedRunner's method

// serialExecutor runs jobs one at a time on one goroutine, as a device
// worker does.
func serialExecutor(t *testing.T) Executor {
	jobs := make(chan func(), 16)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for j := range jobs {
			j()
		}
	}()
	t.Cleanup(func() { close(jobs); <-done })
	return func(ctx context.Context, fn func() error) error {
		reply := make(chan error, 1)
		select {
		case jobs <- func() { reply <- fn() }:
		case <-ctx.Done():
			return ctx.Err()
		}
		return <-reply
	}
}

func newEmbedModel(r Runner, dim int) *Model {
	m := NewModel(r, 100, 16, 4, 16, 1)
	m.w.H.NEmbd = dim
	return m
}

// TestEmbedNeverOverlapsForward: embeddings and forward passes of one
// model go through its executor, so the runner never sees two at once.
func TestEmbedNeverOverlapsForward(t *testing.T) {
	r := &fakeEmbedRunner{dim: 8}
	m := newEmbedModel(r, 8)
	exec := serialExecutor(t)
	m.SetExecutor(exec)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for i := range 20 {
				v, err := m.Embed(context.Background(), []int32{int32(g + i), 1})
				if err != nil || len(v) != 8 || v[(g+i)%8] != 1 {
					t.Errorf("Embed: %v %v", v, err)
					return
				}
			}
		}()
		go func() {
			defer wg.Done()
			for range 20 {
				_ = exec(context.Background(), func() error { return r.ForwardBatch(nil) })
			}
		}()
	}
	wg.Wait()
	if n := r.overlaps.Load(); n != 0 {
		t.Fatalf("%d calls overlapped on the runner", n)
	}
	if n := r.embeds.Load(); n != 80 {
		t.Fatalf("%d embeddings ran, want 80", n)
	}
}

func TestEmbedErrors(t *testing.T) {
	if _, err := newEmbedModel(&plainRunner{}, 8).Embed(context.Background(), []int32{1}); !errors.Is(err, ErrNoEmbeddings) {
		t.Errorf("runner without Embed: %v, want ErrNoEmbeddings", err)
	}
	r := &fakeEmbedRunner{dim: 8}
	m := newEmbedModel(r, 8)
	for _, c := range []struct {
		tokens []int32
		want   string
	}{{nil, "empty"}, {make([]int32, 17), "context holds 16"}, {[]int32{100}, "outside the vocabulary"}, {[]int32{-1}, "outside"}} {
		if _, err := m.Embed(context.Background(), c.tokens); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Embed(%d tokens): %v, want %q", len(c.tokens), err, c.want)
		}
	}
	if r.embeds.Load() != 0 {
		t.Errorf("bad input reached the runner")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	m.SetExecutor(serialExecutor(t))
	if _, err := m.Embed(ctx, []int32{1}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
	// a wrong-sized answer is an error, a panic is an error
	m2 := newEmbedModel(&fakeEmbedRunner{dim: 4}, 8)
	if _, err := m2.Embed(context.Background(), []int32{1}); err == nil || !strings.Contains(err.Error(), "returned 4 values") {
		t.Errorf("wrong size: %v", err)
	}
	m3 := newEmbedModel(&fakeEmbedRunner{dim: 8, panics: true}, 8)
	if _, err := m3.Embed(context.Background(), []int32{1}); !errors.Is(err, ErrForwardPanic) {
		t.Errorf("panic: %v", err)
	}
	if !m.CanEmbed() || newEmbedModel(&plainRunner{}, 8).CanEmbed() {
		t.Errorf("CanEmbed wrong")
	}
}
