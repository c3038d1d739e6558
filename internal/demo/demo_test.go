package demo

import (
	"bytes"
	"strings"
	"testing"

	"helexa/node/gguf"
	"helexa/node/tokenizer"
)

// The built-in vocabulary loads as a tokenizer, encodes any text (byte
// fallback for what it has no piece for) and decodes it back, and uses
// its word pieces for English.
func TestByteVocabRoundTrip(t *testing.T) {
	w := gguf.NewWriter()
	w.Set("general.architecture", gguf.NewValue("llama"))
	for _, kv := range ByteVocab() {
		w.Set(kv.Key, kv.Value)
	}
	var buf bytes.Buffer
	if _, err := w.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	f, err := gguf.Parse(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	tok, err := tokenizer.FromGGUF(f)
	if err != nil {
		t.Fatal(err)
	}
	if n := tok.VocabSize(); n < 300 || n > 1000 {
		t.Fatalf("vocabulary of %d tokens", n)
	}
	for _, text := range []string{"Once upon a time", "héllo, wörld! 日本語 🙂", "tabs\tand\nnewlines", "x"} {
		ids := tok.Encode(text, false, false)
		// the decoder keeps the space the encoder put before the text
		if got := strings.TrimPrefix(tok.Decode(ids), " "); got != text {
			t.Errorf("%q came back as %q (%v)", text, got, ids)
		}
	}
	if ids := tok.Encode("once upon a time", false, false); len(ids) != 4 {
		t.Errorf("whole-word pieces not used: %v", ids)
	}
}

// Model reports no model unless a GGUF file was embedded.
func TestModel(t *testing.T) {
	b, ok := Model()
	if ok != (len(b) > 0) || (ok && !bytes.HasPrefix(b, []byte("GGUF"))) {
		t.Fatalf("Model() = %d bytes, %v", len(b), ok)
	}
}
