//go:build !amd64 || purego

package ggml

// forceR16Go is a no-op: only the pure Go kernels exist here.
func forceR16Go() func() { return func() {} }

// forceR16AVX2 reports that there are no AVX2 kernels here.
func forceR16AVX2() (restore func(), ok bool) { return func() {}, false }

// forceR16OneGroup reports that there are no two-group kernels here.
func forceR16OneGroup() (restore func(), ok bool) { return func() {}, false }
