package cuda

import (
	"fmt"
	"unsafe"
)

// Device pointers, contexts, modules, functions, streams and events are
// opaque handles of the driver API.
type (
	devPtr   = uint64
	cuCtx    = uintptr
	cuModule = uintptr
	cuFunc   = uintptr
	cuStream = uintptr
	cuEvent  = uintptr
)

// Device attributes (CUdevice_attribute).
const (
	attrComputeCapabilityMajor = 75
	attrComputeCapabilityMinor = 76
	attrMultiprocessorCount    = 16
	attrMemoryClockRate        = 36 // kHz
	attrGlobalMemoryBusWidth   = 37 // bits
)

// driver is the bound CUDA driver API. Its methods turn a failing result
// into an *Error naming the call.
type driver struct {
	cuInit                    func(flags uint32) int32
	cuDriverGetVersion        func(v *int32) int32
	cuDeviceGetCount          func(n *int32) int32
	cuDeviceGet               func(d *int32, ordinal int32) int32
	cuDeviceGetName           func(name *byte, n int32, d int32) int32
	cuDeviceTotalMem          func(b *uint64, d int32) int32
	cuDeviceGetAttribute      func(v *int32, attr int32, d int32) int32
	cuDevicePrimaryCtxRetain  func(c *cuCtx, d int32) int32
	cuDevicePrimaryCtxRelease func(d int32) int32
	cuCtxSetCurrent           func(c cuCtx) int32
	cuCtxSynchronize          func() int32
	cuMemGetInfo              func(free, total *uint64) int32
	cuMemAlloc                func(p *devPtr, n uint64) int32
	cuMemFree                 func(p devPtr) int32
	cuMemHostAlloc            func(p **byte, n uint64, flags uint32) int32
	cuMemFreeHost             func(p *byte) int32
	cuMemcpyHtoD              func(dst devPtr, src unsafe.Pointer, n uint64) int32
	cuMemcpyDtoH              func(dst unsafe.Pointer, src devPtr, n uint64) int32
	cuMemcpyHtoDAsync         func(dst devPtr, src unsafe.Pointer, n uint64, s cuStream) int32
	cuMemcpyDtoHAsync         func(dst unsafe.Pointer, src devPtr, n uint64, s cuStream) int32
	cuMemcpyDtoDAsync         func(dst, src devPtr, n uint64, s cuStream) int32
	cuMemsetD32Async          func(dst devPtr, v uint32, n uint64, s cuStream) int32
	cuModuleLoadData          func(m *cuModule, image *byte) int32
	cuModuleUnload            func(m cuModule) int32
	cuModuleGetFunction       func(f *cuFunc, m cuModule, name string) int32
	cuLaunchKernel            func(f cuFunc, gx, gy, gz, bx, by, bz, shared uint32, s cuStream, params unsafe.Pointer, extra unsafe.Pointer) int32
	cuStreamCreate            func(s *cuStream, flags uint32) int32
	cuStreamDestroy           func(s cuStream) int32
	cuStreamSynchronize       func(s cuStream) int32
	cuEventCreate             func(e *cuEvent, flags uint32) int32
	cuEventDestroy            func(e cuEvent) int32
	cuEventRecord             func(e cuEvent, s cuStream) int32
	cuEventSynchronize        func(e cuEvent) int32
	cuEventElapsedTime        func(ms *float32, start, end cuEvent) int32
	cuGetErrorName            func(r int32, s **byte) int32
	cuGetErrorString          func(r int32, s **byte) int32

	// CUDA graphs (decode steps replayed without per-kernel launches);
	// optional: graphErr says why they are unavailable.
	cuStreamBeginCapture func(s cuStream, mode int32) int32
	cuStreamEndCapture   func(s cuStream, g *uintptr) int32
	cuGraphInstantiate   func(e *uintptr, g uintptr, flags uint64) int32
	cuGraphLaunch        func(e uintptr, s cuStream) int32
	cuGraphDestroy       func(g uintptr) int32
	cuGraphExecDestroy   func(e uintptr) int32
	graphErr             error
}

