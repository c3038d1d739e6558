package ggml

import (
	"math"
	"math/rand/v2"
	"testing"
)

var allTypes = []Type{F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, Q8_K}

func TestTypeTable(t *testing.T) {
	f := func(ty Type, name string, bs, bb int) {
		t.Helper()
		if ty.String() != name || ty.BlockSize() != bs || ty.BlockBytes() != bb || !ty.Supported() {
			t.Errorf("%d: %s %d %d %v, want %s %d %d", uint32(ty), ty, ty.BlockSize(), ty.BlockBytes(), ty.Supported(), name, bs, bb)
		}
		p, err := ParseType(name)
		if err != nil || p != ty {
			t.Errorf("ParseType(%q) = %v, %v", name, p, err)
		}
	}
	f(F32, "F32", 1, 4)
	f(F16, "F16", 1, 2)
	f(BF16, "BF16", 1, 2)
	f(Q4_0, "Q4_0", 32, 18)
	f(Q4_1, "Q4_1", 32, 20)
	f(Q5_0, "Q5_0", 32, 22)
	f(Q5_1, "Q5_1", 32, 24)
	f(Q8_0, "Q8_0", 32, 34)
	f(Q8_1, "Q8_1", 32, 36)
	f(Q2_K, "Q2_K", 256, 84)
	f(Q3_K, "Q3_K", 256, 110)
	f(Q4_K, "Q4_K", 256, 144)
	f(Q5_K, "Q5_K", 256, 176)
	f(Q6_K, "Q6_K", 256, 210)
	f(Q8_K, "Q8_K", 256, 292)
	if p, err := ParseType("q4_k"); err != nil || p != Q4_K {
		t.Errorf("ParseType is not case-insensitive")
	}
	if _, err := ParseType("Q9_9"); err == nil {
		t.Errorf("ParseType(Q9_9) succeeded")
	}
	if Type(99).String() != "type(99)" || Type(99).Known() || Type(99).Supported() {
		t.Errorf("unknown type: %s", Type(99))
	}
	if I32.Supported() || !I32.Known() {
		t.Errorf("I32 should be known but not supported")
	}
	if n, err := RowBytes(Q4_K, 4096); err != nil || n != 16*144 {
		t.Errorf("RowBytes(Q4_K, 4096) = %d, %v", n, err)
	}
	if _, err := RowBytes(Q4_K, 100); err == nil {
		t.Errorf("RowBytes(Q4_K, 100): no error")
	}
	if _, err := RowBytes(Type(99), 1); err == nil {
		t.Errorf("RowBytes(unknown): no error")
	}
	if _, err := RowBytes(Q8_0, math.MaxInt-31); err == nil {
		t.Errorf("RowBytes overflow: no error")
	}
}

func TestFP16(t *testing.T) {
	f := func(x float32, want uint16) {
		t.Helper()
		if got := FP32ToFP16(x); got != want {
			t.Errorf("FP32ToFP16(%g) = %#04x, want %#04x", x, got, want)
		}
	}
	f(0, 0)
	f(float32(math.Copysign(0, -1)), 0x8000)
	f(1, 0x3c00)
	f(-2, 0xc000)
	f(65504, 0x7bff)
	f(65519, 0x7bff)
	f(65520, 0x7c00) // rounds up to infinity
	f(float32(math.Inf(1)), 0x7c00)
	f(0x1p-24, 0x0001)
	f(0x1p-25, 0x0000)     // tie with 0: even
	f(0x1.8p-25, 0x0001)   // above the tie
	f(0x1.8p-24, 0x0002)   // tie between 1 and 2 ulps: even (2)
	f(1+0x1p-11, 0x3c00)   // tie: even
	f(1+0x1.8p-10, 0x3c02) // tie between 0x3c01 and 0x3c02: even
	f(0x1p-14, 0x0400)     // smallest normal
	if FP32ToFP16(float32(math.NaN()))&0x7c00 != 0x7c00 || FP32ToFP16(float32(math.NaN()))&0x3ff == 0 {
		t.Errorf("NaN not kept")
	}
	// Every finite half survives a round trip, and the midpoint between
	// neighbours rounds to the even one.
	for h := range 0x7c00 {
		x := FP16ToFP32(uint16(h))
		if got := FP32ToFP16(x); got != uint16(h) {
			t.Fatalf("round trip %#04x -> %g -> %#04x", h, x, got)
		}
		if got := FP32ToFP16(-x); got != uint16(h)|0x8000 {
			t.Fatalf("round trip -%#04x -> %#04x", h, got)
		}
		if h+1 < 0x7c00 {
			mid := float32((float64(x) + float64(FP16ToFP32(uint16(h+1)))) / 2)
			want := uint16(h)
			if h&1 == 1 {
				want = uint16(h + 1)
			}
			if got := FP32ToFP16(mid); got != want {
				t.Fatalf("midpoint after %#04x (%g) -> %#04x, want %#04x", h, mid, got, want)
			}
		}
	}
}

