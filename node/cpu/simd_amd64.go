//go:build !purego

package cpu

import xcpu "golang.org/x/sys/cpu"

// useAVX2 selects the AVX2+FMA kernels; useF16C the half-precision ones.
var (
	useAVX2 = xcpu.X86.HasAVX2 && xcpu.X86.HasFMA
	useF16C = useAVX2 && hasF16C()
)

// dotAVX2 returns Σ a[i]*b[i] for i < n (n >= 0).
//
//go:noescape
func dotAVX2(a, b *float32, n int) float32

// axpyAVX2 does y[i] += alpha*x[i] for i < n.
//
//go:noescape
func axpyAVX2(alpha float32, x, y *float32, n int)

// dotF16AVX2 returns Σ a[i]*half(h[i]) for i < n; n is a multiple of 8.
//
//go:noescape
func dotF16AVX2(a *float32, h *uint16, n int) float32

// axpyF16AVX2 does y[i] += alpha*half(h[i]) for i < n; n is a multiple of 8.
//
//go:noescape
func axpyF16AVX2(alpha float32, h *uint16, y *float32, n int)

func hasF16C() bool

// dotBF16AVX2 returns Σ bf16(w[i])*a[i] for i < n; n is a multiple of 8.
//
//go:noescape
func dotBF16AVX2(w *byte, a *float32, n int) float32

//go:noescape
func scoresF16(q *float32, k *uint16, stride int, hd int, npos int, scale float32, out *float32)

//go:noescape
func mixF16(w *float32, v *uint16, stride int, hd int, npos int, out *float32)

//go:noescape
func expAVX2(x *float32, n int, shift float32)

//go:noescape
func siluMulAVX2(gp, up *float32, n int)

//go:noescape
func maxAVX2(x *float32, n int) float32

//go:noescape
func sumSqAVX2(x *float32, n int) float64

//go:noescape
func scaleMulAVX2(out, x, w *float32, n int, s float32)

//go:noescape
func anyAboveAVX2(x *float32, n int, t float32) bool

//go:noescape
func sum64AVX2(x *float32, n int) float64

//go:noescape
func scaleHalfF16C(x *float32, n int, s float32)

// dotF16x8AVX2 sets out[t] = Σ half(h[i])*x[t*stride/4+i] for t < 8,
// i < n; n is a positive multiple of 8 and stride is in bytes.
//
//go:noescape
func dotF16x8AVX2(h *byte, x *float32, stride int, n int, out *float32)

// dotF16RowAVX2 returns Σ half(h[i])*x[i] for i < n; n is a positive
// multiple of 8.
//
//go:noescape
func dotF16RowAVX2(h *byte, x *float32, n int) float32

// dotF16T3x4AVX2 sets out[3t+r] = Σ half(h[r*hs/2+i])*x[t*xs/4+i] for
// r < 3, t < 4, i < n; n is a positive multiple of 8, hs and xs in bytes.
//
//go:noescape
func dotF16T3x4AVX2(h *byte, hs int, x *float32, xs int, n int, out *float32)

//go:noescape
func toF16F16C(h *uint16, x *float32, n int)
