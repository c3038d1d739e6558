package ggml

import (
	"encoding/binary"
	"fmt"
	"math"
	"unsafe"
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
//   - Q4_K, per super-block of 256 columns: the 16 rows' d (32 bytes)
//     and dmin (32 bytes) in half precision; their eight 6-bit sub-block
//     scales, sub-block after sub-block (8×16 bytes); their mins as pairs
//     of sub-blocks (2j, 2j+1), row after row (4×32 bytes); then per pair
//     of sub-blocks 8 chunks of 64 bytes, chunk k holding row after row
//     bytes 4k..4k+3 of the pair's 32 packed bytes (sub-block 2j in the
//     low nibbles, 2j+1 in the high ones). 2368 bytes.
//   - Q5_K: as Q4_K, with the rows' 32 high-bit bytes (bit j for
//     sub-block j) in 8 chunks of 64 bytes between the mins and the
//     nibbles. 2880 bytes.
//   - Q6_K, per super-block: the 16 rows' d (32 bytes); per half h and
//     32-value sub-block j (values 128h+32j..), the rows' two 16-value
//     scales (2×16 bytes); then per half the 6-bit weights as ggml packs
//     them, in chunks of 64 bytes holding row after row 4 of a row's
//     bytes: for k = 0..7 the high-bit chunk k then the low-bit chunk k of
//     sub-blocks 0 and 2, then the 8 low-bit chunks of sub-blocks 1 and 3
//     (r16Q6KQh, r16Q6KQl). The kernel reads them in that order (sub-blocks
//     0, 2, 1, 3), so a decode streams each block front to back. 3360
//     bytes, as many as the rows'.
//   - F16: column after column, the 16 rows' values (32 bytes).
//   - BF16: column pair after column pair (64 bytes): row r's values of
//     columns 2p and 2p+1 side by side at byte 4r, so that one register
//     holds both columns' values of the sixteen rows (the even one in
//     the low halves: shifted left by 16 it is the float32, and the odd
//     one is the float32 once the low halves are cleared).
//
// Quantized groups are multiplied with activations prepared by PrepareR16:
// per block of 32 values, the Q8_0 quants (32 bytes), the scale as a
// float32, and the corrections -8·Σa and -128·Σa that undo the unsigned
// offsets of the weights (48 bytes). Q4_K groups take Q8_K activations
// prepared by PrepareR16K, as do Q6_K groups: per super-block the 256
// quants, the scale as a float32, the eight 32-value sums as int16 (for
// Q4_K's mins), padding, and the sixteen 16-value sums times -32 as int32
// (for Q6_K's offset) (352 bytes). F16 groups
// are multiplied with float32 activations.

// R16Rows is the number of rows in an R16 group.
const R16Rows = 16

// r16ActBlock and r16KActBlock are the sizes of one prepared activation
// block of 32 values (Q8_0 and Q4_0 weights) and of one super-block of 256
// (Q4_K weights).
const (
	r16ActBlock  = 48
	r16KActBlock = 352
	r16Q4KBlock  = 2368
	r16Q5KBlock  = 2880
	r16Q6KBlock  = 3360
)

// r16MaxTokens is the most tokens one R16 kernel takes, except that Q5_K
// and Q6_K have kernels for r16WideTokens (hasR16Wide), which unpack a
// group's weights once for twice as many tokens.
const (
	r16MaxTokens  = 8
	r16WideTokens = 16
)

// R16Type reports whether t has an R16 layout.
func R16Type(t Type) bool {
	return t == Q4_0 || t == Q8_0 || t == Q4_K || t == Q5_K || t == Q6_K || t == F16 || t == BF16
}

// HaveR16 reports whether this CPU runs the R16 kernels of t (AVX-512 and
// VNNI for the quantized types; AVX-512, or AVX2 with FMA and F16C, for
// F16 and BF16). Without them the pure Go versions run, which are slower
// than the row-by-row kernels.
func HaveR16(t Type) bool {
	switch t {
	case Q4_0, Q8_0, Q4_K, Q5_K, Q6_K:
		return haveR16Q
	case F16, BF16:
		return haveR16F || haveR16F2
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
	bs := max(t.BlockSize(), QK)
	if cols <= 0 || cols%bs != 0 {
		return 0, fmt.Errorf("ggml: R16 %s needs a positive multiple of %d columns, have %d", t, bs, cols)
	}
	switch t {
	case Q4_K:
		return cols / QKK * r16Q4KBlock, nil
	case Q5_K:
		return cols / QKK * r16Q5KBlock, nil
	case Q6_K:
		return cols / QKK * r16Q6KBlock, nil
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
	le := binary.LittleEndian
	switch t {
	case Q8_0:
		rb := nb * 34
		for b := range nb {
			out := (*[544]byte)(dst[b*544:])
			for r := range R16Rows {
				blk := (*[34]byte)(src[r*rb+b*34:])
				o := out[4*r:]
				out[2*r], out[2*r+1] = blk[0], blk[1]
				for s := range 8 {
					le.PutUint32(o[32+64*s:], le.Uint32(blk[2+4*s:])^0x80808080)
				}
			}
		}
	case Q4_0:
		rb := nb * 18
		for b := range nb {
			out := (*[288]byte)(dst[b*288:])
			for r := range R16Rows {
				blk := (*[18]byte)(src[r*rb+b*18:])
				o := out[4*r:]
				out[2*r], out[2*r+1] = blk[0], blk[1]
				for j := range 4 {
					le.PutUint32(o[32+64*j:], le.Uint32(blk[2+4*j:]))
				}
			}
		}
	case Q4_K, Q5_K:
		q5 := t == Q5_K
		bb, gb, qs := q4KBytes, r16Q4KBlock, 320
		if q5 {
			bb, gb, qs = q5KBytes, r16Q5KBlock, 832
		}
		rb := cols / QKK * bb
		for b := range cols / QKK {
			out := dst[b*gb : (b+1)*gb]
			for r := range R16Rows {
				blk := src[r*rb+b*bb : r*rb+(b+1)*bb]
				out[2*r], out[2*r+1] = blk[0], blk[1]
				out[32+2*r], out[33+2*r] = blk[2], blk[3]
				for j := range 8 {
					sc, m := scaleMinK4(j, blk[4:16])
					out[64+16*j+r] = sc
					out[192+32*(j/2)+2*r+j%2] = m
				}
				nib := blk[16:]
				if q5 {
					for k := range 8 {
						le.PutUint32(out[320+64*k+4*r:], le.Uint32(blk[16+4*k:]))
					}
					nib = blk[48:]
				}
				for c := range 4 {
					for k := range 8 {
						le.PutUint32(out[qs+512*c+64*k+4*r:], le.Uint32(nib[32*c+4*k:]))
					}
				}
			}
		}
	case Q6_K:
		rb := cols / QKK * q6KBytes
		for b := range cols / QKK {
			out := (*[r16Q6KBlock]byte)(dst[b*r16Q6KBlock:])
			for r := range R16Rows {
				blk := (*[q6KBytes]byte)(src[r*rb+b*q6KBytes:])
				out[2*r], out[2*r+1] = blk[208], blk[209]
				for h := range 2 {
					for j := range 4 {
						out[32+32*(4*h+j)+r] = blk[192+8*h+2*j]
						out[48+32*(4*h+j)+r] = blk[192+8*h+2*j+1]
					}
					for k := range 8 {
						for p := range 2 {
							le.PutUint32(out[r16Q6KQl(h, p, k)+4*r:], le.Uint32(blk[64*h+32*p+4*k:]))
						}
						le.PutUint32(out[r16Q6KQh(h, k)+4*r:], le.Uint32(blk[128+32*h+4*k:]))
					}
				}
			}
		}
	case BF16:
		// column pairs: row r's two values side by side at 4r, as
		// VDPBF16PS multiplies them
		rb := 2 * cols
		for k := 0; k+4 <= cols; k += 4 {
			out := (*[128]byte)(dst[32*k:])
			for r := range R16Rows {
				v := le.Uint64(src[r*rb+2*k:])
				le.PutUint32(out[4*r:], uint32(v))
				le.PutUint32(out[64+4*r:], uint32(v>>32))
			}
		}
	case F16:
		// four columns of the sixteen rows at a time: 16 loads, 64 stores
		rb := 2 * cols
		for k := 0; k+4 <= cols; k += 4 {
			out := (*[128]byte)(dst[32*k:])
			for r := range R16Rows {
				v := le.Uint64(src[r*rb+2*k:])
				le.PutUint16(out[2*r:], uint16(v))
				le.PutUint16(out[32+2*r:], uint16(v>>16))
				le.PutUint16(out[64+2*r:], uint16(v>>32))
				le.PutUint16(out[96+2*r:], uint16(v>>48))
			}
		}
	}
}

// R16ActBytes is the size of one token's activations prepared for the
// quantized R16 kernels of t (by PrepareR16, or PrepareR16K for Q4_K and
// Q6_K) for cols columns.
func R16ActBytes(t Type, cols int) int {
	if t == Q4_K || t == Q5_K || t == Q6_K {
		return cols / QKK * r16KActBlock
	}
	return cols / QK * r16ActBlock
}

// PrepareR16 prepares one token's Q8_0 activations qa (cols values, as
// QuantizeActivations writes them) for the quantized R16 kernels into dst
// (R16ActBytes). It returns an error, changing nothing, when cols is not a
// positive multiple of 32 or a slice is too short.
func PrepareR16(qa []byte, cols int, dst []byte) error {
	if cols <= 0 || cols%QK != 0 {
		return fmt.Errorf("ggml: PrepareR16: %d values, need a positive multiple of %d", cols, QK)
	}
	nb := cols / QK
	if len(qa) < 34*nb || len(dst) < R16ActBytes(Q8_0, cols) {
		return fmt.Errorf("ggml: PrepareR16: %d values need %d source and %d prepared bytes, have %d and %d",
			cols, 34*nb, R16ActBytes(Q8_0, cols), len(qa), len(dst))
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

// QuantizeR16 quantizes one token's activations src for the R16 kernels
// of weight type t (Q4_0, Q8_0: to Q8_0 in blocks of 32; Q4_K, Q5_K, Q6_K:
// to Q8_K in super-blocks of 256) exactly as QuantizeActivations does, and
// writes them prepared as PrepareR16 or PrepareR16K would, into dst
// (R16ActBytes(t, len(src))), in one pass. It returns an error, changing
// nothing, when t has no quantized R16 kernels or a size does not fit.
func QuantizeR16(t Type, src []float32, dst []byte) error {
	vt := VecDotType(t)
	if !R16Type(t) || (vt != Q8_0 && vt != Q8_K) {
		return fmt.Errorf("ggml: QuantizeR16: no quantized R16 kernels for %s", t)
	}
	n, bs := len(src), vt.BlockSize()
	if n == 0 || n%bs != 0 {
		return fmt.Errorf("ggml: QuantizeR16: %d values for %s, need a positive multiple of %d", n, t, bs)
	}
	if len(dst) < R16ActBytes(t, n) {
		return fmt.Errorf("ggml: QuantizeR16: %d values need %d bytes, have %d", n, R16ActBytes(t, n), len(dst))
	}
	if vt == Q8_K {
		quantizeR16K(n/QKK, src, dst)
	} else {
		quantizeR16(n/QK, src, dst)
	}
	return nil
}

func quantizeR16Go(nb int, src []float32, dst []byte) {
	var blk [34]byte
	for b := range nb {
		// sizes checked by QuantizeR16; a block cannot fail
		_ = QuantizeActivations(Q8_0, src[QK*b:QK*(b+1)], blk[:])
		_ = PrepareR16(blk[:], QK, dst[r16ActBlock*b:])
	}
}

func quantizeR16KGo(nb int, src []float32, dst []byte) {
	var blk [q8KBytes]byte
	for b := range nb {
		// sizes checked by QuantizeR16K; a block cannot fail
		_ = QuantizeActivations(Q8_K, src[QKK*b:QKK*(b+1)], blk[:])
		_ = PrepareR16K(blk[:], QKK, dst[r16KActBlock*b:])
	}
}

// PrepareR16K prepares one token's Q8_K activations qa (cols values) for
// the Q4_K and Q6_K R16 kernels into dst (R16ActBytes(Q4_K, cols)). It returns an
// error, changing nothing, when cols is not a positive multiple of 256 or
// a slice is too short.
func PrepareR16K(qa []byte, cols int, dst []byte) error {
	if cols <= 0 || cols%QKK != 0 {
		return fmt.Errorf("ggml: PrepareR16K: %d values, need a positive multiple of %d", cols, QKK)
	}
	nb := cols / QKK
	if len(qa) < q8KBytes*nb || len(dst) < R16ActBytes(Q4_K, cols) {
		return fmt.Errorf("ggml: PrepareR16K: %d values need %d source and %d prepared bytes, have %d and %d",
			cols, q8KBytes*nb, R16ActBytes(Q4_K, cols), len(qa), len(dst))
	}
	for b := range nb {
		y := (*[q8KBytes]byte)(qa[q8KBytes*b:])
		out := (*[r16KActBlock]byte)(dst[r16KActBlock*b:])
		copy(out[0:256], y[4:260])
		copy(out[256:260], y[0:4])
		for j := range 8 {
			binary.LittleEndian.PutUint16(out[260+2*j:], uint16(int16(q8KBsum(y, 2*j)+q8KBsum(y, 2*j+1))))
		}
		clear(out[276:288])
		for g := range 16 {
			binary.LittleEndian.PutUint32(out[288+4*g:], uint32(-32*q8KBsum(y, g)))
		}
	}
	return nil
}

// GemmR16 multiplies groups consecutive R16 groups in w (t is Q4_0, Q8_0,
// Q4_K, Q5_K or Q6_K, cols columns) with ntok tokens (any number) of
// prepared activations, astride bytes apart in a, and sets
// out[i*ostride+r] to row r's product with token i (r < 16·groups). Each
// group goes through the tokens in tiles of eight while its weights are
// in the nearest cache. Within a row, each block's integer sum is exact
// and is scaled and added in float32 (one fused multiply-add per block,
// two per Q4_K super-block), in block order. It returns an error,
// changing nothing, when a size does not fit.
func GemmR16(t Type, cols, groups int, w, a []byte, astride, ntok int, out []float32, ostride int) error {
	gb, err := R16GroupBytes(t, cols)
	if err != nil {
		return err
	}
	if t == F16 || t == BF16 {
		return fmt.Errorf("ggml: GemmR16: %s groups take float activations (GemmR16Float)", t)
	}
	ab := R16ActBytes(t, cols)
	if err := checkR16Call(groups, min(ntok, r16MaxTokens), len(w), gb, len(a), astride, ab, len(out), ostride); err != nil {
		return err
	}
	if ntok > r16MaxTokens && (astride < ab || ostride < groups*R16Rows || len(a) < (ntok-1)*astride+ab || len(out) < (ntok-1)*ostride+groups*R16Rows) {
		return fmt.Errorf("ggml: R16: %d tokens of %d activation bytes (%d apart in %d) or output rows (%d apart in %d) do not fit", ntok, ab, astride, len(a), ostride, len(out))
	}
	nb := cols / t.BlockSize()
	wide := hasR16Wide(t)
	for g := range groups {
		for t0 := 0; t0 < ntok; {
			n := min(r16MaxTokens, ntok-t0)
			if wide && ntok-t0 >= r16WideTokens {
				n = r16WideTokens
			}
			gemmR16Q(t, nb, w[g*gb:], a[t0*astride:], astride, n, out[t0*ostride+g*R16Rows:], ostride)
			t0 += n
		}
	}
	return nil
}

// GemmR16Float multiplies groups consecutive F16 or BF16 R16 groups in w
// (cols columns) with ntok (1 to 8) float32 activation rows, xstride apart
// in x, and sets out[i*ostride+r] to row r's product with token i. It
// returns an error, changing nothing, when a size does not fit.
func GemmR16Float(t Type, cols, groups int, w []byte, x []float32, xstride, ntok int, out []float32, ostride int) error {
	if t != F16 && t != BF16 {
		return fmt.Errorf("ggml: GemmR16Float: %s groups take quantized activations (GemmR16)", t)
	}
	gb, err := R16GroupBytes(t, cols)
	if err != nil {
		return err
	}
	if err := checkR16Call(groups, ntok, len(w), gb, len(x), xstride, cols, len(out), ostride); err != nil {
		return err
	}
	g := 0
	for ; g+2 <= groups; g += 2 {
		if !gemmR16Float2(t, cols, w[g*gb:], gb, x, xstride, ntok, out[g*R16Rows:], ostride) {
			break
		}
	}
	for ; g < groups; g++ {
		gemmR16Float(t, cols, w[g*gb:], x, xstride, ntok, out[g*R16Rows:], ostride)
	}
	return nil
}

// HaveR16BF16Rounded reports whether this CPU runs GemmR16BF16Rounded in
// assembly (AVX512-BF16's VDPBF16PS, twice the multiply-adds per
// instruction of float32); elsewhere its pure Go version runs.
func HaveR16BF16Rounded() bool { return haveR16BF16DP }

// PrepareR16BF16 rounds one token's activations src (an even count) to
// bfloat16, to nearest even as llama.cpp converts the activations of
// BF16 weights, and packs them two to a float32 slot into the first
// len(src)/2 values of dst (the even column's bits in the low half), as
// GemmR16BF16Rounded takes them. dst may be src. It returns an error,
// changing nothing, when dst is short or the count odd.
func PrepareR16BF16(dst, src []float32) error {
	if len(src)%2 != 0 || len(dst) < len(src)/2 {
		return fmt.Errorf("ggml: PrepareR16BF16: %d values (need an even count) into %d slots", len(src), len(dst))
	}
	if len(src) > 0 {
		roundBF16(unsafe.Slice((*byte)(unsafe.Pointer(&dst[0])), 2*len(src)), src)
	}
	return nil
}

// GemmR16BF16Rounded is GemmR16Float for BF16 groups against activations
// prepared by PrepareR16BF16 (rows xstride float32 slots apart): every
// product of a weight and a rounded activation is exact, and the sums are
// float32. It returns an error, changing nothing, when a size does not
// fit.
func GemmR16BF16Rounded(cols, groups int, w []byte, x []float32, xstride, ntok int, out []float32, ostride int) error {
	gb, err := R16GroupBytes(BF16, cols)
	if err != nil {
		return err
	}
	if err := checkR16Call(groups, ntok, len(w), gb, len(x), xstride, cols/2, len(out), ostride); err != nil {
		return err
	}
	a := unsafe.Slice((*byte)(unsafe.Pointer(&x[0])), 4*((ntok-1)*xstride+cols/2))
	g := 0
	for ; g+2 <= groups; g += 2 {
		if !gemmR16BF16DP2(cols, w[g*gb:], gb, a, 4*xstride, ntok, out[g*R16Rows:], ostride) {
			break
		}
	}
	for ; g < groups; g++ {
		gemmR16BF16DP(cols, w[g*gb:], a, 4*xstride, ntok, out[g*R16Rows:], ostride)
	}
	return nil
}

// roundBF16Go writes src rounded to bfloat16 as VCVTNE2PS2BF16 does: to
// nearest even, subnormal inputs as zero, NaN kept quiet.
func roundBF16Go(dst []byte, src []float32) {
	for i, v := range src {
		binary.LittleEndian.PutUint16(dst[2*i:], fp32ToBF16(v))
	}
}

func fp32ToBF16(v float32) uint16 {
	b := math.Float32bits(v)
	switch {
	case b&0x7F800000 == 0: // zero or subnormal
		return uint16(b>>16) & 0x8000
	case b&0x7FFFFFFF > 0x7F800000: // NaN
		return uint16(b>>16) | 0x40
	}
	return uint16((b + 0x7FFF + (b>>16)&1) >> 16)
}

// gemmR16BF16DPGo is the pure Go twin of the VDPBF16PS kernels: row r's
// sum takes, pair after pair, the odd column's product and then the even
// one's (each exact in float32, each addition rounded), the order in which
// Intel defines the instruction; a (bfloat16 activations, as roundBF16Go
// writes them) holds ntok rows astride bytes apart.
func gemmR16BF16DPGo(cols int, w, a []byte, astride, ntok int, out []float32, ostride int) {
	le := binary.LittleEndian
	bf := func(h uint16) float32 { return math.Float32frombits(uint32(h) << 16) }
	for i := range ntok {
		ai := a[i*astride : i*astride+2*cols]
		var acc [R16Rows]float32
		for p := range cols / 2 {
			x0, x1 := bf(le.Uint16(ai[4*p:])), bf(le.Uint16(ai[4*p+2:]))
			for r := range R16Rows {
				v := le.Uint32(w[64*p+4*r:])
				acc[r] += bf(uint16(v>>16)) * x1
				acc[r] += bf(uint16(v)) * x0
			}
		}
		copy(out[i*ostride:i*ostride+R16Rows], acc[:])
	}
}

func checkR16Call(groups, ntok, lw, gb, la, astride, ab, lout, ostride int) error {
	rows := groups * R16Rows
	switch {
	case groups < 1:
		return fmt.Errorf("ggml: R16: %d groups, need at least 1", groups)
	case ntok < 1 || ntok > r16MaxTokens:
		return fmt.Errorf("ggml: R16: %d tokens, need 1 to %d", ntok, r16MaxTokens)
	case lw < groups*gb:
		return fmt.Errorf("ggml: R16: %d groups need %d bytes, have %d", groups, groups*gb, lw)
	case ntok > 1 && astride < ab, la < (ntok-1)*astride+ab:
		return fmt.Errorf("ggml: R16: %d activation rows of %d, %d apart, do not fit in %d", ntok, ab, astride, la)
	case ntok > 1 && ostride < rows, lout < (ntok-1)*ostride+rows:
		return fmt.Errorf("ggml: R16: %d output rows of %d, %d apart, do not fit in %d", ntok, rows, ostride, lout)
	}
	return nil
}

// gemmR16QGo is the pure Go R16 kernel of the quantized types.
func gemmR16QGo(t Type, nb int, w, a []byte, astride, ntok int, out []float32, ostride int) {
	switch t {
	case Q4_K, Q5_K:
		gemmR16Q4KGo(t == Q5_K, nb, w, a, astride, ntok, out, ostride)
		return
	case Q6_K:
		gemmR16Q6KGo(nb, w, a, astride, ntok, out, ostride)
		return
	}
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

// gemmR16Q4KGo is the pure Go Q4_K (and, with q5, Q5_K) R16 kernel: per
// super-block the scaled integer sums Σ sc·(q·a) and Σ m·Σa are exact,
// then added as d·da·S - dmin·da·M with two fused multiply-adds.
func gemmR16Q4KGo(q5 bool, nb int, w, a []byte, astride, ntok int, out []float32, ostride int) {
	gb, qs := r16Q4KBlock, 320
	if q5 {
		gb, qs = r16Q5KBlock, 832
	}
	for i := range ntok {
		act := a[i*astride:]
		var acc [R16Rows]float32
		for b := range nb {
			blk := w[b*gb : (b+1)*gb]
			y := (*[r16KActBlock]byte)(act[b*r16KActBlock:])
			da := f32At(y[256:])
			for r := range R16Rows {
				var s, m int32
				for j := range 8 {
					var isum int32
					for k := range 32 {
						at := 64*(k/4) + 4*r + k%4
						q := blk[qs+512*(j/2)+at]
						if j%2 == 1 {
							q >>= 4
						}
						q &= 15
						if q5 {
							q |= (blk[320+at] >> j & 1) << 4
						}
						isum += int32(q) * int32(int8(y[32*j+k]))
					}
					s += int32(blk[64+16*j+r]) * isum
					bs := int32(int16(binary.LittleEndian.Uint16(y[260+2*j:])))
					m += int32(blk[192+32*(j/2)+2*r+j%2]) * bs
				}
				acc[r] = fma32(float32(s), fp16At(blk[2*r:])*da, acc[r])
				acc[r] = fma32(-float32(m), fp16At(blk[32+2*r:])*da, acc[r])
			}
		}
		copy(out[i*ostride:i*ostride+R16Rows], acc[:])
	}
}

// r16Q6KQh and r16Q6KQl are the offsets in a Q6_K R16 block of high-bit
// chunk k of half h and of low-bit chunk k of sub-block pair p (sub-blocks
// p and p+2) of half h. asm_gen.go repeats them.
func r16Q6KQh(h, k int) int { return 288 + 1536*h + 128*k }
func r16Q6KQl(h, p, k int) int {
	if p == 0 {
		return 288 + 1536*h + 128*k + 64
	}
	return 288 + 1536*h + 1024 + 64*k
}

// gemmR16Q6KGo is the pure Go Q6_K R16 kernel: per super-block the
// integer sum Σ sc·(q·a - 32·Σa) over the sixteen 16-value groups is exact,
// then added as d·da·S with one fused multiply-add.
func gemmR16Q6KGo(nb int, w, a []byte, astride, ntok int, out []float32, ostride int) {
	for i := range ntok {
		act := a[i*astride:]
		var acc [R16Rows]float32
		for b := range nb {
			blk := (*[r16Q6KBlock]byte)(w[b*r16Q6KBlock:])
			y := (*[r16KActBlock]byte)(act[b*r16KActBlock:])
			da := f32At(y[256:])
			for r := range R16Rows {
				var s int32
				for h := range 2 {
					for j := range 4 {
						for half := range 2 {
							g := 8*h + 2*j + half
							isum := int32(binary.LittleEndian.Uint32(y[288+4*g:]))
							for l := 16 * half; l < 16*half+16; l++ {
								ql := blk[r16Q6KQl(h, j%2, l/4)+4*r+l%4]
								qh := blk[r16Q6KQh(h, l/4)+4*r+l%4]
								q := (ql>>(4*(j/2)))&15 | (qh>>(2*j)&3)<<4
								isum += int32(q) * int32(int8(y[128*h+32*j+l]))
							}
							s += int32(int8(blk[32+32*(4*h+j)+16*half+r])) * isum
						}
					}
				}
				acc[r] = fma32(float32(s), fp16At(blk[2*r:])*da, acc[r])
			}
		}
		copy(out[i*ostride:i*ostride+R16Rows], acc[:])
	}
}

// gemmR16FloatGo is the pure Go F16 and BF16 R16 kernel.
func gemmR16FloatGo(t Type, cols int, w []byte, x []float32, xstride, ntok int, out []float32, ostride int) {
	for i := range ntok {
		xi := x[i*xstride : i*xstride+cols]
		var acc [R16Rows]float32
		for k, v := range xi {
			for r := range R16Rows {
				var wv float32
				if t == BF16 {
					h := binary.LittleEndian.Uint16(w[64*(k/2)+4*r+2*(k%2):])
					wv = math.Float32frombits(uint32(h) << 16)
				} else {
					wv = FP16ToFP32(binary.LittleEndian.Uint16(w[32*k+2*r:]))
				}
				acc[r] = fma32(wv, v, acc[r])
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
