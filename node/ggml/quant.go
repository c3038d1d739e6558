package ggml

import (
	"fmt"
	"math"
)

// QuantizeRow encodes src as type t into dst, which must hold at least
// RowBytes(t, len(src)) bytes. The block quantizers follow ggml's
// reference (non-imatrix) quantizers step for step, in float32, so that
// files written here match what ggml's tools produce; F16 and BF16 round
// to nearest even.
func QuantizeRow(t Type, src []float32, dst []byte) error {
	nb, err := checkRow("ggml: quantize", t, len(src), len(dst))
	if err != nil {
		return err
	}
	switch t {
	case F32:
		for i, f := range src {
			putF32(dst[4*i:], f)
		}
	case F16:
		for i, f := range src {
			put16(dst[2*i:], FP32ToFP16(f))
		}
	case BF16:
		for i, f := range src {
			put16(dst[2*i:], FP32ToBF16(f))
		}
	case Q4_0:
		for b := range nb {
			quantQ4_0((*[32]float32)(src[32*b:]), (*[18]byte)(dst[18*b:]))
		}
	case Q4_1:
		for b := range nb {
			quantQ4_1((*[32]float32)(src[32*b:]), (*[20]byte)(dst[20*b:]))
		}
	case Q5_0:
		for b := range nb {
			quantQ5_0((*[32]float32)(src[32*b:]), (*[22]byte)(dst[22*b:]))
		}
	case Q5_1:
		for b := range nb {
			quantQ5_1((*[32]float32)(src[32*b:]), (*[24]byte)(dst[24*b:]))
		}
	case Q8_0:
		for b := range nb {
			quantQ8_0((*[32]float32)(src[32*b:]), (*[34]byte)(dst[34*b:]))
		}
	case Q8_1:
		for b := range nb {
			quantQ8_1((*[32]float32)(src[32*b:]), (*[36]byte)(dst[36*b:]))
		}
	case Q2_K:
		for b := range nb {
			quantQ2K((*[256]float32)(src[256*b:]), (*[q2KBytes]byte)(dst[q2KBytes*b:]))
		}
	case Q3_K:
		for b := range nb {
			quantQ3K((*[256]float32)(src[256*b:]), (*[q3KBytes]byte)(dst[q3KBytes*b:]))
		}
	case Q4_K:
		for b := range nb {
			quantQ4K((*[256]float32)(src[256*b:]), (*[q4KBytes]byte)(dst[q4KBytes*b:]))
		}
	case Q5_K:
		for b := range nb {
			quantQ5K((*[256]float32)(src[256*b:]), (*[q5KBytes]byte)(dst[q5KBytes*b:]))
		}
	case Q6_K:
		for b := range nb {
			quantQ6K((*[256]float32)(src[256*b:]), (*[q6KBytes]byte)(dst[q6KBytes*b:]))
		}
	case Q8_K:
		for b := range nb {
			quantQ8K((*[256]float32)(src[256*b:]), (*[q8KBytes]byte)(dst[q8KBytes*b:]))
		}
	default:
		return fmt.Errorf("ggml: quantize: unsupported type %s", t)
	}
	return nil
}

// nearestInt rounds to the nearest integer, ties to even, with ggml's
// float trick: adding 1.5·2^23 leaves the rounded integer in the low
// mantissa bits. Valid for |f| < 2^22 (as in ggml); larger values give
// meaningless but harmless results.
func nearestInt(f float32) int {
	val := f + 12582912
	return int(math.Float32bits(val)&0x007fffff) - 0x00400000
}

func abs32(f float32) float32 { return math.Float32frombits(math.Float32bits(f) &^ (1 << 31)) }

// roundAway rounds half away from zero, as C's roundf, for |f| < 2^28
// (the float64 addition is exact there), returning an int.
func roundAway(f float32) int {
	return int(float64(f) + math.Copysign(0.5, float64(f)))
}

// groupMaxEps is ggml's threshold below which a group counts as all zero.
const groupMaxEps = 1e-15

