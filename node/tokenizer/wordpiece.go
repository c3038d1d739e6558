package tokenizer

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// WordPiece (BERT) vocabularies.
//
// GGUF files store a BERT vocabulary in "phantom space" form: a token that
// starts a word carries a leading ▁ ("▁hello"), a continuation is bare
// ("ing" for Hugging Face's "##ing"), and bracketed specials ([CLS], [SEP],
// [UNK], [unused0]…) stay as they are. Hugging Face tokenizer.json files
// keep the "##" form; wordPieceVocab converts it.
//
// Encoding follows Hugging Face's BertNormalizer, BertPreTokenizer and
// WordPiece model:
//
//   - drop NUL, U+FFFD and control/format characters; whitespace separates
//     words;
//   - optionally (lowercasing vocabularies) decompose (NFD) and drop the
//     non-spacing marks, and lowercase;
//   - every punctuation character (Unicode P, or an ASCII symbol) and every
//     CJK ideograph is a word of its own;
//   - each word is split greedily into the longest vocabulary entries from
//     the left; a word with a part that no entry covers, or longer than
//     maxWordChars characters, becomes [UNK] as a whole.
//
// With special tokens, the ids are framed as [CLS] … [SEP].

// maxWordChars is the longest word WordPiece splits (Hugging Face's
// max_input_chars_per_word); longer words are [UNK].
const maxWordChars = 100

// wordPieceVocab converts a Hugging Face WordPiece vocabulary ("##"
// continuations) to the phantom-space form in place.
func wordPieceVocab(tokens []string) {
	for i, s := range tokens {
		switch {
		case strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]"):
		case strings.HasPrefix(s, "##"):
			tokens[i] = s[2:]
		default:
			tokens[i] = "▁" + s
		}
	}
}

// encodeWordPiece appends the ids of frag (text without special tokens).
func (t *Tokenizer) encodeWordPiece(out []int32, frag string, s *scratch) []int32 {
	if t.stripAccents {
		frag = norm.NFD.String(frag)
	}
	word := s.word[:0]
	flush := func() {
		if len(word) > 0 {
			out = t.wordPiece(out, word)
			word = word[:0]
		}
	}
	for _, r := range frag {
		switch {
		case unicode.IsSpace(r):
			flush()
			continue
		case r == 0 || r == utf8.RuneError || unicode.Is(unicode.C, r):
			continue
		case t.stripAccents && unicode.Is(unicode.Mn, r):
			continue
		}
		if t.lowercase {
			r = unicode.ToLower(r)
		}
		if unicode.IsPunct(r) || (r < 0x7f && unicode.IsSymbol(r)) || isCJK(r) {
			flush()
			word = utf8.AppendRune(word, r)
			flush()
			continue
		}
		word = utf8.AppendRune(word, r)
	}
	flush()
	s.word = word
	return out
}

// wordPiece appends the greedy longest-match split of one word, or [UNK].
func (t *Tokenizer) wordPiece(out []int32, word []byte) []int32 {
	if utf8.RuneCount(word) > maxWordChars {
		return append(out, t.unkOrZero())
	}
	mark := len(out)
	for start := 0; start < len(word); {
		prefix := ""
		if start == 0 {
			prefix = "▁"
		}
		end := min(len(word), start+t.maxTokenLen)
		found := false
		for ; end > start; end-- {
			if end < len(word) && !utf8.RuneStart(word[end]) {
				continue
			}
			if id, ok := t.vocab[prefix+string(word[start:end])]; ok {
				out = append(out, id)
				found = true
				break
			}
		}
		if !found {
			return append(out[:mark], t.unkOrZero())
		}
		start = end
	}
	return out
}

func (t *Tokenizer) unkOrZero() int32 {
	if t.unk >= 0 {
		return t.unk
	}
	return 0
}

// isCJK reports whether r is a CJK ideograph, which BERT makes a word of its
// own (the blocks Hugging Face's BertNormalizer pads with spaces).
func isCJK(r rune) bool {
	return (r >= 0x4E00 && r <= 0x9FFF) ||
		(r >= 0x3400 && r <= 0x4DBF) ||
		(r >= 0x20000 && r <= 0x2A6DF) ||
		(r >= 0x2A700 && r <= 0x2B73F) ||
		(r >= 0x2B740 && r <= 0x2B81F) ||
		(r >= 0x2B920 && r <= 0x2CEAF) ||
		(r >= 0xF900 && r <= 0xFAFF) ||
		(r >= 0x2F800 && r <= 0x2FA1F)
}

// hasPhantomSpace reports whether a BERT vocabulary is in GGUF's form (word
// starts carry ▁) rather than Hugging Face's (continuations carry ##).
func hasPhantomSpace(tokens []string) bool {
	phantom, hashes := 0, 0
	for _, s := range tokens {
		switch {
		case strings.HasPrefix(s, "▁"):
			phantom++
		case strings.HasPrefix(s, "##"):
			hashes++
		}
	}
	return phantom >= hashes
}
