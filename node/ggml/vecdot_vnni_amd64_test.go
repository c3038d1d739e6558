//go:build amd64 && !purego

package ggml

import "testing"

// Where the CPU has AVX-512 VNNI the tests above run those kernels; run
// them again on the AVX2 ones.
func TestWithoutVNNI(t *testing.T) {
	if !haveVNNI {
		t.Skip("the AVX2 kernels already ran")
	}
	haveVNNI = false
	defer func() { haveVNNI = true }()
	t.Run("tails", TestQ0Tails)
	t.Run("prepared", TestDotQ4_0Prepared)
	t.Run("vecdotn", TestVecDotN)
	t.Run("fast", TestFastKernels)
}
