package ggml

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Q4_0 weights can be dotted against activations prepared once per row
// (PrepareQ4_0): the Q8_0 quants reordered to match the kernel's nibble
// registers, the block scales as float32 and the corrections 8·Σa, per
// group of eight blocks. The per-block work drops to the integer products;
// the result equals VecDot(Q4_0, ...) on the same Q8_0 row bit for bit.

// preparedGroup is the size of one group of eight prepared blocks: 256
// bytes of quants, eight float32 scales, eight int32 corrections.
const preparedGroup = 256 + 32 + 32

// PreparedQ4_0 reports whether DotQ4_0Prepared can run for rows of n
// values (the CPU has AVX2, FMA and F16C, and n is a multiple of 256).
func PreparedQ4_0(n int) bool { return havePrepared && n > 0 && n%(8*QK) == 0 }

// PreparedQ4_0Bytes is the size of a prepared row of n values.
func PreparedQ4_0Bytes(n int) int { return n / (8 * QK) * preparedGroup }

// PrepareQ4_0 prepares the Q8_0 row a (n values) into dst. It returns an
// error, changing nothing, when n is not a multiple of 256 or a slice is
// too short.
func PrepareQ4_0(a []byte, n int, dst []byte) error {
	if n <= 0 || n%(8*QK) != 0 {
		return fmt.Errorf("ggml: PrepareQ4_0: %d values, need a positive multiple of %d", n, 8*QK)
	}
	nb := n / QK
	if len(a) < 34*nb || len(dst) < PreparedQ4_0Bytes(n) {
		return fmt.Errorf("ggml: PrepareQ4_0: %d values need %d source and %d prepared bytes, have %d and %d",
			n, 34*nb, PreparedQ4_0Bytes(n), len(a), len(dst))
	}
	for g := range nb / 8 {
		out := dst[g*preparedGroup : (g+1)*preparedGroup]
		for k := range 8 {
			blk := a[34*(8*g+k) : 34*(8*g+k+1)]
			p, half := k/2, 16*(k%2)
			copy(out[64*p+half:64*p+half+16], blk[2:18])
			copy(out[64*p+32+half:64*p+32+half+16], blk[18:34])
			d := fp16At(blk[0:])
			binary.LittleEndian.PutUint32(out[256+4*k:], math.Float32bits(d))
			var s int32
			for _, q := range blk[2:34] {
				s += int32(int8(q))
			}
			binary.LittleEndian.PutUint32(out[288+4*k:], uint32(8*s))
		}
	}
	return nil
}

// q40pPerm puts the kernel's block sums back in block order.
var q40pPerm = [8]int32{0, 4, 1, 5, 2, 6, 3, 7}

// DotQ4_0Prepared returns the dot product of the Q4_0 row w (n values)
// with a row prepared by PrepareQ4_0. It returns an error when
// PreparedQ4_0(n) is false or a slice is too short.
func DotQ4_0Prepared(n int, w, p []byte) (float32, error) {
	if !PreparedQ4_0(n) {
		return 0, fmt.Errorf("ggml: DotQ4_0Prepared: not available for %d values", n)
	}
	nb := n / QK
	if len(w) < 18*nb || len(p) < PreparedQ4_0Bytes(n) {
		return 0, fmt.Errorf("ggml: DotQ4_0Prepared: %d values need %d weight and %d prepared bytes, have %d and %d",
			n, 18*nb, PreparedQ4_0Bytes(n), len(w), len(p))
	}
	return dotQ4_0Prep(nb/8, &w[0], &p[0]), nil
}

