package ggml

import (
	"encoding/binary"
	"fmt"
	"math"
)

// The R16 layout repacks a weight matrix at load so that one 512-bit
// register holds the same columns of sixteen consecutive rows. A matrix
// multiplication then broadcasts a few activation values and multiplies
// them into all sixteen rows at once: the sixteen row results build up in
// the lanes of one register, scales are applied once per block for the
// whole group, and no horizontal sums are needed. One pass over a group's
// weights serves up to eight tokens.
//
// Rows are taken in groups of 16 (R16Rows); a group of a K-column matrix
// is stored block after block (K/32 blocks):
//
//   - Q8_0: 16 half-precision scales (32 bytes), then 8 chunks of 64
//     bytes; chunk s holds, row after row, the row's quants of columns
//     4s..4s+3 of the block, offset to unsigned (q+128). 544 bytes.
//   - Q4_0: 16 scales (32 bytes), then 4 chunks of 64 bytes; chunk j
//     holds, row after row, bytes 4j..4j+3 of the row's packed nibbles
//     (columns 4j..4j+3 in the low nibbles, 16+4j.. in the high ones).
//     288 bytes.
//   - F16: column after column, the 16 rows' halves (32 bytes).
//
// Quantized groups are multiplied with activations prepared by PrepareR16:
// per block of 32 values, the Q8_0 quants (32 bytes), the scale as a
// float32, and the corrections -8·Σa and -128·Σa that undo the unsigned
// offsets of the weights (48 bytes). F16 groups are multiplied with float32
// activations.

// R16Rows is the number of rows in an R16 group.
const R16Rows = 16

// r16ActBlock is the size of one prepared activation block.
const r16ActBlock = 48

// r16MaxTokens is the most tokens one GemmR16 call takes.
const r16MaxTokens = 8

// R16Type reports whether t has an R16 layout.
func R16Type(t Type) bool { return t == Q4_0 || t == Q8_0 || t == F16 }

// HaveR16 reports whether this CPU runs the R16 kernels of t (AVX-512,
// and VNNI for the quantized types). Without them the pure Go versions
// run, which are slower than the row-by-row kernels.
func HaveR16(t Type) bool {
	switch t {
	case Q4_0, Q8_0:
		return haveR16Q
	case F16:
		return haveR16F
	}
	return false
}

// R16GroupBytes is the size of one R16 group of a matrix of t with cols
// columns. It returns an error when t has no R16 layout or cols does not
// fit it (a positive multiple of 32).
func R16GroupBytes(t Type, cols int) (int, error) {
	if !R16Type(t) {
		return 0, fmt.Errorf("ggml: no R16 layout for %s", t)
	}
	if cols <= 0 || cols%QK != 0 {
		return 0, fmt.Errorf("ggml: R16 needs a positive multiple of %d columns, have %d", QK, cols)
	}
	switch t {
	case Q8_0:
		return cols / QK * 544, nil
	case Q4_0:
		return cols / QK * 288, nil
	}
	return cols * 2 * R16Rows, nil
}

// RepackR16 writes the rows×cols matrix src of type t (ggml's layout) in
// the R16 layout into dst, which must hold rows/16 groups. rows must be a
// multiple of 16. Nothing is written when it returns an error.
func RepackR16(t Type, src []byte, rows, cols int, dst []byte) error {
	gb, err := R16GroupBytes(t, cols)
	if err != nil {
		return err
	}
	if rows <= 0 || rows%R16Rows != 0 {
		return fmt.Errorf("ggml: R16 needs a positive multiple of %d rows, have %d", R16Rows, rows)
	}
	rb, err := RowBytes(t, cols)
	if err != nil {
		return err
	}
	if len(src) < rows*rb || len(dst) < rows/R16Rows*gb {
		return fmt.Errorf("ggml: repacking %d×%d %s needs %d source and %d destination bytes, have %d and %d",
			rows, cols, t, rows*rb, rows/R16Rows*gb, len(src), len(dst))
	}
	for g := range rows / R16Rows {
		RepackR16Group(t, src[g*R16Rows*rb:(g+1)*R16Rows*rb], cols, dst[g*gb:(g+1)*gb])
	}
	return nil
}

