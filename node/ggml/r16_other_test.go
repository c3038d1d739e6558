//go:build !amd64 || purego

package ggml

// forceR16Go is a no-op: only the pure Go kernels exist here.
func forceR16Go() func() { return func() {} }
