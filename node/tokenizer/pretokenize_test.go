package tokenizer

import (
	"regexp"
	"strings"
	"testing"

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

func TestStyleForPre(t *testing.T) {
	for pre, want := range map[string]*preStyle{"": styleGPT2, "gpt-2": styleGPT2, "llama-bpe": styleLlama3, "llama3": styleLlama3, "qwen2": styleQwen2} {
		got, err := styleForPre(pre)
		if err != nil || got != want {
			t.Errorf("styleForPre(%q) = %v, %v; want %s", pre, got, err, want.name)
		}
	}
	if _, err := styleForPre("no-such-pre"); err == nil {
		t.Error("unknown pre-tokenizer: no error")
	}
}
