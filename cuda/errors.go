package cuda

import (
	"errors"
	"fmt"

	"helexa/node/device"
)

// ErrUnavailable is returned by every entry point when the CUDA driver
// cannot be used on this host (library missing, symbols missing, or cuInit
// refused); the error text says which.
var ErrUnavailable = errors.New("cuda unavailable")

// ErrInsufficientMemory marks a load that does not fit the device's free
// memory. The neuron answers it with 507.
var ErrInsufficientMemory = errors.New("insufficient device memory")

// Driver API result codes the backend treats specially.
const (
	cudaSuccess             = 0
	cudaErrorOutOfMemory    = 2
	cudaErrorNotInitialized = 3
	cudaErrorNoDevice       = 100
)

// Error is a failed driver or cuBLAS call: the call's name and the error
// name the library gives for its result code.
//
// Out-of-memory errors match ErrInsufficientMemory; every other error
// matches device.ErrPoisoned, since after it the context's state is not
// trusted any more.
type Error struct {
	Call string // "cuMemAlloc_v2", "cublasGemmEx", ...
	Code int    // CUresult or cublasStatus_t
	Name string // "CUDA_ERROR_ILLEGAL_ADDRESS", "CUBLAS_STATUS_ALLOC_FAILED", ...
	Desc string // the driver's description, when it gives one
}

func (e *Error) Error() string {
	s := fmt.Sprintf("%s: %s (%d)", e.Call, e.Name, e.Code)
	if e.Desc != "" {
		s += ": " + e.Desc
	}
	return s
}

// outOfMemory reports whether the error is an allocation failure.
func (e *Error) outOfMemory() bool {
	return e.Name == "CUDA_ERROR_OUT_OF_MEMORY" || e.Name == "CUBLAS_STATUS_ALLOC_FAILED"
}

// Is makes errors.Is(err, ErrInsufficientMemory) and
// errors.Is(err, device.ErrPoisoned) work.
func (e *Error) Is(target error) bool {
	switch target {
	case ErrInsufficientMemory:
		return e.outOfMemory()
	case device.ErrPoisoned:
		return !e.outOfMemory()
	}
	return false
}