func TestBF16(t *testing.T) {
	f := func(x float32, want uint16) {
		t.Helper()
		if got := FP32ToBF16(x); got != want {
			t.Errorf("FP32ToBF16(%g) = %#04x, want %#04x", x, got, want)
		}
		if want&0x7f80 != 0x7f80 && BF16ToFP32(want) != float32(math.Float32frombits(uint32(want)<<16)) {
			t.Errorf("BF16ToFP32")
		}
	}
	f(1, 0x3f80)
	f(-2, 0xc000)
	f(math.Float32frombits(0x3f808000), 0x3f80) // tie: even
	f(math.Float32frombits(0x3f818000), 0x3f82) // tie: even (up)
	f(math.Float32frombits(0x3f808001), 0x3f81)
	if FP32ToBF16(float32(math.NaN()))&0x7f80 != 0x7f80 {
		t.Errorf("NaN lost")
	}
}

func randRow(r *rand.Rand, n int, scale float32) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(r.NormFloat64()) * scale
	}
	return x
}

// refDot is the straightforward reference: dequantize both sides, then a
// float64 dot product.
func refDot(t *testing.T, ty Type, n int, w, a []byte) (dot, mag float64) {
	t.Helper()
	wf := make([]float32, n)
	af := make([]float32, n)
	if err := Dequantize(ty, w, wf); err != nil {
		t.Fatal(err)
	}
	if err := Dequantize(VecDotType(ty), a, af); err != nil {
		t.Fatal(err)
	}
	for i := range wf {
		dot += float64(wf[i]) * float64(af[i])
		mag += math.Abs(float64(wf[i]) * float64(af[i]))
	}
	if ty == Q4_1 || ty == Q5_1 {
		// ggml uses the block's stored s = fp16(d·Σq) for the offset
		// term m·Σa, not the exact sum: so does the reference.
		bw := ty.BlockBytes()
		for b := 0; b < n/32; b++ {
			m := float64(FP16ToFP32(le16(w[bw*b+2:])))
			s := float64(FP16ToFP32(le16(a[36*b+2:])))
			var exact float64
			for _, v := range af[32*b : 32*b+32] {
				exact += float64(v)
			}
			dot += m*s - m*exact
		}
	}
	return dot, mag
}

func quantize(t testing.TB, ty Type, x []float32) []byte {
	t.Helper()
	n, err := RowBytes(ty, len(x))
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, n)
	if err := QuantizeRow(ty, x, b); err != nil {
		t.Fatal(err)
	}
	return b
}

func TestVecDotMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, ty := range allTypes {
		for _, n := range []int{256, 1024} {
			for trial := range 5 {
				w := quantize(t, ty, randRow(r, n, 0.05))
				x := randRow(r, n, 1)
				if trial == 0 {
					// Outliers and an all-zero stretch.
					x[3] = 40
					for i := 256 - 64; i < 256; i++ {
						x[i] = 0
					}
				}
				a := quantize(t, VecDotType(ty), x)
				got := VecDot(ty, n, w, a)
				want, mag := refDot(t, ty, n, w, a)
				if d := math.Abs(float64(got) - want); d > 2e-6*mag+1e-9 {
					t.Errorf("%s n=%d trial %d: VecDot = %g, reference %g (|Δ| %g, scale %g)", ty, n, trial, got, want, d, mag)
				}
			}
		}
	}
}

// TestQuantizeError checks every quantizer's round trip error against the
// precision its bit width allows.
func TestQuantizeError(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	maxRel := map[Type]float64{
		F32: 0, F16: 0.001, BF16: 0.005, Q8_0: 0.01, Q8_1: 0.01, Q8_K: 0.01,
		Q6_K: 0.03, Q5_0: 0.06, Q5_1: 0.06, Q5_K: 0.05, Q4_0: 0.12, Q4_1: 0.12, Q4_K: 0.1,
		Q3_K: 0.25, Q2_K: 0.45,
	}
	for _, ty := range allTypes {
		x := randRow(r, 4096, 0.02)
		b := quantize(t, ty, x)
		y := make([]float32, len(x))
		if err := Dequantize(ty, b, y); err != nil {
			t.Fatal(err)
		}
		var se, ss float64
		for i := range x {
			d := float64(x[i] - y[i])
			se += d * d
			ss += float64(x[i]) * float64(x[i])
		}
		rel := math.Sqrt(se / ss)
		if rel > maxRel[ty] {
			t.Errorf("%s: relative RMS error %.4f > %.4f", ty, rel, maxRel[ty])
		}
		t.Logf("%s: relative RMS error %.4f", ty, rel)
		// All-zero input gives all-zero output without NaNs.
		z := make([]float32, 256)
		if err := Dequantize(ty, quantize(t, ty, z), y[:256]); err != nil {
			t.Fatal(err)
		}
		for i, v := range y[:256] {
			if v != 0 {
				t.Fatalf("%s: zero row decodes to %g at %d", ty, v, i)
			}
		}
	}
}

