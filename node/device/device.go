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
	"sync"
)

// ErrPoisoned marks an error after which the device must not be used again.
var ErrPoisoned = errors.New("device poisoned")

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
// never takes the process down.
func (w *Worker) run(fn func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%s: %w: job panicked: %v", w.name, ErrPoisoned, r)
		}
	}()
	return fn()
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
func (w *Worker) Do(ctx context.Context, fn func() error) error {
	j := job{fn: fn, reply: make(chan error, 1)}
	select {
	case w.jobs <- j:
	case <-ctx.Done():
		return ctx.Err()
	case <-w.closing:
		return ErrClosed
	}
	return <-j.reply
}

// Close stops taking jobs and waits for the worker to finish.
func (w *Worker) Close() {
	w.closeO.Do(func() { close(w.closing) })
	<-w.done
}
