package tokenizer

import (
	"encoding/json"
	"os"
	"testing"
)

type referenceFile struct {
	AddBOS bool `json:"add_bos"`
	Cases  []struct {
		Prompt       string  `json:"prompt"`
		PromptTokens []int32 `json:"prompt_tokens"`
	} `json:"cases"`
}

func readReference(t *testing.T, rel string) referenceFile {
	t.Helper()
	b, err := os.ReadFile(sharedFile(t, rel))
	if err != nil {
		t.Fatal(err)
	}
	var r referenceFile
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("%s: %v", rel, err)
	}
	if len(r.Cases) == 0 {
		t.Fatalf("%s: no cases", rel)
	}
	return r
}

func checkReference(t *testing.T, tok *Tokenizer, ref referenceFile) {
	t.Helper()
	if tok.AddBOS() != ref.AddBOS {
		t.Errorf("AddBOS() = %v, reference was made with add_bos %v", tok.AddBOS(), ref.AddBOS)
	}
	for _, c := range ref.Cases {
		got := tok.Encode(c.Prompt, true, false)
		if !equalIDs(got, c.PromptTokens) {
			t.Errorf("Encode(%q):\n got %v\nwant %v", c.Prompt, got, c.PromptTokens)
		}
		if back := tok.Decode(c.PromptTokens); back != c.Prompt {
			t.Errorf("Decode(%v) = %q, want %q", c.PromptTokens, back, c.Prompt)
		}
		d := tok.NewDecoder()
		streamed := ""
		for _, id := range c.PromptTokens {
			streamed += d.Add(id)
		}
		streamed += d.Flush()
		if streamed != c.Prompt {
			t.Errorf("streamed decode = %q, want %q", streamed, c.Prompt)
		}
	}
}

func TestReferenceStories260K(t *testing.T) {
	tok := loadGGUF(t, "models/stories260K.gguf")
	if tok.VocabSize() != 512 {
		t.Errorf("VocabSize() = %d, want 512", tok.VocabSize())
	}
	checkReference(t, tok, readReference(t, "reference/stories260K.json"))
}

func TestReferenceSynthHFLlama3(t *testing.T) {
	if raceEnabled || testing.Short() {
		t.Skip("loads a second 128K-token vocabulary; skipped under -race and -short")
	}
	tok := loadHF(t, "models/synth-hf-llama3")
	if tok.VocabSize() != 128256 {
		t.Errorf("VocabSize() = %d, want 128256", tok.VocabSize())
	}
	checkReference(t, tok, readReference(t, "reference/synth-hf-llama3.json"))
}

func TestReferenceSynth25M(t *testing.T) {
	for _, name := range []string{"synth-25m-Q8_0", "stories260K-F16"} {
		tok := loadGGUF(t, "models/"+name+".gguf")
		checkReference(t, tok, readReference(t, "reference/"+name+".json"))
	}
}