// RepackR16Group repacks one group: 16 rows of src (ggml's layout, cols
// columns, validated by the caller) into dst (R16GroupBytes).
func RepackR16Group(t Type, src []byte, cols int, dst []byte) {
	nb := cols / QK
	switch t {
	case Q8_0:
		const rb1 = 34
		rb := nb * rb1
		for b := range nb {
			out := dst[b*544 : (b+1)*544]
			for r := range R16Rows {
				blk := src[r*rb+b*rb1 : r*rb+(b+1)*rb1]
				copy(out[2*r:2*r+2], blk[0:2])
				for s := range 8 {
					for i := range 4 {
						out[32+64*s+4*r+i] = blk[2+4*s+i] ^ 0x80
					}
				}
			}
		}
	case Q4_0:
		const rb1 = 18
		rb := nb * rb1
		for b := range nb {
			out := dst[b*288 : (b+1)*288]
			for r := range R16Rows {
				blk := src[r*rb+b*rb1 : r*rb+(b+1)*rb1]
				copy(out[2*r:2*r+2], blk[0:2])
				for j := range 4 {
					copy(out[32+64*j+4*r:32+64*j+4*r+4], blk[2+4*j:2+4*j+4])
				}
			}
		}
	case F16:
		rb := 2 * cols
		for k := range cols {
			for r := range R16Rows {
				dst[32*k+2*r] = src[r*rb+2*k]
				dst[32*k+2*r+1] = src[r*rb+2*k+1]
			}
		}
	}
}

// R16ActBytes is the size of one token's activations prepared by
// PrepareR16 for cols columns.
func R16ActBytes(cols int) int { return cols / QK * r16ActBlock }

// PrepareR16 prepares one token's Q8_0 activations qa (cols values, as
// QuantizeActivations writes them) for the quantized R16 kernels into dst
// (R16ActBytes). It returns an error, changing nothing, when cols is not a
// positive multiple of 32 or a slice is too short.
func PrepareR16(qa []byte, cols int, dst []byte) error {
	if cols <= 0 || cols%QK != 0 {
		return fmt.Errorf("ggml: PrepareR16: %d values, need a positive multiple of %d", cols, QK)
	}
	nb := cols / QK
	if len(qa) < 34*nb || len(dst) < R16ActBytes(cols) {
		return fmt.Errorf("ggml: PrepareR16: %d values need %d source and %d prepared bytes, have %d and %d",
			cols, 34*nb, R16ActBytes(cols), len(qa), len(dst))
	}
	for b := range nb {
		blk := qa[34*b : 34*(b+1)]
		out := dst[r16ActBlock*b : r16ActBlock*(b+1)]
		copy(out[0:32], blk[2:34])
		var s int32
		for _, q := range blk[2:34] {
			s += int32(int8(q))
		}
		binary.LittleEndian.PutUint32(out[32:], math.Float32bits(fp16At(blk)))
		binary.LittleEndian.PutUint32(out[36:], uint32(-8*s))
		binary.LittleEndian.PutUint32(out[40:], uint32(-128*s))
		binary.LittleEndian.PutUint32(out[44:], 0)
	}
	return nil
}

// GemmR16 multiplies one R16 group w (t is Q4_0 or Q8_0, cols columns)
// with ntok (1 to 8) tokens of prepared activations, astride bytes apart
// in a, and sets out[i*ostride+r] to row r's product with token i. Within
// a row, each block's integer sum is exact and is scaled and added in
// float32 (one fused multiply-add per block), in block order. It returns
// an error, changing nothing, when a size does not fit.
func GemmR16(t Type, cols int, w, a []byte, astride, ntok int, out []float32, ostride int) error {
	gb, err := R16GroupBytes(t, cols)
	if err != nil {
		return err
	}
	if t == F16 {
		return fmt.Errorf("ggml: GemmR16: F16 groups take float activations (GemmR16F16)")
	}
	ab := R16ActBytes(cols)
	if err := checkR16Call(ntok, len(w), gb, len(a), astride, ab, len(out), ostride); err != nil {
		return err
	}
	gemmR16Q(t, cols/QK, w, a, astride, ntok, out, ostride)
	return nil
}

