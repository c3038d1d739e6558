//go:build amd64 && !purego

package ggml

//go:noescape
func dotQ4_1AVX2(nb int, x, y *byte, tab *float32) float32

//go:noescape
func dotQ5_0AVX2(nb int, x, y *byte, tab *float32) float32

//go:noescape
func dotQ5_1AVX2(nb int, x, y *byte, tab *float32) float32

//go:noescape
func dotQ2KAVX2(nb int, x, y *byte, sc *int16, d *float32) float32

//go:noescape
func dotQ3KAVX2(nb int, x, y *byte, sc *int16, d *float32) float32

func dotQ4_1Fast(nb int, w, a []byte) float32 {
	if !haveAVX2 || nb == 0 {
		return dotQ4_1(nb, w, a)
	}
	w, a = w[:20*nb], a[:36*nb]
	return dotQ4_1AVX2(nb, &w[0], &a[0], &fp16Table[0])
}

func dotQ5_0Fast(nb int, w, a []byte) float32 {
	if !haveAVX2 || nb == 0 {
		return dotQ5_0(nb, w, a)
	}
	w, a = w[:22*nb], a[:34*nb]
	return dotQ5_0AVX2(nb, &w[0], &a[0], &fp16Table[0])
}

func dotQ5_1Fast(nb int, w, a []byte) float32 {
	if !haveAVX2 || nb == 0 {
		return dotQ5_1(nb, w, a)
	}
	w, a = w[:24*nb], a[:36*nb]
	return dotQ5_1AVX2(nb, &w[0], &a[0], &fp16Table[0])
}

func dotQ2KFast(nb int, w, a []byte) float32 {
	if !haveAVX2 || nb == 0 {
		return dotQ2K(nb, w, a)
	}
	w, a = w[:q2KBytes*nb], a[:q8KBytes*nb]
	var (
		sc  [16 * kChunk]int16
		ds  [kChunk]float32
		sum float32
	)
	for b0 := 0; b0 < nb; b0 += kChunk {
		m := min(kChunk, nb-b0)
		for i := range m {
			x := (*[q2KBytes]byte)(w[q2KBytes*(b0+i):])
			y := (*[q8KBytes]byte)(a[q8KBytes*(b0+i):])
			var summs int32
			for g := range 16 {
				summs += q8KBsum(y, g) * int32(x[g]>>4)
				sc[16*i+g] = int16(x[g] & 15)
			}
			yd := f32At(y[0:])
			ds[i] = yd * fp16At(x[80:])
			sum -= yd * fp16At(x[82:]) * float32(summs)
		}
		sum += dotQ2KAVX2(m, &w[q2KBytes*b0], &a[q8KBytes*b0], &sc[0], &ds[0])
	}
	return sum
}

func dotQ3KFast(nb int, w, a []byte) float32 {
	if !haveAVX2 || nb == 0 {
		return dotQ3K(nb, w, a)
	}
	w, a = w[:q3KBytes*nb], a[:q8KBytes*nb]
	var (
		sc     [16 * kChunk]int16
		ds     [kChunk]float32
		scales [16]int8
		sum    float32
	)
	for b0 := 0; b0 < nb; b0 += kChunk {
		m := min(kChunk, nb-b0)
		for i := range m {
			x := (*[q3KBytes]byte)(w[q3KBytes*(b0+i):])
			y := (*[q8KBytes]byte)(a[q8KBytes*(b0+i):])
			q3Scales(x[96:108], &scales)
			// The kernel takes levels as low bits | high bit << 2
			// (0..7); remove 4·Σ s·bsum.
			var corr int32
			for g := range 16 {
				sc[16*i+g] = int16(scales[g])
				corr += int32(scales[g]) * q8KBsum(y, g)
			}
			d := fp16At(x[108:]) * f32At(y[0:])
			ds[i] = d
			sum -= d * float32(4*corr)
		}
		sum += dotQ3KAVX2(m, &w[q3KBytes*b0], &a[q8KBytes*b0], &sc[0], &ds[0])
	}
	return sum
}
