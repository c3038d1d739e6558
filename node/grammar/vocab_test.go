package grammar

import (
	"os"
	"path/filepath"
	"strings"
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
	// Walk a few texts, comparing the masks at each step.
	for _, text := range []string{`{"a":"abé","ab":12,"é":true}`, `{}`, `{"é": true}`} {
		m, err := NewMatcher(g, v)
		if err != nil {
			t.Fatal(err)
		}
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
	// Byte by byte through a counted string (with characters of two and
	// three bytes and an escape), a bounded integer, free strings and
	// the keys of a schema and of json_object, and a raw grammar over
	// characters.
	for _, c := range []struct{ schema, text string }{
		{`{"type":"object","properties":{"name":{"type":"string","maxLength":20},"age":{"type":"integer","minimum":0,"maximum":150}},"required":["name","age"],"additionalProperties":false}`,
			`{"name": "Bob é\"x", "age": 42}`},
		{`{"type":"object"}`, `{"a": ["x é 中\n", {"b": "ü"}], "c": -1.5e3}`},
		{`gbnf:root ::= [^a-z]* "a" [é-ü]{1,3}`, `中 Xaéü`},
		{`gbnf:root ::= [a-z ]* "." [一-龥]*`, `ab c.中文`},
		{`gbnf:root ::= [a-z ]{0,40} "." [^.]{0,30} "."`, `ab c.中 文é.`},
	} {
		var g *Grammar
		var err error
		if src, ok := strings.CutPrefix(c.schema, "gbnf:"); ok {
			g, err = ParseGBNF(src, "root")
		} else {
			g, err = SchemaGrammar([]byte(c.schema), "")
		}
		if err != nil {
			t.Fatal(err)
		}
		m, err := NewMatcher(g, v)
		if err != nil {
			t.Fatal(err)
		}
		for i := range len(c.text) {
			step := c.text[i : i+1]
			mk, err := m.Mask()
			if err != nil {
				t.Fatal(err)
			}
			want := bruteMask(t, v, m.c.d, m.s)
			for w := range mk {
				if mk[w] != want[w] {
					t.Fatalf("%s before byte %d of %q: masks differ in word %d", c.schema, i, c.text, w)
				}
			}
			if err := m.AcceptBytes([]byte(step)); err != nil {
				t.Fatalf("%q: %v", step, err)
			}
		}
		if !m.CanEnd() {
			t.Errorf("%s: cannot end after %q", c.schema, c.text)
		}
	}
}

// BenchmarkMaskQwen3 measures the masks of a JSON generation over the
// 151k-token Qwen3 vocabulary, per token of the output: "cold" compiles
// the grammar afresh each time, so every state met walks the trie once;
// "warm" reuses the compiled grammar (as requests under the same schema
// do), so each mask comes from the cache. "walk" is one trie walk in a
// string's state (the most permissive, the dearest).
func BenchmarkMaskQwen3(b *testing.B) {
	dir := filepath.Join("..", "..", "..", "shared", "tokenizers", "qwen3")
	if _, err := os.Stat(filepath.Join(dir, "tokenizer.json")); err != nil {
		b.Skip("the Qwen3 tokenizer is not in ../shared/tokenizers/qwen3")
	}
	tok, err := tokenizer.FromHF(dir)
	if err != nil {
		b.Fatal(err)
	}
	v := NewVocab(tok.VocabSize(), tok.TokenBytes, tok.EOGs())
	g, err := SchemaGrammar([]byte(`{"type":"object","properties":{"name":{"type":"string"},"age":{"type":"integer","minimum":0,"maximum":150},"tags":{"type":"array","items":{"type":"string"},"maxItems":5},"address":{"type":"object","properties":{"city":{"type":"string"},"zip":{"type":"string","pattern":"^[0-9]{5}$"}},"required":["city","zip"],"additionalProperties":false}},"required":["name","age","tags","address"],"additionalProperties":false}`), "")
	if err != nil {
		b.Fatal(err)
	}
	text := `{"name": "Alice Smith", "age": 42, "tags": ["engineer", "runner", "café"], "address": {"city": "Paris", "zip": "75001"}}`
	ids := tok.Encode(text, false, false)
	generate := func(b *testing.B, c *Compiled) {
		m := c.Matcher()
		for _, id := range ids {
			mk, err := m.Mask()
			if err != nil {
				b.Fatal(err)
			}
			if !mk.Has(id) {
				b.Fatalf("token %d (%q) not allowed", id, v.Bytes(id))
			}
			if err := m.Accept(id); err != nil {
				b.Fatal(err)
			}
		}
		if !m.Done() {
			b.Fatal("not done")
		}
	}
	perToken := func(b *testing.B) {
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/1000/float64(b.N*len(ids)), "µs/token")
	}
	b.Run("cold", func(b *testing.B) {
		for b.Loop() {
			c, err := Compile(g, v)
			if err != nil {
				b.Fatal(err)
			}
			generate(b, c)
		}
		perToken(b)
	})
	b.Run("warm", func(b *testing.B) {
		c, err := Compile(g, v)
		if err != nil {
			b.Fatal(err)
		}
		generate(b, c)
		for b.Loop() {
			generate(b, c)
		}
		perToken(b)
	})
	b.Run("walk", func(b *testing.B) {
		c, _ := Compile(g, v)
		m := c.Matcher()
		_ = m.AcceptBytes([]byte(`{"name": "Ali`))
		mk := NewMask(v.n)
		for b.Loop() {
			if err := v.fill(c.d, m.s, mk, c.states); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestLoopSplit checks the masks of looping states (a JSON string's
// contents, a class of raw bytes) made from a vocabulary's split, with
// tokens that leave the loop, escape, cut or break characters: they match
// the masks by definition, and the split walks fewer tokens than the trie.
func TestLoopSplit(t *testing.T) {
	words := []string{"<eos>", "a", "ab", "abc", "a b", "\"", "a\"", "a\",", "\\n", "x\\", "\x01", "é", "éa", "\xc3", "\xa9", "\xa9a", "中", "\xe4\xb8", "\xff", "\"}", "}", " ", "\t", "a\x7f", "\xed\xa0\x80", "\x7f"}
	v := NewVocab(len(words), func(id int32) []byte {
		if id == 0 {
			return nil
		}
		return []byte(words[id])
	}, []int32{0})
	for _, c := range []struct{ grammar, text string }{
		{"schema:" + `{"type":"object","properties":{"s":{"type":"string"}},"additionalProperties":false}`, `{"s":"ab é\\n中"}`},
		{`root ::= [^"]* "\""`, "ab中é\""},
		{`root ::= [ -~]* "}"`, "a b}"},
	} {
		var g *Grammar
		var err error
		if src, ok := strings.CutPrefix(c.grammar, "schema:"); ok {
			g, err = SchemaGrammar([]byte(src), "")
		} else {
			g, err = ParseGBNF(c.grammar, "root")
		}
		if err != nil {
			t.Fatal(err)
		}
		m, err := NewMatcher(g, v)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i <= len(c.text); i++ {
			got, err := m.Mask()
			if err != nil {
				t.Fatal(err)
			}
			want := bruteMask(t, v, m.c.d, m.s)
			for id := range int32(v.n) {
				if got.Has(id) != want.Has(id) {
					t.Fatalf("%s at %d: token %q allowed=%v, want %v", c.grammar, i, words[id], got.Has(id), want.Has(id))
				}
			}
			if i < len(c.text) {
				if err := m.AcceptBytes([]byte{c.text[i]}); err != nil {
					t.Fatalf("%s at %d: %v", c.grammar, i, err)
				}
			}
		}
		if !m.CanEnd() {
			t.Errorf("%s: cannot end after %q", c.grammar, c.text)
		}
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if len(v.splits) < 2 {
		t.Fatalf("%d loop splits made, want one per looping class", len(v.splits))
	}
	for k, sp := range v.splits {
		if sp.rest.Nodes() >= v.Nodes() {
			t.Errorf("split of %v walks %d nodes of %d", k, sp.rest.Nodes(), v.Nodes())
		}
	}
}

// TestChainCharacters checks masks in a counted string over a subtree of
// multi-byte characters (more than chainMinTokens tokens under one lead
// byte, fewer characters than bytes) against the masks by definition, at
// every remaining count.
func TestChainCharacters(t *testing.T) {
	words := []string{"<eos>", ".", "a", "ab", "a."}
	for _, r := range "一丁七万丈三上下不与丐丑专且世丘" {
		words = append(words, string(r), string(r)+"一", string(r)+"一丁", "一"+string(r)+"a")
	}
	v := NewVocab(len(words), func(id int32) []byte {
		if id == 0 {
			return nil
		}
		return []byte(words[id])
	}, []int32{0})
	g, err := ParseGBNF(`root ::= [^.]{0,4} "."`, "root")
	if err != nil {
		t.Fatal(err)
	}
	m, err := NewMatcher(g, v)
	if err != nil {
		t.Fatal(err)
	}
	text := "一a丁."
	for i := 0; i <= len(text); i++ {
		got, err := m.Mask()
		if err != nil {
			t.Fatal(err)
		}
		want := bruteMask(t, v, m.c.d, m.s)
		for id := range int32(v.n) {
			if got.Has(id) != want.Has(id) {
				t.Fatalf("at %d: token %q allowed=%v, want %v", i, words[id], got.Has(id), want.Has(id))
			}
		}
		if i < len(text) {
			if err := m.AcceptBytes([]byte{text[i]}); err != nil {
				t.Fatalf("at %d: %v", i, err)
			}
		}
	}
}
