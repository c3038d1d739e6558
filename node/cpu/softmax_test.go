package cpu

import (
	"math"
	"math/rand/v2"
	"testing"

	"helexa/node/ggml"
)

// softmaxRef is the plain definition, with the same clamping and half
// rounding.
func softmaxRef(x []float32, half bool) []float32 {
	mx := float32(math.Inf(-1))
	for _, v := range x {
		mx = max(mx, v)
	}
	out := make([]float32, len(x))
	var sum float64
	for i, v := range x {
		out[i] = float32(math.Exp(float64(min(max(v-mx, -87.3), 88.3))))
		sum += float64(out[i])
	}
	for i := range out {
		out[i] *= float32(1 / sum)
		if half {
			out[i] = ggml.FP16ToFP32(ggml.FP32ToFP16(out[i]))
		}
	}
	return out
}

func TestSoftmax(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, n := range []int{1, 2, 7, 8, 9, 64, 100, 513} {
		for _, half := range []bool{false, true} {
			for _, simd := range []bool{true, false} {
				x := make([]float32, n)
				for i := range x {
					x[i] = float32(r.NormFloat64() * 8)
				}
				if n > 3 {
					x[3] = -1e30 // a masked-out score
				}
				want := softmaxRef(x, half)
				saved := useAVX2
				useAVX2 = useAVX2 && simd
				Softmax(x, half)
				useAVX2 = saved
				var total float64
				for i := range x {
					total += float64(x[i])
					// the polynomial exp is within a few ulps; half rounding
					// can then land one half-ulp apart
					tol := 1e-6*float64(want[i]) + 1e-12
					if half {
						tol = float64(want[i])/1024 + 1e-12
					}
					if d := math.Abs(float64(x[i] - want[i])); d > tol {
						t.Fatalf("n=%d half=%v simd=%v: [%d] = %g, want %g", n, half, simd, i, x[i], want[i])
					}
				}
				if math.Abs(total-1) > 1e-3 {
					t.Errorf("n=%d half=%v: weights sum to %g", n, half, total)
				}
			}
		}
	}
}

// ToF16 rounds as ggml.FP32ToFP16 does, bit for bit (NaNs stay NaNs).
func TestToF16MatchesFP32ToFP16(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	x := []float32{0, float32(math.Copysign(0, -1)), 65504, 65519, 65520, 1e9, -1e9, 6e-8, 3e-8, 1e-10,
		1 + 1.0/2048, 1 + 3.0/2048, float32(math.Inf(1)), float32(math.NaN())}
	for range 3000 {
		x = append(x, float32(r.NormFloat64()*math.Pow(10, float64(r.IntN(14)-7))))
	}
	h := make([]uint16, len(x))
	ToF16(h, x)
	for i, v := range x {
		want := ggml.FP32ToFP16(v)
		isNaN := func(b uint16) bool { return b&0x7c00 == 0x7c00 && b&0x3ff != 0 }
		if h[i] != want && !(isNaN(h[i]) && isNaN(want)) {
			t.Fatalf("ToF16(%g) = %#04x, want %#04x", v, h[i], want)
		}
	}
}

// TestSiLUMul: SiLUMul equals Exp of the negated input followed by the
// float32 divide and multiply, bit for bit, at every length (the vector
// body and the scalar tail), for ordinary, large and clamped inputs.
func TestSiLUMul(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, n := range []int{1, 7, 8, 9, 64, 100, 2048} {
		g := make([]float32, n)
		u := make([]float32, n)
		for i := range g {
			g[i] = float32(r.NormFloat64() * 4)
			u[i] = float32(r.NormFloat64())
		}
		if n >= 8 {
			g[0], g[1], g[2], g[3] = 0, -100, 100, -88
		}
		want := make([]float32, n)
		e := make([]float32, n)
		for i, v := range g {
			e[i] = -v
		}
		Exp(e)
		for i, v := range g {
			want[i] = v / (1 + e[i]) * u[i]
		}
		got := append([]float32(nil), g...)
		SiLUMul(got, u)
		for i := range got {
			if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
				t.Fatalf("n=%d: [%d] silu(%g)*%g = %g, want %g", n, i, g[i], u[i], got[i], want[i])
			}
		}
	}
}

// TestAnyAbove: AnyAbove finds a value above the threshold wherever it is
// (vector body or tail), never counts NaN or equal values, and says false
// for an empty slice.
func TestAnyAbove(t *testing.T) {
	nan := float32(math.NaN())
	for _, n := range []int{0, 1, 7, 8, 9, 31, 256} {
		x := make([]float32, n)
		for i := range x {
			x[i] = float32(i%5) - 10
		}
		if AnyAbove(x, 0) {
			t.Fatalf("n=%d: found a value above 0 in %v", n, x)
		}
		for i := range x {
			y := append([]float32(nil), x...)
			y[i] = 0
			if AnyAbove(y, 0) {
				t.Fatalf("n=%d: an equal value at %d counted as above", n, i)
			}
			y[i] = nan
			if AnyAbove(y, 0) {
				t.Fatalf("n=%d: NaN at %d counted as above", n, i)
			}
			y[i] = 0.5
			if !AnyAbove(y, 0) {
				t.Fatalf("n=%d: missed 0.5 at %d", n, i)
			}
		}
	}
}

// TestRMSNorm: RMSNorm is the sequential definition (float32 squares
// summed in float64, float32 scale, x·scale·w) up to the order of the
// float64 additions: equal to within an ulp of float32 at every length,
// in place too.
func TestRMSNorm(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, n := range []int{1, 7, 8, 9, 64, 768, 1000} {
		x := make([]float32, n)
		w := make([]float32, n)
		for i := range x {
			x[i] = float32(r.NormFloat64() * 3)
			w[i] = float32(1 + r.NormFloat64()/4)
		}
		var ss float64
		for _, v := range x {
			ss += float64(v * v)
		}
		mean := float32(ss / float64(n))
		scale := 1 / float32(math.Sqrt(float64(mean+1e-6)))
		got := make([]float32, n)
		RMSNorm(got, x, w, 1e-6)
		in := append([]float32(nil), x...)
		RMSNorm(in, in, w, 1e-6)
		for i := range x {
			want := x[i] * scale * w[i]
			if d := math.Abs(float64(got[i] - want)); d > 1.2e-7*math.Abs(float64(want)) {
				t.Fatalf("n=%d [%d] = %g, want %g", n, i, got[i], want)
			}
			if in[i] != got[i] {
				t.Fatalf("n=%d [%d]: in place %g, out of place %g", n, i, in[i], got[i])
			}
		}
	}
}
