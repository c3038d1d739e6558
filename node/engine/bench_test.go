package engine

import (
	"fmt"
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

// decodeDepths are the context depths BenchmarkDecode measures at: right
// after a short prompt, and deep into a conversation.
var decodeDepths = []int{16, 512}

// BenchmarkDecode times one single-token step at a fixed depth: the KV
// cache holds depth positions and every iteration decodes position depth
// again (overwriting it), so each step attends over the same depth+1
// positions whatever b.N is.
func BenchmarkDecode(b *testing.B) {
	for _, depth := range decodeDepths {
		b.Run(fmt.Sprintf("depth=%d", depth), func(b *testing.B) {
			for _, name := range benchModels {
				b.Run(name, func(b *testing.B) {
					m := loadBench(b, name)
					logits := make([]float32, m.NVocab())
					prompt := make([]int32, depth)
					for i := range prompt {
						prompt[i] = int32(1 + i%(m.NVocab()-1))
					}
					if err := m.Forward(0, prompt, 0, logits); err != nil {
						b.Fatal(err)
					}
					tok := []int32{5}
					b.ResetTimer()
					for i := 0; i < b.N; i++ {
						if err := m.Forward(0, tok, depth, logits); err != nil {
							b.Fatal(err)
						}
					}
					b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tok/s")
				})
			}
		})
	}
}
