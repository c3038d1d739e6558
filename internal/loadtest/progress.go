package loadtest

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

// progress reports a run as it goes: a bar redrawn in place on a
// terminal, plain lines anywhere else. Its methods are safe to use from
// concurrent goroutines; a nil writer reports nothing.
type progress struct {
	mu  sync.Mutex
	w   io.Writer
	tty bool
}

func newProgress(w io.Writer) *progress {
	if w == nil {
		w = io.Discard
	}
	return &progress{w: w, tty: isTerminal(w)}
}

// isTerminal reports whether w is a character device, such as a
// terminal, without a dependency on a terminal library.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// line writes one line.
func (p *progress) line(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, format+"\n", args...)
}

// bar follows one level.
type bar struct {
	p              *progress
	name           string // the level's
	n              int
	finished, errs int
	quarter        int // plain lines: the last quarter reported
	start          time.Time
	stop           chan struct{}
	stopped        sync.WaitGroup
}

// start begins reporting a level of n requests, called name.
func (p *progress) start(name string, n int) *bar {
	b := &bar{p: p, name: name, n: n, start: time.Now(), stop: make(chan struct{})}
	if !p.tty {
		p.line("%s: %d requests", name, n)
		return b
	}
	b.draw()
	b.stopped.Go(func() {
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-b.stop:
				return
			case <-t.C:
				b.draw()
			}
		}
	})
	return b
}

// done records one finished request.
func (b *bar) done(failed bool) {
	b.p.mu.Lock()
	b.finished++
	if failed {
		b.errs++
	}
	q := 4 * b.finished / b.n
	plain := !b.p.tty && q > b.quarter && b.finished < b.n
	if plain {
		b.quarter = q
		fmt.Fprintf(b.p.w, "%s: %d/%d done, %d errors, %.1fs\n", b.name, b.finished, b.n, b.errs, time.Since(b.start).Seconds())
	}
	b.p.mu.Unlock()
	if b.p.tty {
		b.draw()
	}
}

// finish ends the level's report.
func (b *bar) finish() {
	close(b.stop)
	b.stopped.Wait()
	b.p.mu.Lock()
	defer b.p.mu.Unlock()
	if b.p.tty {
		b.drawLocked()
		fmt.Fprintln(b.p.w)
		return
	}
	fmt.Fprintf(b.p.w, "%s: %d/%d done, %d errors, %.1fs\n", b.name, b.finished, b.n, b.errs, time.Since(b.start).Seconds())
}

func (b *bar) draw() {
	b.p.mu.Lock()
	defer b.p.mu.Unlock()
	b.drawLocked()
}

func (b *bar) drawLocked() {
	const width = 30
	fill := width * b.finished / b.n
	fmt.Fprintf(b.p.w, "\r%-16s [%s%s] %d/%d  errors %d  %.1fs ",
		b.name, strings.Repeat("#", fill), strings.Repeat(".", width-fill), b.finished, b.n, b.errs, time.Since(b.start).Seconds())
}
