package ggml

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"unsafe"
)

// r16Case builds a rows×cols matrix of type ty, its R16 repacking, and
// ntok activation rows (prepared for the quantized types, float32 rounded
// to half for F16), with strides that leave gaps.
type r16Case struct {
	ty         Type
	rows, cols int
	w, packed  []byte
	act        []byte    // prepared, astride apart
	qa         [][]byte  // each token's Q8_0 row
	x          []float32 // F16's activations, xstride apart
	astride    int
	xstride    int
}

func newR16Case(t testing.TB, r *rand.Rand, ty Type, rows, cols, ntok int) *r16Case {
	t.Helper()
	c := &r16Case{ty: ty, rows: rows, cols: cols}
	for range rows {
		c.w = append(c.w, quantize(t, ty, randRow(r, cols, 0.05))...)
	}
	gb, err := R16GroupBytes(ty, cols)
	if err != nil {
		t.Fatal(err)
	}
	c.packed = make([]byte, rows/R16Rows*gb)
	if err := RepackR16(ty, c.w, rows, cols, c.packed); err != nil {
		t.Fatal(err)
	}
	c.astride = R16ActBytes(ty, cols) + 48
	c.act = make([]byte, ntok*c.astride)
	c.xstride = cols + 5
	c.x = make([]float32, ntok*c.xstride)
	for i := range ntok {
		x := randRow(r, cols, 1)
		if ty == F16 || ty == BF16 {
			for k, v := range x {
				if ty == F16 {
					v = FP16ToFP32(FP32ToFP16(v)) // as the engine rounds them
				}
				c.x[i*c.xstride+k] = v
			}
			continue
		}
		vt := VecDotType(ty)
		n, _ := RowBytes(vt, cols)
		qa := make([]byte, n)
		if err := QuantizeActivations(vt, x, qa); err != nil {
			t.Fatal(err)
		}
		c.qa = append(c.qa, qa)
		prep := PrepareR16
		if VecDotType(ty) == Q8_K {
			prep = PrepareR16K
		}
		if err := prep(qa, cols, c.act[i*c.astride:]); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// r16TestTokens is every tile size up to r16MaxTokens and, for the
// quantized types (GemmR16 takes any number of tokens), more: wide tiles
// alone, twice, and with narrow ones after them.
func r16TestTokens(ty Type, more ...int) []int {
	n := []int{1, 2, 3, 4, 5, 6, 7, 8}
	if ty != F16 && ty != BF16 {
		n = append(n, more...)
	}
	return n
}

// run multiplies group g with the first ntok tokens.
func (c *r16Case) run(t *testing.T, g, ntok int, out []float32, ostride int) {
	t.Helper()
	gb, _ := R16GroupBytes(c.ty, c.cols)
	w := c.packed[g*gb : (g+1)*gb]
	var err error
	if c.ty == F16 || c.ty == BF16 {
		err = GemmR16Float(c.ty, c.cols, 1, w, c.x, c.xstride, ntok, out, ostride)
	} else {
		err = GemmR16(c.ty, c.cols, 1, w, c.act, c.astride, ntok, out, ostride)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// want is row's exact product with token i (float64, from the dequantized
// weights and activations) and the sum of the products' magnitudes.
func (c *r16Case) want(t *testing.T, row, i int) (dot, mag float64) {
	t.Helper()
	rb, _ := RowBytes(c.ty, c.cols)
	wf := make([]float32, c.cols)
	if err := Dequantize(c.ty, c.w[row*rb:(row+1)*rb], wf); err != nil {
		t.Fatal(err)
	}
	xf := c.x[i*c.xstride : i*c.xstride+c.cols]
	if c.ty != F16 && c.ty != BF16 {
		xf = make([]float32, c.cols)
		if err := Dequantize(VecDotType(c.ty), c.qa[i], xf); err != nil {
			t.Fatal(err)
		}
	}
	for k := range wf {
		p := float64(wf[k]) * float64(xf[k])
		dot += p
		mag += math.Abs(p)
	}
	return dot, mag
}

// The kernels this CPU runs, and the pure Go ones, compute every row's
// product with every token to float32 accuracy, for every tile size.
func TestGemmR16MatchesExactProducts(t *testing.T) {
	r := rand.New(rand.NewPCG(16, 17))
	for _, ty := range []Type{Q8_0, Q4_0, Q4_K, Q5_K, Q6_K, F16, BF16} {
		for _, cols := range []int{32, 256, 768, 2048} {
			if cols%max(ty.BlockSize(), QK) != 0 {
				continue
			}
			c := newR16Case(t, r, ty, 32, cols, 25)
			for _, kernel := range []string{"cpu", "go"} {
				restore := func() {}
				if kernel == "go" {
					restore = forceR16Go()
				}
				for _, ntok := range r16TestTokens(ty, 9, 16, 17, 25) {
					ostride := R16Rows + 3
					out := make([]float32, (ntok-1)*ostride+R16Rows)
					for g := range 2 {
						c.run(t, g, ntok, out, ostride)
						for i := range ntok {
							for rr := range R16Rows {
								want, mag := c.want(t, g*R16Rows+rr, i)
								got := float64(out[i*ostride+rr])
								if d := math.Abs(got - want); d > 1e-6*mag+1e-9 {
									t.Fatalf("%s %s cols=%d ntok=%d: row %d token %d = %g, want %g (mag %g)",
										kernel, ty, cols, ntok, g*R16Rows+rr, i, got, want, mag)
								}
							}
						}
					}
				}
				restore()
			}
		}
	}
}

// The assembly and pure Go kernels agree closely (the quantized ones sum
// exact block products in the same order, so only a rare double rounding
// in the Go fused multiply-add can part them).
func TestGemmR16AssemblyMatchesGo(t *testing.T) {
	if !HaveR16(Q8_0) && !HaveR16(F16) {
		t.Skip("no AVX-512 R16 kernels on this CPU")
	}
	r := rand.New(rand.NewPCG(18, 19))
	for _, ty := range []Type{Q8_0, Q4_0, Q4_K, Q5_K, Q6_K, F16, BF16} {
		if !HaveR16(ty) {
			continue
		}
		c := newR16Case(t, r, ty, 16, 1024, 33)
		for _, ntok := range r16TestTokens(ty, 12, 16, 24, 33) {
			asm := make([]float32, ntok*R16Rows)
			c.run(t, 0, ntok, asm, R16Rows)
			restore := forceR16Go()
			gen := make([]float32, ntok*R16Rows)
			c.run(t, 0, ntok, gen, R16Rows)
			restore()
			for k := range asm {
				tol := 1e-7 * math.Abs(float64(gen[k]))
				if ty == F16 || ty == BF16 {
					_, mag := c.want(t, k%R16Rows, k/R16Rows)
					tol = 1e-6 * mag // summed in another order
				}
				if d := math.Abs(float64(asm[k] - gen[k])); d > tol {
					t.Errorf("%s ntok=%d [%d]: assembly %g, Go %g", ty, ntok, k, asm[k], gen[k])
				}
			}
		}
	}
}

// A quantized R16 product is the row-by-row product (VecDot) up to the
// order of float32 additions.
func TestGemmR16MatchesVecDot(t *testing.T) {
	r := rand.New(rand.NewPCG(20, 21))
	for _, ty := range []Type{Q8_0, Q4_0, Q4_K, Q5_K, Q6_K} {
		c := newR16Case(t, r, ty, 16, 768, 3)
		out := make([]float32, 3*R16Rows)
		c.run(t, 0, 3, out, R16Rows)
		rb, _ := RowBytes(ty, c.cols)
		for i := range 3 {
			for rr := range R16Rows {
				want := VecDot(ty, c.cols, c.w[rr*rb:(rr+1)*rb], c.qa[i])
				_, mag := c.want(t, rr, i)
				if d := math.Abs(float64(out[i*R16Rows+rr] - want)); d > 1e-6*mag {
					t.Errorf("%s row %d token %d: R16 %g, VecDot %g", ty, rr, i, out[i*R16Rows+rr], want)
				}
			}
		}
	}
}

func TestR16Errors(t *testing.T) {
	w := make([]byte, 4096)
	a := make([]byte, 4096)
	out := make([]float32, 256)
	cases := []struct {
		name string
		err  error
		want string
	}{
		{"type", RepackR16(Q3_K, w, 16, 256, w), "no R16 layout"},
		{"rows", RepackR16(Q8_0, w, 15, 32, w), "multiple of 16 rows"},
		{"cols", RepackR16(Q8_0, w, 16, 48, w), "multiple of 32 columns"},
		{"k cols", RepackR16(Q4_K, w, 16, 288, w), "multiple of 256 columns"},
		{"prepare k cols", PrepareR16K(a, 288, a), "multiple of 256"},
		{"prepare k short", PrepareR16K(a[:100], 256, a), "need 292 source"},
		{"short source", RepackR16(Q8_0, w[:100], 16, 32, w), "needs 544 source"},
		{"prepare cols", PrepareR16(a, 40, a), "multiple of 32"},
		{"prepare short", PrepareR16(a[:10], 32, a), "need 34 source"},
		{"tokens", GemmR16Float(F16, 32, 1, w, out, 32, 9, out, 16), "9 tokens"},
		{"many tokens", GemmR16(Q8_0, 32, 1, w, a[:9*48-1], 48, 10, out, 16), "10 tokens"},
		{"no tokens", GemmR16(Q8_0, 32, 1, w, a, 48, 0, out, 16), "0 tokens"},
		{"group", GemmR16(Q8_0, 64, 1, w[:500], a, 96, 1, out, 16), "1 groups need 1088"},
		{"groups", GemmR16(Q8_0, 32, 2, w[:1000], a, 48, 1, out, 32), "2 groups need 1088"},
		{"no groups", GemmR16(Q8_0, 32, 0, w, a, 48, 1, out, 16), "0 groups"},
		{"group rows", GemmR16(Q8_0, 32, 2, w, a, 48, 2, out, 16), "2 output rows of 32"},
		{"activations", GemmR16(Q4_0, 32, 1, w, a[:100], 48, 3, out, 16), "do not fit in 100"},
		{"output", GemmR16(Q4_0, 32, 1, w, a, 48, 2, out[:20], 16), "do not fit in 20"},
		{"f16 through quant", GemmR16(F16, 32, 1, w, a, 48, 1, out, 16), "float activations"},
		{"quant through float", GemmR16Float(Q8_0, 32, 1, w, out, 32, 1, out, 16), "quantized activations"},
		{"f16 short x", GemmR16Float(F16, 32, 1, w, out[:31], 32, 1, out, 16), "do not fit in 31"},
	}
	for _, c := range cases {
		if c.err == nil || !strings.Contains(c.err.Error(), c.want) {
			t.Errorf("%s: got %v, want an error containing %q", c.name, c.err, c.want)
		}
	}
}

// RoundHalf agrees with FP32ToFP16 and back on every kind of value,
// including ties, subnormals, overflow, infinities and NaN.
func TestRoundHalf(t *testing.T) {
	r := rand.New(rand.NewPCG(22, 23))
	src := []float32{0, -0, 1, -1, 65504, 65520, 70000, -1e9, 1e-8, 6e-8, 3e-5, float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN()),
		1 + 1.0/2048, 1 + 3.0/2048, 2049, 2051}
	for range 1000 {
		src = append(src, float32(r.NormFloat64()*math.Pow(10, float64(r.IntN(12)-6))))
	}
	for _, n := range []int{len(src), 7, 8, 9, 17} {
		dst := make([]float32, n)
		RoundHalf(dst, src[:n])
		for i, v := range src[:n] {
			want := FP16ToFP32(FP32ToFP16(v))
			if math.Float32bits(dst[i]) != math.Float32bits(want) && !(want != want && dst[i] != dst[i]) {
				t.Fatalf("n=%d: RoundHalf(%g) = %g, want %g", n, v, dst[i], want)
			}
		}
	}
}

// QuantizeR16 equals QuantizeActivations then PrepareR16 (Q8_0) or
// PrepareR16K (Q8_K), byte for byte: all-zero blocks, rounding ties, and
// for Q8_K the sign rule of the largest magnitude (the first one wins).
func TestQuantizeR16(t *testing.T) {
	r := rand.New(rand.NewPCG(24, 25))
	for _, ty := range []Type{Q8_0, Q4_K} {
		vt := VecDotType(ty)
		prepare := PrepareR16
		if vt == Q8_K {
			prepare = PrepareR16K
		}
		for _, n := range []int{256, 768, 2048} {
			for trial := range 5 {
				x := randRow(r, n, float32(math.Pow(10, float64(trial-2))))
				switch trial {
				case 3:
					clear(x[:256]) // all-zero blocks
					x[n-1] = 127.5 // a tie
				case 4:
					x[7], x[3] = 1e6, -1e6 // equal magnitudes: the first (negative) wins
					x[300%n] = 1e6
				}
				qn, _ := RowBytes(vt, n)
				qa := make([]byte, qn)
				if err := QuantizeActivations(vt, x, qa); err != nil {
					t.Fatal(err)
				}
				want := make([]byte, R16ActBytes(ty, n))
				if err := prepare(qa, n, want); err != nil {
					t.Fatal(err)
				}
				for _, kernel := range []string{"cpu", "go"} {
					restore := func() {}
					if kernel == "go" {
						restore = forceR16Go()
					}
					got := make([]byte, len(want))
					for i := range got {
						got[i] = 0xAA // every byte must be written
					}
					if err := QuantizeR16(ty, x, got); err != nil {
						t.Fatal(err)
					}
					restore()
					if i := firstDiff(got, want); i >= 0 {
						t.Fatalf("%s %s n=%d trial %d: byte %d = %#x, want %#x", kernel, ty, n, trial, i, got[i], want[i])
					}
				}
			}
		}
	}
	for _, c := range []struct {
		ty   Type
		n, d int
	}{{Q8_0, 40, 100}, {Q8_0, 64, 95}, {Q4_K, 100, 1000}, {Q4_K, 256, 351}, {F16, 32, 100}, {Q2_K, 256, 1000}} {
		if err := QuantizeR16(c.ty, make([]float32, c.n), make([]byte, c.d)); err == nil {
			t.Errorf("%s, %d values, %d bytes: no error", c.ty, c.n, c.d)
		}
	}
}

func firstDiff(a, b []byte) int {
	for i := range b {
		if a[i] != b[i] {
			return i
		}
	}
	return -1
}

// The AVX2 float kernels (for CPUs without AVX-512) agree with the pure Go
// ones to float32 summation order, for every tile size and two groups.
func TestGemmR16FloatAVX2(t *testing.T) {
	restore, ok := forceR16AVX2()
	defer restore()
	if !ok {
		t.Skip("no AVX2/FMA/F16C")
	}
	r := rand.New(rand.NewPCG(28, 29))
	for _, ty := range []Type{F16, BF16} {
		c := newR16Case(t, r, ty, 32, 512, 8)
		for ntok := 1; ntok <= 8; ntok++ {
			ostride := 2*R16Rows + 5
			got := make([]float32, (ntok-1)*ostride+2*R16Rows)
			gb, _ := R16GroupBytes(ty, c.cols)
			if err := GemmR16Float(ty, c.cols, 2, c.packed[:2*gb], c.x, c.xstride, ntok, got, ostride); err != nil {
				t.Fatal(err)
			}
			for i := range ntok {
				for row := range 2 * R16Rows {
					want, mag := c.want(t, row, i)
					if d := math.Abs(float64(got[i*ostride+row]) - want); d > 1e-6*mag+1e-9 {
						t.Fatalf("%s ntok=%d: row %d token %d = %g, want %g", ty, ntok, row, i, got[i*ostride+row], want)
					}
				}
			}
		}
	}
}

// The AVX-512 float kernels that take two groups at once agree with the
// one-group ones to float32 summation order, for every tile size and for
// an odd number of groups (the last one alone).
func TestGemmR16FloatPairs(t *testing.T) {
	r := rand.New(rand.NewPCG(30, 31))
	for _, ty := range []Type{F16, BF16} {
		c := newR16Case(t, r, ty, 48, 768, 8)
		gb, _ := R16GroupBytes(ty, c.cols)
		for ntok := 1; ntok <= 8; ntok++ {
			ostride := 3*R16Rows + 5
			pairs := make([]float32, (ntok-1)*ostride+3*R16Rows)
			one := make([]float32, len(pairs))
			if err := GemmR16Float(ty, c.cols, 3, c.packed[:3*gb], c.x, c.xstride, ntok, pairs, ostride); err != nil {
				t.Fatal(err)
			}
			restore, ok := forceR16OneGroup()
			if !ok {
				restore()
				t.Skip("no AVX-512 float kernels")
			}
			if err := GemmR16Float(ty, c.cols, 3, c.packed[:3*gb], c.x, c.xstride, ntok, one, ostride); err != nil {
				t.Fatal(err)
			}
			restore()
			for i := range ntok {
				for row := range 3 * R16Rows {
					want, mag := c.want(t, row, i)
					k := i*ostride + row
					if d := math.Abs(float64(pairs[k]) - want); d > 1e-6*mag+1e-9 {
						t.Fatalf("%s ntok=%d: row %d token %d = %g, want %g", ty, ntok, row, i, pairs[k], want)
					}
					if d := math.Abs(float64(pairs[k] - one[k])); d > 1e-6*mag {
						t.Fatalf("%s ntok=%d: row %d token %d: pairs %g, one group %g", ty, ntok, row, i, pairs[k], one[k])
					}
				}
			}
			// the pairs sum each row column after column, as the pure Go
			// twin does: equal up to a rare double rounding in its FMA
			twin := make([]float32, len(pairs))
			for g := range 3 {
				gemmR16FloatGo(ty, c.cols, c.packed[g*gb:], c.x, c.xstride, ntok, twin[g*R16Rows:], ostride)
			}
			for i := range ntok {
				for row := range 2 * R16Rows { // the paired groups
					k := i*ostride + row
					_, mag := c.want(t, row, i)
					if ntok >= 4 && HaveR16(ty) && math.Abs(float64(pairs[k]-twin[k])) > 1e-7*mag {
						t.Fatalf("%s ntok=%d: row %d token %d: pairs %g, Go twin %g", ty, ntok, row, i, pairs[k], twin[k])
					}
				}
			}
		}
	}
}

// The BF16 kernels against rounded activations (VDPBF16PS where the CPU
// has AVX512-BF16) agree with their pure Go twin, for every tile size and
// two groups, and differ from the float32 products only by the rounding
// of the activations.
func TestGemmR16BF16DPMatchesGo(t *testing.T) {
	r := rand.New(rand.NewPCG(30, 31))
	c := newR16Case(t, r, BF16, 32, 1024, 8)
	gb, _ := R16GroupBytes(BF16, c.cols)
	ab := 2*c.cols + 6
	a := make([]byte, 8*ab)
	for i := range 8 {
		roundBF16(a[i*ab:], c.x[i*c.xstride:i*c.xstride+c.cols])
		ref := make([]byte, 2*c.cols)
		roundBF16Go(ref, c.x[i*c.xstride:i*c.xstride+c.cols])
		if string(ref) != string(a[i*ab:i*ab+2*c.cols]) {
			t.Fatalf("token %d: roundBF16 differs from roundBF16Go", i)
		}
	}
	for ntok := 1; ntok <= 8; ntok++ {
		ostride := 2*R16Rows + 3
		got := make([]float32, (ntok-1)*ostride+2*R16Rows)
		gen := make([]float32, len(got))
		for g := range 2 {
			gemmR16BF16DP(c.cols, c.packed[g*gb:], a, ab, ntok, got[g*R16Rows:], ostride)
			gemmR16BF16DPGo(c.cols, c.packed[g*gb:], a, ab, ntok, gen[g*R16Rows:], ostride)
		}
		for i := range ntok {
			for row := range 2 * R16Rows {
				var exact, mag float64
				rb, _ := RowBytes(BF16, c.cols)
				wf := make([]float32, c.cols)
				if err := Dequantize(BF16, c.w[row*rb:(row+1)*rb], wf); err != nil {
					t.Fatal(err)
				}
				for k, v := range c.x[i*c.xstride : i*c.xstride+c.cols] {
					p := float64(wf[k]) * float64(v)
					exact += p
					mag += math.Abs(p)
				}
				k := i*ostride + row
				if d := math.Abs(float64(got[k] - gen[k])); d > 1e-6*mag {
					t.Errorf("ntok=%d row %d token %d: kernel %g, Go %g", ntok, row, i, got[k], gen[k])
				}
				// bfloat16 keeps 8 bits: each activation within 2^-9
				if d := math.Abs(float64(gen[k]) - exact); d > 0x1p-9*mag+1e-6*mag {
					t.Errorf("ntok=%d row %d token %d: %g, float32 product %g", ntok, row, i, gen[k], exact)
				}
			}
		}
	}
}

func TestRoundBF16(t *testing.T) {
	for _, c := range []struct {
		in   float32
		want uint16
	}{
		{1, 0x3F80},
		{math.Float32frombits(0x3F808000), 0x3F80}, // tie, to even
		{math.Float32frombits(0x3F818000), 0x3F82}, // tie, to even
		{math.Float32frombits(0x3F808001), 0x3F81},
		{-2.5, 0xC020},
		{math.Float32frombits(0x00400000), 0},      // subnormal as zero
		{math.Float32frombits(0x80400000), 0x8000}, // negative subnormal
		{float32(math.Inf(1)), 0x7F80},
		{math.Float32frombits(0x7F800001), 0x7FC0}, // NaN stays NaN
		{math.Float32frombits(0x7F7FFFFF), 0x7F80}, // the largest float rounds to infinity
	} {
		if got := fp32ToBF16(c.in); got != c.want {
			t.Errorf("fp32ToBF16(%#x) = %#x, want %#x", math.Float32bits(c.in), got, c.want)
		}
		src := make([]float32, 64)
		for i := range src {
			src[i] = c.in
		}
		dst := make([]byte, 128)
		roundBF16(dst, src)
		for i := range 64 {
			if got := uint16(dst[2*i]) | uint16(dst[2*i+1])<<8; got != c.want {
				t.Fatalf("roundBF16(%#x)[%d] = %#x, want %#x", math.Float32bits(c.in), i, got, c.want)
			}
		}
	}
}

// PrepareR16BF16 packs the rounded activations in pairs (also in place),
// GemmR16BF16Rounded multiplies with them, and both reject what does not
// fit.
func TestGemmR16BF16Rounded(t *testing.T) {
	r := rand.New(rand.NewPCG(32, 33))
	c := newR16Case(t, r, BF16, 32, 256, 5)
	x := append([]float32(nil), c.x...) // prepared in place, row by row
	for i := range 5 {
		row := x[i*c.xstride : i*c.xstride+c.cols]
		if err := PrepareR16BF16(row, row); err != nil {
			t.Fatal(err)
		}
		for k, v := range c.x[i*c.xstride : i*c.xstride+c.cols] {
			if b := uint16(math.Float32bits(row[k/2]) >> (16 * (k % 2))); b != fp32ToBF16(v) {
				t.Fatalf("token %d value %d: %#x, want %#x", i, k, b, fp32ToBF16(v))
			}
		}
	}
	ostride := 2*R16Rows + 1
	out := make([]float32, 4*ostride+2*R16Rows)
	if err := GemmR16BF16Rounded(c.cols, 2, c.packed, x, c.xstride, 5, out, ostride); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		for row := range 2 * R16Rows {
			want, mag := c.want(t, row, i)
			if d := math.Abs(float64(out[i*ostride+row]) - want); d > 0x1p-9*mag+1e-6*mag {
				t.Fatalf("row %d token %d = %g, float32 product %g", row, i, out[i*ostride+row], want)
			}
		}
	}
	if err := PrepareR16BF16(make([]float32, 4), make([]float32, 9)); err == nil {
		t.Error("an odd count accepted")
	}
	if err := PrepareR16BF16(make([]float32, 3), make([]float32, 8)); err == nil {
		t.Error("a short destination accepted")
	}
	if err := GemmR16BF16Rounded(c.cols, 3, c.packed, x, c.xstride, 5, out, ostride); err == nil {
		t.Error("three groups out of two accepted")
	}
	if err := GemmR16BF16Rounded(c.cols, 2, c.packed, x[:4*c.xstride], c.xstride, 5, out, ostride); err == nil {
		t.Error("short activations accepted")
	}
}

// GemmR16BF16Rounded takes two groups at once from six tokens up: for
// every tile size and an odd group count it agrees with the pure Go twin
// group by group and with the one-group kernels.
func TestGemmR16BF16RoundedPairs(t *testing.T) {
	r := rand.New(rand.NewPCG(34, 35))
	c := newR16Case(t, r, BF16, 48, 512, 8)
	gb, _ := R16GroupBytes(BF16, c.cols)
	x := make([]float32, len(c.x))
	for i := range 8 {
		if err := PrepareR16BF16(x[i*c.xstride:], c.x[i*c.xstride:i*c.xstride+c.cols]); err != nil {
			t.Fatal(err)
		}
	}
	a := unsafe.Slice((*byte)(unsafe.Pointer(&x[0])), 4*len(x))
	for ntok := 1; ntok <= 8; ntok++ {
		ostride := 3*R16Rows + 2
		got := make([]float32, (ntok-1)*ostride+3*R16Rows)
		one := make([]float32, len(got))
		twin := make([]float32, len(got))
		if err := GemmR16BF16Rounded(c.cols, 3, c.packed, x, c.xstride, ntok, got, ostride); err != nil {
			t.Fatal(err)
		}
		restore, _ := forceR16OneGroup()
		if err := GemmR16BF16Rounded(c.cols, 3, c.packed, x, c.xstride, ntok, one, ostride); err != nil {
			t.Fatal(err)
		}
		restore()
		for g := range 3 {
			gemmR16BF16DPGo(c.cols, c.packed[g*gb:], a, 4*c.xstride, ntok, twin[g*R16Rows:], ostride)
		}
		for i := range ntok {
			for row := range 3 * R16Rows {
				_, mag := c.want(t, row, i)
				k := i*ostride + row
				if d := math.Abs(float64(got[k] - twin[k])); d > 1e-6*mag {
					t.Fatalf("ntok=%d row %d token %d: %g, Go twin %g", ntok, row, i, got[k], twin[k])
				}
				if d := math.Abs(float64(got[k] - one[k])); d > 1e-6*mag {
					t.Fatalf("ntok=%d row %d token %d: %g, one group at a time %g", ntok, row, i, got[k], one[k])
				}
			}
		}
	}
}

// TestGemmR16ManyTokens: a quantized call of more than eight tokens over
// several groups equals calls of at most eight tokens group by group, bit
// for bit (the same kernels on the same tiles), and short buffers are
// refused.
func TestGemmR16ManyTokens(t *testing.T) {
	r := rand.New(rand.NewPCG(22, 23))
	for _, ty := range []Type{Q8_0, Q4_0, Q4_K, Q5_K, Q6_K} {
		const rows, ntok = 48, 21
		c := newR16Case(t, r, ty, rows, 512, ntok)
		groups := rows / R16Rows
		ostride := rows + 3
		got := make([]float32, (ntok-1)*ostride+rows)
		if err := GemmR16(ty, c.cols, groups, c.packed, c.act, c.astride, ntok, got, ostride); err != nil {
			t.Fatal(err)
		}
		gb, _ := R16GroupBytes(ty, c.cols)
		want := make([]float32, len(got))
		for g := range groups {
			for t0 := 0; t0 < ntok; t0 += 8 {
				nt := min(8, ntok-t0)
				if err := GemmR16(ty, c.cols, 1, c.packed[g*gb:], c.act[t0*c.astride:], c.astride, nt, want[t0*ostride+g*R16Rows:], ostride); err != nil {
					t.Fatal(err)
				}
			}
		}
		for i := range want {
			if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
				t.Fatalf("%s [%d]: %g, by tiles %g", ty, i, got[i], want[i])
			}
		}
		if err := GemmR16(ty, c.cols, groups, c.packed, c.act[:(ntok-1)*c.astride+R16ActBytes(ty, c.cols)-1], c.astride, ntok, got, ostride); err == nil {
			t.Errorf("%s: a short activation buffer was accepted", ty)
		}
		if err := GemmR16(ty, c.cols, groups, c.packed, c.act, c.astride, ntok, got[:len(got)-1], ostride); err == nil {
			t.Errorf("%s: a short output buffer was accepted", ty)
		}
	}
}
