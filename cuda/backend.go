package cuda

import (
	"context"
	"fmt"

	"helexa/node/device"
	"helexa/node/engine"
)

// Options configure a Backend.
type Options struct {
	// Index is the CUDA device ordinal.
	Index int
	// Reserve is device memory kept free beyond a runner's plan;
	// 0 means DefaultReserve.
	Reserve int64
	// NoBLAS computes prefill with the matrix-vector kernels even when
	// cuBLAS is present.
	NoBLAS bool
	// Graphs replays each slot's decode step as a CUDA graph (captured at
	// its first step) instead of launching its kernels one by one.
	Graphs bool
}

// Backend is one GPU as an engine.Backend. It owns the GPU's device
// worker: a goroutine locked to its OS thread, on which the primary
// context is current and every allocation, copy and launch happens. Its
// methods are safe for concurrent use; they run on the worker (directly
// when already called from it).
type Backend struct {
	o      Options
	d      *driver
	bl     *blas // nil without cuBLAS
	worker *device.Worker
	tid    int // OS thread of the worker (threadID)

	// Owned by the worker.
	dev    int32
	ctx    cuCtx
	stream cuStream
	blh    *blasHandle
	mods   []cuModule
	fns    map[string]cuFunc
	args   *argArena
}

var _ engine.Backend = (*Backend)(nil)

// New opens the driver and starts the worker of device o.Index: it makes
// the primary context current, creates a stream and a cuBLAS handle and
// JIT-loads the kernels. Without a usable driver the error wraps
// ErrUnavailable; a failing device's wraps device.ErrPoisoned.
func New(o Options) (*Backend, error) {
	d, err := loadDriver()
	if err != nil {
		return nil, err
	}
	n, err := d.deviceCount()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	if o.Index < 0 || o.Index >= n {
		return nil, fmt.Errorf("cuda device %d does not exist (%d devices)", o.Index, n)
	}
	if o.Reserve == 0 {
		o.Reserve = DefaultReserve
	}
	b := &Backend{o: o, d: d}
	if !o.NoBLAS {
		if bl, err := loadBLAS(); err == nil {
			b.bl = bl
		}
	}
	b.worker = device.Start(device.Options{
		Name:       b.Name(),
		LockThread: true,
		Setup:      b.setup,
		Teardown:   b.teardown,
	})
	if err := b.worker.Err(); err != nil {
		b.worker.Close()
		return nil, err
	}
	return b, nil
}

// Name is "cuda:N".
func (b *Backend) Name() string { return fmt.Sprintf("cuda:%d", b.o.Index) }

// Worker is the device's worker; jobs sent to it may call the backend's
// and its runners' methods directly.
func (b *Backend) Worker() *device.Worker { return b.worker }

// HasBLAS reports whether prefill uses cuBLAS.
func (b *Backend) HasBLAS() bool { return b.blh != nil }

// Close stops the worker, releasing the context and everything on it.
// Runners must be closed first.
func (b *Backend) Close() { b.worker.Close() }

// setup runs on the worker goroutine (already locked to its thread).
func (b *Backend) setup() (err error) {
	b.tid = threadID()
	defer func() {
		if err != nil {
			b.teardown()
		}
	}()
	d := b.d
	if b.dev, err = d.device(b.o.Index); err != nil {
		return err
	}
	if err = d.check("cuDevicePrimaryCtxRetain", d.cuDevicePrimaryCtxRetain(&b.ctx, b.dev)); err != nil {
		return err
	}
	if err = d.check("cuCtxSetCurrent", d.cuCtxSetCurrent(b.ctx)); err != nil {
		return err
	}
	if b.stream, err = d.newStream(); err != nil {
		return err
	}
	if b.args, err = newArgArena(); err != nil {
		return err
	}
	mods, err := ptxModules()
	if err != nil {
		return err
	}
	b.fns = map[string]cuFunc{}
	for name, ptx := range mods {
		m, err := d.loadModule(ptx)
		if err != nil {
			return fmt.Errorf("loading kernels %s: %w", name, err)
		}
		b.mods = append(b.mods, m)
		for _, e := range ptxEntries(ptx) {
			f, err := d.function(m, e)
			if err != nil {
				return err
			}
			b.fns[e] = f
		}
	}
	for _, k := range kernelNames() {
		if b.fns[k] == 0 {
			return fmt.Errorf("BUG: kernel %s missing from the embedded PTX", k)
		}
	}
	if b.bl != nil {
		if b.blh, err = b.bl.newHandle(b.stream); err != nil {
			return err
		}
		if err = b.bl.check("cublasSetMathMode", b.bl.cublasSetMathMode(b.blh.h, cublasDefaultMath)); err != nil {
			return err
		}
	}
	return nil
}

// teardown releases what setup made; it runs on the worker.
func (b *Backend) teardown() {
	d := b.d
	b.blh.destroy()
	b.blh = nil
	for _, m := range b.mods {
		d.cuModuleUnload(m)
	}
	b.mods = nil
	if b.stream != 0 {
		d.cuStreamDestroy(b.stream)
		b.stream = 0
	}
	b.args.close()
	b.args = nil
	if b.ctx != 0 {
		d.cuCtxSetCurrent(0)
		d.cuDevicePrimaryCtxRelease(b.dev)
		b.ctx = 0
	}
}

// exec runs fn on the worker: inline when the caller already is the worker
// (its goroutine alone runs on the locked thread), else as a job.
func (b *Backend) exec(fn func() error) error {
	if id := threadID(); id > 0 && id == b.tid {
		return fn()
	}
	return b.worker.Do(context.Background(), fn)
}

// MemInfo returns the device's free and total memory.
func (b *Backend) MemInfo() (free, total int64, err error) {
	err = b.exec(func() error {
		f, t, err := b.d.memInfo()
		free, total = int64(f), int64(t)
		return err
	})
	return free, total, err
}

// launch starts kernel name on the stream with a 1-D block of threads and
// a grid of gx × gy blocks.
func (b *Backend) launch(name string, gx, gy, threads int, args ...arg) error {
	f := b.fns[name]
	if f == 0 {
		return fmt.Errorf("BUG: no kernel %s", name)
	}
	if gx <= 0 || gy <= 0 {
		return nil // nothing to do
	}
	p, err := b.args.fill(args)
	if err != nil {
		return err
	}
	if err := b.d.check("cuLaunchKernel", b.d.cuLaunchKernel(f, uint32(gx), uint32(gy), 1, uint32(threads), 1, 1, 0, b.stream, p, nil)); err != nil {
		return fmt.Errorf("launching %s: %w", name, err)
	}
	return nil
}
