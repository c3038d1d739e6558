// Package ggml describes ggml tensor types (the element and block formats
// GGUF files use) and implements their dequantization, quantization and dot
// products.
package ggml

// Type is a ggml tensor type. The values are ggml's own enum ids, as
// written in GGUF tensor infos.
type Type uint32

// Tensor types.
const (
	F32  Type = 0
	F16  Type = 1
	Q4_0 Type = 2
	Q4_1 Type = 3
	Q5_0 Type = 6
	Q5_1 Type = 7
	Q8_0 Type = 8
	Q8_1 Type = 9
	Q2_K Type = 10
	Q3_K Type = 11
	Q4_K Type = 12
	Q5_K Type = 13
	Q6_K Type = 14
	Q8_K Type = 15
	BF16 Type = 30
)
