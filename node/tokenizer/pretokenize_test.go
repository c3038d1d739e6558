package tokenizer

import (
	"errors"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

func pieces(s splitter, text string) []string {
	var out []string
	start := 0
	for _, end := range s.split(text, nil) {
		out = append(out, text[start:end])
		start = end
	}
	return out
}

func TestPreTokenizers(t *testing.T) {
	f := func(style *preStyle, text string, want ...string) {
		t.Helper()
		got := pieces(splitter{style: style}, text)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s split of %q (-want +got):\n%s", style.name, text, diff)
		}
	}
	// words, spaces, contractions
	f(styleLlama3, "Hello world", "Hello", " world")
	f(styleGPT2, "Hello world", "Hello", " world")
	f(styleLlama3, "I'm don't", "I", "'m", " don", "'t")
	f(styleLlama3, "I'M WE'LL", "I", "'M", " WE", "'LL")
	f(styleGPT2, "I'M", "I", "'", "M")
	f(styleGPT2, "we'll've", "we", "'ll", "'ve")
	f(styleLlama3, "'hello", "'hello")
	f(styleGPT2, "'hello", "'", "hello")
	f(styleLlama3, "\tfoo", "\tfoo")
	f(styleGPT2, "\tfoo", "\t", "foo")
	f(styleLlama3, "a  b", "a", " ", " b")
	f(styleGPT2, "a   b", "a", "  ", " b")
	f(styleLlama3, "x   ", "x", "   ")
	f(styleLlama3, "   ", "   ")
	// digits: gpt-2 keeps runs (with a space), llama3 groups by 3, qwen2 splits
	f(styleGPT2, "12345 678", "12345", " 678")
	f(styleLlama3, "12345 678", "123", "45", " ", "678")
	f(styleQwen2, "12345", "1", "2", "3", "4", "5")
	f(styleLlama3, "ied 4 ½ months", "ied", " ", "4", " ", "½", " months")
	f(styleLlama3, "$100", "$", "100")
	f(styleGPT2, "$100", "$", "100")
	// punctuation and line breaks
	f(styleLlama3, "hello!!!\n\nworld", "hello", "!!!\n\n", "world")
	f(styleGPT2, "hello!!!\n\nworld", "hello", "!!!", "\n", "\n", "world")
	f(styleLlama3, "a\n\nb", "a", "\n\n", "b")
	f(styleGPT2, "a\n\nb", "a", "\n", "\n", "b")
	f(styleLlama3, "  \n  x", "  \n", " ", " x")
	f(styleLlama3, "\r\n", "\r\n")
	f(styleLlama3, " ... ok", " ...", " ok")
	f(styleLlama3, "a ...\n\n b", "a", " ...\n\n", " b")
	// other scripts
	f(styleLlama3, "你好世界", "你好世界")
	f(styleLlama3, "Führer", "Führer")
	f(styleLlama3, "🚀 (normal)", "🚀", " (", "normal", ")")
	f(styleQwen2, "٣٤٥", "٣", "٤", "٥")
	// invalid UTF-8 is kept, byte by byte
	f(styleLlama3, "a\xffb", "a", "\xffb")
}

func TestPreTokenizerCoversInput(t *testing.T) {
	texts := []string{"", "x", " \t\n\r\v\f", "a\u00a0b\u2003c", strings.Repeat("ab1 ", 50), "\xc3", "'''''s"}
	for _, st := range []*preStyle{styleGPT2, styleLlama3, styleQwen2} {
		for _, text := range texts {
			if got := strings.Join(pieces(splitter{style: st}, text), ""); got != text {
				t.Errorf("%s: pieces of %q join to %q", st.name, text, got)
			}
		}
	}
}

func TestRegexSplitter(t *testing.T) {
	s := splitter{re: regexp.MustCompile(`\d+`)}
	got := pieces(s, "ab12cd345")
	want := []string{"ab", "12", "cd", "345"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	// a chained splitter splits every piece of the first again
	s = splitter{re: regexp.MustCompile(`\d+`), next: &splitter{style: styleGPT2}}
	got = pieces(s, "hi there12 you")
	want = []string{"hi", " there", "12", " you"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("chained (-want +got):\n%s", diff)
	}
}

func TestPreSplitter(t *testing.T) {
	for pre, want := range map[string]*preStyle{"gpt-2": styleGPT2, "llama-bpe": styleLlama3, "llama3": styleLlama3, "qwen2": styleQwen2} {
		got, err := preSplitter(pre)
		if err != nil || got.style != want {
			t.Errorf("preSplitter(%q) = %v, %v; want %s", pre, got, err, want.name)
		}
	}
	if _, err := preSplitter("no-such-pre"); !errors.Is(err, ErrUnsupported) {
		t.Errorf("unknown pre-tokenizer: %v", err)
	}
	// every table entry compiles
	for pre := range preRegexes {
		if _, err := preSplitter(pre); err != nil {
			t.Errorf("%s: %v", pre, err)
		}
	}
	f := func(pre, text string, want ...string) {
		t.Helper()
		s, err := preSplitter(pre)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, pieces(s, text)); diff != "" {
			t.Errorf("%s split of %q (-want +got):\n%s", pre, text, diff)
		}
	}
	f("starcoder", "x = 123;", "x", " =", " ", "1", "2", "3", ";")
	f("gpt-4o", "HelloWorld I'M fine 12345", "Hello", "World", " I'M", " fine", " ", "123", "45")
	f("tekken", "HelloWorld I'm 42", "Hello", "World", " I", "'m", " ", "4", "2")
	f("deepseek-v3", "abc 1234 日本語です.x", "abc", " ", "123", "4", " ", "日本語です", ".x")
	f("default", "a,b 1234", "a", ",", "b", " ", "123", "4")
	f("deepseek-llm", "Hello, 世界 123\nok  ", "Hello", ",", " ", "世界", " ", "123", "\n", "ok", "  ")
	// the punctuation class spans ASCII :-~, letters included, so it splits
	// what the letter rule left whole
	f("deepseek-llm", "Ωmega ａｂ！ x", "Ω", "mega", " ａｂ", "！", " x")
}

