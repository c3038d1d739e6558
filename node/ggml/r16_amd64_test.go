//go:build amd64 && !purego

package ggml

// forceR16Go makes the R16 entry points run the pure Go kernels until the
// returned function restores the CPU's.
func forceR16Go() func() {
	q, f := haveR16Q, haveR16F
	haveR16Q, haveR16F = false, false
	return func() { haveR16Q, haveR16F = q, f }
}
