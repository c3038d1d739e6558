package engine

import (
	"path/filepath"
	"testing"
)

// benchModels are the models the benchmarks time, from the shared folder.
var benchModels = []string{"synth-25m-Q4_K_M.gguf", "synth-25m-Q8_0.gguf", "stories260K.gguf"}

func loadBench(b *testing.B, name string) *Model {
	b.Helper()
	path := filepath.Join(sharedDir(b), "models", name)
	m, err := Load(path, Options{ContextLength: 1024, Threads: 2})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { m.Close() })
	return m
}

// BenchmarkPrefill times a 256-token prompt.
func BenchmarkPrefill(b *testing.B) {
	for _, name := range benchModels {
		b.Run(name, func(b *testing.B) {
			m := loadBench(b, name)
			const n = 256
			tokens := make([]int32, n)
			for i := range tokens {
				tokens[i] = int32(1 + i%(m.NVocab()-1))
			}
			logits := make([]float32, m.NVocab())
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := m.Forward(0, tokens, 0, logits); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "tok/s")
		})
	}
}

// BenchmarkDecode times single-token steps after a short prompt.
func BenchmarkDecode(b *testing.B) {
	for _, name := range benchModels {
		b.Run(name, func(b *testing.B) {
			m := loadBench(b, name)
			logits := make([]float32, m.NVocab())
			if err := m.Forward(0, []int32{1, 2, 3, 4}, 0, logits); err != nil {
				b.Fatal(err)
			}
			tok := []int32{5}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				pos := 4 + i%(m.NCtx()-4)
				if err := m.Forward(0, tok, pos, logits); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tok/s")
		})
	}
}
