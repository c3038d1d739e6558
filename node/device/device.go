// Package device runs jobs on the goroutine that owns a device.
//
// Each device (the CPU, or one CUDA GPU) has exactly one Worker. Every load,
// forward pass, KV reset, memory query and unload for that device is a job
// sent to it, so device state is touched by one goroutine only. A CUDA
// worker locks its goroutine to an OS thread and makes the device's context
// current once (through Setup) before taking jobs.
//
// A job that reports a fatal device error (one wrapping ErrPoisoned) poisons
// the worker: later jobs fail at once with that error instead of touching a
// device in an unknown state.
package device

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"
	"sync"
)

// ErrPoisoned marks an error after which the device must not be used again.
var ErrPoisoned = errors.New("device poisoned")

// ErrFault marks a job that faulted on memory it reads, such as the
// mapped pages of a model file truncated on disk. The device is fine; what
// the job read is not, so its owner (one model) must be failed.
var ErrFault = errors.New("memory fault")

// ErrClosed is returned for jobs sent after Close.
var ErrClosed = errors.New("device worker closed")

// Worker owns one device. Its methods are safe for concurrent use.
type Worker struct {
	name    string
	jobs    chan job
	closing chan struct{}
	done    chan struct{}
	closeO  sync.Once

	mu     sync.Mutex
	poison error
}

type job struct {
	fn    func() error
	reply chan error
}

// Options configure a Worker.
type Options struct {
	// Name identifies the device in errors ("cpu", "cuda:0").
	Name string
	// LockThread pins the worker goroutine to its OS thread (CUDA).
	LockThread bool
	// Setup runs once on the worker goroutine before any job; an error
	// poisons the worker.
	Setup func() error
	// Teardown runs once on the worker goroutine after Close.
	Teardown func()
}

// Start starts a worker goroutine.
func Start(o Options) *Worker {
	w := &Worker{name: o.Name, jobs: make(chan job), closing: make(chan struct{}), done: make(chan struct{})}
	ready := make(chan struct{})
	go w.loop(o, ready)
	<-ready
	return w
}

func (w *Worker) loop(o Options, ready chan struct{}) {
	defer close(w.done)
	// A fault on mapped memory (a model file truncated under its mapping)
	// becomes a panic of this goroutine that run recovers, not a crash of
	// the process.
	debug.SetPanicOnFault(true)
	if o.LockThread {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
	}
	if o.Setup != nil {
		if err := o.Setup(); err != nil {
			w.setPoison(fmt.Errorf("%s: setup: %w: %w", w.name, ErrPoisoned, err))
		}
	}
	close(ready)
	if o.Teardown != nil {
		defer o.Teardown()
	}
	for {
		select {
		case <-w.closing:
			return
		case j := <-w.jobs:
			if err := w.Err(); err != nil {
				j.reply <- err
				continue
			}
			err := w.run(j.fn)
			if errors.Is(err, ErrPoisoned) {
				w.setPoison(err)
			}
			j.reply <- err
		}
	}
}

// run calls fn, turning a panic into a poisoning error so that one bad job
// never takes the process down. A memory fault is an ErrFault error for
// that job only: the device is not poisoned.
func (w *Worker) run(fn func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			if ferr := faultError(r); ferr != nil {
				err = fmt.Errorf("%s: %w", w.name, ferr)
				return
			}
			err = fmt.Errorf("%s: %w: job panicked: %v", w.name, ErrPoisoned, r)
		}
	}()
	return fn()
}

// CatchFault calls fn and turns a memory fault panic in it (on this
// goroutine, or re-raised from a worker pool) into an ErrFault error.
// Other panics go on. The goroutine must have debug.SetPanicOnFault set
// (the device worker's has).
func CatchFault(fn func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			ferr := faultError(r)
			if ferr == nil {
				panic(r)
			}
			err = ferr
		}
	}()
	return fn()
}

// AsFault returns an ErrFault error when err's chain holds a memory
// fault (a code that recovered the fault panic itself and returned it as
// an error), else nil.
func AsFault(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, ErrFault) {
		return err
	}
	var f interface {
		error
		Addr() uintptr
	}
	if !errors.As(err, &f) {
		return nil
	}
	return fmt.Errorf("%w at address %#x: %v", ErrFault, f.Addr(), err)
}

// faultError returns an ErrFault error when a recovered panic value is a
// memory fault (a runtime.Error with the faulting address), also when a
// worker pool wraps it (a value with a Cause method), else nil.
func faultError(r any) error {
	v := r
	if c, ok := r.(interface{ Cause() any }); ok {
		v = c.Cause()
	}
	f, ok := v.(interface {
		error
		Addr() uintptr
	})
	if !ok {
		return nil
	}
	return fmt.Errorf("%w at address %#x: %v", ErrFault, f.Addr(), f.Error())
}

func (w *Worker) setPoison(err error) {
	w.mu.Lock()
	if w.poison == nil {
		w.poison = err
	}
	w.mu.Unlock()
}

// Err returns the poisoning error, or nil while the device is healthy.
func (w *Worker) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.poison
}

// Name returns the device's name.
func (w *Worker) Name() string { return w.name }

// Do runs fn on the worker and returns its error. If ctx ends before the
// job starts, Do returns ctx.Err() and fn never runs; once started, fn runs
// to completion (jobs are short: one forward step, one load).
//
// Do allocates nothing (a scheduler calls it every step): reply channels
// are reused, and fn should be a function value made once.
func (w *Worker) Do(ctx context.Context, fn func() error) error {
	reply := replies.Get().(chan error)
	defer replies.Put(reply) // empty again: the worker replies once to a job it took
	select {
	case w.jobs <- job{fn: fn, reply: reply}:
	case <-ctx.Done():
		return ctx.Err()
	case <-w.closing:
		return ErrClosed
	}
	return <-reply
}

// replies holds Do's reply channels (capacity 1) between jobs.
var replies = sync.Pool{New: func() any { return make(chan error, 1) }}

// Close stops taking jobs and waits for the worker to finish.
func (w *Worker) Close() {
	w.closeO.Do(func() { close(w.closing) })
	<-w.done
}
