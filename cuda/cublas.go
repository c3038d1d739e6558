package cuda

import (
	"fmt"
	"sync"
	"unsafe"
)

// cuBLAS constants.
const (
	cublasOpN = 0
	cublasOpT = 1

	cudaR32F = 0 // cudaDataType CUDA_R_32F
	cudaR16F = 2 // CUDA_R_16F

	cublasCompute32F         = 68 // CUBLAS_COMPUTE_32F
	cublasCompute32FFastTF32 = 77 // CUBLAS_COMPUTE_32F_FAST_TF32

	cublasGemmDefault = -1

	cublasDefaultMath = 0
	cublasTF32Math    = 3 // CUBLAS_TF32_TENSOR_OP_MATH
)

// cublasStatusNames maps cublasStatus_t to its name (cublasGetStatusName
// is missing from older releases).
var cublasStatusNames = map[int32]string{
	0:  "CUBLAS_STATUS_SUCCESS",
	1:  "CUBLAS_STATUS_NOT_INITIALIZED",
	3:  "CUBLAS_STATUS_ALLOC_FAILED",
	7:  "CUBLAS_STATUS_INVALID_VALUE",
	8:  "CUBLAS_STATUS_ARCH_MISMATCH",
	11: "CUBLAS_STATUS_MAPPING_ERROR",
	13: "CUBLAS_STATUS_EXECUTION_FAILED",
	14: "CUBLAS_STATUS_INTERNAL_ERROR",
	15: "CUBLAS_STATUS_NOT_SUPPORTED",
	16: "CUBLAS_STATUS_LICENSE_ERROR",
}

// blas is the bound cuBLAS API.
type blas struct {
	lib                        string
	cublasCreate               func(h *uintptr) int32
	cublasDestroy              func(h uintptr) int32
	cublasSetStream            func(h uintptr, s cuStream) int32
	cublasSetMathMode          func(h uintptr, mode int32) int32
	cublasGemmEx               func(h uintptr, ta, tb, m, n, k int32, alpha unsafe.Pointer, a devPtr, atype, lda int32, b devPtr, btype, ldb int32, beta unsafe.Pointer, c devPtr, ctype, ldc, compute, algo int32) int32
	cublasGemmStridedBatchedEx func(h uintptr, ta, tb, m, n, k int32, alpha unsafe.Pointer, a devPtr, atype, lda int32, strideA int64, b devPtr, btype, ldb int32, strideB int64, beta unsafe.Pointer, c devPtr, ctype, ldc int32, strideC int64, batch, compute, algo int32) int32
}

func (b *blas) bindings() []binding {
	return []binding{
		{"cublasCreate_v2", &b.cublasCreate},
		{"cublasDestroy_v2", &b.cublasDestroy},
		{"cublasSetStream_v2", &b.cublasSetStream},
		{"cublasSetMathMode", &b.cublasSetMathMode},
		{"cublasGemmEx", &b.cublasGemmEx},
		{"cublasGemmStridedBatchedEx", &b.cublasGemmStridedBatchedEx},
	}
}

var (
	blasOnce sync.Once
	blasLib  *blas
	blasErr  error
)

// loadBLAS opens and binds cuBLAS once per process. Without it the
// backend still runs, computing prefill with its matrix-vector kernels.
func loadBLAS() (*blas, error) {
	blasOnce.Do(func() { blasLib, blasErr = openBLAS(CublasLibraries) })
	return blasLib, blasErr
}

func openBLAS(names []string) (*blas, error) {
	lib, name, err := openLib(names)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	b := &blas{lib: name}
	if err := bind(lib, name, b.bindings()); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return b, nil
}

func (b *blas) check(call string, r int32) error {
	if r == 0 {
		return nil
	}
	name, ok := cublasStatusNames[r]
	if !ok {
		name = fmt.Sprintf("CUBLAS_STATUS_%d", r)
	}
	return &Error{Call: call, Code: int(r), Name: name}
}

