package engine

import (
	"os"
	"testing"
)

func BenchmarkTmpPrefill(b *testing.B) {
	m, err := Load(os.Getenv("TMPMODEL"), Options{ContextLength: 600, Threads: 2})
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	logits := make([]float32, m.NVocab())
	tokens := make([]int32, 512)
	for i := range tokens {
		tokens[i] = int32(1 + i*7%(m.NVocab()-1))
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := m.Forward(0, tokens, 0, logits); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(512*b.N)/b.Elapsed().Seconds(), "tok/s")
}
