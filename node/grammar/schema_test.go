package grammar

import (
	"errors"
	"strings"
	"testing"
)

func TestSchemaMatches(t *testing.T) {
	f := func(schema string, yes, no []string) {
		t.Helper()
		g, err := SchemaGrammar([]byte(schema), "schema")
		if err != nil {
			t.Fatalf("%s: %v", schema, err)
		}
		for _, s := range yes {
			if ok, err := g.Matches([]byte(s)); !ok || err != nil {
				t.Errorf("%s should accept %s (%v)", schema, s, err)
			}
		}
		for _, s := range no {
			if ok, _ := g.Matches([]byte(s)); ok {
				t.Errorf("%s should refuse %s", schema, s)
			}
		}
	}
	f(`{"type":"string"}`, []string{`""`, `"a b"`, `"\n"`, `"é"`}, []string{`a`, `"a`, "\"\n\"", `1`})
	f(`{"type":"string","minLength":2,"maxLength":3}`, []string{`"ab"`, `"abc"`, `"é\""`}, []string{`"a"`, `"abcd"`})
	f(`{"type":"integer"}`, []string{`0`, `-12`, `123456`}, []string{`01`, `1.5`, `-`, `--1`})
	f(`{"type":"integer","minimum":-5,"maximum":123}`, []string{`-5`, `0`, `99`, `123`, `7`}, []string{`-6`, `124`, `200`, `1000`})
	f(`{"type":"integer","exclusiveMinimum":10,"maximum":1000}`, []string{`11`, `999`, `1000`}, []string{`10`, `1001`})
	f(`{"type":"integer","minimum":100}`, []string{`100`, `5000`}, []string{`99`, `-1`})
	f(`{"type":"integer","maximum":-3}`, []string{`-3`, `-1000`}, []string{`-2`, `0`})
	f(`{"type":"number","minimum":0,"maximum":10}`, []string{`0`, `10`, `9.5`, `0.25`}, []string{`10.5`, `-0.5`, `11`})
	f(`{"type":"number","minimum":-2,"maximum":1}`, []string{`-2`, `-1.5`, `0.5`, `1`}, []string{`-2.5`, `1.5`})
	f(`{"type":"number"}`, []string{`1`, `-1.5e10`, `0.001`}, []string{`.5`, `1.`})
	f(`{"enum":["a",1,null,{"x":[true]}]}`, []string{`"a"`, `1`, `null`, `{"x":[true]}`}, []string{`"b"`, `2`})
	f(`{"const":"x"}`, []string{`"x"`}, []string{`"y"`})
	f(`{"type":["string","null"]}`, []string{`"a"`, `null`}, []string{`1`})
	f(`{"type":"array","items":{"type":"integer"},"minItems":1,"maxItems":3}`, []string{`[1]`, `[1, 2,3]`}, []string{`[]`, `[1,2,3,4]`, `["a"]`})
	f(`{"type":"array","items":{"type":"integer"}}`, []string{`[]`, `[1,2,3,4,5]`}, []string{`[1,]`})
	f(`{"type":"array","prefixItems":[{"type":"string"},{"type":"integer"}],"items":false}`, []string{`[]`, `["a"]`, `["a",1]`}, []string{`[1]`, `["a",1,2]`})
	f(`{"type":"array","prefixItems":[{"type":"string"}],"minItems":2,"items":{"type":"boolean"}}`, []string{`["a",true]`, `["a",true,false]`}, []string{`["a"]`, `["a",1]`})
	f(`{"type":"object","properties":{"a":{"type":"integer"},"b":{"type":"string"}},"required":["a"],"additionalProperties":false}`,
		[]string{`{"a":1}`, `{"a": 1, "b": "x"}`}, []string{`{}`, `{"b":"x"}`, `{"a":1,"c":2}`, `{"b":"x","a":1}`})
	f(`{"type":"object","properties":{"a":{"type":"integer"},"b":{"type":"string"}},"additionalProperties":false}`,
		[]string{`{}`, `{"a":1}`, `{"b":"x"}`, `{"a":1,"b":"x"}`}, []string{`{,}`, `{"a":1,}`})
	f(`{"type":"object","properties":{"a":{"type":"integer"}}}`,
		[]string{`{}`, `{"a":1}`, `{"a":1,"c":"x"}`, `{"ab":"x"}`, `{"x":1}`}, []string{`{"a":"x"}`, `{"a":1,"a":"x"}`})
	f(`{"type":"object","additionalProperties":{"type":"integer"}}`, []string{`{}`, `{"x":1,"y":2}`}, []string{`{"x":"a"}`})
	f(`{"$defs":{"node":{"type":"object","properties":{"next":{"anyOf":[{"$ref":"#/$defs/node"},{"type":"null"}]}},"required":["next"],"additionalProperties":false}},"$ref":"#/$defs/node"}`,
		[]string{`{"next":null}`, `{"next":{"next":null}}`}, []string{`{}`, `{"next":1}`})
	f(`{"type":"string","pattern":"^[a-z]+-[0-9]{2}$"}`, []string{`"ab-12"`}, []string{`"ab-1"`, `"AB-12"`, `"xab-123"`})
	f(`{"type":"string","pattern":"a\"b"}`, []string{`"a\"b"`, `"xxa\"bxx"`}, []string{`"ab"`})
	f(`{"type":"string","format":"date"}`, []string{`"2024-02-29"`}, []string{`"2024-13-01"`, `"x"`})
	f(`{"type":"string","format":"uuid"}`, []string{`"123e4567-e89b-12d3-a456-426614174000"`}, []string{`"x"`})
	f(`{}`, []string{`1`, `"a"`, `{"a":[1,{"b":null}]}`}, nil)
	f(`{"oneOf":[{"type":"string"},{"type":"integer"}]}`, []string{`"a"`, `1`}, []string{`null`})
	f(`{"oneOf":[{"type":"object","properties":{"k":{"const":"a"},"x":{"type":"integer"}},"required":["k"],"additionalProperties":false},{"type":"object","properties":{"k":{"const":"b"}},"required":["k"],"additionalProperties":false}]}`,
		[]string{`{"k":"a","x":1}`, `{"k":"b"}`}, []string{`{"k":"c"}`})
	f(`true`, []string{`[]`}, nil)
}

