package ggml

import "fmt"

// checkRow validates that n elements of t fit in src (or dst) and returns
// the number of blocks.
func checkRow(op string, t Type, n, have int) (int, error) {
	need, err := RowBytes(t, n)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", op, err)
	}
	if have < need {
		return 0, fmt.Errorf("%s: %d elements of %s need %d bytes, have %d", op, n, t, need, have)
	}
	return n / t.BlockSize(), nil
}

// Dequantize decodes len(dst) elements of type t from src. len(dst) must
// be a multiple of t's block size and src must hold at least
// RowBytes(t, len(dst)) bytes.
func Dequantize(t Type, src []byte, dst []float32) error {
	if !t.Supported() {
		return fmt.Errorf("ggml: dequantize: unsupported type %s", t)
	}
	nb, err := checkRow("ggml: dequantize", t, len(dst), len(src))
	if err != nil {
		return err
	}
	switch t {
	case F32:
		if f, ok := asF32(src, len(dst)); ok {
			copy(dst, f)
			break
		}
		for i := range dst {
			dst[i] = f32At(src[4*i:])
		}
	case F16:
		for i := range dst {
			dst[i] = fp16Table[le16(src[2*i:])]
		}
	case BF16:
		for i := range dst {
			dst[i] = BF16ToFP32(le16(src[2*i:]))
		}
	case Q4_0:
		dequantQ4_0(src, dst, nb)
	case Q4_1:
		dequantQ4_1(src, dst, nb)
	case Q5_0:
		dequantQ5_0(src, dst, nb)
	case Q5_1:
		dequantQ5_1(src, dst, nb)
	case Q8_0:
		dequantQ8_0(src, dst, nb)
	case Q8_1:
		dequantQ8_1(src, dst, nb)
	case Q2_K:
		dequantQ2K(src, dst, nb)
	case Q3_K:
		dequantQ3K(src, dst, nb)
	case Q4_K:
		dequantQ4K(src, dst, nb)
	case Q5_K:
		dequantQ5K(src, dst, nb)
	case Q6_K:
		dequantQ6K(src, dst, nb)
	case Q8_K:
		dequantQ8K(src, dst, nb)
	}
	return nil
}

// Block layouts (little-endian, packed):
//   Q4_0 (18 B / 32): d f16, qs[16]: element j is qs[j]&15 (j<16) or
//        qs[j-16]>>4, value (q-8)·d.
//   Q4_1 (20 B / 32): d f16, m f16, qs[16]: value q·d + m.
//   Q5_0 (22 B / 32): d f16, qh u32 (bit j = high bit of element j), qs[16]:
//        value (q-16)·d.
//   Q5_1 (24 B / 32): d f16, m f16, qh u32, qs[16]: value q·d + m.
//   Q8_0 (34 B / 32): d f16, qs[32] int8: value q·d.
//   Q8_1 (36 B / 32): d f16, s f16 (= d·Σq), qs[32] int8.

func dequantQ4_0(src []byte, dst []float32, nb int) {
	for b := range nb {
		blk := (*[18]byte)(src[18*b:])
		y := (*[32]float32)(dst[32*b:])
		d := fp16At(blk[0:])
		for j := range 16 {
			q := blk[2+j]
			y[j] = float32(int(q&15)-8) * d
			y[j+16] = float32(int(q>>4)-8) * d
		}
	}
}

func dequantQ4_1(src []byte, dst []float32, nb int) {
	for b := range nb {
		blk := (*[20]byte)(src[20*b:])
		y := (*[32]float32)(dst[32*b:])
		d, m := fp16At(blk[0:]), fp16At(blk[2:])
		for j := range 16 {
			q := blk[4+j]
			y[j] = float32(q&15)*d + m
			y[j+16] = float32(q>>4)*d + m
		}
	}
}

func dequantQ5_0(src []byte, dst []float32, nb int) {
	for b := range nb {
		blk := (*[22]byte)(src[22*b:])
		y := (*[32]float32)(dst[32*b:])
		d := fp16At(blk[0:])
		qh := uint32(blk[2]) | uint32(blk[3])<<8 | uint32(blk[4])<<16 | uint32(blk[5])<<24
		for j := range 16 {
			q := blk[6+j]
			h0 := byte(qh>>j) & 1 << 4
			h1 := byte(qh>>(j+16)) & 1 << 4
			y[j] = float32(int(q&15|h0)-16) * d
			y[j+16] = float32(int(q>>4|h1)-16) * d
		}
	}
}