// absMax returns the element of largest magnitude (the first one on ties)
// and its magnitude.
func absMax(x []float32) (max, amax float32) {
	for _, v := range x {
		if a := abs32(v); a > amax {
			amax, max = a, v
		}
	}
	return max, amax
}

func quantQ4_0(x *[32]float32, y *[18]byte) {
	max, _ := absMax(x[:])
	d := max / -8
	var id float32
	if d != 0 {
		id = 1 / d
	}
	put16(y[0:], FP32ToFP16(d))
	for j := range 16 {
		x0, x1 := x[j]*id, x[16+j]*id
		q0 := min(15, int8(x0+8.5))
		q1 := min(15, int8(x1+8.5))
		y[2+j] = byte(q0) | byte(q1)<<4
	}
}

func minMax(x []float32) (lo, hi float32) {
	lo, hi = math.MaxFloat32, -math.MaxFloat32
	for _, v := range x {
		if v < lo {
			lo = v
		}
		if v > hi {
			hi = v
		}
	}
	return lo, hi
}

func quantQ4_1(x *[32]float32, y *[20]byte) {
	lo, hi := minMax(x[:])
	d := (hi - lo) / 15
	var id float32
	if d != 0 {
		id = 1 / d
	}
	put16(y[0:], FP32ToFP16(d))
	put16(y[2:], FP32ToFP16(lo))
	for j := range 16 {
		x0, x1 := (x[j]-lo)*id, (x[16+j]-lo)*id
		q0 := min(15, int8(x0+0.5))
		q1 := min(15, int8(x1+0.5))
		y[4+j] = byte(q0) | byte(q1)<<4
	}
}

func quantQ5_0(x *[32]float32, y *[22]byte) {
	max, _ := absMax(x[:])
	d := max / -16
	var id float32
	if d != 0 {
		id = 1 / d
	}
	put16(y[0:], FP32ToFP16(d))
	var qh uint32
	for j := range 16 {
		x0, x1 := x[j]*id, x[16+j]*id
		q0 := byte(min(31, int8(x0+16.5)))
		q1 := byte(min(31, int8(x1+16.5)))
		y[6+j] = q0&15 | (q1&15)<<4
		qh |= uint32(q0>>4&1) << j
		qh |= uint32(q1>>4&1) << (j + 16)
	}
	y[2], y[3], y[4], y[5] = byte(qh), byte(qh>>8), byte(qh>>16), byte(qh>>24)
}

func quantQ5_1(x *[32]float32, y *[24]byte) {
	lo, hi := minMax(x[:])
	d := (hi - lo) / 31
	var id float32
	if d != 0 {
		id = 1 / d
	}
	put16(y[0:], FP32ToFP16(d))
	put16(y[2:], FP32ToFP16(lo))
	var qh uint32
	for j := range 16 {
		x0, x1 := (x[j]-lo)*id, (x[16+j]-lo)*id
		q0 := byte(x0 + 0.5)
		q1 := byte(x1 + 0.5)
		y[8+j] = q0&15 | (q1&15)<<4
		qh |= uint32(q0>>4&1) << j
		qh |= uint32(q1>>4&1) << (j + 16)
	}
	y[4], y[5], y[6], y[7] = byte(qh), byte(qh>>8), byte(qh>>16), byte(qh>>24)
}

func quantQ8_0(x *[32]float32, y *[34]byte) {
	var amax float32
	for _, v := range x {
		amax = max(amax, abs32(v))
	}
	d := amax / 127
	var id float32
	if d != 0 {
		id = 1 / d
	}
	put16(y[0:], FP32ToFP16(d))
	for j, v := range x {
		y[2+j] = byte(int8(roundAway(v * id)))
	}
}

func quantQ8_1(x *[32]float32, y *[36]byte) {
	var amax float32
	for _, v := range x {
		amax = max(amax, abs32(v))
	}
	d := amax / 127
	var id float32
	if d != 0 {
		id = 1 / d
	}
	put16(y[0:], FP32ToFP16(d))
	sum := 0
	for j, v := range x {
		q := int8(roundAway(v * id))
		y[4+j] = byte(q)
		sum += int(q)
	}
	put16(y[2:], FP32ToFP16(float32(sum)*d))
}

