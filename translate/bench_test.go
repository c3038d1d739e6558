package translate

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func BenchmarkAnthropicToChatClaudeCode(b *testing.B) {
	body := clientBody(b, "claude-code-messages-request.json")
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := AnthropicToChat(body); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkResponsesToChatCodex(b *testing.B) {
	body := clientBody(b, "codex-responses-request.json")
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := ResponsesToChat(body); err != nil {
			b.Fatal(err)
		}
	}
}

// tokenChunks is a stream of n one-token text chunks as a neuron sends them.
func tokenChunks(n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = fmt.Appendf(nil, `{"id":"chatcmpl-b","object":"chat.completion.chunk","created":1790000000,"model":"m","choices":[{"index":0,"delta":{"content":" tok%d"},"finish_reason":null}]}`, i)
	}
	return out
}

// Per-token cost of the stream converters: b.N tokens through one stream.
func BenchmarkAnthropicStreamToken(b *testing.B) {
	chunks := tokenChunks(1024)
	s := NewAnthropicStream(io.Discard, "m", nil)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if err := s.Chunk(chunks[i%len(chunks)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func BenchmarkResponsesStreamToken(b *testing.B) {
	chunks := tokenChunks(1024)
	s := NewResponsesStream(io.Discard, []byte(`{"model":"m","input":"x"}`), nil)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if err := s.Chunk(chunks[i%len(chunks)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// A whole tool-call stream, start to finish.
func BenchmarkAnthropicStreamToolTranscript(b *testing.B) {
	raw, err := os.ReadFile(filepath.Join(streamDir, "tool_call.jsonl"))
	if err != nil {
		b.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
	b.ReportAllocs()
	for b.Loop() {
		s := NewAnthropicStream(io.Discard, "m", nil)
		for _, l := range lines {
			if l == "[DONE]" {
				break
			}
			if err := s.Chunk([]byte(l)); err != nil {
				b.Fatal(err)
			}
		}
		if err := s.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSSEReader(b *testing.B) {
	var sb strings.Builder
	for _, c := range tokenChunks(1024) {
		sb.WriteString("data: ")
		sb.Write(c)
		sb.WriteString("\n\n")
	}
	stream := sb.String()
	b.SetBytes(int64(len(stream)))
	b.ReportAllocs()
	for b.Loop() {
		r := NewSSEReader(strings.NewReader(stream))
		for {
			if _, _, err := r.Next(); err == io.EOF {
				break
			} else if err != nil {
				b.Fatal(err)
			}
		}
	}
}