// DotQ4_0PreparedN sets out[j] = DotQ4_0Prepared(n, w, p[j*stride:]) for
// every j < len(out), decoding the weight row once per four prepared
// rows; every result equals DotQ4_0Prepared's bit for bit. It returns an
// error, changing nothing, under the conditions DotQ4_0Prepared does or
// when the prepared rows do not fit in p.
func DotQ4_0PreparedN(n int, w, p []byte, stride int, out []float32) error {
	if len(out) == 0 {
		return nil
	}
	if !PreparedQ4_0(n) {
		return fmt.Errorf("ggml: DotQ4_0PreparedN: not available for %d values", n)
	}
	nb, pb := n/QK, PreparedQ4_0Bytes(n)
	if len(w) < 18*nb || stride < pb || (len(out)-1)*stride+pb > len(p) {
		return fmt.Errorf("ggml: DotQ4_0PreparedN: %d rows of %d values %d bytes apart need %d weight and %d prepared bytes, have %d and %d",
			len(out), n, stride, 18*nb, (len(out)-1)*stride+pb, len(w), len(p))
	}
	j := 0
	for ; j+4 <= len(out); j += 4 {
		dotQ4_0Prepx4(nb/8, &w[0], &p[j*stride], stride, &out[j])
	}
	for ; j < len(out); j++ {
		out[j] = dotQ4_0Prep(nb/8, &w[0], &p[j*stride])
	}
	return nil
}

// Q8_0 weights can be dotted against activations prepared with
// PrepareQ8_0 where the CPU has AVX-512 VNNI: the quants offset to
// unsigned (a+128, block order), the scales as float32, per group of eight
// blocks (PreparedQ4_0Bytes long). One VNNI dot per block does the
// products; 128·Σw is subtracted once per weight group, so the block sums
// are exact and the result equals VecDot(Q8_0, ...) bit for bit.

// PreparedQ8_0 reports whether DotQ8_0PreparedN can run for rows of n
// values.
func PreparedQ8_0(n int) bool { return havePrepared8 && n > 0 && n%(8*QK) == 0 }

// PrepareQ8_0 prepares the Q8_0 row a (n values) into dst
// (PreparedQ4_0Bytes(n) bytes). It returns an error, changing nothing,
// when n is not a multiple of 256 or a slice is too short.
func PrepareQ8_0(a []byte, n int, dst []byte) error {
	if n <= 0 || n%(8*QK) != 0 {
		return fmt.Errorf("ggml: PrepareQ8_0: %d values, need a positive multiple of %d", n, 8*QK)
	}
	nb := n / QK
	if len(a) < 34*nb || len(dst) < PreparedQ4_0Bytes(n) {
		return fmt.Errorf("ggml: PrepareQ8_0: %d values need %d source and %d prepared bytes, have %d and %d",
			n, 34*nb, PreparedQ4_0Bytes(n), len(a), len(dst))
	}
	for g := range nb / 8 {
		out := dst[g*preparedGroup : (g+1)*preparedGroup]
		for k := range 8 {
			blk := a[34*(8*g+k) : 34*(8*g+k+1)]
			for i, q := range blk[2:34] {
				out[32*k+i] = q ^ 0x80
			}
			binary.LittleEndian.PutUint32(out[256+4*k:], math.Float32bits(fp16At(blk[0:])))
		}
	}
	return nil
}

// DotQ8_0PreparedN sets out[j] to the dot product of the Q8_0 row w (n
// values) with the prepared row p[j*stride:] for every j < len(out),
// decoding the weight row once per four prepared rows. Every result equals
// VecDot on the Q8_0 row it was prepared from, bit for bit. It returns an
// error, changing nothing, when PreparedQ8_0(n) is false or the rows do
// not fit.
func DotQ8_0PreparedN(n int, w, p []byte, stride int, out []float32) error {
	if len(out) == 0 {
		return nil
	}
	if !PreparedQ8_0(n) {
		return fmt.Errorf("ggml: DotQ8_0PreparedN: not available for %d values", n)
	}
	nb, pb := n/QK, PreparedQ4_0Bytes(n)
	if len(w) < 34*nb || stride < pb || (len(out)-1)*stride+pb > len(p) {
		return fmt.Errorf("ggml: DotQ8_0PreparedN: %d rows of %d values %d bytes apart need %d weight and %d prepared bytes, have %d and %d",
			len(out), n, stride, 34*nb, (len(out)-1)*stride+pb, len(w), len(p))
	}
	j := 0
	for ; j+4 <= len(out); j += 4 {
		dotQ8_0Ux4(nb/8, &w[0], &p[j*stride], stride, &out[j])
	}
	for ; j < len(out); j++ {
		out[j] = dotQ8_0U(nb/8, &w[0], &p[j*stride])
	}
	return nil
}
