package grammar

import (
	"os"
	"path/filepath"
	"testing"

	"helexa/node/tokenizer"
)

// qwen3Vocab loads the Qwen3 tokenizer from the shared test data.
func qwen3Vocab(tb testing.TB) *Vocab {
	tb.Helper()
	dir := filepath.Join("..", "..", "..", "shared", "tokenizers", "qwen3")
	if _, err := os.Stat(filepath.Join(dir, "tokenizer.json")); err != nil {
		tb.Skip("the Qwen3 tokenizer is not in ../shared/tokenizers/qwen3")
	}
	tok, err := tokenizer.FromHF(dir)
	if err != nil {
		tb.Fatal(err)
	}
	return NewVocab(tok.VocabSize(), tok.TokenBytes, tok.EOGs())
}

// bruteMask is the mask by definition: each token's bytes run through the
// DFA.
func bruteMask(t *testing.T, v *Vocab, d *DFA, s State) Mask {
	m := NewMask(v.n)
	for id := range int32(v.n) {
		if v.IsEOG(id) {
			if d.Accepts(s) {
				m.set(id)
			}
			continue
		}
		b := v.Bytes(id)
		if len(b) == 0 {
			continue
		}
		ns, err := d.Advance(s, b)
		if err != nil {
			t.Fatal(err)
		}
		if ns != Dead {
			m.set(id)
		}
	}
	return m
}

func TestMaskMatchesBruteForce(t *testing.T) {
	words := []string{"", "{", "}", "{\"", "\"", "a", "ab", "abc", "\":", " ", "1", "12", "-", ".", "é", "\xc3", "\xa9", "true", "tr", "null", ",", "\",\"", "<eos>"}
	v := NewVocab(len(words), func(id int32) []byte {
		if words[id] == "<eos>" {
			return nil
		}
		return []byte(words[id])
	}, []int32{int32(len(words) - 1)})
	g, err := SchemaGrammar([]byte(`{"type":"object","properties":{"a":{"type":"string"},"ab":{"type":"integer"},"é":{"type":"boolean"}},"additionalProperties":false}`), "")
	if err != nil {
		t.Fatal(err)
	}
	m, err := NewMatcher(g, v)
	if err != nil {
		t.Fatal(err)
	}
	// Walk a few texts, comparing the masks at each step.
	for _, text := range []string{`{"a":"abé","ab":12,"é":true}`, `{}`, `{"é": true}`} {
		m, _ = NewMatcher(g, v)
		for i := 0; ; i++ {
			got, err := m.Mask()
			if err != nil {
				t.Fatal(err)
			}
			want := bruteMask(t, v, m.c.d, m.s)
			for id := range int32(v.n) {
				if got.Has(id) != want.Has(id) {
					t.Fatalf("%q at %d: token %q allowed=%v, want %v", text, i, words[id], got.Has(id), want.Has(id))
				}
			}
			if i == len(text) {
				if !got.Has(int32(len(words) - 1)) {
					t.Fatalf("%q: end not allowed at the end", text)
				}
				break
			}
			if err := m.AcceptBytes([]byte{text[i]}); err != nil {
				t.Fatalf("%q at %d: %v", text, i, err)
			}
		}
		if !m.Done() {
			t.Errorf("%q: not done at the end", text)
		}
	}
}

func TestMaskQwen3(t *testing.T) {
	v := qwen3Vocab(t)
	g, err := SchemaGrammar([]byte(`{"type":"object","properties":{"name":{"type":"string","maxLength":20},"age":{"type":"integer","minimum":0,"maximum":150}},"required":["name","age"],"additionalProperties":false}`), "")
	if err != nil {
		t.Fatal(err)
	}
	m, err := NewMatcher(g, v)
	if err != nil {
		t.Fatal(err)
	}
	for _, step := range []string{`{"`, `name`, `":`, ` "`, `Bob`, `",`, ` "age`, `":`, ` `, `42`, `}`} {
		mk, err := m.Mask()
		if err != nil {
			t.Fatal(err)
		}
		want := bruteMask(t, v, m.c.d, m.s)
		for i := range mk {
			if mk[i] != want[i] {
				t.Fatalf("before %q: masks differ in word %d", step, i)
			}
		}
		if err := m.AcceptBytes([]byte(step)); err != nil {
			t.Fatalf("%q: %v", step, err)
		}
	}
	if !m.Done() {
		t.Error("not done after the closing brace")
	}
}

// BenchmarkMaskQwen3 measures a mask over the 151k-token Qwen3 vocabulary
// in the states of a JSON generation: cold (a state seen for the first
// time: the trie walk) and warm (the state's mask cached).
func BenchmarkMaskQwen3(b *testing.B) {
	v := qwen3Vocab(b)
	g, err := SchemaGrammar([]byte(`{"type":"object","properties":{"name":{"type":"string"},"tags":{"type":"array","items":{"type":"string"}},"n":{"type":"integer"}},"required":["name","tags","n"],"additionalProperties":false}`), "")
	if err != nil {
		b.Fatal(err)
	}
	text := `{"name": "Alice Smith", "tags": ["a", "bc"], "n": 1234}`
	run := func(b *testing.B, fresh bool) {
		m, _ := NewMatcher(g, v)
		steps := 0
		for b.Loop() {
			if fresh || steps == 0 {
				m, _ = NewMatcher(g, v)
			}
			for i := 0; i < len(text); i++ {
				if _, err := m.Mask(); err != nil {
					b.Fatal(err)
				}
				if err := m.AcceptBytes([]byte{text[i]}); err != nil {
					b.Fatal(err)
				}
			}
			steps++
			m, _ = NewMatcher(g, v)
			m.c.masks = map[State]Mask{}
		}
		b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*len(text)), "µs/mask")
	}
	b.Run("cold", func(b *testing.B) { run(b, true) })
	b.Run("string-state-warm", func(b *testing.B) {
		m, _ := NewMatcher(g, v)
		_ = m.AcceptBytes([]byte(`{"name": "Ali`))
		if _, err := m.Mask(); err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if _, err := m.Mask(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("string-state-walk", func(b *testing.B) {
		m, _ := NewMatcher(g, v)
		_ = m.AcceptBytes([]byte(`{"name": "Ali`))
		mk := NewMask(v.n)
		_ = v.fill(m.c.d, m.s, mk, m.c.states)
		for b.Loop() {
			if err := v.fill(m.c.d, m.s, mk, m.c.states); err != nil {
				b.Fatal(err)
			}
		}
	})
}