func (d *driver) bindings() []binding {
	return []binding{
		{"cuGetErrorName", &d.cuGetErrorName},
		{"cuGetErrorString", &d.cuGetErrorString},
		{"cuInit", &d.cuInit},
		{"cuDriverGetVersion", &d.cuDriverGetVersion},
		{"cuDeviceGetCount", &d.cuDeviceGetCount},
		{"cuDeviceGet", &d.cuDeviceGet},
		{"cuDeviceGetName", &d.cuDeviceGetName},
		{"cuDeviceTotalMem_v2", &d.cuDeviceTotalMem},
		{"cuDeviceGetAttribute", &d.cuDeviceGetAttribute},
		{"cuDevicePrimaryCtxRetain", &d.cuDevicePrimaryCtxRetain},
		{"cuDevicePrimaryCtxRelease_v2", &d.cuDevicePrimaryCtxRelease},
		{"cuCtxSetCurrent", &d.cuCtxSetCurrent},
		{"cuCtxSynchronize", &d.cuCtxSynchronize},
		{"cuMemGetInfo_v2", &d.cuMemGetInfo},
		{"cuMemAlloc_v2", &d.cuMemAlloc},
		{"cuMemFree_v2", &d.cuMemFree},
		{"cuMemHostAlloc", &d.cuMemHostAlloc},
		{"cuMemFreeHost", &d.cuMemFreeHost},
		{"cuMemcpyHtoD_v2", &d.cuMemcpyHtoD},
		{"cuMemcpyDtoH_v2", &d.cuMemcpyDtoH},
		{"cuMemcpyHtoDAsync_v2", &d.cuMemcpyHtoDAsync},
		{"cuMemcpyDtoHAsync_v2", &d.cuMemcpyDtoHAsync},
		{"cuMemcpyDtoDAsync_v2", &d.cuMemcpyDtoDAsync},
		{"cuMemsetD32Async", &d.cuMemsetD32Async},
		{"cuModuleLoadData", &d.cuModuleLoadData},
		{"cuModuleUnload", &d.cuModuleUnload},
		{"cuModuleGetFunction", &d.cuModuleGetFunction},
		{"cuLaunchKernel", &d.cuLaunchKernel},
		{"cuStreamCreate", &d.cuStreamCreate},
		{"cuStreamDestroy_v2", &d.cuStreamDestroy},
		{"cuStreamSynchronize", &d.cuStreamSynchronize},
		{"cuEventCreate", &d.cuEventCreate},
		{"cuEventDestroy_v2", &d.cuEventDestroy},
		{"cuEventRecord", &d.cuEventRecord},
		{"cuEventSynchronize", &d.cuEventSynchronize},
		{"cuEventElapsedTime", &d.cuEventElapsedTime},
	}
}

// openDriver opens the first loadable library of names, binds the driver
// API and calls cuInit(0). Any failure is wrapped in ErrUnavailable and
// says exactly what failed.
func openDriver(names []string) (*driver, error) {
	lib, name, err := openLib(names)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	d := &driver{}
	if err := bind(lib, name, d.bindings()); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	d.graphErr = bind(lib, name, []binding{
		{"cuStreamBeginCapture_v2", &d.cuStreamBeginCapture},
		{"cuStreamEndCapture", &d.cuStreamEndCapture},
		{"cuGraphInstantiateWithFlags", &d.cuGraphInstantiate},
		{"cuGraphLaunch", &d.cuGraphLaunch},
		{"cuGraphDestroy", &d.cuGraphDestroy},
		{"cuGraphExecDestroy", &d.cuGraphExecDestroy},
	})
	if err := d.check("cuInit", d.cuInit(0)); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return d, nil
}

// check turns a CUresult into an *Error (nil on success).
func (d *driver) check(call string, r int32) error {
	if r == cudaSuccess {
		return nil
	}
	e := &Error{Call: call, Code: int(r), Name: fmt.Sprintf("CUDA_ERROR_%d", r)}
	if d.cuGetErrorName != nil {
		var p *byte
		if d.cuGetErrorName(r, &p) == cudaSuccess && p != nil {
			e.Name = cString(p)
		}
	}
	if d.cuGetErrorString != nil {
		var p *byte
		if d.cuGetErrorString(r, &p) == cudaSuccess && p != nil {
			e.Desc = cString(p)
		}
	}
	return e
}

func (d *driver) version() (string, error) {
	var v int32
	if err := d.check("cuDriverGetVersion", d.cuDriverGetVersion(&v)); err != nil {
		return "", err
	}
	return fmt.Sprintf("%d.%d", v/1000, (v%1000)/10), nil
}

func (d *driver) deviceCount() (int, error) {
	var n int32
	if err := d.check("cuDeviceGetCount", d.cuDeviceGetCount(&n)); err != nil {
		return 0, err
	}
	return int(n), nil
}

func (d *driver) device(ordinal int) (int32, error) {
	var dev int32
	if err := d.check("cuDeviceGet", d.cuDeviceGet(&dev, int32(ordinal))); err != nil {
		return 0, err
	}
	return dev, nil
}

func (d *driver) deviceName(dev int32) (string, error) {
	var buf [256]byte
	if err := d.check("cuDeviceGetName", d.cuDeviceGetName(&buf[0], int32(len(buf)), dev)); err != nil {
		return "", err
	}
	return cString(&buf[0]), nil
}

func (d *driver) totalMem(dev int32) (uint64, error) {
	var b uint64
	return b, d.check("cuDeviceTotalMem_v2", d.cuDeviceTotalMem(&b, dev))
}

