package cuda

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"helexa/node/device"
)

// driverPresent reports whether this host has a usable CUDA driver; the
// absence tests only make sense without one.
func driverPresent() bool {
	_, err := loadDriver()
	return err == nil
}

func TestOpenDriverMissingLibrary(t *testing.T) {
	_, err := openDriver([]string{"libcuda-absent-for-test.so.1"})
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
	if !strings.Contains(err.Error(), "libcuda-absent-for-test.so.1") {
		t.Errorf("error %q does not name the library", err)
	}
}

func TestOpenDriverMissingSymbols(t *testing.T) {
	// libc opens fine but has none of the driver's symbols: the error must
	// name the first missing one instead of crashing.
	_, err := openDriver([]string{"libc.so.6"})
	if err == nil {
		t.Fatal("binding the driver API from libc succeeded")
	}
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "lacks cuGetErrorName") {
		t.Errorf("err = %v, want ErrUnavailable naming cuGetErrorName", err)
	}
}

func TestOpenBLASMissing(t *testing.T) {
	_, err := openBLAS([]string{"libcublas-absent.so.13", "libcublas-absent.so.12"})
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "libcublas-absent.so.12") {
		t.Errorf("err = %v, want ErrUnavailable naming the libraries tried", err)
	}
	_, err = openBLAS([]string{"libc.so.6"})
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "lacks cublasCreate_v2") {
		t.Errorf("err = %v, want ErrUnavailable naming cublasCreate_v2", err)
	}
}

func TestEntryPointsWithoutDriver(t *testing.T) {
	if driverPresent() {
		t.Skip("a CUDA driver is present: the absence paths cannot be exercised here")
	}
	info, err := Discover()
	if !errors.Is(err, ErrUnavailable) {
		t.Errorf("Discover err = %v, want ErrUnavailable", err)
	}
	if info.Available || !strings.Contains(info.Reason, DriverLibrary) || len(info.Devices) != 0 {
		t.Errorf("Discover = %+v, want unavailable with a reason naming %s", info, DriverLibrary)
	}
	b, err := New(Options{Index: 0})
	if !errors.Is(err, ErrUnavailable) || b != nil {
		t.Errorf("New = %v, %v; want nil, ErrUnavailable", b, err)
	}
	// Twice: the cached failure must be returned again, not a crash.
	if _, err := Discover(); !errors.Is(err, ErrUnavailable) {
		t.Errorf("second Discover err = %v", err)
	}
}

func TestDiscoverWithDriver(t *testing.T) {
	if !driverPresent() {
		t.Skip("no CUDA driver on this host")
	}
	info, err := Discover()
	if err != nil {
		if info.Available || info.Reason == "" {
			t.Fatalf("Discover failed (%v) but reports %+v", err, info)
		}
		return
	}
	if !info.Available || len(info.Devices) == 0 || info.DriverVersion == "" {
		t.Fatalf("Discover = %+v", info)
	}
	for _, d := range info.Devices {
		if d.Name == "" || d.MemTotalMB <= 0 || d.MemFreeMB > d.MemTotalMB || d.ComputeCapability == "" {
			t.Errorf("device %+v", d)
		}
	}
}

func TestErrorClassification(t *testing.T) {
	oom := &Error{Call: "cuMemAlloc_v2", Code: 2, Name: "CUDA_ERROR_OUT_OF_MEMORY", Desc: "out of memory"}
	bad := &Error{Call: "cuLaunchKernel", Code: 700, Name: "CUDA_ERROR_ILLEGAL_ADDRESS"}
	blasOOM := &Error{Call: "cublasGemmEx", Code: 3, Name: "CUBLAS_STATUS_ALLOC_FAILED"}
	f := func(err error, insufficient, poisoned bool) {
		t.Helper()
		wrapped := fmt.Errorf("loading model: %w", err)
		if got := errors.Is(wrapped, ErrInsufficientMemory); got != insufficient {
			t.Errorf("%v: Is(ErrInsufficientMemory) = %v", err, got)
		}
		if got := errors.Is(wrapped, device.ErrPoisoned); got != poisoned {
			t.Errorf("%v: Is(ErrPoisoned) = %v", err, got)
		}
		var e *Error
		if !errors.As(wrapped, &e) || e.Call == "" {
			t.Errorf("%v: errors.As lost the call", err)
		}
	}
	f(oom, true, false)
	f(blasOOM, true, false)
	f(bad, false, true)
	if got := bad.Error(); got != "cuLaunchKernel: CUDA_ERROR_ILLEGAL_ADDRESS (700)" {
		t.Errorf("Error() = %q", got)
	}
	if got := oom.Error(); !strings.Contains(got, "cuMemAlloc_v2") || !strings.Contains(got, "out of memory") {
		t.Errorf("Error() = %q", got)
	}
}

