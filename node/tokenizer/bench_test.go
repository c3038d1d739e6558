package tokenizer

import (
	"strings"
	"testing"
)

// benchText is a few KB of mixed prose, code, numbers and other scripts.
var benchText = strings.Repeat(`Once upon a time, in 1492, a little girl named Lily found a shiny red ball
in the park. She said: "I'll keep it!" — and ran home.  Ünïcödé text, 日本語の文章, emojis 🚀🎉.
func main() { for i := 0; i < 10; i++ { fmt.Println(i * 3.14159) } }
`, 16)

func benchEncode(b *testing.B, tok *Tokenizer) {
	b.SetBytes(int64(len(benchText)))
	b.ReportAllocs()
	for b.Loop() {
		tok.Encode(benchText, true, false)
	}
}

func BenchmarkEncodeLlama3(b *testing.B) { benchEncode(b, loadHF(b, "tokenizers/llama3")) }
func BenchmarkEncodeQwen3(b *testing.B)  { benchEncode(b, loadHF(b, "tokenizers/qwen3")) }
func BenchmarkEncodeSPM(b *testing.B) {
	benchEncode(b, loadGGUF(b, "tokenizers/llama-spm/ggml-vocab-llama-spm.gguf"))
}
func BenchmarkEncodeGPT2(b *testing.B) {
	benchEncode(b, loadGGUF(b, "tokenizers/gpt-2/ggml-vocab-gpt-2.gguf"))
}

func BenchmarkDecodeStream(b *testing.B) {
	tok := loadHF(b, "tokenizers/llama3")
	ids := tok.Encode(benchText, true, false)
	b.SetBytes(int64(len(benchText)))
	b.ReportAllocs()
	for b.Loop() {
		d := tok.NewDecoder()
		for _, id := range ids {
			d.Add(id)
		}
		d.Flush()
	}
}

// benchEncodeCold empties the word cache before every run.
func benchEncodeCold(b *testing.B, tok *Tokenizer) {
	b.SetBytes(int64(len(benchText)))
	b.ReportAllocs()
	for b.Loop() {
		tok.cache.mu.Lock()
		clear(tok.cache.m)
		tok.cache.mu.Unlock()
		tok.Encode(benchText, true, false)
	}
}

func BenchmarkEncodeColdLlama3(b *testing.B) { benchEncodeCold(b, loadHF(b, "tokenizers/llama3")) }
func BenchmarkEncodeColdSPM(b *testing.B) {
	benchEncodeCold(b, loadGGUF(b, "tokenizers/llama-spm/ggml-vocab-llama-spm.gguf"))
}
