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
				const rows, ntok = 64, 128
				c := newR16Case(b, rand.New(rand.NewPCG(1, 2)), ty, rows, cols, ntok)
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

// BenchmarkGemmR16BF16Rounded is BenchmarkGemmR16Float's BF16 case against
// bfloat16 activations.
func BenchmarkGemmR16BF16Rounded(b *testing.B) {
	for _, cols := range []int{768, 3072} {
		b.Run(fmt.Sprintf("k%d", cols), func(b *testing.B) {
			const rows, ntok = 64, 128
			c := newR16Case(b, rand.New(rand.NewPCG(1, 2)), BF16, rows, cols, ntok)
			x := make([]float32, len(c.x))
			for i := range ntok {
				if err := PrepareR16BF16(x[i*c.xstride:], c.x[i*c.xstride:i*c.xstride+cols]); err != nil {
					b.Fatal(err)
				}
			}
			out := make([]float32, ntok*rows)
			b.ResetTimer()
			for range b.N {
				for t0 := 0; t0 < ntok; t0 += 8 {
					if err := GemmR16BF16Rounded(cols, rows/R16Rows, c.packed, x[t0*c.xstride:], c.xstride, 8, out[t0*rows:], rows); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64(b.N)*rows*ntok*float64(cols)/b.Elapsed().Seconds()/1e9, "GMAC/s")
		})
	}
}
