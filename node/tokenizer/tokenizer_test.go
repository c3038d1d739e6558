package tokenizer

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"helexa/node/gguf"
)

func TestSPMByteFallback(t *testing.T) {
	tok := loadGGUF(t, "tokenizers/llama-spm/ggml-vocab-llama-spm.gguf")
	// U+1D11E is not in the vocabulary: four byte tokens after "▁"
	ids := tok.Encode("𝄞", false, false)
	want := []int32{29871, 3 + 0xF0, 3 + 0x9D, 3 + 0x84, 3 + 0x9E}
	if !equalIDs(ids, want) {
		t.Fatalf("Encode(𝄞) = %v, want %v", ids, want)
	}
	for i, b := range []byte("𝄞") {
		if got := tok.TokenBytes(ids[i+1]); string(got) != string([]byte{b}) {
			t.Errorf("TokenBytes(%d) = %q, want %q", ids[i+1], got, []byte{b})
		}
	}
	if got := tok.TokenText(ids[1]); got != "<0xF0>" {
		t.Errorf("TokenText = %q", got)
	}
	if got := tok.Decode(ids); got != " 𝄞" {
		t.Errorf("Decode without BOS = %q, want %q", got, " 𝄞")
	}
	if got := tok.Decode(append([]int32{tok.BOS()}, ids...)); got != "𝄞" {
		t.Errorf("Decode after BOS = %q, want %q", got, "𝄞")
	}
}

func TestSPMSpecials(t *testing.T) {
	tok := loadGGUF(t, "tokenizers/llama-spm/ggml-vocab-llama-spm.gguf")
	if tok.BOS() != 1 || tok.EOS() != 2 || !tok.AddBOS() || tok.AddEOS() {
		t.Errorf("BOS %d EOS %d AddBOS %v AddEOS %v", tok.BOS(), tok.EOS(), tok.AddBOS(), tok.AddEOS())
	}
	if tok.BOSText() != "<s>" || tok.EOSText() != "</s>" {
		t.Errorf("BOSText %q EOSText %q", tok.BOSText(), tok.EOSText())
	}
	if !tok.IsEOG(2) || tok.IsEOG(1) || !slices.Equal(tok.EOGs(), []int32{2}) {
		t.Errorf("EOGs() = %v", tok.EOGs())
	}
	if !tok.IsControl(1) || tok.IsControl(15043) || tok.IsControl(-1) || tok.IsControl(1<<20) {
		t.Error("IsControl wrong")
	}
	// "<s>" is text unless special text is parsed; after a special token
	// the next text gets its leading ▁ again
	plain := tok.Encode("<s>Hello", true, false)
	if slices.Contains(plain[1:], 1) {
		t.Errorf("parseSpecial=false matched <s>: %v", plain)
	}
	parsed := tok.Encode("<s>Hello", false, true)
	if !equalIDs(parsed, []int32{1, 15043}) {
		t.Errorf("Encode(<s>Hello, parseSpecial) = %v, want [1 15043]", parsed)
	}
	if got := tok.Encode("Hello", true, false); !equalIDs(got, []int32{1, 15043}) {
		t.Errorf("Encode(Hello, addSpecial) = %v", got)
	}
	if got := tok.Encode("", true, false); !equalIDs(got, []int32{1}) {
		t.Errorf("Encode(\"\", addSpecial) = %v, want [1]", got)
	}
	if len(tok.TokenBytes(1)) != 0 || tok.TokenBytes(-5) != nil {
		t.Error("control and invalid tokens must contribute nothing")
	}
	if id, ok := tok.Lookup("▁Hello"); !ok || id != 15043 {
		t.Errorf("Lookup(▁Hello) = %d, %v", id, ok)
	}
	if tok.ChatTemplate() != "" {
		t.Error("GGUF tokenizers have no chat template of their own")
	}
}