func dequantQ5_1(src []byte, dst []float32, nb int) {
	for b := range nb {
		blk := (*[24]byte)(src[24*b:])
		y := (*[32]float32)(dst[32*b:])
		d, m := fp16At(blk[0:]), fp16At(blk[2:])
		qh := uint32(blk[4]) | uint32(blk[5])<<8 | uint32(blk[6])<<16 | uint32(blk[7])<<24
		for j := range 16 {
			q := blk[8+j]
			h0 := byte(qh>>j) & 1 << 4
			h1 := byte(qh>>(j+16)) & 1 << 4
			y[j] = float32(q&15|h0)*d + m
			y[j+16] = float32(q>>4|h1)*d + m
		}
	}
}

func dequantQ8_0(src []byte, dst []float32, nb int) {
	for b := range nb {
		blk := (*[34]byte)(src[34*b:])
		y := (*[32]float32)(dst[32*b:])
		d := fp16At(blk[0:])
		for j := range 32 {
			y[j] = float32(int8(blk[2+j])) * d
		}
	}
}

func dequantQ8_1(src []byte, dst []float32, nb int) {
	for b := range nb {
		blk := (*[36]byte)(src[36*b:])
		y := (*[32]float32)(dst[32*b:])
		d := fp16At(blk[0:])
		for j := range 32 {
			y[j] = float32(int8(blk[4+j])) * d
		}
	}
}

// K-quant super-blocks of 256 elements:
//   Q2_K (84 B):  scales[16] (low nibble scale, high nibble min, per 16),
//                 qs[64] (2 bits), d f16, dmin f16.
//   Q3_K (110 B): hmask[32] (high bit), qs[64] (low 2 bits), scales[12]
//                 (16 6-bit scales, offset 32), d f16.
//   Q4_K (144 B): d f16, dmin f16, scales[12] (8 6-bit scales and mins),
//                 qs[128] (4 bits).
//   Q5_K (176 B): d f16, dmin f16, scales[12], qh[32], qs[128].
//   Q6_K (210 B): ql[128] (low 4 bits), qh[64] (high 2 bits), scales[16]
//                 int8, d f16.
//   Q8_K (292 B): d f32, qs[256] int8, bsums[16] int16 (sums per 16).

const (
	q2KBytes = 84
	q3KBytes = 110
	q4KBytes = 144
	q5KBytes = 176
	q6KBytes = 210
	q8KBytes = 292
)

func dequantQ2K(src []byte, dst []float32, nb int) {
	for b := range nb {
		blk := (*[q2KBytes]byte)(src[q2KBytes*b:])
		y := (*[256]float32)(dst[256*b:])
		d, dmin := fp16At(blk[80:]), fp16At(blk[82:])
		sc := blk[0:16]
		qs := blk[16:80]
		o, is := 0, 0
		for half := range 2 {
			q := qs[32*half : 32*half+32]
			for shift := uint(0); shift < 8; shift += 2 {
				for g := range 2 {
					s := sc[is]
					is++
					dl, ml := d*float32(s&15), dmin*float32(s>>4)
					for l := range 16 {
						y[o] = dl*float32((q[16*g+l]>>shift)&3) - ml
						o++
					}
				}
			}
		}
	}
}

// q3Scales unpacks the 16 6-bit scales of a Q3_K block (still offset by 32).
func q3Scales(s []byte, out *[16]int8) {
	_ = s[11]
	for j := range 16 {
		var lo byte
		if j < 8 {
			lo = s[j] & 15
		} else {
			lo = s[j-8] >> 4
		}
		hi := (s[8+j%4] >> (2 * (j / 4))) & 3
		out[j] = int8(lo|hi<<4) - 32
	}
}

func dequantQ3K(src []byte, dst []float32, nb int) {
	var scales [16]int8
	for b := range nb {
		blk := (*[q3KBytes]byte)(src[q3KBytes*b:])
		y := (*[256]float32)(dst[256*b:])
		hm := blk[0:32]
		qs := blk[32:96]
		q3Scales(blk[96:108], &scales)
		d := fp16At(blk[108:])
		o, is := 0, 0
		m := byte(1)
		for half := range 2 {
			q := qs[32*half : 32*half+32]
			for shift := uint(0); shift < 8; shift += 2 {
				for g := range 2 {
					dl := d * float32(scales[is])
					is++
					for l := range 16 {
						v := int((q[16*g+l] >> shift) & 3)
						if hm[16*g+l]&m == 0 {
							v -= 4
						}
						y[o] = dl * float32(v)
						o++
					}
				}
				m <<= 1
			}
		}
	}
}