// TestRegexSplitterMatchesStyles checks the generic regex splitter (Go
// regexp tried at each position plus the whitespace rule) against the
// hand-written styles on the shared vectors and the tricky cases above.
func TestRegexSplitterMatchesStyles(t *testing.T) {
	texts := []string{
		"Hello world", "I'm don't I'M WE'LL we'll've", "'hello", "\tfoo", "a  b", "a   b", "x   ", "   ",
		"12345 678", "ied 4 ½ months", "$100", "hello!!!\n\nworld", "a\n\nb", "  \n  x", "\r\n",
		" ... ok", "a ...\n\n b", "你好世界", "🚀 (normal)", "٣٤٥", "a\u00a0 b\u2003\u2003c",
		strings.Repeat("long", 100) + " " + strings.Repeat("7", 400) + strings.Repeat(" ", 300) + "x",
	}
	for _, inp := range []string{
		"tokenizers/llama3/ggml-vocab-llama-bpe.gguf.inp",
		"tokenizers/gpt-2/ggml-vocab-gpt-2.gguf.inp",
	} {
		more, _ := readVectors(t, sharedFile(t, inp))
		texts = append(texts, more...)
	}
	for pattern, style := range knownPatterns {
		re, err := compileRegexSplit(pattern)
		if err != nil {
			t.Fatal(err)
		}
		if re.anch == nil {
			t.Fatalf("%s: whitespace rule not recognised", style.name)
		}
		for _, text := range texts {
			want := pieces(splitter{style: style}, text)
			got := pieces(re, text)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("%s regex split of %q (-hand +regex):\n%s", style.name, text, diff)
			}
		}
	}
}

func FuzzSplitters(f *testing.F) {
	for _, s := range []string{"Hello world", "a  \n\n b", "I'M 12345", "\xff'x", "!!\r\n\r\n"} {
		f.Add(s)
	}
	var regexes []splitter
	var styles []*preStyle
	for pattern, style := range knownPatterns {
		re, err := compileRegexSplit(pattern)
		if err != nil {
			f.Fatal(err)
		}
		regexes = append(regexes, re)
		styles = append(styles, style)
	}
	f.Fuzz(func(t *testing.T, text string) {
		for i, style := range styles {
			want := pieces(splitter{style: style}, text)
			if got := strings.Join(want, ""); got != text {
				t.Fatalf("%s: pieces join to %q", style.name, got)
			}
			if !utf8.ValidString(text) {
				continue // Go's regexp and the hand splitter read invalid bytes differently
			}
			if got := pieces(regexes[i], text); !slices.Equal(got, want) {
				t.Errorf("%s split of %q: regex %q, hand %q", style.name, text, got, want)
			}
		}
	})
}

func TestUnicodeClasses(t *testing.T) {
	f := func(in, want string) {
		t.Helper()
		got, err := unicodeClasses(in)
		if err != nil || got != want {
			t.Errorf("unicodeClasses(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	f(`a\sb`, `a[`+uniSpace+`]b`)
	f(`[^\s\p{L}]+`, `[^`+uniSpace+`\p{L}]+`)
	f(`\S\d\D\w\W`, `[^`+uniSpace+`][`+uniDigit+`][^`+uniDigit+`][`+uniWord+`][^`+uniWord+`]`)
	f(`[]\s]`, `[]`+uniSpace+`]`)
	f(`[[:alpha:]\d]`, `[[:alpha:]`+uniDigit+`]`)
	f(`\\s\.`, `\\s\.`)
	if _, err := unicodeClasses(`[\S]`); err == nil {
		t.Error(`[\S]: no error`)
	}
	// the rewritten class matches Unicode spaces as Oniguruma's \s does
	s, err := compileRegexSplit(`\s+|\S+`)
	if err != nil {
		t.Fatal(err)
	}
	if got := pieces(s, "a\u2003\u3000b"); !slices.Equal(got, []string{"a", "\u2003\u3000", "b"}) {
		t.Errorf("Unicode spaces: %q", got)
	}
}