func TestBPESpecials(t *testing.T) {
	tok := loadHF(t, "tokenizers/llama3")
	text := "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
	got := tok.Encode(text, false, true)
	want := []int32{128006, 882, 128007, 271, 13347, 128009}
	if !equalIDs(got, want) {
		t.Errorf("parseSpecial: got %v, want %v", got, want)
	}
	plain := tok.Encode(text, false, false)
	for _, id := range plain {
		if id >= 128000 {
			t.Errorf("parseSpecial=false produced special token %d: %v", id, plain)
		}
	}
	if tok.Decode(plain) != text {
		t.Errorf("Decode(plain) = %q", tok.Decode(plain))
	}
	if got := tok.Decode(got); got != "user\n\nHi" {
		t.Errorf("Decode drops control tokens: got %q", got)
	}
	for _, id := range []int32{128001, 128009} {
		if !tok.IsEOG(id) {
			t.Errorf("%d (%s) is not EOG; EOGs %v", id, tok.TokenText(id), tok.EOGs())
		}
	}
	if tok.IsEOG(128000) || tok.IsEOG(13347) {
		t.Error("BOS or a word marked EOG")
	}
	if tok.BOS() != 128000 || tok.EOS() != 128001 || !tok.AddBOS() || tok.AddEOS() {
		t.Errorf("BOS %d EOS %d AddBOS %v AddEOS %v", tok.BOS(), tok.EOS(), tok.AddBOS(), tok.AddEOS())
	}
	if !strings.Contains(tok.ChatTemplate(), "<|start_header_id|>") {
		t.Error("chat template not read from tokenizer_config.json")
	}

	qwen := loadHF(t, "tokenizers/qwen3")
	// user-defined tokens are matched even when special text is not parsed
	if got := qwen.Encode("<think>x</think>", false, false); !equalIDs(got, []int32{151667, 87, 151668}) {
		t.Errorf("qwen <think>: %v", got)
	}
	if got := qwen.Decode([]int32{151667, 87, 151668}); got != "<think>x</think>" {
		t.Errorf("user-defined tokens decode as text: %q", got)
	}
	if qwen.AddBOS() || qwen.BOS() != -1 || qwen.EOSText() != "<|im_end|>" {
		t.Errorf("qwen AddBOS %v BOS %d EOS %q", qwen.AddBOS(), qwen.BOS(), qwen.EOSText())
	}
	if !qwen.IsEOG(151645) || !qwen.IsEOG(151643) {
		t.Errorf("qwen EOGs %v", qwen.EOGs())
	}
}

// TestStreamingDecoder feeds every vector text token by token: no chunk may
// hold part of a character, and the chunks must add up to the text.
func TestStreamingDecoder(t *testing.T) {
	cases := []struct {
		tok *Tokenizer
		inp string
	}{
		{loadGGUF(t, "tokenizers/llama-spm/ggml-vocab-llama-spm.gguf"), "tokenizers/llama-spm/ggml-vocab-llama-spm.gguf.inp"},
		{loadHF(t, "tokenizers/llama3"), "tokenizers/llama3/ggml-vocab-llama-bpe.gguf.inp"},
		{loadGGUF(t, "tokenizers/gpt-2/ggml-vocab-gpt-2.gguf"), "tokenizers/gpt-2/ggml-vocab-gpt-2.gguf.inp"},
	}
	for _, c := range cases {
		texts, _ := readVectors(t, sharedFile(t, c.inp))
		texts = append(texts, "日本語の文章と絵文字🚀🎉が混ざる", "𝄞𝄞 ünïcödé")
		for _, text := range texts {
			ids := c.tok.Encode(text, true, false)
			d := c.tok.NewDecoder()
			var sb strings.Builder
			for _, id := range ids {
				chunk := d.Add(id)
				if !utf8.ValidString(chunk) {
					t.Errorf("%q: chunk %q is not valid UTF-8", text, chunk)
				}
				sb.WriteString(chunk)
			}
			sb.WriteString(d.Flush())
			if sb.String() != text {
				t.Errorf("streamed %q, want %q", sb.String(), text)
			}
			if got := c.tok.Decode(ids); got != text {
				t.Errorf("Decode = %q, want %q", got, text)
			}
		}
	}
}