func TestRowErrors(t *testing.T) {
	if err := Dequantize(Q4_0, make([]byte, 17), make([]float32, 32)); err == nil {
		t.Error("short source accepted")
	}
	if err := Dequantize(Q4_0, make([]byte, 18), make([]float32, 31)); err == nil {
		t.Error("partial block accepted")
	}
	if err := Dequantize(I32, make([]byte, 4), make([]float32, 1)); err == nil {
		t.Error("I32 accepted")
	}
	if err := QuantizeRow(Q8_0, make([]float32, 32), make([]byte, 33)); err == nil {
		t.Error("short destination accepted")
	}
	if err := QuantizeRow(Type(77), make([]float32, 32), make([]byte, 100)); err == nil {
		t.Error("unknown type accepted")
	}
}

func TestVecDotType(t *testing.T) {
	want := map[Type]Type{
		F32: F32, F16: F16, BF16: BF16, Q4_0: Q8_0, Q5_0: Q8_0, Q8_0: Q8_0,
		Q4_1: Q8_1, Q5_1: Q8_1, Q2_K: Q8_K, Q3_K: Q8_K, Q4_K: Q8_K, Q5_K: Q8_K, Q6_K: Q8_K,
	}
	for ty, w := range want {
		if got := VecDotType(ty); got != w {
			t.Errorf("VecDotType(%s) = %s, want %s", ty, got, w)
		}
	}
}

func BenchmarkVecDot(b *testing.B) {
	const n = 4096
	r := rand.New(rand.NewPCG(5, 6))
	for _, ty := range allTypes {
		w := quantize(b, ty, randRow(r, n, 0.05))
		a := quantize(b, VecDotType(ty), randRow(r, n, 1))
		b.Run(ty.String(), func(b *testing.B) {
			b.SetBytes(int64(len(w)))
			var s float32
			for b.Loop() {
				s += VecDot(ty, n, w, a)
			}
			_ = s
		})
	}
}

func BenchmarkQuantizeRow(b *testing.B) {
	r := rand.New(rand.NewPCG(7, 8))
	x := randRow(r, 4096, 1)
	for _, ty := range []Type{Q8_0, Q8_1, Q8_K, Q4_K, Q6_K} {
		dst := quantize(b, ty, x)
		b.Run(ty.String(), func(b *testing.B) {
			for b.Loop() {
				_ = QuantizeRow(ty, x, dst)
			}
		})
	}
}

func TestRounding(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	check := func(f float32) {
		if got, want := nearestInt(f), int(math.RoundToEven(float64(f))); got != want {
			t.Fatalf("nearestInt(%g) = %d, want %d", f, got, want)
		}
		if got, want := roundAway(f), int(math.Round(float64(f))); got != want {
			t.Fatalf("roundAway(%g) = %d, want %d", f, got, want)
		}
	}
	for i := -300; i <= 300; i++ {
		check(float32(i) / 2) // every tie
		check(float32(i)/2 + 1e-4)
		check(float32(i)/2 - 1e-4)
	}
	for range 100000 {
		check(float32(r.NormFloat64() * 1000))
	}
	check(4194303)
	check(-4194303)
}

func TestDequantizeF32Unaligned(t *testing.T) {
	x := []float32{1.5, -2, 3.25, 0}
	b := make([]byte, 17)
	if err := QuantizeRow(F32, x, b[1:]); err != nil {
		t.Fatal(err)
	}
	for _, src := range [][]byte{b[1:], append([]byte(nil), b[1:]...)} {
		got := make([]float32, 4)
		if err := Dequantize(F32, src, got); err != nil {
			t.Fatal(err)
		}
		for i := range x {
			if got[i] != x[i] {
				t.Fatalf("element %d = %g, want %g", i, got[i], x[i])
			}
		}
		if d := VecDot(F32, 4, src, src); d != 1.5*1.5+4+3.25*3.25 {
			t.Fatalf("VecDot = %g", d)
		}
	}
}
