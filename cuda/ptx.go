package cuda

import (
	"embed"
	"fmt"
	"io/fs"
	"sort"
	"strings"

	"helexa/node/ggml"
)

// The kernels, compiled to PTX by `make ptx` (cuda/kernels/build.sh) and
// committed; the driver JIT-compiles them for the device at load.
//
//go:embed kernels/*.ptx
var ptxFS embed.FS

// ptxModules returns the embedded PTX modules by file name.
func ptxModules() (map[string][]byte, error) {
	names, err := fs.Glob(ptxFS, "kernels/*.ptx")
	if err != nil {
		return nil, err
	}
	out := make(map[string][]byte, len(names))
	for _, n := range names {
		b, err := ptxFS.ReadFile(n)
		if err != nil {
			return nil, fmt.Errorf("reading embedded %s: %w", n, err)
		}
		out[strings.TrimPrefix(n, "kernels/")] = b
	}
	return out, nil
}

// ptxEntries lists the .entry names of one PTX text.
func ptxEntries(ptx []byte) []string {
	var names []string
	for _, line := range strings.Split(string(ptx), "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "//") {
			continue
		}
		f := strings.Fields(line)
		for i := 0; i+1 < len(f); i++ {
			if f[i] == ".entry" {
				names = append(names, strings.TrimSuffix(f[i+1], "("))
			}
		}
	}
	sort.Strings(names)
	return names
}

// quantKernelSuffix names each supported weight type's mmv_/dequant_
// kernels, and whether rows are read in groups of 32 (so that the row
// length must be a multiple of the block size).
var quantKernelSuffix = map[ggml.Type]string{
	ggml.F32:  "f32",
	ggml.F16:  "f16",
	ggml.BF16: "bf16",
	ggml.Q4_0: "q4_0",
	ggml.Q4_1: "q4_1",
	ggml.Q5_0: "q5_0",
	ggml.Q5_1: "q5_1",
	ggml.Q8_0: "q8_0",
	ggml.Q4_K: "q4_k",
	ggml.Q5_K: "q5_k",
	ggml.Q6_K: "q6_k",
}

// blockShape gives, for each supported type, the elements per block and
// the bytes per block.
var blockShape = map[ggml.Type][2]int{
	ggml.F32:  {1, 4},
	ggml.F16:  {1, 2},
	ggml.BF16: {1, 2},
	ggml.Q4_0: {32, 18},
	ggml.Q4_1: {32, 20},
	ggml.Q5_0: {32, 22},
	ggml.Q5_1: {32, 24},
	ggml.Q8_0: {32, 34},
	ggml.Q4_K: {256, 144},
	ggml.Q5_K: {256, 176},
	ggml.Q6_K: {256, 210},
}

// rowBytes is the size of one row of n elements of type t.
func rowBytes(t ggml.Type, n int) (int, error) {
	s, ok := blockShape[t]
	if !ok {
		return 0, fmt.Errorf("weight type %d is not supported by the CUDA backend", t)
	}
	if n%s[0] != 0 {
		return 0, fmt.Errorf("row of %d elements is not a multiple of the type's block of %d", n, s[0])
	}
	return n / s[0] * s[1], nil
}

// kernelNames are every kernel the backend loads (a test checks the
// embedded PTX defines exactly these).
func kernelNames() []string {
	names := []string{"rmsnorm", "rope", "swiglu", "add", "add_bias", "kv_write", "attention", "softmax", "argmax"}
	for _, s := range quantKernelSuffix {
		names = append(names, "mmv_"+s, "mmv_glu_"+s, "dequant_"+s)
	}
	sort.Strings(names)
	return names
}

func sortStrings(s []string) { sort.Strings(s) }
