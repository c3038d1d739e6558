package grammar

import (
	"testing"
)

// FuzzParseGBNF: any text either parses or is refused; nothing panics,
// and a parsed grammar can be followed on any input.
func FuzzParseGBNF(f *testing.F) {
	for _, s := range []string{`root ::= "a" | [b-c]* x` + "\nx ::= (\"y\"){2,3} .", `root ::= [^\x00-\u00ff]+ "\\"`, "root ::= a\na ::= a?", `root ::= ("(" root ")")*`} {
		f.Add(s, "((a))")
	}
	f.Fuzz(func(t *testing.T, src, input string) {
		g, err := ParseGBNF(src, "root")
		if err != nil {
			return
		}
		_, _ = g.Matches([]byte(input))
	})
}

// FuzzCompileSchema: any schema compiles to a grammar or is refused with
// a SchemaError; nothing panics.
func FuzzCompileSchema(f *testing.F) {
	for _, s := range []string{`{"type":"object","properties":{"a":{"type":"integer","minimum":-3,"maximum":70}},"required":["a"]}`,
		`{"anyOf":[{"$ref":"#/$defs/x"},{"type":"null"}],"$defs":{"x":{"type":"string","pattern":"^a+b?$"}}}`,
		`{"type":"array","prefixItems":[{"const":1}],"items":{"enum":[1,"a"]},"minItems":1,"maxItems":3}`,
		`{"type":"number","exclusiveMinimum":-1.5,"maximum":2}`} {
		f.Add(s, `{"a":1}`)
	}
	f.Fuzz(func(t *testing.T, schema, input string) {
		g, err := SchemaGrammar([]byte(schema), "s")
		if err != nil {
			return
		}
		_, _ = g.Matches([]byte(input))
	})
}
