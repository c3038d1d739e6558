package tokenizer

import "golang.org/x/text/unicode/norm"

// nfc returns s in Unicode normalization form C (Qwen's normalizer).
func nfc(s string) string {
	if norm.NFC.IsNormalString(s) {
		return s
	}
	return norm.NFC.String(s)
}