func quantQ8K(x *[256]float32, y *[q8KBytes]byte) {
	max, amax := absMax(x[:])
	if amax == 0 {
		clear(y[:])
		return
	}
	iscale := -127 / max
	for j, v := range x {
		y[4+j] = byte(int8(min(127, nearestInt(iscale*v))))
	}
	for g := range 16 {
		sum := 0
		for _, q := range y[4+16*g : 4+16*g+16] {
			sum += int(int8(q))
		}
		put16(y[260+2*g:], uint16(int16(sum)))
	}
	putF32(y[0:], 1/iscale)
}

// makeQXQuants fits a symmetric scale to x with levels in [-nmax, nmax-1]
// (written to L offset by nmax), weighting the error by x² (ggml's
// rmse_type 1 without importance weights), searching 18 scales near the
// plain one.
func makeQXQuants(n, nmax int, x []float32, L []int8) float32 {
	max, amax := absMax(x[:n])
	if amax < groupMaxEps {
		for i := range n {
			L[i] = 0
		}
		return 0
	}
	fnmax := float32(nmax)
	iscale := float32(-nmax) / max
	var sumlx, suml2 float32
	for i := range n {
		l := nearestInt(iscale * x[i])
		l = max2(-nmax, min(nmax-1, l))
		L[i] = int8(l + nmax)
		w := x[i] * x[i]
		fl := float32(l)
		sumlx += w * x[i] * fl
		suml2 += w * fl * fl
	}
	var scale float32
	if suml2 != 0 {
		scale = sumlx / suml2
	}
	best := scale * sumlx
	for is := -9; is <= 9; is++ {
		if is == 0 {
			continue
		}
		iscale = -(fnmax + 0.1*float32(is)) / max
		sumlx, suml2 = 0, 0
		for i := range n {
			l := nearestInt(iscale * x[i])
			l = max2(-nmax, min(nmax-1, l))
			w := x[i] * x[i]
			fl := float32(l)
			sumlx += w * x[i] * fl
			suml2 += w * fl * fl
		}
		if suml2 > 0 && sumlx*sumlx > best*suml2 {
			for i := range n {
				l := nearestInt(iscale * x[i])
				L[i] = int8(nmax + max2(-nmax, min(nmax-1, l)))
			}
			scale = sumlx / suml2
			best = scale * sumlx
		}
	}
	return scale
}

func max2(a, b int) int {
	if a > b {
		return a
	}
	return b
}

// makeQ3Quants is makeQXQuants' variant for Q3_K: a plain fit, then up to
// five passes moving single elements to a better level.
func makeQ3Quants(n, nmax int, x []float32, L []int8) float32 {
	max, amax := absMax(x[:n])
	if amax < groupMaxEps {
		for i := range n {
			L[i] = 0
		}
		return 0
	}
	iscale := float32(-nmax) / max
	var sumlx, suml2 float32
	for i := range n {
		l := nearestInt(iscale * x[i])
		l = max2(-nmax, min(nmax-1, l))
		L[i] = int8(l)
		w := x[i] * x[i]
		fl := float32(l)
		sumlx += w * x[i] * fl
		suml2 += w * fl * fl
	}
	for range 5 {
		changed := 0
		for i := range n {
			w := x[i] * x[i]
			fl := float32(L[i])
			slx := sumlx - w*x[i]*fl
			if slx > 0 {
				sl2 := suml2 - w*fl*fl
				nl := nearestInt(x[i] * sl2 / slx)
				nl = max2(-nmax, min(nmax-1, nl))
				if nl != int(L[i]) {
					fn := float32(nl)
					slx += w * x[i] * fn
					sl2 += w * fn * fn
					if sl2 > 0 && slx*slx*suml2 > sumlx*sumlx*sl2 {
						L[i] = int8(nl)
						sumlx, suml2 = slx, sl2
						changed++
					}
				}
			}
		}
		if changed == 0 {
			break
		}
	}
	for i := range n {
		L[i] += int8(nmax)
	}
	if suml2 > 0 {
		return sumlx / suml2
	}
	return 0
}

