package grammar

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// suiteDir is where the official JSON-Schema-Test-Suite's draft 2020-12
// tests are, from HELEXA_JSON_SCHEMA_SUITE (the suite's checkout, or its
// tests/draft2020-12 folder). The suite is not part of the repository.
func suiteDir(t *testing.T) string {
	root := os.Getenv("HELEXA_JSON_SCHEMA_SUITE")
	if root == "" {
		t.Skip("HELEXA_JSON_SCHEMA_SUITE is not set (a checkout of github.com/json-schema-org/JSON-Schema-Test-Suite)")
	}
	for _, d := range []string{filepath.Join(root, "tests", "draft2020-12"), root} {
		if _, err := os.Stat(filepath.Join(d, "type.json")); err == nil {
			return d
		}
	}
	t.Skipf("no draft2020-12 tests under %s", root)
	return ""
}

// suiteKeywords are the suite's files for the keywords the compiler
// handles or refuses by name.
var suiteKeywords = []string{
	"additionalProperties", "allOf", "anyOf", "boolean_schema", "const", "defs", "enum",
	"exclusiveMaximum", "exclusiveMinimum", "format", "items", "maxItems", "maxLength", "maximum",
	"minItems", "minLength", "minimum", "oneOf", "pattern", "prefixItems", "properties", "ref",
	"required", "type", "uniqueItems", "patternProperties", "not", "if-then-else", "multipleOf",
	"contains", "propertyNames", "dependentRequired", "minProperties", "maxProperties",
}

// TestJSONSchemaTestSuite walks the suite's keyword files: every schema
// compiles or is refused with a SchemaError; a compiled grammar never
// accepts an instance the suite marks invalid (what it writes always
// validates), and the valid instances it cannot write are counted (the
// grammar is narrower than the schema there: key order, number forms,
// bounds rounded inwards).
func TestJSONSchemaTestSuite(t *testing.T) {
	dir := suiteDir(t)
	var compiled, refused, validOK, validMissed, invalidOK int
	for _, kw := range suiteKeywords {
		data, err := os.ReadFile(filepath.Join(dir, kw+".json"))
		if err != nil {
			t.Fatalf("%s: %v", kw, err)
		}
		var groups []struct {
			Description string          `json:"description"`
			Schema      json.RawMessage `json:"schema"`
			Tests       []struct {
				Description string          `json:"description"`
				Data        json.RawMessage `json:"data"`
				Valid       bool            `json:"valid"`
			} `json:"tests"`
		}
		if err := json.Unmarshal(data, &groups); err != nil {
			t.Fatalf("%s: %v", kw, err)
		}
		for _, g := range groups {
			gr, err := SchemaGrammar(g.Schema, "schema")
			if err != nil {
				var se *SchemaError
				if !errors.As(err, &se) || se.Msg == "" {
					t.Errorf("%s / %s: refused without a clear error: %v", kw, g.Description, err)
				}
				refused++
				continue
			}
			compiled++
			for _, tc := range g.Tests {
				inst, err := canonicalInstance(tc.Data, g.Schema)
				if err != nil {
					t.Fatalf("%s / %s / %s: %v", kw, g.Description, tc.Description, err)
				}
				ok, err := gr.Matches(inst)
				if err != nil {
					t.Fatalf("%s / %s / %s: %v", kw, g.Description, tc.Description, err)
				}
				switch {
				case tc.Valid && ok:
					validOK++
				case tc.Valid:
					validMissed++
					t.Logf("valid but not producible: %s / %s / %s: %s", kw, g.Description, tc.Description, inst)
				case ok:
					invalidOK++
					t.Errorf("invalid but accepted: %s / %s / %s: %s (schema %s)", kw, g.Description, tc.Description, inst, g.Schema)
				}
			}
		}
	}
	t.Logf("schemas: %d compiled, %d refused; valid instances: %d producible, %d not; invalid accepted: %d",
		compiled, refused, validOK, validMissed, invalidOK)
}

// canonicalInstance writes an instance as the grammar writes values:
// compact, and an object's keys in the order of the schema's properties
// (others after, in their order).
func canonicalInstance(data, schema json.RawMessage) ([]byte, error) {
	v, err := decodeOrdered(data)
	if err != nil {
		return nil, err
	}
	s, _ := decodeOrdered(schema)
	var b bytes.Buffer
	writeInstance(&b, v, s)
	return b.Bytes(), nil
}

func writeInstance(b *bytes.Buffer, v, schema any) {
	so, _ := schema.(*object)
	switch x := v.(type) {
	case *object:
		var props *object
		if so != nil {
			if p, ok := so.get("properties"); ok {
				props, _ = p.(*object)
			}
		}
		var keys []string
		seen := map[string]bool{}
		if props != nil {
			for _, k := range props.keys {
				if _, ok := x.vals[k]; ok {
					keys = append(keys, k)
					seen[k] = true
				}
			}
		}
		for _, k := range x.keys {
			if !seen[k] {
				keys = append(keys, k)
			}
		}
		b.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				b.WriteByte(',')
			}
			writeJSONString(b, k)
			b.WriteByte(':')
			var sub any
			if props != nil {
				sub = props.vals[k]
			}
			writeInstance(b, x.vals[k], sub)
		}
		b.WriteByte('}')
	case []any:
		b.WriteByte('[')
		for i, e := range x {
			if i > 0 {
				b.WriteByte(',')
			}
			var sub any
			if so != nil {
				sub, _ = so.get("items")
			}
			writeInstance(b, e, sub)
		}
		b.WriteByte(']')
	default:
		marshalCanonical(b, v)
	}
}
