package ggml

import "unsafe"

// VecDotType returns the type activations are quantized to before a dot
// product with a row of type t, as ggml's CPU backend does: Q8_0 for
// Q4_0, Q5_0 and Q8_0; Q8_1 for Q4_1 and Q5_1; Q8_K for the K-quants;
// the type itself for F32, F16 and BF16.
func VecDotType(t Type) Type {
	switch t {
	case Q4_0, Q5_0, Q8_0:
		return Q8_0
	case Q4_1, Q5_1:
		return Q8_1
	case Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, Q8_K:
		return Q8_K
	}
	return t
}

// VecDot returns the dot product of n elements of a weight row w of type t
// with activations a already quantized to VecDotType(t) (QuantizeRow).
// Quantized types are multiplied block by block in integers and scaled
// once per block, as ggml does. n must be a multiple of t's block size and
// w and a must hold n elements; VecDot panics otherwise (a programming
// error: callers size rows once at load). Unsupported types give 0.
func VecDot(t Type, n int, w, a []byte) float32 {
	switch t {
	case F32:
		return dotF32Fast(n, w, a)
	case F16:
		return dotF16Fast(n, w, a)
	case BF16:
		return dotBF16Fast(n, w, a)
	case Q4_0:
		return dotQ4_0Fast(n/32, w, a)
	case Q4_1:
		return dotQ4_1Fast(n/32, w, a)
	case Q5_0:
		return dotQ5_0Fast(n/32, w, a)
	case Q5_1:
		return dotQ5_1Fast(n/32, w, a)
	case Q8_0:
		return dotQ8_0Fast(n/32, w, a)
	case Q8_1:
		return dotQ8_1(n/32, w, a)
	case Q2_K:
		return dotQ2KFast(n/256, w, a)
	case Q3_K:
		return dotQ3KFast(n/256, w, a)
	case Q4_K:
		return dotQ4KFast(n/256, w, a)
	case Q5_K:
		return dotQ5KFast(n/256, w, a)
	case Q6_K:
		return dotQ6KFast(n/256, w, a)
	case Q8_K:
		return dotQ8K(n/256, w, a)
	}
	return 0
}

// asF32 views b as float32s when it is 4-byte aligned (mapped tensors
// and heap buffers are), so the hot F32 path loads floats directly.
func asF32(b []byte, n int) ([]float32, bool) {
	if n == 0 || uintptr(unsafe.Pointer(unsafe.SliceData(b)))%4 != 0 {
		return nil, false
	}
	return unsafe.Slice((*float32)(unsafe.Pointer(unsafe.SliceData(b))), n), true
}

func dotF32(n int, w, a []byte) float32 {
	w, a = w[:4*n], a[:4*n]
	if wf, ok := asF32(w, n); ok {
		if af, ok := asF32(a, n); ok {
			return dotF32s(wf, af)
		}
	}
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= n; i += 4 {
		wb := (*[16]byte)(w[4*i:])
		ab := (*[16]byte)(a[4*i:])
		s0 += f32At(wb[0:]) * f32At(ab[0:])
		s1 += f32At(wb[4:]) * f32At(ab[4:])
		s2 += f32At(wb[8:]) * f32At(ab[8:])
		s3 += f32At(wb[12:]) * f32At(ab[12:])
	}
	for ; i < n; i++ {
		s0 += f32At(w[4*i:]) * f32At(a[4*i:])
	}
	return (s0 + s1) + (s2 + s3)
}

