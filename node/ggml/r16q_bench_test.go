package ggml

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"helexa/node/mmapfile"
)

// BenchmarkGemmR16Q times quantized R16 groups against ntok tokens in one
// call per group block: "cached" walks 64 rows again and again (weights in
// L1/L2, as a prefill's token tiles see them), "streamed" walks a matrix
// larger than the last-level cache once per iteration (a decode step).
func BenchmarkGemmR16Q(b *testing.B) {
	for _, ty := range []Type{Q4_K, Q5_K, Q6_K, Q8_0, F16} {
		for _, mode := range []string{"cached", "streamed"} {
			for _, ntok := range []int{1, 4, 8, 16} {
				b.Run(fmt.Sprintf("%s/%s/tok%d", ty, mode, ntok), func(b *testing.B) {
					cols, rows := 768, 64
					if mode == "streamed" {
						rows = 48 * 1024 // 48k rows of 768: ~30-40 MB
					}
					c := newR16Case(b, rand.New(rand.NewPCG(1, 2)), ty, R16Rows, cols, ntok)
					gb, _ := R16GroupBytes(ty, cols)
					mem, err := mmapfile.NewAnon(rows / R16Rows * gb) // huge pages, as the engine's repacked weights
					if err != nil {
						b.Fatal(err)
					}
					defer mem.Close()
					w := mem.Bytes()
					for g := 0; g < rows/R16Rows; g++ {
						copy(w[g*gb:], c.packed)
					}
					out := make([]float32, ntok*rows)
					b.ResetTimer()
					for range b.N {
						var err error
						if ty == F16 {
							err = GemmR16Float(ty, cols, rows/R16Rows, w, c.x, c.xstride, ntok, out, rows)
						} else {
							err = GemmR16(ty, cols, rows/R16Rows, w, c.act, c.astride, ntok, out, rows)
						}
						if err != nil {
							b.Fatal(err)
						}
					}
					b.ReportMetric(float64(b.N)*float64(rows*ntok*cols)/b.Elapsed().Seconds()/1e9, "GMAC/s")
					b.ReportMetric(float64(b.N)*float64(len(w))/b.Elapsed().Seconds()/1e9, "GB/s")
				})
			}
		}
	}
}
