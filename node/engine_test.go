package node

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"helexa/node/tokenizer"
)

// TestMarkerControlTokensDecode: Llama 3's <|python_tag|> is a special
// token; the neuron's decoder keeps its text (so the tool-call parser sees
// it) while other control tokens such as BOS stay silent.
func TestMarkerControlTokensDecode(t *testing.T) {
	if testing.Short() {
		t.Skip("loads a 128k vocabulary")
	}
	// Llama 3.1's vocabulary is Llama 3's with id 128010 renamed.
	data, err := os.ReadFile(filepath.Join(sharedDir(t), "models", "synth-hf-llama3", "tokenizer.json"))
	if err != nil {
		t.Fatal(err)
	}
	data = bytes.Replace(data, []byte("<|reserved_special_token_5|>"), []byte("<|python_tag|>"), 1)
	tok, err := tokenizer.FromHFJSON(data, nil)
	if err != nil {
		t.Fatal(err)
	}
	tag, ok := tok.Lookup("<|python_tag|>")
	if !ok || !tok.IsControl(tag) {
		t.Fatalf("<|python_tag|> is not a control token (%d, %v)", tag, ok)
	}
	bos := tok.BOS()
	var m loadedModel
	if err := vocabTemplate(&m, tok, ""); err != nil {
		t.Fatal(err)
	}
	d := m.NewDecoder()
	var out string
	ids := append([]int32{bos}, tok.Encode("Hi", false, false)...)
	ids = append(append(ids, tag), tok.Encode(`{"name": "f"}`, false, false)...)
	for _, id := range ids {
		out += d.Add(id)
	}
	out += d.Flush()
	if out != `Hi<|python_tag|>{"name": "f"}` {
		t.Fatalf("decoded %q", out)
	}
	if m.Render == nil {
		t.Fatal("no chat template fallback")
	}
}