func TestDecoderHoldsPartialCharacter(t *testing.T) {
	tok := loadGGUF(t, "tokenizers/llama-spm/ggml-vocab-llama-spm.gguf")
	d := tok.NewDecoder()
	byteTok := func(b byte) int32 { id, _ := tok.Lookup(fmt.Sprintf("<0x%02X>", b)); return id }
	euro := []byte("€") // three bytes
	if got := d.Add(byteTok(euro[0])); got != "" {
		t.Errorf("first byte emitted %q", got)
	}
	if got := d.Add(byteTok(euro[1])); got != "" {
		t.Errorf("second byte emitted %q", got)
	}
	if got := d.Add(byteTok(euro[2])); got != "€" {
		t.Errorf("third byte: got %q, want €", got)
	}
	// an incomplete character is handed out by Flush
	d.Add(byteTok(euro[0]))
	if got := d.Flush(); got != string(euro[:1]) {
		t.Errorf("Flush = %q", got)
	}
	// a byte that can never start a character is not held back
	if got := d.Add(byteTok(0x80)); got != "\x80" {
		t.Errorf("stray continuation byte: got %q", got)
	}
	// without a leading BOS, a continuation keeps its space
	d = tok.NewDecoder()
	id, _ := tok.Lookup("▁Hello")
	if got := d.Add(id); got != " Hello" {
		t.Errorf("continuation: got %q, want %q", got, " Hello")
	}
	d = tok.NewDecoder()
	d.Add(tok.BOS())
	if got := d.Add(id); got != "Hello" {
		t.Errorf("after BOS: got %q, want %q", got, "Hello")
	}
}

func TestCompleteUTF8(t *testing.T) {
	f := func(in string, want int) {
		t.Helper()
		if got := completeUTF8([]byte(in)); got != want {
			t.Errorf("completeUTF8(%q) = %d, want %d", in, got, want)
		}
	}
	f("", 0)
	f("abc", 3)
	f("a\xe2\x82", 1)
	f("a\xe2\x82\xac", 4)
	f("\xf0\x9d\x84", 0)
	f("\xf0\x9d\x84\x9e", 4)
	f("a\x80", 2)
	f("a\xff", 2)
}

func TestConcurrentEncode(t *testing.T) {
	tok := loadHF(t, "tokenizers/llama3")
	texts, want := readVectors(t, sharedFile(t, "tokenizers/llama3/ggml-vocab-llama-bpe.gguf.inp"))
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for rep := 0; rep < 3; rep++ {
				for i, text := range texts {
					if got := tok.Encode(text, false, false); !equalIDs(got, want[i]) {
						t.Errorf("text %d: %v", i, got)
						return
					}
					tok.Decode(want[i])
				}
			}
		}()
	}
	wg.Wait()
}

