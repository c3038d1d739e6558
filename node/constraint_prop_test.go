package node

import (
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/rs/zerolog"
)

// schemaGen makes random JSON Schemas of the supported keywords, bounded
// so that every value they allow is finite (strings and arrays have a
// maximum length), so a generation under them always completes.
type schemaGen struct {
	r    *rand.Rand
	defs map[string]any
}

func (g *schemaGen) pick(n int) int { return g.r.IntN(n) }

func (g *schemaGen) schema(depth int) map[string]any {
	kinds := 14
	if depth <= 0 {
		kinds = 9 // leaves only
	}
	switch g.pick(kinds) {
	case 0:
		maxL := g.pick(8)
		s := map[string]any{"type": "string", "maxLength": maxL}
		if g.pick(2) == 0 {
			s["minLength"] = g.pick(maxL + 1)
		}
		return s
	case 1:
		return map[string]any{"type": "string", "enum": []any{"red", "green", "blue \"x\""}[:1+g.pick(3)]}
	case 2:
		return map[string]any{"type": "string", "pattern": []string{`^[a-z]{1,4}$`, `^[0-9]{3}-[0-9]{2}$`, `^(ab|cd){1,3}$`, `^x?y[A-F]{2}$`}[g.pick(4)]}
	case 3:
		return map[string]any{"type": "string", "format": []string{"date", "uuid", "time"}[g.pick(3)]}
	case 4:
		s := map[string]any{"type": "integer"}
		switch g.pick(4) {
		case 0:
			s["minimum"] = g.pick(50) - 25
		case 1:
			s["maximum"] = g.pick(1000) - 500
		case 2:
			lo := g.pick(200) - 100
			s["minimum"], s["maximum"] = lo, lo+g.pick(300)
		case 3:
			lo := g.pick(20) - 10
			s["exclusiveMinimum"], s["exclusiveMaximum"] = lo, lo+2+g.pick(30)
		}
		return s
	case 5:
		s := map[string]any{"type": "number"}
		if g.pick(2) == 0 {
			lo := g.pick(20) - 10
			s["minimum"], s["maximum"] = lo, lo+1+g.pick(20)
		}
		return s
	case 6:
		return map[string]any{"type": []string{"boolean", "null"}[g.pick(2)]}
	case 7:
		return map[string]any{"const": []any{"k", 3.5, true, nil, map[string]any{"a": []any{1, "b"}}}[g.pick(5)]}
	case 8:
		return map[string]any{"type": []any{"string", "null"}, "maxLength": 1 + g.pick(5)}
	case 9, 10:
		props := map[string]any{}
		var req []string
		for i := range 1 + g.pick(3) {
			name := fmt.Sprintf("%c%d", 'a'+rune(g.pick(26)), i)
			props[name] = g.schema(depth - 1)
			if g.pick(2) == 0 {
				req = append(req, name)
			}
		}
		s := map[string]any{"type": "object", "properties": props, "additionalProperties": false}
		if req != nil {
			s["required"] = req
		}
		return s
	case 11:
		maxI := g.pick(4)
		s := map[string]any{"type": "array", "items": g.schema(depth - 1), "maxItems": maxI}
		if g.pick(2) == 0 {
			s["minItems"] = g.pick(maxI + 1)
		}
		return s
	case 12:
		return map[string]any{"anyOf": []any{g.schema(depth - 1), g.schema(depth - 1)}}
	default:
		name := fmt.Sprintf("d%d", len(g.defs))
		g.defs[name] = g.schema(depth - 1)
		return map[string]any{"$ref": "#/$defs/" + name}
	}
}

// TestRandomSchemasValidate is the property test: for random schemas,
// what a model writes under the schema's constraint, sampling at
// temperature 1, parses and validates with a JSON Schema validator.
func TestRandomSchemasValidate(t *testing.T) {
	n := 100
	if testing.Short() || raceEnabled {
		n = 8
	}
	cfg := testConfig(modelsDir(t, "stories260K.gguf"))
	s, err := newServer(cfg, zerolog.New(io.Discard), realEngine())
	if err != nil {
		t.Fatal(err)
	}
	tn := &testNeuron{s: s, srv: newHTTPTest(t, s), dir: cfg.ModelsDirs[0]}
	tn.load(t, "stories260K", 1024)
	r := rand.New(rand.NewPCG(14, 14))
	for i := range n {
		g := &schemaGen{r: r, defs: map[string]any{}}
		root := g.schema(3)
		if len(g.defs) > 0 {
			root["$defs"] = g.defs
		}
		raw, _ := json.Marshal(root)
		v := validator(t, string(raw))
		body := map[string]any{"model": "stories260K", "prompt": "Once upon a time", "max_tokens": 900, "temperature": 1, "seed": i,
			"response_format": map[string]any{"type": "json_schema", "json_schema": map[string]any{"name": "s", "schema": json.RawMessage(raw)}}}
		var out completionResponse
		if st := tn.do(t, "POST", "/v1/completions", body, &out); st != 200 {
			t.Fatalf("schema %d %s: status %d", i, raw, st)
		}
		text := out.Choices[0].Text
		if *out.Choices[0].FinishReason != "stop" {
			t.Fatalf("schema %d %s: finish %s after %q", i, raw, *out.Choices[0].FinishReason, text)
		}
		t.Logf("schema %s: %s", raw, text)
		if err := validate(t, v, text); err != nil {
			t.Fatalf("schema %d %s: output %q does not validate: %v", i, raw, text, err)
		}
	}
}
