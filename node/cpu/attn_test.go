package cpu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"helexa/node/ggml"
)

// attnLevels are the kernel levels this CPU runs, best first.
func attnLevels() []int {
	var l []int
	for lv := attnBest(); lv >= 0; lv-- {
		l = append(l, lv)
	}
	return l
}

func randHalves(r *rand.Rand, n int) []uint16 {
	h := make([]uint16, n)
	for i := range h {
		h[i] = ggml.FP32ToFP16(float32(r.NormFloat64()))
	}
	return h
}

func randFloats(r *rand.Rand, n int) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	return x
}

// near reports whether got is want up to float32 summation order over
// terms whose magnitudes sum to mag.
func near(got, want, mag float64) bool {
	return math.Abs(got-want) <= 1e-5*mag+1e-30
}

func TestScoresF16G(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, lv := range attnLevels() {
		for _, hd := range []int{8, 24, 64, 80, 96, 128, 300} {
			for _, nq := range []int{1, 2, 3, 4, 5, 6, 7, 8, 12} {
				for _, npos := range []int{1, 7, 8, 9, 31, 64, 67} {
					name := fmt.Sprintf("level%d/hd%d/g%d/n%d", lv, hd, nq, npos)
					kStride, qStride, outStride := hd+24, hd+8, npos+5
					k := randHalves(r, npos*kStride)
					q := randFloats(r, nq*qStride)
					out := make([]float32, nq*outStride)
					for i := range out {
						out[i] = 1234 // must be overwritten, and gaps kept
					}
					scratch := make([]float32, ScoresScratch(hd))
					scale := float32(0.125)
					func() {
						defer func(old int) { attnLevel = old }(attnLevel)
						attnLevel = lv
						ScoresF16G(out, outStride, q, qStride, nq, k, kStride, hd, npos, scale, scratch)
					}()
					for g := range nq {
						for p := range outStride {
							got := float64(out[g*outStride+p])
							if p >= npos {
								if got != 1234 {
									t.Fatalf("%s: out[%d][%d] past npos written: %v", name, g, p, got)
								}
								continue
							}
							var want, mag float64
							for i := range hd {
								x := float64(q[g*qStride+i]) * float64(ggml.FP16ToFP32(k[p*kStride+i]))
								want += x
								mag += math.Abs(x)
							}
							want *= float64(scale)
							if !near(got, want, mag*float64(scale)) {
								t.Fatalf("%s: out[%d][%d] = %v, want %v", name, g, p, got, want)
							}
						}
					}
				}
			}
		}
	}
}

func TestMixF16G(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for _, lv := range attnLevels() {
		for _, hd := range []int{8, 24, 64, 80, 96, 128, 300} {
			for _, nq := range []int{1, 2, 3, 4, 5, 6, 7, 8, 12, 13, 25} {
				for _, npos := range []int{1, 7, 8, 9, 67} {
					name := fmt.Sprintf("level%d/hd%d/g%d/n%d", lv, hd, nq, npos)
					vStride, wStride, outStride := hd+40, npos+3, hd+16
					v := randHalves(r, npos*vStride)
					w := randFloats(r, nq*wStride)
					out := randFloats(r, nq*outStride)
					start := append([]float32(nil), out...)
					func() {
						defer func(old int) { attnLevel = old }(attnLevel)
						attnLevel = lv
						MixF16G(out, outStride, w, wStride, nq, v, vStride, hd, npos)
					}()
					for g := range nq {
						for i := range outStride {
							got := out[g*outStride+i]
							if i >= hd {
								if got != start[g*outStride+i] {
									t.Fatalf("%s: out[%d][%d] past hd changed", name, g, i)
								}
								continue
							}
							want, mag := float64(start[g*outStride+i]), math.Abs(float64(start[g*outStride+i]))
							for p := range npos {
								x := float64(w[g*wStride+p]) * float64(ggml.FP16ToFP32(v[p*vStride+i]))
								want += x
								mag += math.Abs(x)
							}
							if !near(float64(got), want, mag) {
								t.Fatalf("%s: out[%d][%d] = %v, want %v", name, g, i, got, want)
							}
						}
					}
					// Each head's sums are MixF16's, bit for bit (both FMA in p order).
					if lv == attnBest() && lv > 0 && hd%8 == 0 {
						for g := range nq {
							one := append([]float32(nil), start[g*outStride:g*outStride+hd]...)
							MixF16(one, w[g*wStride:g*wStride+npos], v, vStride)
							for i, x := range one {
								if x != out[g*outStride+i] {
									t.Fatalf("%s: head %d col %d = %v, MixF16 gives %v", name, g, i, out[g*outStride+i], x)
								}
							}
						}
					}
				}
			}
		}
	}
}

func TestAttnGroupPanicsOnShortSlices(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("no panic for a key cache shorter than npos rows")
		}
	}()
	k := make([]uint16, 64*3)
	ScoresF16G(make([]float32, 4), 4, make([]float32, 64), 64, 1, k, 64, 64, 4, 1, make([]float32, ScoresScratch(64)))
}

// BenchmarkAttnGroup compares one attention item of rows query rows
// sharing a KV head (1: a head of its own; 3: a decode step of a group of
// three; 12: four prefill tokens of such a group) against head-by-head
// ScoresF16 and MixF16, at 512 keys of 64 values, four KV heads.
func BenchmarkAttnGroup(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	const hd, nKV, npos = 64, 4, 512
	k := randHalves(r, npos*nKV*hd)
	v := randHalves(r, npos*nKV*hd)
	for _, rows := range []int{1, 3, 12} {
		q := randFloats(r, rows*hd)
		out := make([]float32, rows*hd)
		sc := make([]float32, rows*npos)
		scratch := make([]float32, ScoresScratch(hd))
		b.Run(fmt.Sprintf("grouped/rows%d", rows), func(b *testing.B) {
			for b.Loop() {
				ScoresF16G(sc, npos, q, hd, rows, k, nKV*hd, hd, npos, 0.125, scratch)
				for h := range rows {
					Softmax(sc[h*npos:(h+1)*npos], true)
				}
				clear(out)
				MixF16G(out, hd, sc, npos, rows, v, nKV*hd, hd, npos)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*rows*npos), "ns/key/row")
		})
		b.Run(fmt.Sprintf("perhead/rows%d", rows), func(b *testing.B) {
			for b.Loop() {
				for h := range rows {
					s := sc[h*npos : (h+1)*npos]
					ScoresF16(s, q[h*hd:(h+1)*hd], k, nKV*hd, 0.125)
					Softmax(s, true)
					o := out[h*hd : (h+1)*hd]
					clear(o)
					MixF16(o, s, v, nKV*hd)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*rows*npos), "ns/key/row")
		})
	}
}