// scaleMinK4 returns scale and min j (0..7) of a Q4_K/Q5_K scales array.
func scaleMinK4(j int, q []byte) (sc, m byte) {
	if j < 4 {
		return q[j] & 63, q[j+4] & 63
	}
	return q[j+4]&15 | (q[j-4]>>6)<<4, q[j+4]>>4 | (q[j]>>6)<<4
}

func dequantQ4K(src []byte, dst []float32, nb int) {
	for b := range nb {
		blk := (*[q4KBytes]byte)(src[q4KBytes*b:])
		y := (*[256]float32)(dst[256*b:])
		d, dmin := fp16At(blk[0:]), fp16At(blk[2:])
		scales := blk[4:16]
		for c := range 4 {
			q := blk[16+32*c : 48+32*c]
			sc1, m1 := scaleMinK4(2*c, scales)
			sc2, m2 := scaleMinK4(2*c+1, scales)
			d1, mm1 := d*float32(sc1), dmin*float32(m1)
			d2, mm2 := d*float32(sc2), dmin*float32(m2)
			o := 64 * c
			for l := range 32 {
				y[o+l] = d1*float32(q[l]&15) - mm1
				y[o+32+l] = d2*float32(q[l]>>4) - mm2
			}
		}
	}
}

func dequantQ5K(src []byte, dst []float32, nb int) {
	for b := range nb {
		blk := (*[q5KBytes]byte)(src[q5KBytes*b:])
		y := (*[256]float32)(dst[256*b:])
		d, dmin := fp16At(blk[0:]), fp16At(blk[2:])
		scales := blk[4:16]
		qh := blk[16:48]
		for c := range 4 {
			ql := blk[48+32*c : 80+32*c]
			sc1, m1 := scaleMinK4(2*c, scales)
			sc2, m2 := scaleMinK4(2*c+1, scales)
			d1, mm1 := d*float32(sc1), dmin*float32(m1)
			d2, mm2 := d*float32(sc2), dmin*float32(m2)
			u1, u2 := byte(1)<<(2*c), byte(2)<<(2*c)
			o := 64 * c
			for l := range 32 {
				v1 := ql[l] & 15
				if qh[l]&u1 != 0 {
					v1 += 16
				}
				v2 := ql[l] >> 4
				if qh[l]&u2 != 0 {
					v2 += 16
				}
				y[o+l] = d1*float32(v1) - mm1
				y[o+32+l] = d2*float32(v2) - mm2
			}
		}
	}
}

func dequantQ6K(src []byte, dst []float32, nb int) {
	for b := range nb {
		blk := (*[q6KBytes]byte)(src[q6KBytes*b:])
		y := (*[256]float32)(dst[256*b:])
		d := fp16At(blk[208:])
		for half := range 2 {
			ql := blk[64*half : 64*half+64]
			qh := blk[128+32*half : 160+32*half]
			sc := blk[192+8*half : 200+8*half]
			o := 128 * half
			for l := range 32 {
				is := l / 16
				q1 := int8(ql[l]&15|(qh[l]&3)<<4) - 32
				q2 := int8(ql[l+32]&15|((qh[l]>>2)&3)<<4) - 32
				q3 := int8(ql[l]>>4|((qh[l]>>4)&3)<<4) - 32
				q4 := int8(ql[l+32]>>4|((qh[l]>>6)&3)<<4) - 32
				y[o+l] = d * float32(int8(sc[is])) * float32(q1)
				y[o+l+32] = d * float32(int8(sc[is+2])) * float32(q2)
				y[o+l+64] = d * float32(int8(sc[is+4])) * float32(q3)
				y[o+l+96] = d * float32(int8(sc[is+6])) * float32(q4)
			}
		}
	}
}

func dequantQ8K(src []byte, dst []float32, nb int) {
	for b := range nb {
		blk := (*[q8KBytes]byte)(src[q8KBytes*b:])
		y := (*[256]float32)(dst[256*b:])
		d := f32At(blk[0:])
		for j := range 256 {
			y[j] = d * float32(int8(blk[4+j]))
		}
	}
}
