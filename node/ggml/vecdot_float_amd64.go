//go:build amd64 && !purego

package ggml

import "golang.org/x/sys/cpu"

// cpuid executes CPUID (for F16C, which x/sys/cpu does not report).
func cpuid(eaxArg, ecxArg uint32) (eax, ebx, ecx, edx uint32)

var (
	haveFMA  = haveAVX2 && cpu.X86.HasFMA
	haveF16C = haveFMA && func() bool {
		_, _, ecx, _ := cpuid(1, 0)
		return ecx&(1<<29) != 0
	}()
)

//go:noescape
func dotF32AVX2(n int, x, y *byte) float32

//go:noescape
func dotBF16AVX2(n int, x, y *byte) float32

//go:noescape
func dotF16AVX2(n int, x, y *byte) float32

func dotF32Fast(n int, w, a []byte) float32 {
	m := n &^ 31
	if !haveFMA || m == 0 {
		return dotF32(n, w, a)
	}
	w, a = w[:4*n], a[:4*n]
	s := dotF32AVX2(m, &w[0], &a[0])
	if m < n {
		s += dotF32(n-m, w[4*m:], a[4*m:])
	}
	return s
}

func dotBF16Fast(n int, w, a []byte) float32 {
	m := n &^ 31
	if !haveFMA || m == 0 {
		return dotBF16(n, w, a)
	}
	w, a = w[:2*n], a[:2*n]
	s := dotBF16AVX2(m, &w[0], &a[0])
	if m < n {
		s += dotBF16(n-m, w[2*m:], a[2*m:])
	}
	return s
}

func dotF16Fast(n int, w, a []byte) float32 {
	m := n &^ 31
	if !haveF16C || m == 0 {
		return dotF16(n, w, a)
	}
	w, a = w[:2*n], a[:2*n]
	s := dotF16AVX2(m, &w[0], &a[0])
	if m < n {
		s += dotF16(n-m, w[2*m:], a[2*m:])
	}
	return s
}
