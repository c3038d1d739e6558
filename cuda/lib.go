package cuda

import (
	"fmt"
	"reflect"
	"sync"
	"unsafe"

	"github.com/ebitengine/purego"
)

// DriverLibrary is the CUDA driver library opened at run time.
const DriverLibrary = "libcuda.so.1"

// CublasLibraries are the cuBLAS sonames tried in order.
var CublasLibraries = []string{"libcublas.so.13", "libcublas.so.12", "libcublas.so.11", "libcublas.so"}

// binding names one C function and the Go function variable it fills.
type binding struct {
	name string
	fn   any // pointer to a func variable
}

// openLib opens the first library of names that loads.
func openLib(names []string) (uintptr, string, error) {
	var errs []string
	for _, n := range names {
		h, err := purego.Dlopen(n, purego.RTLD_NOW|purego.RTLD_GLOBAL)
		if err == nil {
			return h, n, nil
		}
		errs = append(errs, err.Error())
	}
	if len(names) == 1 {
		return 0, "", fmt.Errorf("cannot open %s: %s", names[0], errs[0])
	}
	return 0, "", fmt.Errorf("cannot open any of %v: %v", names, errs)
}

// bind resolves every binding in lib, checking each symbol exists first
// (purego would panic on a missing one).
func bind(lib uintptr, libName string, bs []binding) error {
	for _, b := range bs {
		sym, err := purego.Dlsym(lib, b.name)
		if err != nil || sym == 0 {
			return fmt.Errorf("%s lacks %s: %v", libName, b.name, err)
		}
		if reflect.TypeOf(b.fn).Kind() != reflect.Pointer {
			return fmt.Errorf("BUG: binding %s is not a pointer", b.name)
		}
		purego.RegisterFunc(b.fn, sym)
	}
	return nil
}

// cString reads a NUL-terminated C string (nil gives "").
func cString(p *byte) string {
	if p == nil {
		return ""
	}
	var b []byte
	for i := 0; i < 4096; i++ {
		c := *(*byte)(unsafe.Add(unsafe.Pointer(p), i))
		if c == 0 {
			break
		}
		b = append(b, c)
	}
	return string(b)
}

// loaded holds the process-wide bindings, loaded once.
var (
	drvOnce sync.Once
	drv     *driver
	drvErr  error
)

// loadDriver opens libcuda.so.1, binds the driver API and runs cuInit. The
// result (including a failure) is cached for the process.
func loadDriver() (*driver, error) {
	drvOnce.Do(func() {
		drv, drvErr = openDriver([]string{DriverLibrary})
	})
	return drv, drvErr
}
