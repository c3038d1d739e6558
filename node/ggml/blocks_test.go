package ggml

import (
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// Hand-built blocks with values worked out by hand.

func TestDequantizeHandBlocks(t *testing.T) {
	check := func(ty Type, blk []byte, want func(i int) float32) {
		t.Helper()
		n := ty.BlockSize()
		got := make([]float32, n)
		if err := Dequantize(ty, blk, got); err != nil {
			t.Fatal(err)
		}
		for i := range got {
			if w := want(i); got[i] != w {
				t.Fatalf("%s element %d = %g, want %g", ty, i, got[i], w)
			}
		}
	}
	// Q4_0: d = 0.5, nibble j low = j, high = 15-j.
	b := []byte{0x00, 0x38}
	for j := range 16 {
		b = append(b, byte(j)|byte(15-j)<<4)
	}
	check(Q4_0, b, func(i int) float32 {
		if i < 16 {
			return float32(i-8) * 0.5
		}
		return float32(15-(i-16)-8) * 0.5
	})
	// Q4_1: d = 0.25, m = -1.
	b = []byte{0x00, 0x34, 0x00, 0xbc}
	for j := range 16 {
		b = append(b, byte(j)|byte(15-j)<<4)
	}
	check(Q4_1, b, func(i int) float32 {
		if i < 16 {
			return float32(i)*0.25 - 1
		}
		return float32(15-(i-16))*0.25 - 1
	})
	// Q5_0: d = 1, qh = 0xAAAA5555: elements 0,2,4,…,14 and 17,19,…,31 get
	// the high bit.
	qh := uint32(0xAAAA5555)
	b = []byte{0x00, 0x3c, byte(qh), byte(qh >> 8), byte(qh >> 16), byte(qh >> 24)}
	for j := range 16 {
		b = append(b, byte(j)|byte(j)<<4)
	}
	check(Q5_0, b, func(i int) float32 {
		return float32(int(i%16)|int(qh>>i&1)<<4) - 16
	})
	// Q5_1: d = 1, m = 0.5.
	b = []byte{0x00, 0x3c, 0x00, 0x38, byte(qh), byte(qh >> 8), byte(qh >> 16), byte(qh >> 24)}
	for j := range 16 {
		b = append(b, byte(j)|byte(j)<<4)
	}
	check(Q5_1, b, func(i int) float32 {
		return float32(int(i%16)|int(qh>>i&1)<<4) + 0.5
	})
	// Q8_0: d = 2, q = i-16.
	b = []byte{0x00, 0x40}
	for j := range 32 {
		b = append(b, byte(int8(j-16)))
	}
	check(Q8_0, b, func(i int) float32 { return 2 * float32(i-16) })
	// Q8_1: d = 0.5, s ignored by Dequantize.
	b = append([]byte{0x00, 0x38, 0x12, 0x34}, b[2:]...)
	check(Q8_1, b, func(i int) float32 { return 0.5 * float32(i-16) })

	// Q4_K: d = 1, dmin = 0.5; sub-block j has scale j+1 and min 2j
	// (j ≥ 4 use the split 6-bit encoding); quant = element index & 15.
	b = make([]byte, 144)
	put16(b[0:], 0x3c00)
	put16(b[2:], 0x3800)
	for j := range 8 {
		sc, mn := byte(j+1), byte(2*j)
		if j >= 4 {
			sc += 40 // needs the high bits
			mn += 33
		}
		if j < 4 {
			b[4+j] = sc
			b[8+j] = mn
		} else {
			b[8+j] = sc&15 | (mn&15)<<4 // scales[j+4]
			b[4+j-4] |= (sc >> 4) << 6
			b[4+j] |= (mn >> 4) << 6
		}
	}
	for e := range 256 {
		chunk, hi := e/64, (e/32)%2
		b[16+32*chunk+e%32] |= byte(e&15) << (4 * hi)
	}
	check(Q4_K, b, func(e int) float32 {
		j := e / 32
		sc, mn := float32(j+1), float32(2*j)
		if j >= 4 {
			sc += 40
			mn += 33
		}
		return sc*float32(e&15) - 0.5*mn
	})

	// Q6_K: d = 0.25, scale of group g (16 elements) = g-8; quant q(e) =
	// (e*7)%64 stored as q-32 offset.
	b = make([]byte, 210)
	put16(b[208:], 0x3400)
	for g := range 16 {
		b[192+g] = byte(int8(g - 8))
	}
	q6 := func(e int) int { return (e * 7) % 64 }
	for e := range 256 {
		half, r := e/128, e%128
		l, part := r%32, r/32 // part 0..3
		v := byte(q6(e))
		ql := b[64*half:]
		qhb := b[128+32*half:]
		switch part {
		case 0:
			ql[l] |= v & 15
		case 1:
			ql[l+32] |= v & 15
		case 2:
			ql[l] |= (v & 15) << 4
		case 3:
			ql[l+32] |= (v & 15) << 4
		}
		qhb[l] |= (v >> 4) << (2 * part)
	}
	check(Q6_K, b, func(e int) float32 {
		return 0.25 * float32(e/16-8) * float32(q6(e)-32)
	})

	// Q2_K: d = 0.5, dmin = 0.25, group g: scale g&15, min 15-g; quant of
	// element e = e%4; layout: element 128h+32k+l lives in bits 2k of
	// qs[32h+l].
	b = make([]byte, 84)
	put16(b[80:], 0x3800)
	put16(b[82:], 0x3400)
	for g := range 16 {
		b[g] = byte(g&15) | byte(15-g)<<4
	}
	for e := range 256 {
		h, r := e/128, e%128
		k, l := r/32, r%32
		b[16+32*h+l] |= byte(e%4) << (2 * k)
	}
	check(Q2_K, b, func(e int) float32 {
		g := e / 16
		return 0.5*float32(g)*float32(e%4) - 0.25*float32(15-g)
	})

	// Q3_K: d = 1, group g scale (6-bit, offset 32) = g*3 → value 3g-32;
	// low bits e%4, high bit set for odd e: value (e%4) - (odd ? 0 : 4).
	b = make([]byte, 110)
	put16(b[108:], 0x3c00)
	for g := range 16 {
		l := byte(3 * g)
		if g < 8 {
			b[96+g] |= l & 15
		} else {
			b[96+g-8] |= (l & 15) << 4
		}
		b[96+8+g%4] |= (l >> 4) << (2 * (g / 4))
	}
	for e := range 256 {
		h, r := e/128, e%128
		k, l := r/32, r%32
		b[32+32*h+l] |= byte(e%4) << (2 * k)
		if e%2 == 1 {
			// high bit: element 128h+32k+l -> hmask[l] bit 4h+k
			b[l] |= 1 << (4*h + k)
		}
	}
	check(Q3_K, b, func(e int) float32 {
		g := e / 16
		v := e % 4
		if e%2 == 0 {
			v -= 4
		}
		return float32(3*g-32) * float32(v)
	})

	// Q5_K: d = 2, dmin = 1, scale j = 1, min j = j; quant = e%32 with the
	// high bit of element 64c+32p+l in qh[l] bit 2c+p.
	b = make([]byte, 176)
	put16(b[0:], 0x4000)
	put16(b[2:], 0x3c00)
	for j := range 4 {
		b[4+j] = 1
		b[8+j] = byte(j)
		b[12+j] = 1 | byte(j+4)<<4
	}
	for e := range 256 {
		c, r := e/64, e%64
		p, l := r/32, r%32
		v := byte(e % 32)
		b[48+32*c+l] |= (v & 15) << (4 * p)
		b[16+l] |= (v >> 4) << (2*c + p)
	}
	check(Q5_K, b, func(e int) float32 { return 2*float32(e%32) - float32(e/32) })

	// Q8_K: d = 0.125 (f32), q = e-128 clamped to int8.
	b = make([]byte, 292)
	putF32(b, 0.125)
	for e := range 256 {
		b[4+e] = byte(int8(e - 128))
	}
	check(Q8_K, b, func(e int) float32 { return 0.125 * float32(int8(e-128)) })
}

func TestQuantizeHandBlocks(t *testing.T) {
	// Q4_0 of -8…7 twice: max magnitude -8 gives d = 1, levels x+8.
	x := make([]float32, 32)
	for j := range 16 {
		x[j] = float32(j - 8)
		x[16+j] = float32(7 - j)
	}
	got := quantize(t, Q4_0, x)
	want := []byte{0x00, 0x3c}
	for j := range 16 {
		want = append(want, byte(j)|byte(15-j)<<4)
	}
	if string(got) != string(want) {
		t.Errorf("Q4_0:\n got % x\nwant % x", got, want)
	}
	// Q8_0 of 127·k/8 for k = -16…15 with max 127·2: d = 2, q = 8k/8·... :
	// values v = 2q exactly, q = 8k-? — use q = 4k (|q| ≤ 64) plus one 127.
	for j := range 32 {
		x[j] = 2 * float32(4*(j-16))
	}
	x[31] = 254 // amax 254 → d = 2
	got = quantize(t, Q8_0, x)
	if d := FP16ToFP32(le16(got)); d != 2 {
		t.Errorf("Q8_0 d = %g, want 2", d)
	}
	for j := range 31 {
		if q := int8(got[2+j]); int(q) != 4*(j-16) {
			t.Errorf("Q8_0 q[%d] = %d, want %d", j, q, 4*(j-16))
		}
	}
	if int8(got[33]) != 127 {
		t.Errorf("Q8_0 q[31] = %d", int8(got[33]))
	}
	// Q8_1 stores s = d·Σq.
	got = quantize(t, Q8_1, x)
	sum := 127
	for j := range 31 {
		sum += 4 * (j - 16)
	}
	if s := FP16ToFP32(le16(got[2:])); s != FP16ToFP32(FP32ToFP16(2*float32(sum))) {
		t.Errorf("Q8_1 s = %g, want %d", s, 2*sum)
	}
	// Q8_K: the element of largest magnitude (-127·0.5) maps to -127 with
	// d = 0.5 (stored as float32), bsums are the group sums.
	xk := make([]float32, 256)
	for e := range xk {
		xk[e] = 0.5 * float32(e%64-32)
	}
	xk[5] = -63.5
	got = quantize(t, Q8_K, xk)
	if d := f32At(got); d != 0.5 {
		t.Errorf("Q8_K d = %g", d)
	}
	y := (*[q8KBytes]byte)(got)
	for g := range 16 {
		s := 0
		for e := 16 * g; e < 16*g+16; e++ {
			s += int(int8(got[4+e]))
			want := e%64 - 32
			if e == 5 {
				want = -127
			}
			if int(int8(got[4+e])) != want {
				t.Fatalf("Q8_K q[%d] = %d, want %d", e, int8(got[4+e]), want)
			}
		}
		if int(q8KBsum(y, g)) != s {
			t.Errorf("Q8_K bsum %d = %d, want %d", g, q8KBsum(y, g), s)
		}
	}
	// Q6_K of a block already on a Q6_K grid (scale 1/4 per group, levels
	// -32…31 with the largest magnitude -32 in every group) reproduces it.
	for e := range xk {
		q := (e*7)%64 - 32
		if e%16 == 0 {
			q = -32
		}
		xk[e] = float32(q) * 0.25
	}
	got = quantize(t, Q6_K, xk)
	back := make([]float32, 256)
	if err := Dequantize(Q6_K, got, back); err != nil {
		t.Fatal(err)
	}
	for e := range xk {
		if back[e] != xk[e] {
			t.Fatalf("Q6_K grid block: element %d = %g, want %g", e, back[e], xk[e])
		}
	}
}

// TestRequantizeShared re-quantizes blocks of real files quantized by
// ggml's tools: dequantizing a block and quantizing it again with the
// reference quantizer reproduces it, or an encoding of the same values
// (exactly for Q8_0, Q4_0 and Q4_K; for Q5_K and Q6_K, whose fits search
// scales, in the large majority of blocks).
func TestRequantizeShared(t *testing.T) {
	root, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(root, "go.mod")); err == nil {
			break
		}
		if filepath.Dir(root) == root {
			t.Skip("go.mod not found")
		}
		root = filepath.Dir(root)
	}
	models := filepath.Join(root, "..", "shared", "models")
	files, _ := filepath.Glob(filepath.Join(models, "synth-25m-*.gguf"))
	if len(files) == 0 {
		t.Skip("shared models (../shared/models beside the module) not present")
	}
	minRate := map[Type]float64{Q8_0: 1, Q4_0: 1, Q4_K: 1, Q5_K: 0.9, Q6_K: 0.98}
	for _, p := range files {
		maxBlocks := 2000
		if raceEnabled || testing.Short() {
			maxBlocks = 150
		}
		blocks, err := readBlocks(p, maxBlocks)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		for ty, data := range blocks {
			bb := ty.BlockBytes()
			n := len(data) / bb
			f := make([]float32, ty.BlockSize())
			g := make([]float32, ty.BlockSize())
			q := make([]byte, bb)
			same := 0
			for b := range n {
				blk := data[b*bb : (b+1)*bb]
				if err := Dequantize(ty, blk, f); err != nil {
					t.Fatal(err)
				}
				if err := QuantizeRow(ty, f, q); err != nil {
					t.Fatal(err)
				}
				if string(q) == string(blk) {
					same++
					continue
				}
				// A symmetric fit can flip the signs of a group's scale
				// and levels: a different encoding of the same values.
				if err := Dequantize(ty, q, g); err != nil {
					t.Fatal(err)
				}
				if slices.Equal(f, g) {
					same++
				}
			}
			rate := float64(same) / float64(n)
			t.Logf("%s %s: %d/%d blocks reproduced (%.4f)", filepath.Base(p), ty, same, n, rate)
			if want, ok := minRate[ty]; ok && rate < want && !(want == 1 && rate > 0.999) {
				t.Errorf("%s %s: only %.4f of blocks reproduced, want ≥ %.3f", filepath.Base(p), ty, rate, want)
			}
		}
	}
}