// makeQKX2Quants fits scale and min (levels 0..nmax) to x under the given
// weights, trying nstep+1 scales from (nmax+rmin)/(max-min) upward by
// rdelta; the error is absolute (useMAD) or squared. It returns the scale
// and writes -min (≥ 0) to theMin.
func makeQKX2Quants(n, nmax int, x, weights []float32, L, Laux []uint8, theMin *float32, rmin, rdelta float32, nstep int, useMAD bool) float32 {
	lo, hi := x[0], x[0]
	sumW := weights[0]
	sumX := sumW * x[0]
	for i := 1; i < n; i++ {
		if x[i] < lo {
			lo = x[i]
		}
		if x[i] > hi {
			hi = x[i]
		}
		w := weights[i]
		sumW += w
		sumX += w * x[i]
	}
	if lo > 0 {
		lo = 0
	}
	if hi == lo {
		for i := range n {
			L[i] = 0
		}
		*theMin = -lo
		return 0
	}
	fnmax := float32(nmax)
	iscale := fnmax / (hi - lo)
	scale := 1 / iscale
	var bestErr float32
	for i := range n {
		l := nearestInt(iscale * (x[i] - lo))
		L[i] = uint8(max2(0, min(nmax, l)))
		diff := scale*float32(L[i]) + lo - x[i]
		if useMAD {
			diff = abs32(diff)
		} else {
			diff = diff * diff
		}
		bestErr += weights[i] * diff
	}
	if nstep < 1 {
		*theMin = -lo
		return scale
	}
	for is := 0; is <= nstep; is++ {
		iscale = (rmin + rdelta*float32(is) + fnmax) / (hi - lo)
		var sumL, sumL2, sumXL float32
		for i := range n {
			l := nearestInt(iscale * (x[i] - lo))
			l = max2(0, min(nmax, l))
			Laux[i] = uint8(l)
			w := weights[i]
			fl := float32(l)
			sumL += w * fl
			sumL2 += w * fl * fl
			sumXL += w * fl * x[i]
		}
		D := sumW*sumL2 - sumL*sumL
		if D > 0 {
			thisScale := (sumW*sumXL - sumX*sumL) / D
			thisMin := (sumL2*sumX - sumL*sumXL) / D
			if thisMin > 0 {
				thisMin = 0
				thisScale = sumXL / sumL2
			}
			var curErr float32
			for i := range n {
				diff := thisScale*float32(Laux[i]) + thisMin - x[i]
				if useMAD {
					diff = abs32(diff)
				} else {
					diff = diff * diff
				}
				curErr += weights[i] * diff
			}
			if curErr < bestErr {
				copy(L[:n], Laux[:n])
				bestErr = curErr
				scale = thisScale
				lo = thisMin
			}
		}
	}
	*theMin = -lo
	return scale
}

func quantQ2K(x *[256]float32, y *[q2KBytes]byte) {
	var (
		L       [256]uint8
		Laux    [16]uint8
		weights [16]float32
		mins    [16]float32
		scales  [16]float32
	)
	const q4scale = 15
	var maxScale, maxMin float32
	for j := range 16 {
		xs := x[16*j : 16*j+16]
		for l := range 16 {
			weights[l] = abs32(xs[l])
		}
		scales[j] = makeQKX2Quants(16, 3, xs, weights[:], L[16*j:], Laux[:], &mins[j], -0.5, 0.1, 15, true)
		maxScale = max(maxScale, scales[j])
		maxMin = max(maxMin, mins[j])
	}
	sc := y[0:16]
	if maxScale > 0 {
		iscale := q4scale / maxScale
		for j := range 16 {
			sc[j] = byte(nearestInt(iscale * scales[j]))
		}
		put16(y[80:], FP32ToFP16(maxScale/q4scale))
	} else {
		clear(sc)
		put16(y[80:], FP32ToFP16(0))
	}
	if maxMin > 0 {
		iscale := q4scale / maxMin
		for j := range 16 {
			sc[j] |= byte(nearestInt(iscale*mins[j]) << 4)
		}
		put16(y[82:], FP32ToFP16(maxMin/q4scale))
	} else {
		put16(y[82:], FP32ToFP16(0))
	}
	dAll, dMin := fp16At(y[80:]), fp16At(y[82:])
	for j := range 16 {
		d := dAll * float32(sc[j]&15)
		if d == 0 {
			continue
		}
		dm := dMin * float32(sc[j]>>4)
		for ii := range 16 {
			l := nearestInt((x[16*j+ii] + dm) / d)
			L[16*j+ii] = uint8(max2(0, min(3, l)))
		}
	}
	qs := y[16:80]
	for j := 0; j < 256; j += 128 {
		for l := range 32 {
			qs[j/4+l] = L[j+l] | L[j+l+32]<<2 | L[j+l+64]<<4 | L[j+l+96]<<6
		}
	}
}