func (d *driver) attr(dev int32, a int32) (int, error) {
	var v int32
	if err := d.check("cuDeviceGetAttribute", d.cuDeviceGetAttribute(&v, a, dev)); err != nil {
		return 0, err
	}
	return int(v), nil
}

func (d *driver) memInfo() (free, total uint64, err error) {
	err = d.check("cuMemGetInfo_v2", d.cuMemGetInfo(&free, &total))
	return free, total, err
}

func (d *driver) alloc(n uint64) (devPtr, error) {
	if n == 0 {
		n = 4
	}
	var p devPtr
	if err := d.check("cuMemAlloc_v2", d.cuMemAlloc(&p, n)); err != nil {
		return 0, fmt.Errorf("allocating %d bytes: %w", n, err)
	}
	return p, nil
}

func (d *driver) free(p devPtr) error {
	if p == 0 {
		return nil
	}
	return d.check("cuMemFree_v2", d.cuMemFree(p))
}

// hostAlloc allocates pinned host memory (off the Go heap).
func (d *driver) hostAlloc(n int) ([]byte, error) {
	var p *byte
	if err := d.check("cuMemHostAlloc", d.cuMemHostAlloc(&p, uint64(n), 0)); err != nil {
		return nil, fmt.Errorf("allocating %d pinned bytes: %w", n, err)
	}
	return unsafe.Slice(p, n), nil
}

func (d *driver) freeHost(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	return d.check("cuMemFreeHost", d.cuMemFreeHost(&b[0]))
}

func (d *driver) htod(dst devPtr, src []byte) error {
	if len(src) == 0 {
		return nil
	}
	return d.check("cuMemcpyHtoD_v2", d.cuMemcpyHtoD(dst, unsafe.Pointer(&src[0]), uint64(len(src))))
}

// htodAsync copies on stream s; src must stay untouched (and, for a real
// overlap, be pinned) until the stream reaches the copy.
func (d *driver) htodAsync(dst devPtr, src []byte, s cuStream) error {
	if len(src) == 0 {
		return nil
	}
	return d.check("cuMemcpyHtoDAsync_v2", d.cuMemcpyHtoDAsync(dst, unsafe.Pointer(&src[0]), uint64(len(src)), s))
}

func (d *driver) dtodAsync(dst, src devPtr, n uint64, s cuStream) error {
	if n == 0 {
		return nil
	}
	return d.check("cuMemcpyDtoDAsync_v2", d.cuMemcpyDtoDAsync(dst, src, n, s))
}

func (d *driver) dtohAsync(dst []byte, src devPtr, s cuStream) error {
	if len(dst) == 0 {
		return nil
	}
	return d.check("cuMemcpyDtoHAsync_v2", d.cuMemcpyDtoHAsync(unsafe.Pointer(&dst[0]), src, uint64(len(dst)), s))
}

func (d *driver) zeroAsync(dst devPtr, words uint64, s cuStream) error {
	return d.check("cuMemsetD32Async", d.cuMemsetD32Async(dst, 0, words, s))
}

func (d *driver) loadModule(ptx []byte) (cuModule, error) {
	img := make([]byte, len(ptx)+1) // NUL-terminated
	copy(img, ptx)
	var m cuModule
	if err := d.check("cuModuleLoadData", d.cuModuleLoadData(&m, &img[0])); err != nil {
		return 0, err
	}
	return m, nil
}

func (d *driver) function(m cuModule, name string) (cuFunc, error) {
	var f cuFunc
	if err := d.check("cuModuleGetFunction", d.cuModuleGetFunction(&f, m, name)); err != nil {
		return 0, fmt.Errorf("kernel %s: %w", name, err)
	}
	return f, nil
}

// newStream creates a blocking stream: work on it is ordered with the
// synchronous copies (cuMemcpyHtoD) made on the legacy default stream.
func (d *driver) newStream() (cuStream, error) {
	var s cuStream
	return s, d.check("cuStreamCreate", d.cuStreamCreate(&s, 0 /* CU_STREAM_DEFAULT */))
}

func (d *driver) sync(s cuStream) error {
	return d.check("cuStreamSynchronize", d.cuStreamSynchronize(s))
}

func (d *driver) newEvent() (cuEvent, error) {
	var e cuEvent
	return e, d.check("cuEventCreate", d.cuEventCreate(&e, 0))
}

// elapsed returns the milliseconds between two recorded events.
func (d *driver) elapsed(start, end cuEvent) (float32, error) {
	if err := d.check("cuEventSynchronize", d.cuEventSynchronize(end)); err != nil {
		return 0, err
	}
	var ms float32
	return ms, d.check("cuEventElapsedTime", d.cuEventElapsedTime(&ms, start, end))
}
