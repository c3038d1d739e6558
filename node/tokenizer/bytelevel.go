package tokenizer

import "unicode/utf8"

// The byte-level alphabet of GPT-2 style BPE: every byte maps to one
// printable rune, so that vocabulary entries are valid text. Printable
// Latin-1 bytes map to themselves; the others (controls, space, 0x7f-0xa0,
// 0xad) map to U+0100 upwards in byte order.
var (
	byteRune  [256]rune   // byte → rune
	byteChars [256]string // byte → the rune as UTF-8
	runeByte  [324]int16  // rune → byte, -1 for runes outside the alphabet
)

func init() {
	for i := range runeByte {
		runeByte[i] = -1
	}
	next := rune(256)
	for b := 0; b < 256; b++ {
		printable := ('!' <= b && b <= '~') || (0xa1 <= b && b <= 0xac) || (0xae <= b && b <= 0xff)
		r := rune(b)
		if !printable {
			r = next
			next++
		}
		byteRune[b] = r
		byteChars[b] = string(r)
		runeByte[r] = int16(b)
	}
}

// byteLevelEncode appends the byte-level form of s to dst.
func byteLevelEncode(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		dst = utf8.AppendRune(dst, byteRune[s[i]])
	}
	return dst
}

// byteLevelDecode appends the bytes a byte-level vocabulary entry stands
// for. Runes outside the alphabet are kept as their UTF-8.
func byteLevelDecode(out []byte, s string) []byte {
	for _, r := range s {
		if b, ok := byteOfRune(r); ok {
			out = append(out, b)
		} else {
			out = utf8.AppendRune(out, r)
		}
	}
	return out
}

// byteOfRune returns the byte a byte-level alphabet rune stands for.
func byteOfRune(r rune) (byte, bool) {
	if r < 0 || int(r) >= len(runeByte) || runeByte[r] < 0 {
		return 0, false
	}
	return byte(runeByte[r]), true
}
