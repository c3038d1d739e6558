package engine

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// BenchmarkBatchedDecode times one decode step of B sequences at once,
// each at a fixed depth of 128 positions (every iteration cuts the
// sequences back to it), and reports the aggregate tokens per second.
// HELEXA_BENCH_DEPTH sets another depth (attention's share of a step
// grows with it).
// HELEXA_BENCH_MODEL names one more model file to time (e.g. a 125M
// model made with `helexa tools synth`).
func BenchmarkBatchedDecode(b *testing.B) {
	names := []string{"synth-25m-Q4_K_M.gguf"}
	if p := os.Getenv("HELEXA_BENCH_MODEL"); p != "" {
		names = append(names, p)
	}
	depth := 128
	if d, err := strconv.Atoi(os.Getenv("HELEXA_BENCH_DEPTH")); err == nil && d > 0 {
		depth = d
	}
	for _, name := range names {
		for _, nseq := range []int{1, 4, 8, 16} {
			b.Run(fmt.Sprintf("%s/seqs=%d", filepath.Base(name), nseq), func(b *testing.B) {
				path := name
				if !filepath.IsAbs(path) {
					path = filepath.Join(sharedDir(b), "models", name)
				}
				ctx := depth + 384
				m, err := Load(path, Options{ContextLength: ctx, KVTokens: ctx * nseq, Threads: 2})
				if err != nil {
					b.Fatal(err)
				}
				defer m.Close()
				prompt := make([]int32, depth)
				for i := range prompt {
					prompt[i] = int32(1 + (i*31)%(m.NVocab()-1))
				}
				items := make([]SeqItem, nseq)
				for i := range items {
					p := append([]int32{int32(2 + i)}, prompt[1:]...) // distinct, no sharing
					s, _, err := m.Pool().Start(p, nil)
					if err != nil {
						b.Fatal(err)
					}
					if err := m.ForwardBatch([]SeqItem{{Seq: s, Tokens: p}}); err != nil {
						b.Fatal(err)
					}
					items[i] = SeqItem{Seq: s, Tokens: []int32{5}, Logits: make([]float32, m.NVocab())}
				}
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					if err := m.ForwardBatch(items); err != nil {
						b.Fatal(err)
					}
					for _, it := range items {
						if err := m.Pool().Truncate(it.Seq, depth); err != nil {
							b.Fatal(err)
						}
					}
				}
				b.ReportMetric(float64(nseq*b.N)/b.Elapsed().Seconds(), "tok/s")
			})
		}
	}
}
