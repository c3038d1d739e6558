package grammar

import (
	"errors"
	"testing"
)

func TestGBNFMatches(t *testing.T) {
	f := func(src string, yes, no []string) {
		t.Helper()
		g, err := ParseGBNF(src, "")
		if err != nil {
			t.Fatalf("%q: %v", src, err)
		}
		for _, s := range yes {
			if ok, err := g.Matches([]byte(s)); !ok || err != nil {
				t.Errorf("%q should match %q (%v)", src, s, err)
			}
		}
		for _, s := range no {
			if ok, _ := g.Matches([]byte(s)); ok {
				t.Errorf("%q should not match %q", src, s)
			}
		}
	}
	f(`root ::= "yes" | "no"`, []string{"yes", "no"}, []string{"", "ye", "yesno", "maybe"})
	f(`root ::= [a-c]+ "!"?`, []string{"a", "abc!", "cccc"}, []string{"", "!", "ad"})
	f(`root ::= [^a-z]*`, []string{"", "ABC", "é€😀", "\n"}, []string{"a", "Ab"})
	f(`root ::= "x"{2,3}`, []string{"xx", "xxx"}, []string{"x", "xxxx"})
	f(`root ::= "x"{2}`, []string{"xx"}, []string{"x", "xxx"})
	f(`root ::= "x"{2,}`, []string{"xx", "xxxxx"}, []string{"x"})
	f(`root ::= ("ab" | "c")* "."`, []string{".", "abc.", "cab."}, []string{"a.", "ab"})
	f(`root ::= .`, []string{"a", "é", "😀"}, []string{"", "ab"})
	f(`root ::= "\x41\u00e9\t" [\]\\]`, []string{"Aé\t]", "Aé\t\\"}, []string{"Aé\t"})
	f("# comment\nroot ::= a b # trailing\na ::= \"a\"\n  | \"A\"\nb ::= (\n  \"b\"\n  | \"B\")", []string{"ab", "AB", "aB"}, []string{"a", "abb"})
	f(`root ::= "(" root ")" | ""`, []string{"", "()", "((()))"}, []string{"(", "())"})
	f(`root ::= [0-9]{1,3} ("," [0-9]{1,3})*`, []string{"1", "12,345,6"}, []string{"1234", "1,"})
	f(`root ::= [€-€]`, []string{"€"}, []string{"a", "\xe2\x82"})
}

func TestGBNFErrors(t *testing.T) {
	for _, src := range []string{
		``,
		`root ::= "a`,
		`root ::= [a-`,
		`root ::= foo`,
		`root ::= "a" root ::= "b"`,
		`root ::= root "a" | "b"`,
		`root ::= "a"{3,2}`,
		`root ::= ("a"`,
		`root ::= "\q"`,
		`other ::= "a"`,
	} {
		if _, err := ParseGBNF(src, ""); !errors.Is(err, ErrSyntax) {
			t.Errorf("%q: want a syntax error, got %v", src, err)
		}
	}
}
