package cuda

import (
	"fmt"
	"math"
	"unsafe"

	"golang.org/x/sys/unix"
)

// argArena holds kernel arguments off the Go heap: cuLaunchKernel takes an
// array of pointers to the argument values, which must stay alive and
// unmoved while the call runs. The arena is an anonymous mapping the GC
// never moves; one launch at a time uses it (launches come from the
// device's worker only).
type argArena struct {
	mem []byte // [0, maxArgs*8): values; [maxArgs*8, 2*maxArgs*8): pointers
}

const maxKernelArgs = 32

func newArgArena() (*argArena, error) {
	m, err := unix.Mmap(-1, 0, 2*maxKernelArgs*8, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
	if err != nil {
		return nil, fmt.Errorf("mapping kernel argument arena: %w", err)
	}
	return &argArena{mem: m}, nil
}

func (a *argArena) close() {
	if a != nil && a.mem != nil {
		_ = unix.Munmap(a.mem)
		a.mem = nil
	}
}

// arg is one kernel argument. Its C size comes from its Go type: int32,
// uint32 and float32 take 4 bytes; int64, uint64 (device pointers) 8.
type arg any

// fill writes args into the arena and returns the pointer array.
func (a *argArena) fill(args []arg) (unsafe.Pointer, error) {
	if len(args) > maxKernelArgs-2 {
		return nil, fmt.Errorf("BUG: %d kernel arguments, at most %d", len(args), maxKernelArgs-2)
	}
	ptrs := maxKernelArgs * 8
	for i, v := range args {
		slot := unsafe.Pointer(&a.mem[8*i])
		switch x := v.(type) {
		case int32:
			*(*int32)(slot) = x
		case int:
			if x < math.MinInt32 || x > math.MaxInt32 {
				return nil, fmt.Errorf("kernel argument %d: %d overflows int32", i, x)
			}
			*(*int32)(slot) = int32(x)
		case uint32:
			*(*uint32)(slot) = x
		case float32:
			*(*float32)(slot) = x
		case int64:
			*(*int64)(slot) = x
		case uint64:
			*(*uint64)(slot) = x
		default:
			return nil, fmt.Errorf("BUG: kernel argument %d has unsupported type %T", i, v)
		}
		*(*uintptr)(unsafe.Pointer(&a.mem[ptrs+8*i])) = uintptr(slot)
	}
	return unsafe.Pointer(&a.mem[ptrs]), nil
}

// scalars returns pointers to two float32 values in the arena, past the
// kernel arguments' slots (for cuBLAS's alpha and beta).
func (a *argArena) scalars(alpha, beta float32) (unsafe.Pointer, unsafe.Pointer) {
	// The last two value slots are reserved for these.
	pa := unsafe.Pointer(&a.mem[8*(maxKernelArgs-2)])
	pb := unsafe.Pointer(&a.mem[8*(maxKernelArgs-1)])
	*(*float32)(pa) = alpha
	*(*float32)(pb) = beta
	return pa, pb
}
