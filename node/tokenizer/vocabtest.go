package tokenizer

import "strings"

// VocabTestSeparator separates the texts of a vocabulary test (.inp) file.
const VocabTestSeparator = "\n__ggml_vocab_test__\n"

// SplitVocabTests splits the content of a vocabulary test file into its
// texts: each text is followed by the separator line.
func SplitVocabTests(content string) []string {
	parts := strings.Split(content, VocabTestSeparator)
	if len(parts) > 0 && parts[len(parts)-1] == "" {
		parts = parts[:len(parts)-1]
	}
	return parts
}
