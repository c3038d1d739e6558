// Package cpu holds the CPU engine's building blocks: a persistent worker
// pool and float32 vector kernels.
package cpu

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"sync/atomic"
)

// spinIters is how many times an idle worker polls for new work before it
// parks. Forward passes dispatch jobs back to back (tens per token), so a
// short spin catches the next job without the cost of a wake-up.
const spinIters = 1 << 14

// parkedBit marks Pool.pending while Run is parked waiting for workers.
const parkedBit = 1 << 30

// Pool is a fixed set of worker goroutines that run one job at a time, all
// workers together: Run(fn) calls fn(ith, nth) once for every ith in
// [0, nth), on nth goroutines (the caller is worker 0), and returns when all
// are done. Between jobs workers spin briefly, then park.
//
// Run must be called from one goroutine at a time; a Pool is not safe for
// concurrent Run calls. Close stops the workers.
type Pool struct {
	n   int
	fn  func(ith, nth int)
	gen atomic.Uint64 // job generation; bumped by Run
	// pending counts the workers still running the current job; Run sets
	// parkedBit in the same word when it parks, so the worker whose
	// decrement leaves exactly parkedBit is the one that wakes it. One word
	// keeps a worker that is slow to finish job k from acting on job k+1's
	// state: after its decrement it touches nothing shared.
	pending atomic.Int32
	quit    atomic.Bool
	done    chan struct{} // cap 1; the last worker wakes a parked Run
	failed  atomic.Pointer[WorkerPanic]
	workers []worker
}

// WorkerPanic is what Run panics with when a job panicked on a worker
// goroutine: the value and the worker's stack.
type WorkerPanic struct {
	Value any
	Stack []byte
}

// Cause returns the value the job panicked with (a memory fault is a
// runtime.Error with an Addr method).
func (w *WorkerPanic) Cause() any { return w.Value }

// Error describes the panic without the stack (String has it), so that a
// caller recovering it can pass it on as an error.
func (w *WorkerPanic) Error() string { return fmt.Sprintf("panic in pool worker: %v", w.Value) }

// Unwrap returns the panic value when it is an error.
func (w *WorkerPanic) Unwrap() error {
	e, _ := w.Value.(error)
	return e
}

func (w *WorkerPanic) String() string {
	return fmt.Sprintf("panic in pool worker: %v\n%s", w.Value, w.Stack)
}

type worker struct {
	sleeping atomic.Bool
	wake     chan struct{} // cap 1
	_        [40]byte      // keep workers' flags on separate cache lines
}

// NewPool starts a pool of n workers (the caller counts as one, so n-1
// goroutines are started). n <= 0 means runtime.GOMAXPROCS(0): more
// workers than running Ps would spin against each other.
func NewPool(n int) *Pool {
	if n <= 0 {
		n = runtime.GOMAXPROCS(0)
	}
	p := &Pool{n: n, workers: make([]worker, n), done: make(chan struct{}, 1)}
	for i := 1; i < n; i++ {
		p.workers[i].wake = make(chan struct{}, 1)
		go p.loop(i)
	}
	return p
}

// Threads is the number of workers, the nth every job sees.
func (p *Pool) Threads() int { return p.n }

// Run calls fn(ith, nth) on every worker and waits for all of them. A
// panic in fn is re-raised in the caller after every worker has finished
// (as a *WorkerPanic when it happened on another goroutine), so the pool
// stays usable and the caller can recover. Memory faults in the workers
// panic too (their goroutines set debug.SetPanicOnFault); the caller's
// goroutine should set it as well (the device worker does).
func (p *Pool) Run(fn func(ith, nth int)) {
	if p.n == 1 {
		fn(0, 1)
		return
	}
	p.fn = fn
	p.pending.Store(int32(p.n - 1))
	p.gen.Add(1)
	for i := 1; i < p.n; i++ {
		w := &p.workers[i]
		if w.sleeping.Swap(false) {
			w.wake <- struct{}{}
		}
	}
	defer p.wait()
	fn(0, p.n)
}

// wait blocks until every worker has finished the current job, then
// re-raises a worker's panic.
func (p *Pool) wait() {
	for spins := 0; ; spins++ {
		n := p.pending.Load()
		if n == 0 {
			break
		}
		if spins < spinIters {
			if spins&63 == 63 {
				runtime.Gosched()
			}
			continue
		}
		// A worker is slow (descheduled): park instead of burning a core.
		// The CAS fails when a worker finished meanwhile; look again.
		if p.pending.CompareAndSwap(n, n|parkedBit) {
			<-p.done // the last worker saw parkedBit and sent a token
			break
		}
	}
	p.fn = nil
	if wp := p.failed.Swap(nil); wp != nil {
		panic(wp)
	}
}

// Close stops the workers. The pool must not be used afterwards.
func (p *Pool) Close() {
	if p.quit.Swap(true) {
		return
	}
	p.gen.Add(1)
	for i := 1; i < p.n; i++ {
		w := &p.workers[i]
		if w.sleeping.Swap(false) {
			w.wake <- struct{}{}
		}
	}
}

func (p *Pool) loop(ith int) {
	// Jobs read mapped model weights: a fault there (the file was
	// truncated on disk) must be a panic that runJob records and Run
	// re-raises in the caller, not a crash of the process.
	debug.SetPanicOnFault(true)
	w := &p.workers[ith]
	var seen uint64 // the generation at NewPool; Run may come before we start
	for {
		// Wait for a new generation: spin, then park.
		for spins := 0; p.gen.Load() == seen; spins++ {
			if spins < spinIters {
				if spins&63 == 63 {
					runtime.Gosched()
				}
				continue
			}
			w.sleeping.Store(true)
			if p.gen.Load() != seen {
				if !w.sleeping.Swap(false) {
					<-w.wake // Run saw us asleep and sent a token: take it
				}
				break
			}
			<-w.wake
			spins = 0
		}
		seen = p.gen.Load()
		if p.quit.Load() {
			return
		}
		p.runJob(ith)
	}
}

// runJob runs worker ith's part of the current job, recording a panic
// instead of crashing the process, and signals completion.
func (p *Pool) runJob(ith int) {
	defer func() {
		if r := recover(); r != nil {
			p.failed.CompareAndSwap(nil, &WorkerPanic{Value: r, Stack: debug.Stack()})
		}
		if p.pending.Add(-1) == parkedBit {
			p.done <- struct{}{}
		}
	}()
	p.fn(ith, p.n)
}

// Split returns the half-open range [lo, hi) of n items that worker ith of
// nth takes in an even static split.
func Split(n, ith, nth int) (lo, hi int) {
	return n * ith / nth, n * (ith + 1) / nth
}
