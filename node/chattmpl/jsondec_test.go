package chattmpl

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// plain converts a decoded template value to what encoding/json with
// UseNumber gives, for comparison.
func plain(v any) any {
	switch x := v.(type) {
	case *List:
		out := make([]any, len(x.Items))
		for i, e := range x.Items {
			out[i] = plain(e)
		}
		return out
	case *Dict:
		out := map[string]any{}
		for _, k := range x.Keys() {
			val, _ := x.Get(k)
			out[k.(string)] = plain(val)
		}
		return out
	case int64, float64, bigInt:
		return "number"
	}
	return v
}

func numbersToMarker(v any) any {
	switch x := v.(type) {
	case []any:
		for i := range x {
			x[i] = numbersToMarker(x[i])
		}
	case map[string]any:
		for k := range x {
			x[k] = numbersToMarker(x[k])
		}
	case json.Number:
		return "number"
	}
	return v
}

func checkAgainstStdlib(t *testing.T, data []byte) {
	t.Helper()
	if bytes.Count(data, []byte("["))+bytes.Count(data, []byte("{")) > maxJSONDepth {
		return
	}
	v, err := DecodeJSON(data)
	if valid := json.Valid(data); (err == nil) != valid {
		t.Fatalf("DecodeJSON(%q) error %v, but json.Valid = %v", data, err, valid)
	}
	if err != nil {
		return
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var want any
	if err := dec.Decode(&want); err != nil {
		t.Fatal(err)
	}
	got, _ := json.Marshal(plain(v))
	wantJSON, _ := json.Marshal(numbersToMarker(want))
	if !bytes.Equal(got, wantJSON) {
		t.Fatalf("DecodeJSON(%q):\n got %s\nwant %s", data, got, wantJSON)
	}
}

var jsonSeeds = []string{
	`{"a": [1, -2.5e3, 0, -0, 1E+2, "x\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00"], "b": {"c": null, "d": true, "e": false}}`,
	`[]`, `{}`, `""`, `"\ud800"`, `"\ud800\u0041"`, ` [ 1 , 2 ] `, `01`, `1.`, `.5`, `-`, `1e`, `[1,]`, `{"a" 1}`,
	`{"a":1,}`, `tru`, `nul`, `"abc`, "\"a\tb\"", `"\x"`, `[1 2]`, `123456789012345678901234567890`, `1e999`,
	`{"k": "v", "k": "w"}`, "\"\xff\"",
}

func TestDecodeJSONAgainstStdlib(t *testing.T) {
	for _, s := range jsonSeeds {
		checkAgainstStdlib(t, []byte(s))
	}
	v, err := DecodeJSON([]byte(`{"k": "v", "k": "w", "a": 1}`))
	if err != nil {
		t.Fatal(err)
	}
	if got := repr(v); got != `{'k': 'w', 'a': 1}` {
		t.Errorf("duplicate keys: got %s, want the last value in the first key's place", got)
	}
	if got := repr(mustDecode(t, `"\ud83d\ude00 \u00e9"`)); got != `'😀 é'` {
		t.Errorf("surrogate pair: %s", got)
	}
	if got := repr(mustDecode(t, `[1e999, -1e999, 2E-400]`)); !strings.HasPrefix(got, "[inf, -inf, 0.0]") {
		t.Errorf("out of range floats: %s", got)
	}
}

func mustDecode(t *testing.T, s string) any {
	t.Helper()
	v, err := DecodeJSON([]byte(s))
	if err != nil {
		t.Fatalf("DecodeJSON(%q): %v", s, err)
	}
	return v
}

func FuzzDecodeJSON(f *testing.F) {
	for _, s := range jsonSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) { checkAgainstStdlib(t, data) })
}