func TestSchemaErrors(t *testing.T) {
	f := func(schema, want string) {
		t.Helper()
		_, err := SchemaGrammar([]byte(schema), "response_format.json_schema.schema")
		var se *SchemaError
		if !errors.As(err, &se) {
			t.Fatalf("%s: want a SchemaError, got %v", schema, err)
		}
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %q does not contain %q", schema, err, want)
		}
	}
	f(`{"type":"object","properties":{"x":{"type":"object","patternProperties":{}}}}`,
		`response_format.json_schema.schema.properties.x.patternProperties: keyword "patternProperties" is not supported`)
	f(`{"type":"string","pattern":"\\bword"}`, `pattern`)
	f(`{"type":"string","pattern":"("}`, `pattern`)
	f(`{"$ref":"http://example.com/s"}`, `$ref`)
	f(`{"$ref":"#/$defs/missing"}`, `points at nothing`)
	f(`false`, `allows no value`)
	f(`{"type":"integer","minimum":5,"maximum":4}`, `no integer`)
	f(`{"type":"wat"}`, `unknown type`)
	f(`{"allOf":[{},{}]}`, `allOf`)
	f(`{"type":"array","uniqueItems":true}`, `uniqueItems`)
	f(`{"not":{}}`, `not`)
	f(`{`, `not valid JSON`)
	// oneOf looks at its branches' types once per schema: a reference
	// fanning out to itself is not walked path by path.
	f(`{"$defs":{"a":{"anyOf":[{"$ref":"#/$defs/a"},{"$ref":"#/$defs/a"},{"$ref":"#/$defs/a"},{"$ref":"#/$defs/a"},{"$ref":"#/$defs/a"},{"$ref":"#/$defs/a"},{"$ref":"#/$defs/a"},{"$ref":"#/$defs/a"}]}},"oneOf":[{"$ref":"#/$defs/a"},{"type":"null"}]}`, `oneOf`)
	f(`{"oneOf":[{"type":"integer"},{"type":"number"}]}`, `oneOf`)
	f(`{"type":"object","properties":{"a\nb":{}}}`, `outside printable ASCII`)
}

func TestTextWithout(t *testing.T) {
	b := NewBuilder()
	free := b.TextWithout("<tool_call>")
	b.Rule("root", free+` ( "<tool_call>" "X" )?`)
	g, err := ParseGBNF(b.Source(), "root")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"", "hello <tool", "a<<tool_cal", "é\n<tool_call>X", "<tool_call>X"} {
		if ok, _ := g.Matches([]byte(s)); !ok {
			t.Errorf("should match %q", s)
		}
	}
	for _, s := range []string{"<tool_call>", "<tool_call>Xa", "a<tool_call>b", "<<tool_call>Y", "<tool_call>X<tool_call>X"} {
		if ok, _ := g.Matches([]byte(s)); ok {
			t.Errorf("should not match %q", s)
		}
	}
}
