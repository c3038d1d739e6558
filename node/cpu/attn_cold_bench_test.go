package cpu

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// BenchmarkAttnGroupCold is BenchmarkAttnGroup's grouped case over caches
// that are not in any cache level: each iteration reads another
// sequence's keys and values from 64 MiB of them, as a decode step over
// many sequences does.
func BenchmarkAttnGroupCold(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	const hd, nKV, npos = 64, 4, 128
	const seqs = 64 << 20 / (2 * 2 * npos * nKV * hd)
	k := randHalves(r, seqs*npos*nKV*hd)
	v := randHalves(r, seqs*npos*nKV*hd)
	for _, stride := range []int{nKV * hd, hd} {
		for _, rows := range []int{3} {
			q := randFloats(r, rows*hd)
			out := make([]float32, rows*hd)
			sc := make([]float32, rows*npos)
			scratch := make([]float32, ScoresScratch(hd))
			b.Run(fmt.Sprintf("stride%d/rows%d", stride, rows), func(b *testing.B) {
				i := 0
				for b.Loop() {
					off := (i % seqs) * npos * nKV * hd
					i += 7
					if stride == hd {
						Prefetch(v[off : off+npos*hd]) // as the engine does
					}
					ScoresF16G(sc, npos, q, hd, rows, k[off:], stride, hd, npos, 0.125, scratch)
					for h := range rows {
						Softmax(sc[h*npos:(h+1)*npos], true)
					}
					clear(out)
					MixF16G(out, hd, sc, npos, rows, v[off:], stride, hd, npos)
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*rows*npos), "ns/key/row")
			})
		}
	}
}