func quantQ3K(x *[256]float32, y *[q3KBytes]byte) {
	var (
		L      [256]int8
		scales [16]float32
	)
	var maxScale, amax float32
	for j := range 16 {
		scales[j] = makeQ3Quants(16, 4, x[16*j:16*j+16], L[16*j:])
		if s := abs32(scales[j]); s > amax {
			amax, maxScale = s, scales[j]
		}
	}
	sc := y[96:108]
	clear(sc)
	if maxScale != 0 {
		iscale := -32 / maxScale
		for j := range 16 {
			l := int8(nearestInt(iscale * scales[j]))
			l = max(-32, min(31, l)) + 32
			if j < 8 {
				sc[j] = byte(l) & 15
			} else {
				sc[j-8] |= (byte(l) & 15) << 4
			}
			l >>= 4
			sc[j%4+8] |= byte(l) << (2 * (j / 4))
		}
		put16(y[108:], FP32ToFP16(1/iscale))
	} else {
		put16(y[108:], FP32ToFP16(0))
	}
	var s16 [16]int8
	q3Scales(sc, &s16)
	dAll := fp16At(y[108:])
	for j := range 16 {
		d := dAll * float32(s16[j])
		if d == 0 {
			continue
		}
		for ii := range 16 {
			l := nearestInt(x[16*j+ii] / d)
			L[16*j+ii] = int8(max2(-4, min(3, l)) + 4)
		}
	}
	hmask := y[0:32]
	clear(hmask)
	m, hm := 0, byte(1)
	for j := range 256 {
		if L[j] > 3 {
			hmask[m] |= hm
			L[j] -= 4
		}
		m++
		if m == 32 {
			m, hm = 0, hm<<1
		}
	}
	qs := y[32:96]
	for j := 0; j < 256; j += 128 {
		for l := range 32 {
			qs[j/4+l] = byte(L[j+l]) | byte(L[j+l+32])<<2 | byte(L[j+l+64])<<4 | byte(L[j+l+96])<<6
		}
	}
}

// packScalesK4 writes 8 6-bit scales and mins in the Q4_K/Q5_K layout.
func packScalesK4(ls, lm *[8]uint8, out []byte) {
	for j := range 8 {
		if j < 4 {
			out[j] = ls[j]
			out[j+4] = lm[j]
		} else {
			out[j+4] = ls[j]&15 | (lm[j]&15)<<4
			out[j-4] |= (ls[j] >> 4) << 6
			out[j] |= (lm[j] >> 4) << 6
		}
	}
}