// readBlocks returns up to max blocks of every quantized type in a GGUF
// file. It parses just enough of the format (this package cannot import
// the gguf reader, which imports it).
func readBlocks(path string, max int) (map[Type][]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	r := &rd{b: data, p: 8}
	nt, nkv := r.u64(), r.u64()
	for range nkv {
		r.str()
		r.skipValue(r.u32())
	}
	type ti struct {
		ty   Type
		n    uint64
		off  uint64
		name string
	}
	var infos []ti
	for range nt {
		name := r.str()
		nd := r.u32()
		n := uint64(1)
		for range nd {
			n *= r.u64()
		}
		ty := Type(r.u32())
		infos = append(infos, ti{ty, n, r.u64(), name})
	}
	start := (r.p + 31) / 32 * 32
	out := map[Type][]byte{}
	for _, i := range infos {
		if i.ty.BlockSize() < 32 {
			continue
		}
		have := len(out[i.ty]) / i.ty.BlockBytes()
		if have >= max {
			continue
		}
		size := int(i.n) / i.ty.BlockSize() * i.ty.BlockBytes()
		take := min(size, (max-have)*i.ty.BlockBytes())
		out[i.ty] = append(out[i.ty], data[start+int(i.off):start+int(i.off)+take]...)
	}
	return out, nil
}

type rd struct {
	b []byte
	p int
}

func (r *rd) u32() uint32 {
	v := uint32(le16(r.b[r.p:])) | uint32(le16(r.b[r.p+2:]))<<16
	r.p += 4
	return v
}
func (r *rd) u64() uint64 { lo := uint64(r.u32()); return lo | uint64(r.u32())<<32 }
func (r *rd) str() string {
	n := int(r.u64())
	s := string(r.b[r.p : r.p+n])
	r.p += n
	return s
}

func (r *rd) skipValue(t uint32) {
	switch t {
	case 0, 1, 7:
		r.p++
	case 2, 3:
		r.p += 2
	case 4, 5, 6:
		r.p += 4
	case 10, 11, 12:
		r.p += 8
	case 8:
		r.str()
	case 9:
		et := r.u32()
		n := r.u64()
		for range n {
			r.skipValue(et)
		}
	default:
		panic(math.NaN())
	}
}
