package cpu

import xcpu "golang.org/x/sys/cpu"

// useAVX2 selects the AVX2+FMA kernels.
var useAVX2 = xcpu.X86.HasAVX2 && xcpu.X86.HasFMA

// dotAVX2 returns Σ a[i]*b[i] for i < n (n >= 0).
//
//go:noescape
func dotAVX2(a, b *float32, n int) float32

// axpyAVX2 does y[i] += alpha*x[i] for i < n.
//
//go:noescape
func axpyAVX2(alpha float32, x, y *float32, n int)
