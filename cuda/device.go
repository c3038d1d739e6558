package cuda

import "fmt"

// kernelDevice is what the kernel checks need from a device: the GPU, or
// (in tests) the kernels' source compiled for the host and run on an
// emulator of CUDA threads.
type kernelDevice interface {
	upload(b []byte) (devPtr, error)
	download(dst []byte, p devPtr) error
	launch(name string, gx, gy, threads int, args ...arg) error
	release(p devPtr)
}

// runDevice is what a Runner computes on. All calls come from the device's
// worker; copies and launches are ordered on one stream.
type runDevice interface {
	kernelDevice
	// exec runs fn on the device's worker.
	exec(fn func() error) error
	// freeMemory is the device's free memory in bytes.
	freeMemory() (int64, error)
	alloc(n int64) (devPtr, error)
	free(p devPtr) error
	write(p devPtr, b []byte) error
	zero(p devPtr, n int64) error
	// copy copies n bytes of device memory from src to dst.
	copy(dst, src devPtr, n int64) error
	// hostBuffer is host memory for staging copies (pinned on a GPU).
	hostBuffer(n int) ([]byte, error)
	freeHost(b []byte) error
	// sync waits for every queued copy and launch.
	sync() error
	// capture records the launches fn makes into a CUDA graph and returns
	// it instantiated; only called when graphs() is nil.
	capture(fn func() error) (uintptr, error)
	launchGraph(g uintptr) error
	destroyGraph(g uintptr)
	// graphs says why graphs are unavailable (nil when they are).
	graphs() error
	// gemm is gemmRowMajor; only called when hasGEMM.
	gemm(m, n, k int, a devPtr, lda int, b devPtr, ldb int, c devPtr, ldc int, beta float32, tf32 bool) error
	hasGEMM() bool
}

// launch1D covers n items with blocks of 256 threads.
func launch1D(kd kernelDevice, name string, n int64, args ...arg) error {
	const threads = 256
	return kd.launch(name, int((n+threads-1)/threads), 1, threads, args...)
}

// backendDevice is a GPU's backend as a runDevice.
type backendDevice struct{ b *Backend }

var _ runDevice = backendDevice{}

func (d backendDevice) exec(fn func() error) error { return d.b.exec(fn) }

func (d backendDevice) freeMemory() (int64, error) {
	f, _, err := d.b.d.memInfo()
	return int64(f), err
}

func (d backendDevice) alloc(n int64) (devPtr, error) { return d.b.d.alloc(uint64(n)) }

func (d backendDevice) free(p devPtr) error { return d.b.d.free(p) }

func (d backendDevice) write(p devPtr, v []byte) error { return d.b.d.htodAsync(p, v, d.b.stream) }

func (d backendDevice) copy(dst, src devPtr, n int64) error {
	return d.b.d.dtodAsync(dst, src, uint64(n), d.b.stream)
}

func (d backendDevice) zero(p devPtr, n int64) error {
	if n%4 != 0 {
		return fmt.Errorf("BUG: zeroing %d bytes, not whole words", n)
	}
	return d.b.d.zeroAsync(p, uint64(n/4), d.b.stream)
}

func (d backendDevice) hostBuffer(n int) ([]byte, error) { return d.b.d.hostAlloc(n) }

func (d backendDevice) freeHost(v []byte) error { return d.b.d.freeHost(v) }

func (d backendDevice) sync() error { return d.b.d.sync(d.b.stream) }

func (d backendDevice) hasGEMM() bool { return d.b.blh != nil }

func (d backendDevice) gemm(m, n, k int, a devPtr, lda int, b devPtr, ldb int, c devPtr, ldc int, beta float32, tf32 bool) error {
	return d.b.blh.gemmRowMajor(d.b.args, m, n, k, a, lda, b, ldb, c, ldc, beta, tf32)
}

func (d backendDevice) upload(v []byte) (devPtr, error) {
	p, err := d.b.d.alloc(uint64(max(len(v), 4)))
	if err != nil {
		return 0, err
	}
	if err := d.b.d.htod(p, v); err != nil {
		_ = d.b.d.free(p)
		return 0, err
	}
	return p, nil
}

func (d backendDevice) download(dst []byte, p devPtr) error {
	if err := d.b.d.dtohAsync(dst, p, d.b.stream); err != nil {
		return err
	}
	return d.b.d.sync(d.b.stream)
}

func (d backendDevice) launch(name string, gx, gy, threads int, args ...arg) error {
	return d.b.launch(name, gx, gy, threads, args...)
}

func (d backendDevice) release(p devPtr) { _ = d.b.d.free(p) }

func (d backendDevice) graphs() error { return d.b.d.graphErr }

func (d backendDevice) capture(fn func() error) (uintptr, error) {
	dr := d.b.d
	if err := dr.check("cuStreamBeginCapture_v2", dr.cuStreamBeginCapture(d.b.stream, 1 /* thread-local */)); err != nil {
		return 0, err
	}
	ferr := fn()
	var g uintptr
	eerr := dr.check("cuStreamEndCapture", dr.cuStreamEndCapture(d.b.stream, &g))
	if g != 0 {
		defer dr.cuGraphDestroy(g)
	}
	if ferr != nil {
		return 0, ferr
	}
	if eerr != nil {
		return 0, eerr
	}
	var e uintptr
	if err := dr.check("cuGraphInstantiateWithFlags", dr.cuGraphInstantiate(&e, g, 0)); err != nil {
		return 0, err
	}
	return e, nil
}

func (d backendDevice) launchGraph(g uintptr) error {
	return d.b.d.check("cuGraphLaunch", d.b.d.cuGraphLaunch(g, d.b.stream))
}

func (d backendDevice) destroyGraph(g uintptr) { d.b.d.cuGraphExecDestroy(g) }