// blasHandle is one cuBLAS handle bound to a stream.
type blasHandle struct {
	b *blas
	h uintptr
}

func (b *blas) newHandle(s cuStream) (*blasHandle, error) {
	var h uintptr
	if err := b.check("cublasCreate_v2", b.cublasCreate(&h)); err != nil {
		return nil, err
	}
	if err := b.check("cublasSetStream_v2", b.cublasSetStream(h, s)); err != nil {
		b.cublasDestroy(h)
		return nil, err
	}
	return &blasHandle{b: b, h: h}, nil
}

func (h *blasHandle) destroy() {
	if h != nil && h.h != 0 {
		h.b.cublasDestroy(h.h)
		h.h = 0
	}
}

// gemmCall is a cublasGemmEx call's shape: C (M×N, column-major, ldc) =
// op(X) (M×K) · op(Y) (K×N), X and Y column-major with leading dimensions
// ldx and ldy.
type gemmCall struct {
	transX, transY int32
	m, n, k        int32
	x, y           devPtr
	ldx, ldy, ldc  int32
}

// rowMajorGemm maps C = A · Bᵀ on row-major matrices — A m×k (row stride
// lda), B n×k (ldb), C m×n (ldc) — onto column-major cuBLAS: a row-major
// matrix is its transpose in column-major, so the call computes
// Cᵀ (n×m) = B (n×k) · Aᵀ (k×m), that is op(X) = Bᵀ-as-stored transposed
// and op(Y) = Aᵀ-as-stored.
func rowMajorGemm(m, n, k int, a devPtr, lda int, b devPtr, ldb int, ldc int) gemmCall {
	return gemmCall{transX: cublasOpT, transY: cublasOpN, m: int32(n), n: int32(m), k: int32(k),
		x: b, ldx: int32(ldb), y: a, ldy: int32(lda), ldc: int32(ldc)}
}

// gemmRowMajor computes C = A · Bᵀ + beta·C for row-major float32
// matrices (see rowMajorGemm).
//
// The backend uses it as Y (ntok × nrows) = X (ntok × ncols) · Wᵀ with W
// (nrows × ncols) row-major: A = X, B = W.
func (h *blasHandle) gemmRowMajor(ar *argArena, m, n, k int, a devPtr, lda int, b devPtr, ldb int, c devPtr, ldc int, beta float32, tf32 bool) error {
	compute := int32(cublasCompute32F)
	if tf32 {
		compute = cublasCompute32FFastTF32
	}
	g := rowMajorGemm(m, n, k, a, lda, b, ldb, ldc)
	pa, pb := ar.scalars(1, beta)
	return h.b.check("cublasGemmEx", h.b.cublasGemmEx(h.h, g.transX, g.transY,
		g.m, g.n, g.k, pa,
		g.x, cudaR32F, g.ldx,
		g.y, cudaR32F, g.ldy,
		pb, c, cudaR32F, g.ldc,
		compute, cublasGemmDefault))
}

// gemmStridedBatched is gemmRowMajor over batch independent problems laid
// out at fixed strides (in elements).
func (h *blasHandle) gemmStridedBatched(ar *argArena, m, n, k int, a devPtr, strideA int64, b devPtr, strideB int64, c devPtr, strideC int64, batch int, beta float32) error {
	g := rowMajorGemm(m, n, k, a, k, b, k, n)
	pa, pb := ar.scalars(1, beta)
	return h.b.check("cublasGemmStridedBatchedEx", h.b.cublasGemmStridedBatchedEx(h.h, g.transX, g.transY,
		g.m, g.n, g.k, pa,
		g.x, cudaR32F, g.ldx, strideB,
		g.y, cudaR32F, g.ldy, strideA,
		pb, c, cudaR32F, g.ldc, strideC,
		int32(batch), cublasCompute32F, cublasGemmDefault))
}
