package ggml

import "math"

// fp16Table maps every IEEE half-precision bit pattern to its float32
// value (256 KiB), so that dequantization is one load per scale.
var fp16Table = func() *[1 << 16]float32 {
	t := new([1 << 16]float32)
	for i := range t {
		t[i] = fp16ToFP32Slow(uint16(i))
	}
	return t
}()

// FP16ToFP32 converts an IEEE 754 half-precision value (bits) to float32.
// The conversion is exact.
func FP16ToFP32(h uint16) float32 { return fp16Table[h] }

func fp16ToFP32Slow(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h) & 0x3ff
	switch {
	case exp == 0x1f:
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	case exp == 0:
		// Zero or subnormal: mant × 2^-24.
		f := float32(mant) * (1.0 / (1 << 24))
		if sign != 0 {
			f = -f
		}
		return f
	}
	return math.Float32frombits(sign | (exp+112)<<23 | mant<<13)
}

// FP32ToFP16 converts f to IEEE half precision, rounding to nearest with
// ties to even (as ggml's F16C path does); out-of-range values become
// infinities, NaNs stay NaN.
func FP32ToFP16(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int32(b>>23) & 0xff
	mant := b & 0x7fffff
	if exp == 0xff {
		if mant != 0 {
			return sign | 0x7e00 | uint16(mant>>13)
		}
		return sign | 0x7c00
	}
	e := exp - 127 + 15
	if e >= 0x1f {
		return sign | 0x7c00
	}
	if e <= 0 {
		if e < -10 {
			return sign
		}
		m := mant | 0x800000
		shift := uint32(14 - e)
		h := m >> shift
		rem := m & (1<<shift - 1)
		half := uint32(1) << (shift - 1)
		if rem > half || (rem == half && h&1 == 1) {
			h++
		}
		return sign | uint16(h)
	}
	h := uint32(e)<<10 | mant>>13
	rem := mant & 0x1fff
	if rem > 0x1000 || (rem == 0x1000 && h&1 == 1) {
		h++ // a carry into the exponent is correct, up to infinity
	}
	return sign | uint16(h)
}

// BF16ToFP32 converts a bfloat16 value (bits) to float32 (exact).
func BF16ToFP32(h uint16) float32 { return math.Float32frombits(uint32(h) << 16) }

// FP32ToBF16 converts f to bfloat16, rounding to nearest with ties to
// even; NaNs stay (quiet) NaN.
func FP32ToBF16(f float32) uint16 {
	u := math.Float32bits(f)
	if u&0x7fffffff > 0x7f800000 {
		return uint16(u>>16) | 64
	}
	return uint16((u + (0x7fff + (u>>16)&1)) >> 16)
}

// le16 reads a little-endian uint16 at b[0:2].
func le16(b []byte) uint16 { return uint16(b[0]) | uint16(b[1])<<8 }

// fp16At reads a little-endian half at b[0:2] as float32.
func fp16At(b []byte) float32 { return fp16Table[uint16(b[0])|uint16(b[1])<<8] }

func put16(b []byte, v uint16) { b[0], b[1] = byte(v), byte(v>>8) }

func f32At(b []byte) float32 {
	return math.Float32frombits(uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24)
}

func putF32(b []byte, f float32) {
	u := math.Float32bits(f)
	b[0], b[1], b[2], b[3] = byte(u), byte(u>>8), byte(u>>16), byte(u>>24)
}

// RoundHalf sets dst[i] to src[i] rounded to half precision (to nearest,
// ties to even, as FP32ToFP16 does) and back, for i < len(src); dst must be
// at least as long. It converts eight values at a time with F16C.
func RoundHalf(dst, src []float32) {
	roundHalf(dst[:len(src)], src)
}

func roundHalfGo(dst, src []float32) {
	for i, v := range src {
		dst[i] = FP16ToFP32(FP32ToFP16(v))
	}
}