func dotF32s(x, y []float32) float32 {
	y = y[:len(x)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(x); i += 4 {
		xs := (*[4]float32)(x[i:])
		ys := (*[4]float32)(y[i:])
		s0 += xs[0] * ys[0]
		s1 += xs[1] * ys[1]
		s2 += xs[2] * ys[2]
		s3 += xs[3] * ys[3]
	}
	for ; i < len(x); i++ {
		s0 += x[i] * y[i]
	}
	return (s0 + s1) + (s2 + s3)
}

func dotF16(n int, w, a []byte) float32 {
	w, a = w[:2*n], a[:2*n]
	tab := fp16Table
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= n; i += 4 {
		wb := (*[8]byte)(w[2*i:])
		ab := (*[8]byte)(a[2*i:])
		s0 += tab[uint16(wb[0])|uint16(wb[1])<<8] * tab[uint16(ab[0])|uint16(ab[1])<<8]
		s1 += tab[uint16(wb[2])|uint16(wb[3])<<8] * tab[uint16(ab[2])|uint16(ab[3])<<8]
		s2 += tab[uint16(wb[4])|uint16(wb[5])<<8] * tab[uint16(ab[4])|uint16(ab[5])<<8]
		s3 += tab[uint16(wb[6])|uint16(wb[7])<<8] * tab[uint16(ab[6])|uint16(ab[7])<<8]
	}
	for ; i < n; i++ {
		s0 += tab[le16(w[2*i:])] * tab[le16(a[2*i:])]
	}
	return (s0 + s1) + (s2 + s3)
}

func dotBF16(n int, w, a []byte) float32 {
	w, a = w[:2*n], a[:2*n]
	var s0, s1 float32
	i := 0
	for ; i+2 <= n; i += 2 {
		wb := (*[4]byte)(w[2*i:])
		ab := (*[4]byte)(a[2*i:])
		s0 += BF16ToFP32(uint16(wb[0])|uint16(wb[1])<<8) * BF16ToFP32(uint16(ab[0])|uint16(ab[1])<<8)
		s1 += BF16ToFP32(uint16(wb[2])|uint16(wb[3])<<8) * BF16ToFP32(uint16(ab[2])|uint16(ab[3])<<8)
	}
	for ; i < n; i++ {
		s0 += BF16ToFP32(le16(w[2*i:])) * BF16ToFP32(le16(a[2*i:]))
	}
	return s0 + s1
}

func dotQ4_0(nb int, w, a []byte) float32 {
	w, a = w[:18*nb], a[:34*nb]
	var sum float32
	for b := range nb {
		x := (*[18]byte)(w[18*b:])
		y := (*[34]byte)(a[34*b:])
		qx := (*[16]byte)(x[2:])
		qy := (*[32]byte)(y[2:])
		var s int32
		for j := range 16 {
			s += (int32(qx[j]&15) - 8) * int32(int8(qy[j]))
			s += (int32(qx[j]>>4) - 8) * int32(int8(qy[j+16]))
		}
		sum += fp16At(x[0:]) * fp16At(y[0:]) * float32(s)
	}
	return sum
}

func dotQ4_1(nb int, w, a []byte) float32 {
	w, a = w[:20*nb], a[:36*nb]
	var sum float32
	for b := range nb {
		x := (*[20]byte)(w[20*b:])
		y := (*[36]byte)(a[36*b:])
		qx := (*[16]byte)(x[4:])
		qy := (*[32]byte)(y[4:])
		var s int32
		for j := range 16 {
			s += int32(qx[j]&15) * int32(int8(qy[j]))
			s += int32(qx[j]>>4) * int32(int8(qy[j+16]))
		}
		sum += fp16At(x[0:])*fp16At(y[0:])*float32(s) + fp16At(x[2:])*fp16At(y[2:])
	}
	return sum
}

func dotQ5_0(nb int, w, a []byte) float32 {
	w, a = w[:22*nb], a[:34*nb]
	var sum float32
	for b := range nb {
		x := (*[22]byte)(w[22*b:])
		y := (*[34]byte)(a[34*b:])
		qh := uint32(x[2]) | uint32(x[3])<<8 | uint32(x[4])<<16 | uint32(x[5])<<24
		qx := (*[16]byte)(x[6:])
		qy := (*[32]byte)(y[2:])
		var s int32
		for j := range 16 {
			h0 := int32(qh>>j&1) << 4
			h1 := int32(qh>>(j+16)&1) << 4
			s += (int32(qx[j]&15) | h0 - 16) * int32(int8(qy[j]))
			s += (int32(qx[j]>>4) | h1 - 16) * int32(int8(qy[j+16]))
		}
		sum += fp16At(x[0:]) * fp16At(y[0:]) * float32(s)
	}
	return sum
}

func dotQ5_1(nb int, w, a []byte) float32 {
	w, a = w[:24*nb], a[:36*nb]
	var sum float32
	for b := range nb {
		x := (*[24]byte)(w[24*b:])
		y := (*[36]byte)(a[36*b:])
		qh := uint32(x[4]) | uint32(x[5])<<8 | uint32(x[6])<<16 | uint32(x[7])<<24
		qx := (*[16]byte)(x[8:])
		qy := (*[32]byte)(y[4:])
		var s int32
		for j := range 16 {
			h0 := int32(qh>>j&1) << 4
			h1 := int32(qh>>(j+16)&1) << 4
			s += (int32(qx[j]&15) | h0) * int32(int8(qy[j]))
			s += (int32(qx[j]>>4) | h1) * int32(int8(qy[j+16]))
		}
		sum += fp16At(x[0:])*fp16At(y[0:])*float32(s) + fp16At(x[2:])*fp16At(y[2:])
	}
	return sum
}

func dotQ8_0(nb int, w, a []byte) float32 {
	w, a = w[:34*nb], a[:34*nb]
	var sum float32
	for b := range nb {
		x := (*[34]byte)(w[34*b:])
		y := (*[34]byte)(a[34*b:])
		qx := (*[32]byte)(x[2:])
		qy := (*[32]byte)(y[2:])
		var s0, s1 int32
		for j := 0; j < 32; j += 2 {
			s0 += int32(int8(qx[j])) * int32(int8(qy[j]))
			s1 += int32(int8(qx[j+1])) * int32(int8(qy[j+1]))
		}
		sum += fp16At(x[0:]) * fp16At(y[0:]) * float32(s0+s1)
	}
	return sum
}

func dotQ8_1(nb int, w, a []byte) float32 {
	w, a = w[:36*nb], a[:36*nb]
	var sum float32
	for b := range nb {
		x := (*[36]byte)(w[36*b:])
		y := (*[36]byte)(a[36*b:])
		qx := (*[32]byte)(x[4:])
		qy := (*[32]byte)(y[4:])
		var s int32
		for j := range 32 {
			s += int32(int8(qx[j])) * int32(int8(qy[j]))
		}
		sum += fp16At(x[0:]) * fp16At(y[0:]) * float32(s)
	}
	return sum
}

// q8KBsum returns bsums[g] of a Q8_K block.
func q8KBsum(y *[q8KBytes]byte, g int) int32 {
	return int32(int16(uint16(y[260+2*g]) | uint16(y[261+2*g])<<8))
}

func dotQ2K(nb int, w, a []byte) float32 {
	w, a = w[:q2KBytes*nb], a[:q8KBytes*nb]
	var sum float32
	for b := range nb {
		x := (*[q2KBytes]byte)(w[q2KBytes*b:])
		y := (*[q8KBytes]byte)(a[q8KBytes*b:])
		sc := (*[16]byte)(x[0:])
		var summs int32
		for j := range 16 {
			summs += q8KBsum(y, j) * int32(sc[j]>>4)
		}
		yd := f32At(y[0:])
		dall := yd * fp16At(x[80:])
		dmin := yd * fp16At(x[82:])
		var isum int32
		is := 0
		for half := range 2 {
			q2 := (*[32]byte)(x[16+32*half:])
			for k := range 4 {
				shift := uint(2 * k)
				q8 := (*[32]byte)(y[4+128*half+32*k:])
				var s0, s1 int32
				for l := range 16 {
					s0 += int32(int8(q8[l])) * int32((q2[l]>>shift)&3)
					s1 += int32(int8(q8[l+16])) * int32((q2[l+16]>>shift)&3)
				}
				isum += int32(sc[is]&15)*s0 + int32(sc[is+1]&15)*s1
				is += 2
			}
		}
		sum += dall*float32(isum) - dmin*float32(summs)
	}
	return sum
}

func dotQ3K(nb int, w, a []byte) float32 {
	w, a = w[:q3KBytes*nb], a[:q8KBytes*nb]
	var sum float32
	var scales [16]int8
	for b := range nb {
		x := (*[q3KBytes]byte)(w[q3KBytes*b:])
		y := (*[q8KBytes]byte)(a[q8KBytes*b:])
		hm := (*[32]byte)(x[0:])
		q3Scales(x[96:108], &scales)
		var isum int32
		is := 0
		m := byte(1)
		for half := range 2 {
			q3 := (*[32]byte)(x[32+32*half:])
			for k := range 4 {
				shift := uint(2 * k)
				q8 := (*[32]byte)(y[4+128*half+32*k:])
				var s0, s1 int32
				for l := range 16 {
					v0 := int32((q3[l] >> shift) & 3)
					if hm[l]&m == 0 {
						v0 -= 4
					}
					v1 := int32((q3[l+16] >> shift) & 3)
					if hm[l+16]&m == 0 {
						v1 -= 4
					}
					s0 += v0 * int32(int8(q8[l]))
					s1 += v1 * int32(int8(q8[l+16]))
				}
				isum += int32(scales[is])*s0 + int32(scales[is+1])*s1
				is += 2
				m <<= 1
			}
		}
		sum += fp16At(x[108:]) * f32At(y[0:]) * float32(isum)
	}
	return sum
}

// unpackK4 decodes the 8 6-bit scales and mins of a Q4_K/Q5_K block.
func unpackK4(q *[12]byte) (sc, mn [8]int32) {
	for j := range 4 {
		sc[j] = int32(q[j] & 63)
		mn[j] = int32(q[j+4] & 63)
		sc[j+4] = int32(q[j+8]&15 | (q[j]>>6)<<4)
		mn[j+4] = int32(q[j+8]>>4 | (q[j+4]>>6)<<4)
	}
	return sc, mn
}

func dotQ4K(nb int, w, a []byte) float32 {
	w, a = w[:q4KBytes*nb], a[:q8KBytes*nb]
	var sum float32
	for b := range nb {
		x := (*[q4KBytes]byte)(w[q4KBytes*b:])
		y := (*[q8KBytes]byte)(a[q8KBytes*b:])
		sc, mn := unpackK4((*[12]byte)(x[4:]))
		var summs int32
		for j := range 8 {
			summs += mn[j] * (q8KBsum(y, 2*j) + q8KBsum(y, 2*j+1))
		}
		var isum int32
		for c := range 4 {
			q4 := (*[32]byte)(x[16+32*c:])
			q8 := (*[64]byte)(y[4+64*c:])
			var s0, s1 int32
			for l := range 32 {
				s0 += int32(q4[l]&15) * int32(int8(q8[l]))
				s1 += int32(q4[l]>>4) * int32(int8(q8[l+32]))
			}
			isum += sc[2*c]*s0 + sc[2*c+1]*s1
		}
		yd := f32At(y[0:])
		sum += fp16At(x[0:])*yd*float32(isum) - fp16At(x[2:])*yd*float32(summs)
	}
	return sum
}

func dotQ5K(nb int, w, a []byte) float32 {
	w, a = w[:q5KBytes*nb], a[:q8KBytes*nb]
	var sum float32
	for b := range nb {
		x := (*[q5KBytes]byte)(w[q5KBytes*b:])
		y := (*[q8KBytes]byte)(a[q8KBytes*b:])
		sc, mn := unpackK4((*[12]byte)(x[4:]))
		var summs int32
		for j := range 8 {
			summs += mn[j] * (q8KBsum(y, 2*j) + q8KBsum(y, 2*j+1))
		}
		qh := (*[32]byte)(x[16:])
		var isum int32
		for c := range 4 {
			ql := (*[32]byte)(x[48+32*c:])
			q8 := (*[64]byte)(y[4+64*c:])
			sh := uint(2 * c)
			var s0, s1 int32
			for l := range 32 {
				v0 := int32(ql[l]&15) | int32((qh[l]>>sh)&1)<<4
				v1 := int32(ql[l]>>4) | int32((qh[l]>>(sh+1))&1)<<4
				s0 += v0 * int32(int8(q8[l]))
				s1 += v1 * int32(int8(q8[l+32]))
			}
			isum += sc[2*c]*s0 + sc[2*c+1]*s1
		}
		yd := f32At(y[0:])
		sum += fp16At(x[0:])*yd*float32(isum) - fp16At(x[2:])*yd*float32(summs)
	}
	return sum
}

func dotQ6K(nb int, w, a []byte) float32 {
	w, a = w[:q6KBytes*nb], a[:q8KBytes*nb]
	var sum float32
	for b := range nb {
		x := (*[q6KBytes]byte)(w[q6KBytes*b:])
		y := (*[q8KBytes]byte)(a[q8KBytes*b:])
		sc := (*[16]byte)(x[192:])
		var isum int32
		for half := range 2 {
			ql := (*[64]byte)(x[64*half:])
			qh := (*[32]byte)(x[128+32*half:])
			q8 := (*[128]byte)(y[4+128*half:])
			var s [8]int32 // per 16-element group
			for l := range 32 {
				g := l / 16
				h := qh[l]
				q1 := int32(ql[l]&15|(h&3)<<4) - 32
				q2 := int32(ql[l+32]&15|((h>>2)&3)<<4) - 32
				q3 := int32(ql[l]>>4|((h>>4)&3)<<4) - 32
				q4 := int32(ql[l+32]>>4|((h>>6)&3)<<4) - 32
				s[g] += q1 * int32(int8(q8[l]))
				s[g+2] += q2 * int32(int8(q8[l+32]))
				s[g+4] += q3 * int32(int8(q8[l+64]))
				s[g+6] += q4 * int32(int8(q8[l+96]))
			}
			for g := range 8 {
				isum += int32(int8(sc[8*half+g])) * s[g]
			}
		}
		sum += fp16At(x[208:]) * f32At(y[0:]) * float32(isum)
	}
	return sum
}

func dotQ8K(nb int, w, a []byte) float32 {
	w, a = w[:q8KBytes*nb], a[:q8KBytes*nb]
	var sum float32
	for b := range nb {
		x := (*[q8KBytes]byte)(w[q8KBytes*b:])
		y := (*[q8KBytes]byte)(a[q8KBytes*b:])
		var s int32
		for j := 4; j < 260; j++ {
			s += int32(int8(x[j])) * int32(int8(y[j]))
		}
		sum += f32At(x[0:]) * f32At(y[0:]) * float32(s)
	}
	return sum
}