// fitK4 runs the per-32 scale/min fit of Q4_K (nmax 15) and Q5_K (nmax
// 31) and writes d, dmin and the packed scales to y[0:16]; L receives the
// levels requantized with the stored scales.
func fitK4(x *[256]float32, y []byte, L *[256]uint8, nmax int, rmin, rdelta float32, nstep int) {
	var (
		Laux    [32]uint8
		weights [32]float32
		mins    [8]float32
		scales  [8]float32
	)
	var maxScale, maxMin float32
	for j := range 8 {
		xs := x[32*j : 32*j+32]
		var sumX2 float32
		for _, v := range xs {
			sumX2 += v * v
		}
		avX := float32(math.Sqrt(float64(sumX2 / 32)))
		for l := range 32 {
			weights[l] = avX + abs32(xs[l])
		}
		scales[j] = makeQKX2Quants(32, nmax, xs, weights[:], L[32*j:], Laux[:], &mins[j], rmin, rdelta, nstep, false)
		maxScale = max(maxScale, scales[j])
		maxMin = max(maxMin, mins[j])
	}
	var invScale, invMin float32
	if maxScale > 0 {
		invScale = 63 / maxScale
	}
	if maxMin > 0 {
		invMin = 63 / maxMin
	}
	var ls, lm [8]uint8
	for j := range 8 {
		ls[j] = min(63, uint8(nearestInt(invScale*scales[j])))
		lm[j] = min(63, uint8(nearestInt(invMin*mins[j])))
	}
	packScalesK4(&ls, &lm, y[4:16])
	put16(y[0:], FP32ToFP16(maxScale/63))
	put16(y[2:], FP32ToFP16(maxMin/63))
	dAll, dMin := fp16At(y[0:]), fp16At(y[2:])
	for j := range 8 {
		sc, m := scaleMinK4(j, y[4:16])
		d := dAll * float32(sc)
		if d == 0 {
			continue
		}
		dm := dMin * float32(m)
		for ii := range 32 {
			l := nearestInt((x[32*j+ii] + dm) / d)
			L[32*j+ii] = uint8(max2(0, min(nmax, l)))
		}
	}
}

func quantQ4K(x *[256]float32, y *[q4KBytes]byte) {
	var L [256]uint8
	fitK4(x, y[:], &L, 15, -1, 0.1, 20)
	q := y[16:]
	for j := 0; j < 256; j += 64 {
		for l := range 32 {
			q[j/2+l] = L[j+l] | L[j+l+32]<<4
		}
	}
}

func quantQ5K(x *[256]float32, y *[q5KBytes]byte) {
	var L [256]uint8
	fitK4(x, y[:], &L, 31, -0.5, 0.1, 15)
	qh := y[16:48]
	ql := y[48:176]
	clear(qh)
	m1, m2 := byte(1), byte(2)
	for n := 0; n < 256; n += 64 {
		for j := range 32 {
			l1, l2 := L[n+j], L[n+j+32]
			if l1 > 15 {
				l1 -= 16
				qh[j] |= m1
			}
			if l2 > 15 {
				l2 -= 16
				qh[j] |= m2
			}
			ql[n/2+j] = l1 | l2<<4
		}
		m1 <<= 2
		m2 <<= 2
	}
}

func quantQ6K(x *[256]float32, y *[q6KBytes]byte) {
	var (
		L      [256]int8
		scales [16]float32
	)
	var maxScale, maxAbs float32
	for ib := range 16 {
		s := makeQXQuants(16, 32, x[16*ib:16*ib+16], L[16*ib:])
		scales[ib] = s
		if a := abs32(s); a > maxAbs {
			maxAbs, maxScale = a, s
		}
	}
	if maxAbs < groupMaxEps {
		clear(y[:])
		return
	}
	iscale := -128 / maxScale
	put16(y[208:], FP32ToFP16(1/iscale))
	sc := y[192:208]
	for ib := range 16 {
		sc[ib] = byte(int8(min(127, nearestInt(iscale*scales[ib]))))
	}
	dAll := fp16At(y[208:])
	for j := range 16 {
		d := dAll * float32(int8(sc[j]))
		if d == 0 {
			continue
		}
		for ii := range 16 {
			l := nearestInt(x[16*j+ii] / d)
			L[16*j+ii] = int8(max2(-32, min(31, l)) + 32)
		}
	}
	for half := range 2 {
		j := 128 * half
		ql := y[64*half : 64*half+64]
		qh := y[128+32*half : 160+32*half]
		for l := range 32 {
			q1 := byte(L[j+l]) & 15
			q2 := byte(L[j+l+32]) & 15
			q3 := byte(L[j+l+64]) & 15
			q4 := byte(L[j+l+96]) & 15
			ql[l] = q1 | q3<<4
			ql[l+32] = q2 | q4<<4
			qh[l] = byte(L[j+l])>>4 | (byte(L[j+l+32])>>4)<<2 | (byte(L[j+l+64])>>4)<<4 | (byte(L[j+l+96])>>4)<<6
		}
	}
}
