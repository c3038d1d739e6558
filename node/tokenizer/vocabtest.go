package tokenizer

import "strings"

// VocabTestSeparator separates the texts of a vocabulary test (.inp) file.
const VocabTestSeparator = "\n__ggml_vocab_test__\n"

// SplitVocabTests splits the content of a vocabulary test file into its
// texts: each text is followed by the separator line (the last one may lack
// its final newline). A text may itself hold newlines, or be empty.
func SplitVocabTests(content string) []string {
	if content == "" {
		return nil
	}
	parts := strings.Split(content, VocabTestSeparator)
	last := len(parts) - 1
	if trimmed, ok := strings.CutSuffix(parts[last], strings.TrimSuffix(VocabTestSeparator, "\n")); ok {
		parts[last] = trimmed
		return parts
	}
	if parts[last] == "" {
		parts = parts[:last]
	}
	return parts
}
