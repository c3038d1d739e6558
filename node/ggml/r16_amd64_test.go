//go:build amd64 && !purego

package ggml

// forceR16Go makes the R16 entry points run the pure Go kernels until the
// returned function restores the CPU's.
func forceR16Go() func() {
	q, f, f2, dp := haveR16Q, haveR16F, haveR16F2, haveR16BF16DP
	haveR16Q, haveR16F, haveR16F2, haveR16BF16DP = false, false, false, false
	return func() { haveR16Q, haveR16F, haveR16F2, haveR16BF16DP = q, f, f2, dp }
}

// forceR16AVX2 makes the float R16 entry points run the AVX2 kernels (when
// the CPU has them) until the returned function restores the CPU's choice.
func forceR16AVX2() (restore func(), ok bool) {
	f := haveR16F
	haveR16F = false
	return func() { haveR16F = f }, haveR16F2
}

// forceR16OneGroup makes the AVX-512 float kernels take one group at a
// time until the returned function restores the pairs.
func forceR16OneGroup() (restore func(), ok bool) {
	p := useR16Pairs
	useR16Pairs = false
	return func() { useR16Pairs = p }, haveR16F
}