func TestBlasStatusNames(t *testing.T) {
	b := &blas{}
	if err := b.check("cublasGemmEx", 0); err != nil {
		t.Errorf("status 0 gave %v", err)
	}
	err := b.check("cublasGemmEx", 13)
	if err == nil || !strings.Contains(err.Error(), "CUBLAS_STATUS_EXECUTION_FAILED") || !errors.Is(err, device.ErrPoisoned) {
		t.Errorf("status 13 gave %v", err)
	}
	if err := b.check("cublasCreate_v2", 99); err == nil || !strings.Contains(err.Error(), "CUBLAS_STATUS_99") {
		t.Errorf("unknown status gave %v", err)
	}
}

func TestArgArena(t *testing.T) {
	a, err := newArgArena()
	if err != nil {
		t.Fatal(err)
	}
	defer a.close()
	args := []arg{int32(-7), uint64(0xdeadbeef00112233), float32(1.5), 42, int64(-1 << 40), uint32(9)}
	p, err := a.fill(args)
	if err != nil {
		t.Fatal(err)
	}
	ptrs := (*[6]*uint64)(p)
	if got := int32(*ptrs[0]); got != -7 {
		t.Errorf("arg 0 = %d", got)
	}
	if got := *ptrs[1]; got != 0xdeadbeef00112233 {
		t.Errorf("arg 1 = %#x", got)
	}
	if got := *(*float32)(unsafePointer(ptrs[2])); got != 1.5 {
		t.Errorf("arg 2 = %v", got)
	}
	if got := int32(*ptrs[3]); got != 42 {
		t.Errorf("arg 3 = %d", got)
	}
	if got := int64(*ptrs[4]); got != -1<<40 {
		t.Errorf("arg 4 = %d", got)
	}
	if _, err := a.fill([]arg{"string"}); err == nil {
		t.Error("a string argument was accepted")
	}
	if _, err := a.fill([]arg{1 << 40}); err == nil {
		t.Error("an int overflowing int32 was accepted")
	}
	if _, err := a.fill(make([]arg, maxKernelArgs)); err == nil {
		t.Error("too many arguments were accepted")
	}
}

func TestCString(t *testing.T) {
	b := []byte("CUDA_ERROR_NO_DEVICE\x00junk")
	if got := cString(&b[0]); got != "CUDA_ERROR_NO_DEVICE" {
		t.Errorf("cString = %q", got)
	}
	if got := cString(nil); got != "" {
		t.Errorf("cString(nil) = %q", got)
	}
}

// colMajorGemm is cublasGemmEx's arithmetic (alpha 1, beta 0) on float64
// memory indexed by element: C[i + j·ldc] = Σ op(X)[i,l] · op(Y)[l,j].
func colMajorGemm(g gemmCall, mem []float64, c int) {
	at := func(base devPtr, ld int32, trans int32, r, col int) float64 {
		if trans == cublasOpT {
			r, col = col, r
		}
		return mem[int(base)+r+col*int(ld)]
	}
	for i := 0; i < int(g.m); i++ {
		for j := 0; j < int(g.n); j++ {
			var s float64
			for l := 0; l < int(g.k); l++ {
				s += at(g.x, g.ldx, g.transX, i, l) * at(g.y, g.ldy, g.transY, l, j)
			}
			mem[c+i+j*int(g.ldc)] = s
		}
	}
}

// TestRowMajorGemm checks the row-major to column-major mapping the
// backend gives cuBLAS, including a tile of B's rows written into a
// column range of a wider C (the prefill's dequantized tiles).
func TestRowMajorGemm(t *testing.T) {
	m, k, rows, r0, tile := 3, 5, 7, 2, 4
	mem := make([]float64, 200)
	a, b, c := 0, 40, 100 // A m×k at 0; W rows×k at 40; C m×rows at 100
	for i := 0; i < m*k; i++ {
		mem[a+i] = float64(i%7) - 3
	}
	for i := 0; i < rows*k; i++ {
		mem[b+i] = float64(i%5) * 0.5
	}
	g := rowMajorGemm(m, tile, k, devPtr(a), k, devPtr(b+r0*k), k, rows)
	colMajorGemm(g, mem, c+r0)
	for i := 0; i < m; i++ {
		for j := 0; j < rows; j++ {
			got := mem[c+i*rows+j]
			var want float64
			if j >= r0 && j < r0+tile {
				for l := 0; l < k; l++ {
					want += mem[a+i*k+l] * mem[b+j*k+l]
				}
			}
			if got != want {
				t.Errorf("C[%d][%d] = %v, want %v", i, j, got, want)
			}
		}
	}
}
