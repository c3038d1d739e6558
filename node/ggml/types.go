// Package ggml describes ggml tensor types (the element and block formats
// GGUF files use) and implements their dequantization, quantization and dot
// products.
//
// Quantizers (QuantizeRow) follow ggml's reference quantizers step for
// step, so files written here match ggml's tools. Dot products (VecDot)
// take activations already quantized to VecDotType and multiply block by
// block in integers, as ggml's CPU backend does; on amd64 with AVX2 they
// run in assembly (vecdot*_amd64.s), elsewhere (or with the purego build
// tag) in pure Go. Both give the same integer sums; only the order of the
// float additions differs.
//
// Everything here is safe for concurrent use: functions keep no state.
package ggml

import (
	"fmt"
	"math"
)

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
	I8   Type = 24
	I16  Type = 25
	I32  Type = 26
	I64  Type = 27
	F64  Type = 28
	BF16 Type = 30
)

// QK is the number of elements in a block of the 32-element formats; QKK
// the number in a K-quant super-block.
const (
	QK  = 32
	QKK = 256
)

type typeInfo struct {
	name       string
	blockSize  int
	blockBytes int
	supported  bool // Dequantize and VecDot implemented
}

var types = [...]typeInfo{
	F32:  {"F32", 1, 4, true},
	F16:  {"F16", 1, 2, true},
	BF16: {"BF16", 1, 2, true},
	Q4_0: {"Q4_0", QK, 2 + QK/2, true},
	Q4_1: {"Q4_1", QK, 4 + QK/2, true},
	Q5_0: {"Q5_0", QK, 2 + 4 + QK/2, true},
	Q5_1: {"Q5_1", QK, 4 + 4 + QK/2, true},
	Q8_0: {"Q8_0", QK, 2 + QK, true},
	Q8_1: {"Q8_1", QK, 4 + QK, true},
	Q2_K: {"Q2_K", QKK, QKK/16 + QKK/4 + 4, true},
	Q3_K: {"Q3_K", QKK, QKK/8 + QKK/4 + 12 + 2, true},
	Q4_K: {"Q4_K", QKK, 4 + 12 + QKK/2, true},
	Q5_K: {"Q5_K", QKK, 4 + 12 + QKK/8 + QKK/2, true},
	Q6_K: {"Q6_K", QKK, QKK/2 + QKK/4 + QKK/16 + 2, true},
	Q8_K: {"Q8_K", QKK, 4 + QKK + 2*QKK/16, true},
	I8:   {"I8", 1, 1, false},
	I16:  {"I16", 1, 2, false},
	I32:  {"I32", 1, 4, false},
	I64:  {"I64", 1, 8, false},
	F64:  {"F64", 1, 8, false},
}

// info returns t's layout; ok is false for an unknown type.
func (t Type) info() (typeInfo, bool) {
	if uint64(t) >= uint64(len(types)) || types[t].blockSize == 0 {
		return typeInfo{}, false
	}
	return types[t], true
}

// String returns ggml's name of the type ("F32", "Q4_K", …), or
// "type(N)" for an id this package does not know.
func (t Type) String() string {
	if ti, ok := t.info(); ok {
		return ti.name
	}
	return fmt.Sprintf("type(%d)", uint32(t))
}

// Known reports whether the block layout of t is known (its size can be
// computed), whether or not its arithmetic is implemented.
func (t Type) Known() bool {
	_, ok := t.info()
	return ok
}

// Supported reports whether Dequantize and VecDot implement t.
func (t Type) Supported() bool { ti, _ := t.info(); return ti.supported }

// BlockSize is the number of elements per block (1 for plain floats), or
// 0 for an unknown type.
func (t Type) BlockSize() int { ti, _ := t.info(); return ti.blockSize }

// BlockBytes is the number of bytes per block, or 0 for an unknown type.
func (t Type) BlockBytes() int { ti, _ := t.info(); return ti.blockBytes }

// RowBytes returns the byte size of n elements of type t. n must be a
// non-negative multiple of the block size.
func RowBytes(t Type, n int) (int, error) {
	ti, ok := t.info()
	if !ok {
		return 0, fmt.Errorf("ggml: unknown tensor type id %d", uint32(t))
	}
	if n < 0 {
		return 0, fmt.Errorf("ggml: negative element count %d", n)
	}
	if n%ti.blockSize != 0 {
		return 0, fmt.Errorf("ggml: %d elements is not a multiple of %s's block size %d", n, ti.name, ti.blockSize)
	}
	blocks := n / ti.blockSize
	if blocks > math.MaxInt/ti.blockBytes {
		return 0, fmt.Errorf("ggml: %d elements of %s overflow", n, ti.name)
	}
	return blocks * ti.blockBytes, nil
}

// ParseType returns the type named s (ggml's names, case-insensitive).
func ParseType(s string) (Type, error) {
	for t, ti := range types {
		if ti.blockSize != 0 && equalFold(ti.name, s) {
			return Type(t), nil
		}
	}
	return 0, fmt.Errorf("ggml: unknown tensor type %q", s)
}

func equalFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'a' <= x && x <= 'z' {
			x -= 'a' - 'A'
		}
		if 'a' <= y && y <= 'z' {
			y -= 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
