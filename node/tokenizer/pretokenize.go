package tokenizer

import (
	"fmt"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// preStyle describes one family of byte-level BPE pre-tokenizer regexes. Go's
// regexp has no lookahead, so the known patterns are matched by hand: each
// field switches one alternative of the pattern
//
//	gpt-2:  's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//	llama3: (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
//	        ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
//	qwen2:  as llama3 with \p{N} (single digits)
type preStyle struct {
	name string
	// foldContractions makes 's 't 're 've 'm 'll 'd case-insensitive.
	foldContractions bool
	// anyLetterPrefix: a word is [^\r\n\p{L}\p{N}]?\p{L}+ instead of ' ?\p{L}+'.
	anyLetterPrefix bool
	// maxDigits > 0 groups at most that many digits with no space prefix;
	// 0 means ' ?\p{N}+'.
	maxDigits int
	// newlines adds '[\r\n]*' after punctuation runs and the '\s*[\r\n]+' rule.
	newlines bool
}

var (
	styleGPT2   = &preStyle{name: "gpt-2"}
	styleLlama3 = &preStyle{name: "llama3", foldContractions: true, anyLetterPrefix: true, maxDigits: 3, newlines: true}
	styleQwen2  = &preStyle{name: "qwen2", foldContractions: true, anyLetterPrefix: true, maxDigits: 1, newlines: true}
)

// The regexes of tokenizer.json files that the hand-written styles implement.
var knownPatterns = map[string]*preStyle{
	`'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`:                                          styleGPT2,
	`(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`: styleLlama3,
	`(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`:      styleQwen2,
}

// Pre-tokenizer regexes of other vocabularies, by GGUF tokenizer.ggml.pre
// name: each regex splits the pieces of the one before (isolated matches).
const (
	reGPT2Core  = `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)`
	reCaseWords = `[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+`
	reCaseCaps  = `[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*`
	reContract  = `(?i:'s|'t|'re|'ve|'m|'ll|'d)`
	reTail      = `| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+`
	reO200k     = reCaseWords + reContract + `?|` + reCaseCaps + reContract + `?|\p{N}{1,3}` + reTail
	reTekken    = reCaseWords + `|` + reCaseCaps + `|\p{N}` + reTail
	rePoro      = ` ?[^(\s|.,!?…。，、।۔،)]+`
	// deepseek-llm: the cased letters (Unicode's LC class, written out as
	// the tokenizer defines it), ASCII and full-width punctuation, CJK and
	// Hangul runs, number runs
	reDeepseekLetters = `\s?[A-Za-z\x{B5}\x{C0}-\x{D6}\x{D8}-\x{F6}\x{F8}-\x{1BA}\x{1BC}-\x{1BF}\x{1C4}-\x{293}\x{295}-\x{2AF}` +
		`\x{370}-\x{373}\x{376}\x{377}\x{37B}-\x{37D}\x{37F}\x{386}\x{388}-\x{38A}\x{38C}\x{38E}-\x{3A1}\x{3A3}-\x{3F5}` +
		`\x{3F7}-\x{481}\x{48A}-\x{52F}\x{531}-\x{556}\x{10A0}-\x{10C5}\x{13A0}-\x{13F5}\x{13F8}-\x{13FD}\x{1C90}-\x{1CBA}` +
		`\x{1CBD}-\x{1CBF}\x{1D00}-\x{1D2B}\x{1D6B}-\x{1D77}\x{1D79}-\x{1D9A}\x{1E00}-\x{1F15}\x{1F18}-\x{1F1D}\x{1F20}-\x{1F45}` +
		`\x{1F48}-\x{1F4D}\x{1F50}-\x{1F57}\x{1F59}\x{1F5B}\x{1F5D}\x{1F5F}-\x{1F7D}\x{1F80}-\x{1FB4}\x{1FB6}-\x{1FBC}\x{1FBE}` +
		`\x{1FC2}-\x{1FC4}\x{1FC6}-\x{1FCC}\x{1FD0}-\x{1FD3}\x{1FD6}-\x{1FDB}\x{1FE0}-\x{1FEC}\x{1FF2}-\x{1FF4}\x{1FF6}-\x{1FFC}` +
		`\x{2102}\x{2107}\x{210A}-\x{2113}\x{2115}\x{2119}-\x{211D}\x{2124}\x{2126}\x{2128}\x{212A}-\x{212D}\x{212F}-\x{2134}` +
		`\x{2139}\x{213C}-\x{213F}\x{2145}-\x{2149}\x{214E}\x{2183}\x{2184}\x{2C00}-\x{2C7B}\x{2C7E}-\x{2CE4}\x{2CEB}-\x{2CEE}` +
		`\x{2CF2}\x{2CF3}\x{A640}-\x{A66D}\x{A680}-\x{A69B}\x{A722}-\x{A76F}\x{A771}-\x{A787}\x{A78B}-\x{A78E}\x{AB70}-\x{ABBF}` +
		`\x{FB00}-\x{FB06}\x{FB13}-\x{FB17}\x{FF21}-\x{FF3A}\x{FF41}-\x{FF5A}\x{10400}-\x{1044F}\x{104B0}-\x{104D3}` +
		`\x{104D8}-\x{104FB}\x{10C80}-\x{10CB2}\x{10CC0}-\x{10CF2}\x{118A0}-\x{118DF}\x{1E900}-\x{1E943}]+`
	reDeepseekPunct = `\s?[!-/:-~\x{FF01}-\x{FF0F}\x{FF1A}-\x{FF5E}\x{2018}-\x{201F}\x{3000}-\x{3002}]+`
	reDeepseek3     = `[!"#$%&'()*+,\-./:;<=>?@\[\\\]^_` + "`" + `{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
)

var preRegexes = map[string][]string{
	// llama.cpp's choice for vocabularies converted without a pre-tokenizer name
	"":        {`[\p{P}\$\+<=>\^~\|]+`, reGPT2Core, `\p{N}+`, `[0-9][0-9][0-9]`},
	"default": {`[\p{P}\$\+<=>\^~\|]+`, reGPT2Core, `\p{N}+`, `[0-9][0-9][0-9]`},
	// digits one by one, then GPT-2
	"starcoder": {`\p{N}`, reGPT2Core}, "refact": {`\p{N}`, reGPT2Core}, "command-r": {`\p{N}`, reGPT2Core},
	"smollm": {`\p{N}`, reGPT2Core}, "codeshell": {`\p{N}`, reGPT2Core}, "exaone": {`\p{N}`, reGPT2Core},
	"minerva-7b": {`\p{N}`, reGPT2Core}, "mellum2": {`\p{N}`, reGPT2Core},
	"falcon":         {`[\p{P}\$\+<=>\^~\|` + "`" + `]+`, reGPT2Core, `[0-9][0-9][0-9]`},
	"gpt-4o":         {reO200k},
	"llama4":         {reO200k},
	"minimax-m2":     {reO200k},
	"tekken":         {reTekken},
	"qwen35":         {`(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`},
	"seed-coder":     {`(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1}| ?[^\s\p{L}\p{N}\r\n]+|\s*[\r\n]+|\s+(?!\S)|\s+`},
	"bailingmoe":     {`'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]|\s+(?!\S)|\s+`},
	"bailingmoe2":    {`'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]|\s+(?!\S)|\s+`},
	"llada-moe":      {`'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]|\s+(?!\S)|\s+`},
	"minicpm5":       {`\p{N}{1,3}`, `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}+| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`},
	"deepseek-v3":    {`\p{N}{1,3}`, `[一-龥぀-ゟ゠-ヿ]+`, reDeepseek3},
	"hunyuan-dense":  {`\p{N}{1,3}`, `[一-龥぀-ゟ゠-ヿ]+`, reDeepseek3},
	"deepseek-llm":   {`[\r\n]`, reDeepseekLetters, reDeepseekPunct, `\s+$`, `[\x{4E00}-\x{9FA5}\x{800}-\x{4E00}\x{AC00}-\x{D7FF}]+`, `\p{N}+`},
	"deepseek-coder": {`[\r\n]`, `\s?\p{L}+`, `\s?\p{P}+`, `[一-龥ࠀ-一가-퟿]+`, `\p{N}`},
	"poro-chat":      {rePoro},
	"bloom":          {rePoro},
	"gpt3-finnish":   {rePoro},
	"viking":         {rePoro, `\p{N}`},
}

// preSplitter maps a GGUF tokenizer.ggml.pre name to its splitter.
func preSplitter(pre string) (splitter, error) {
	switch pre {
	case "gpt-2", "gpt2", "phi-2", "mpt", "olmo", "jais", "roberta-bpe", "exaone4", "trillion", "jina-es", "jina-de", "jina-v2-es", "jina-v2-de", "jina-v1-en", "jina-v2-code", "mellum", "modern-bert", "gigachat", "a.x-4.0", "granite-docling":
		return splitter{style: styleGPT2}, nil
	case "llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2", "smaug-bpe", "dbrx", "chatglm-bpe", "glm4", "jina-v5-nano":
		return splitter{style: styleLlama3}, nil
	case "qwen2", "deepseek-r1-qwen", "stablelm2", "hunyuan", "megrez", "kormo", "f2llmv2", "grok-2", "solar-open":
		return splitter{style: styleQwen2}, nil
	}
	patterns, ok := preRegexes[pre]
	if !ok {
		return splitter{}, fmt.Errorf("%w: pre-tokenizer %q", ErrUnsupported, pre)
	}
	splits := make([]splitter, len(patterns))
	for i, p := range patterns {
		s, err := compileRegexSplit(p)
		if err != nil {
			return splitter{}, fmt.Errorf("pre-tokenizer %q: %w", pre, err)
		}
		splits[i] = s
	}
	return chain(splits), nil
}

// splitter cuts text into pre-tokens, in one of three ways: a hand-written
// style; a regex tried at each position (anch) followed by the whitespace
// rule that Go's regexp cannot express ('\s+(?!\S)'); or a plain regex
// (re). Text that no alternative matches becomes a piece of its own, as
// Hugging Face's isolated Split does.
type splitter struct {
	style  *preStyle
	anch   *regexp.Regexp // `^(?:alternatives)`
	wsRule int            // after anch: 1 for '\s+(?!\S)', 2 for '\s+(?!\S)|\s+'
	re     *regexp.Regexp
	next   *splitter // splits each piece further
}

// compileSplit builds the splitter of one isolated Split regex.
func compileSplit(pattern string) (splitter, error) {
	if st, ok := knownPatterns[pattern]; ok {
		return splitter{style: st}, nil
	}
	return compileRegexSplit(pattern)
}

// compileRegexSplit builds a regex splitter, without the hand-written styles.
func compileRegexSplit(pattern string) (splitter, error) {
	compile := func(p string) (*regexp.Regexp, error) {
		p, err := unicodeClasses(p)
		if err != nil {
			return nil, fmt.Errorf("pre-tokenizer regex %q: %w", pattern, err)
		}
		re, err := regexp.Compile(p)
		if err != nil {
			return nil, fmt.Errorf("pre-tokenizer regex %q: %w", pattern, err)
		}
		return re, nil
	}
	for _, w := range []struct {
		suffix string
		rule   int
	}{{`|\s+(?!\S)|\s+`, 2}, {`|\s+(?!\S)`, 1}} {
		if rest, ok := strings.CutSuffix(pattern, w.suffix); ok {
			re, err := compile(`^(?:` + rest + `)`)
			if err != nil {
				return splitter{}, err
			}
			return splitter{anch: re, wsRule: w.rule}, nil
		}
	}
	re, err := compile(pattern)
	if err != nil {
		return splitter{}, err
	}
	return splitter{re: re}, nil
}

// Unicode meanings of the Perl classes, as tokenizer.json regexes (written
// for Oniguruma) use them; Go's \s, \d and \w are ASCII-only.
const (
	uniSpace = `\t-\r\x{85}\p{Z}` // White_Space
	uniDigit = `\p{Nd}`
	uniWord  = `\p{L}\p{M}\p{Nd}\p{Pc}`
)

// unicodeClasses rewrites \s \S \d \D \w \W of pattern as Unicode classes.
func unicodeClasses(pattern string) (string, error) {
	var b strings.Builder
	inClass := false
	for i := 0; i < len(pattern); i++ {
		c := pattern[i]
		switch {
		case c == '\\' && i+1 < len(pattern):
			e := pattern[i+1]
			i++
			var class string
			negated := false
			switch e {
			case 's', 'S':
				class, negated = uniSpace, e == 'S'
			case 'd', 'D':
				class, negated = uniDigit, e == 'D'
			case 'w', 'W':
				class, negated = uniWord, e == 'W'
			default:
				b.WriteByte('\\')
				b.WriteByte(e)
				continue
			}
			switch {
			case inClass && negated:
				return "", fmt.Errorf("\\%c inside a character class is not supported", e)
			case inClass:
				b.WriteString(class)
			case negated:
				b.WriteString("[^" + class + "]")
			default:
				b.WriteString("[" + class + "]")
			}
		case c == '[' && !inClass:
			inClass = true
			b.WriteByte(c)
			// a ']' right after '[' or '[^' is a literal
			if i+1 < len(pattern) && pattern[i+1] == '^' {
				b.WriteByte('^')
				i++
			}
			if i+1 < len(pattern) && pattern[i+1] == ']' {
				b.WriteByte(']')
				i++
			}
		case c == '[' && inClass && strings.HasPrefix(pattern[i:], "[:"):
			end := strings.Index(pattern[i:], ":]")
			if end < 0 {
				return "", fmt.Errorf("unterminated [: class")
			}
			b.WriteString(pattern[i : i+end+2])
			i += end + 1
		case c == ']' && inClass:
			inClass = false
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), nil
}

// chain returns a splitter applying splits in order, each to the pieces of
// the one before.
func chain(splits []splitter) splitter {
	for i := len(splits) - 2; i >= 0; i-- {
		splits[i].next = &splits[i+1]
	}
	return splits[0]
}

// split appends the end offsets of the pieces of text to ends and returns it.
// Pieces are contiguous and cover text.
func (s splitter) split(text string, ends []int) []int {
	if s.next != nil {
		first := s
		first.next = nil
		mark := len(ends)
		ends = first.split(text, ends)
		pieces := append([]int(nil), ends[mark:]...)
		ends = ends[:mark]
		start := 0
		for _, end := range pieces {
			k := len(ends)
			ends = s.next.split(text[start:end], ends)
			for i := k; i < len(ends); i++ {
				ends[i] += start
			}
			start = end
		}
		return ends
	}
	switch {
	case s.style != nil:
		for i := 0; i < len(text); {
			i += s.style.match(text, i)
			ends = append(ends, i)
		}
	case s.anch != nil:
		gap := false
		for i := 0; i < len(text); {
			n := s.anchoredMatch(text, i)
			if n == 0 {
				_, w := runeAt(text, i)
				i += w
				gap = true
				continue
			}
			if gap {
				ends = append(ends, i)
				gap = false
			}
			i += n
			ends = append(ends, i)
		}
		if gap {
			ends = append(ends, len(text))
		}
	default:
		prev := 0
		for _, m := range s.re.FindAllStringIndex(text, -1) {
			if m[0] > prev {
				ends = append(ends, m[0])
			}
			if m[1] > m[0] {
				ends = append(ends, m[1])
			}
			prev = m[1]
		}
		if prev < len(text) {
			ends = append(ends, len(text))
		}
	}
	return ends
}

// anchoredMatch returns the length of the pre-token at i, 0 for none.
func (s splitter) anchoredMatch(text string, i int) int {
	// look at a window first; a match reaching its end may go further
	const window = 256
	rest := text[i:]
	if len(rest) > window {
		if m := s.anch.FindStringIndex(rest[:window]); m != nil && m[1] > 0 && m[1] < window-utf8.UTFMax {
			return m[1]
		}
	}
	if m := s.anch.FindStringIndex(rest); m != nil && m[1] > 0 {
		return m[1]
	}
	r, _ := runeAt(text, i)
	if s.wsRule == 0 || !isSpace(r) {
		return 0
	}
	end := run(text, i, isSpace)
	if end == len(text) {
		return end - i // '\s+(?!\S)' at the end of the text
	}
	_, last := utf8.DecodeLastRuneInString(text[i:end])
	if end-last > i {
		return end - last - i // '\s+(?!\S)': leave the last space to the next word
	}
	if s.wsRule == 2 {
		return end - i // '\s+'
	}
	return 0
}

func isLetter(r rune) bool {
	return r < utf8.RuneSelf && ('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z') || r >= utf8.RuneSelf && unicode.IsLetter(r)
}
func isNumber(r rune) bool {
	return r < utf8.RuneSelf && '0' <= r && r <= '9' || r >= utf8.RuneSelf && unicode.IsNumber(r)
}
func isSpace(r rune) bool { return unicode.IsSpace(r) }

// isPunct reports whether r is in [^\s\p{L}\p{N}].
func isPunct(r rune) bool { return !isSpace(r) && !isLetter(r) && !isNumber(r) }

// runeAt decodes the rune at byte offset i; invalid bytes decode as
// utf8.RuneError of width 1 (they count as punctuation).
func runeAt(s string, i int) (rune, int) {
	if i >= len(s) {
		return -1, 0
	}
	if c := s[i]; c < utf8.RuneSelf {
		return rune(c), 1
	}
	return utf8.DecodeRuneInString(s[i:])
}

// run returns the offset after the longest run of runes satisfying f from i.
func run(s string, i int, f func(rune) bool) int {
	for i < len(s) {
		r, n := runeAt(s, i)
		if !f(r) {
			break
		}
		i += n
	}
	return i
}

// match returns the byte length of the pre-token starting at i (always > 0).
func (st *preStyle) match(s string, i int) int {
	r, n := runeAt(s, i)

	// contractions
	if r == '\'' {
		if l := st.contraction(s, i+1); l > 0 {
			return 1 + l
		}
	}

	// words
	if isLetter(r) {
		return run(s, i+n, isLetter) - i
	}
	if (st.anyLetterPrefix && r != '\r' && r != '\n' && !isNumber(r)) || (!st.anyLetterPrefix && r == ' ') {
		if r2, _ := runeAt(s, i+n); r2 >= 0 && isLetter(r2) {
			return run(s, i+n, isLetter) - i
		}
	}

	// numbers
	if st.maxDigits > 0 {
		if isNumber(r) {
			j, k := i, 0
			for k < st.maxDigits {
				r2, n2 := runeAt(s, j)
				if r2 < 0 || !isNumber(r2) {
					break
				}
				j += n2
				k++
			}
			return j - i
		}
	} else {
		if isNumber(r) {
			return run(s, i+n, isNumber) - i
		}
		if r == ' ' {
			if r2, _ := runeAt(s, i+n); r2 >= 0 && isNumber(r2) {
				return run(s, i+n, isNumber) - i
			}
		}
	}

	// punctuation: ' ?[^\s\p{L}\p{N}]+' then '[\r\n]*' for the newer styles
	j := i
	if r == ' ' {
		if r2, _ := runeAt(s, i+1); r2 >= 0 && isPunct(r2) {
			j = i + 1
		}
	}
	if r2, _ := runeAt(s, j); r2 >= 0 && isPunct(r2) {
		j = run(s, j, isPunct)
		if st.newlines {
			for j < len(s) && (s[j] == '\r' || s[j] == '\n') {
				j++
			}
		}
		return j - i
	}

	if isSpace(r) {
		end := run(s, i, isSpace)
		// '\s*[\r\n]+': up to the last line break of the whitespace run
		if st.newlines {
			for k := end - 1; k >= i; k-- {
				if s[k] == '\r' || s[k] == '\n' {
					return k + 1 - i
				}
			}
		}
		// '\s+(?!\S)': the run, but leave its last rune to the next word
		if end == len(s) {
			return end - i
		}
		_, lastN := utf8.DecodeLastRuneInString(s[i:end])
		if end-lastN > i {
			return end - lastN - i
		}
		// '\s+'
		return end - i
	}
	return n
}

// contraction returns the length of s|t|re|ve|m|ll|d at i, or 0.
func (st *preStyle) contraction(s string, i int) int {
	lower := func(j int) byte {
		if j >= len(s) {
			return 0
		}
		c := s[j]
		if st.foldContractions && 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		return c
	}
	switch lower(i) {
	case 's', 't', 'm', 'd':
		return 1
	case 'r', 'v':
		if lower(i+1) == 'e' {
			return 2
		}
	case 'l':
		if lower(i+1) == 'l' {
			return 2
		}
	}
	return 0
}