// tinyTokenizerJSON is a byte-level BPE vocabulary of the 256 byte
// characters, a few merges and added tokens.
func tinyTokenizerJSON(t *testing.T, mutate func(m map[string]any)) []byte {
	t.Helper()
	vocab := map[string]int{}
	for b := 0; b < 256; b++ {
		vocab[byteChars[b]] = b
	}
	vocab["he"] = 256
	vocab["ll"] = 257
	vocab["hell"] = 258
	vocab["Ġw"] = 259
	m := map[string]any{
		"added_tokens": []map[string]any{
			{"id": 260, "content": "<|end|>", "special": true, "lstrip": true, "rstrip": true},
			{"id": 261, "content": "<tag>", "special": false},
		},
		"normalizer":    nil,
		"pre_tokenizer": map[string]any{"type": "ByteLevel", "add_prefix_space": false, "use_regex": true},
		"post_processor": map[string]any{
			"type":           "TemplateProcessing",
			"single":         []any{map[string]any{"SpecialToken": map[string]any{"id": "<|end|>"}}, map[string]any{"Sequence": map[string]any{"id": "A"}}},
			"special_tokens": map[string]any{"<|end|>": map[string]any{"ids": []int{260}}},
		},
		"model": map[string]any{"type": "BPE", "vocab": vocab, "merges": []string{"h e", "l l", "he ll", "Ġ w"}},
	}
	if mutate != nil {
		mutate(m)
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestFromHFJSONTiny(t *testing.T) {
	tok, err := FromHFJSON(tinyTokenizerJSON(t, nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := tok.Encode("hello w", false, false); !equalIDs(got, []int32{258, 'o', 259}) {
		t.Errorf("Encode(hello w) = %v", got)
	}
	// lstrip/rstrip swallow the whitespace around the special token
	if got := tok.Encode("he <|end|> he", false, true); !equalIDs(got, []int32{256, 260, 256}) {
		t.Errorf("lstrip/rstrip: %v", got)
	}
	if got := tok.Encode("a<tag>b", false, false); !equalIDs(got, []int32{'a', 261, 'b'}) {
		t.Errorf("user-defined token: %v", got)
	}
	// TemplateProcessing puts the BOS in front
	if !tok.AddBOS() || tok.BOS() != 260 {
		t.Errorf("AddBOS %v BOS %d", tok.AddBOS(), tok.BOS())
	}
	if got := tok.Encode("he", true, false); !equalIDs(got, []int32{260, 256}) {
		t.Errorf("addSpecial: %v", got)
	}
	cfg := []byte(`{"add_bos_token": false, "eos_token": {"content": "<|end|>"}, "chat_template": [{"name": "tool_use", "template": "T"}, {"name": "default", "template": "D"}]}`)
	tok, err = FromHFJSON(tinyTokenizerJSON(t, nil), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if tok.AddBOS() || tok.EOS() != 260 || tok.ChatTemplate() != "D" || !tok.IsEOG(260) {
		t.Errorf("config: AddBOS %v EOS %d template %q EOGs %v", tok.AddBOS(), tok.EOS(), tok.ChatTemplate(), tok.EOGs())
	}
	// tokens only tokenizer_config.json knows are added too
	tok, err = FromHFJSON(tinyTokenizerJSON(t, nil), []byte(`{"added_tokens_decoder": {"262": {"content": "<extra>", "special": true}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if tok.VocabSize() != 263 || !equalIDs(tok.Encode("a<extra>", false, true), []int32{'a', 262}) || !tok.IsControl(262) {
		t.Errorf("added_tokens_decoder: size %d, %v", tok.VocabSize(), tok.Encode("a<extra>", false, true))
	}
	// ByteLevel add_prefix_space puts a space before every fragment
	tok, err = FromHFJSON(tinyTokenizerJSON(t, func(m map[string]any) {
		m["pre_tokenizer"] = map[string]any{"type": "ByteLevel", "add_prefix_space": true}
	}), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := tok.Encode("a<tag>w", false, false); !equalIDs(got, []int32{' ', 'a', 261, 259}) {
		t.Errorf("add_prefix_space: %v", got)
	}
	// a Digits pre-tokenizer before ByteLevel
	tok, err = FromHFJSON(tinyTokenizerJSON(t, func(m map[string]any) {
		m["pre_tokenizer"] = map[string]any{"type": "Sequence", "pretokenizers": []any{
			map[string]any{"type": "Digits", "individual_digits": true},
			map[string]any{"type": "ByteLevel", "use_regex": true},
		}}
	}), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := pieces(tok.split, "ab 123"); !slices.Equal(got, []string{"ab", " ", "1", "2", "3"}) {
		t.Errorf("Digits: %q", got)
	}
	// merges given as pairs
	tok, err = FromHFJSON(tinyTokenizerJSON(t, func(m map[string]any) {
		m["model"].(map[string]any)["merges"] = [][]string{{"h", "e"}, {"l", "l"}, {"he", "ll"}}
	}), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := tok.Encode("hell", false, false); !equalIDs(got, []int32{258}) {
		t.Errorf("pair merges: %v", got)
	}
}

func TestFromHFJSONErrors(t *testing.T) {
	f := func(name string, tj, cfg []byte) {
		t.Helper()
		if _, err := FromHFJSON(tj, cfg); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	f("not json", []byte("{"), nil)
	f("bad config", tinyTokenizerJSON(t, nil), []byte("["))
	f("bos to add but unknown", tinyTokenizerJSON(t, func(m map[string]any) { delete(m, "post_processor") }), []byte(`{"bos_token": "<nope>", "add_bos_token": true}`))
	f("eos to add but none", tinyTokenizerJSON(t, nil), []byte(`{"add_eos_token": true}`))
	f("bad added_tokens_decoder", tinyTokenizerJSON(t, nil), []byte(`{"added_tokens_decoder": {"x": {"content": "a"}}}`))
	f("unigram", tinyTokenizerJSON(t, func(m map[string]any) { m["model"].(map[string]any)["type"] = "Unigram" }), nil)
	f("no byte level", tinyTokenizerJSON(t, func(m map[string]any) { m["pre_tokenizer"] = map[string]any{"type": "Whitespace"} }), nil)
	f("bad regex", tinyTokenizerJSON(t, func(m map[string]any) {
		m["pre_tokenizer"] = map[string]any{"type": "Sequence", "pretokenizers": []any{
			map[string]any{"type": "Split", "pattern": map[string]any{"Regex": `(?<=x)y`}, "behavior": "Isolated"},
			map[string]any{"type": "ByteLevel", "use_regex": false},
		}}
	}), nil)
	f("bad merge", tinyTokenizerJSON(t, func(m map[string]any) { m["model"].(map[string]any)["merges"] = []string{"nospace"} }), nil)
	f("negative id", tinyTokenizerJSON(t, func(m map[string]any) { m["model"].(map[string]any)["vocab"] = map[string]int{"a": -1} }), nil)
	_, err := FromHFJSON(tinyTokenizerJSON(t, func(m map[string]any) { m["model"].(map[string]any)["type"] = "WordPiece" }), nil)
	if !errors.Is(err, ErrUnsupported) {
		t.Errorf("WordPiece: %v, want ErrUnsupported", err)
	}
}

func TestFromHFFolder(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := FromHF(dir); err == nil {
		t.Error("folder without tokenizer.json: no error")
	}
	write("tokenizer.json", string(tinyTokenizerJSON(t, nil)))
	write("chat_template.jinja", "{{ messages }}")
	write("generation_config.json", `{"eos_token_id": [97, 98]}`)
	tok, err := FromHF(dir)
	if err != nil {
		t.Fatal(err)
	}
	if tok.ChatTemplate() != "{{ messages }}" {
		t.Errorf("ChatTemplate = %q", tok.ChatTemplate())
	}
	if !tok.IsEOG(97) || !tok.IsEOG(98) || !tok.IsEOG(260) {
		t.Errorf("EOGs = %v", tok.EOGs())
	}
	write("generation_config.json", `{"eos_token_id": "x"}`)
	if _, err := FromHF(dir); err == nil {
		t.Error("bad generation_config.json: no error")
	}
}

// TestNFC checks that Qwen's NFC normalizer makes decomposed text encode as
// the composed form does, and that vocabularies without one leave it alone.
func TestNFC(t *testing.T) {
	qwen := loadHF(t, "tokenizers/qwen3")
	composed, decomposed := "café Ångström", "cafe\u0301 A\u030angstro\u0308m"
	if got, want := qwen.Encode(decomposed, false, false), qwen.Encode(composed, false, false); !equalIDs(got, want) {
		t.Errorf("qwen: decomposed %v, composed %v", got, want)
	}
	llama := loadHF(t, "tokenizers/llama3")
	if got := llama.Decode(llama.Encode(decomposed, false, false)); got != decomposed {
		t.Errorf("llama3 changed the text: %q", got)
	}
}

// TestSPMWordByWord checks the word-by-word SentencePiece path against
// merging the whole text at once.
func TestSPMWordByWord(t *testing.T) {
	words := loadGGUF(t, "tokenizers/llama-spm/ggml-vocab-llama-spm.gguf")
	if !words.spmWords {
		t.Fatal("the llama vocabulary should allow word-by-word encoding")
	}
	f, err := gguf.Open(sharedFile(t, "tokenizers/llama-spm/ggml-vocab-llama-spm.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	whole, err := FromGGUF(f)
	if err != nil {
		t.Fatal(err)
	}
	whole.spmWords, whole.cache = false, nil
	texts, _ := readVectors(t, sharedFile(t, "tokenizers/llama-spm/ggml-vocab-llama-spm.gguf.inp"))
	texts = append(texts, benchText, "  leading and trailing  ", "▁literal▁marks▁▁")
	for _, text := range texts {
		for _, parse := range []bool{false, true} {
			if got, want := words.Encode(text, true, parse), whole.Encode(text, true, parse); !equalIDs(got, want) {
				t.Errorf("%q: word by word %v, whole %v", text, got, want)
			}
		}
	}
}

func TestNextWord(t *testing.T) {
	f := func(text string, each bool, want ...string) {
		t.Helper()
		var got []string
		for start := 0; start < len(text); {
			end := nextWord(text, start, each)
			got = append(got, text[start:end])
			start = end
		}
		if !slices.Equal(got, want) {
			t.Errorf("nextWord(%q, %v): %q, want %q", text, each, got, want)
		}
	}
	f("▁Hello▁world", false, "▁Hello", "▁world")
	f("Hi▁▁▁there▁", false, "Hi", "▁▁▁there", "▁")
	f("▁▁a▁b", true, "▁", "▁a", "▁b")
	f("€▁x", false, "€", "▁x")
	f("abc", false, "abc")
}