// GemmR16F16 multiplies one F16 R16 group w (cols columns) with ntok (1
// to 8) float32 activation rows, xstride apart in x, and sets
// out[i*ostride+r] to row r's product with token i. It returns an error,
// changing nothing, when a size does not fit.
func GemmR16F16(cols int, w []byte, x []float32, xstride, ntok int, out []float32, ostride int) error {
	gb, err := R16GroupBytes(F16, cols)
	if err != nil {
		return err
	}
	if err := checkR16Call(ntok, len(w), gb, len(x), xstride, cols, len(out), ostride); err != nil {
		return err
	}
	gemmR16F16(cols, w, x, xstride, ntok, out, ostride)
	return nil
}

func checkR16Call(ntok, lw, gb, la, astride, ab, lout, ostride int) error {
	switch {
	case ntok < 1 || ntok > r16MaxTokens:
		return fmt.Errorf("ggml: R16: %d tokens, need 1 to %d", ntok, r16MaxTokens)
	case lw < gb:
		return fmt.Errorf("ggml: R16: group needs %d bytes, have %d", gb, lw)
	case ntok > 1 && astride < ab, la < (ntok-1)*astride+ab:
		return fmt.Errorf("ggml: R16: %d activation rows of %d, %d apart, do not fit in %d", ntok, ab, astride, la)
	case ntok > 1 && ostride < R16Rows, lout < (ntok-1)*ostride+R16Rows:
		return fmt.Errorf("ggml: R16: %d output rows of %d, %d apart, do not fit in %d", ntok, R16Rows, ostride, lout)
	}
	return nil
}

// gemmR16QGo is the pure Go R16 kernel of the quantized types.
func gemmR16QGo(t Type, nb int, w, a []byte, astride, ntok int, out []float32, ostride int) {
	bb, corr := 544, 40
	if t == Q4_0 {
		bb, corr = 288, 36
	}
	for i := range ntok {
		act := a[i*astride:]
		var acc [R16Rows]float32
		for b := range nb {
			blk := w[b*bb : (b+1)*bb]
			ab := act[b*r16ActBlock : (b+1)*r16ActBlock]
			da := math.Float32frombits(binary.LittleEndian.Uint32(ab[32:]))
			c := int32(binary.LittleEndian.Uint32(ab[corr:]))
			for r := range R16Rows {
				s := c
				if t == Q8_0 {
					for k := range 32 {
						s += int32(blk[32+64*(k/4)+4*r+k%4]) * int32(int8(ab[k]))
					}
				} else {
					for k := range 16 {
						q := blk[32+64*(k/4)+4*r+k%4]
						s += int32(q&15)*int32(int8(ab[k])) + int32(q>>4)*int32(int8(ab[k+16]))
					}
				}
				d := fp16At(blk[2*r:]) * da
				acc[r] = fma32(float32(s), d, acc[r])
			}
		}
		copy(out[i*ostride:i*ostride+R16Rows], acc[:])
	}
}

// gemmR16F16Go is the pure Go F16 R16 kernel.
func gemmR16F16Go(cols int, w []byte, x []float32, xstride, ntok int, out []float32, ostride int) {
	for i := range ntok {
		xi := x[i*xstride : i*xstride+cols]
		var acc [R16Rows]float32
		for k, v := range xi {
			for r := range R16Rows {
				acc[r] = fma32(fp16At(w[32*k+2*r:]), v, acc[r])
			}
		}
		copy(out[i*ostride:i*ostride+R16Rows], acc[:])
	}
}

// fma32 is a float32 fused multiply-add (rounded once to float64, then to
// float32; equal to the hardware's single rounding except in rare ties).
func fma32(x, y, z float32) float32 {
	return float32(math.FMA(float64(x), float64(y), float64(z)))
}
