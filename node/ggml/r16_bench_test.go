package ggml

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// BenchmarkGemmR16Float multiplies four groups (64 rows) of a float matrix
// with 128 tokens in tiles of eight, the way a prefill walks a block of
// rows, and reports the rate in multiply-adds.
func BenchmarkGemmR16Float(b *testing.B) {
	for _, ty := range []Type{F16, BF16} {
		for _, cols := range []int{768, 3072} {
			b.Run(fmt.Sprintf("%s/k%d", ty, cols), func(b *testing.B) {
				t := &testing.T{}
				const rows, ntok = 64, 128
				c := newR16Case(t, rand.New(rand.NewPCG(1, 2)), ty, rows, cols, ntok)
				out := make([]float32, ntok*rows)
				b.ResetTimer()
				for range b.N {
					for t0 := 0; t0 < ntok; t0 += 8 {
						if err := GemmR16Float(ty, cols, rows/R16Rows, c.packed, c.x[t0*c.xstride:], c.xstride, 8, out[t0*rows:], rows); err != nil {
							b.Fatal(err)
						}
					}
				}
				b.ReportMetric(float64(b.N)*rows*ntok*float64(cols)/b.Elapsed().Seconds()/1e9, "GMAC/s")
			})
		}
	}
}
