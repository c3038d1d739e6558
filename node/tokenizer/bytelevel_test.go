package tokenizer

import "testing"

func TestByteLevelAlphabet(t *testing.T) {
	seen := map[rune]bool{}
	for b := 0; b < 256; b++ {
		r := byteRune[b]
		if seen[r] {
			t.Fatalf("rune %U used twice", r)
		}
		seen[r] = true
		if got, ok := byteOfRune(r); !ok || got != byte(b) {
			t.Errorf("byteOfRune(%U) = %d, %v; want %d", r, got, ok, b)
		}
	}
	f := func(in, want string) {
		t.Helper()
		if got := string(byteLevelEncode(nil, in)); got != want {
			t.Errorf("byteLevelEncode(%q) = %q, want %q", in, got, want)
		}
		if back := string(byteLevelDecode(nil, want)); back != in {
			t.Errorf("byteLevelDecode(%q) = %q, want %q", want, back, in)
		}
	}
	f(" Hello\n", "ĠHelloĊ")
	f("\t", "ĉ")
	f("é", "Ã©")
	f("\x00\x7f\xad", "ĀġŃ")
	if _, ok := byteOfRune('€'); ok {
		t.Error("€ is not in the alphabet")
	}
	if got := string(byteLevelDecode(nil, "a€")); got != "a€" {
		t.Errorf("runes outside the alphabet are kept: %q", got)
	}
}
