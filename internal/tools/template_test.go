package tools

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

func TestTemplateCasesTool(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "cases.json")
	cases := `[
	 {"name": "ok", "template": "{% for m in messages %}{{ m.role }}:{{ m.content }};{% endfor %}{{ x | tojson }}",
	  "context": {"messages": [{"role": "user", "content": "<é>"}], "x": {"b": 1, "a": 2}}, "expected": "ignored"},
	 {"name": "raise", "template": "{{ raise_exception('nope: bad role') }}", "context": {}},
	 {"name": "syntax", "template": "{% if %}", "context": {}}
	]`
	if err := os.WriteFile(path, []byte(cases), 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := templateCases(&out, path); err != nil {
		t.Fatal(err)
	}
	var got []map[string]string
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		var m map[string]string
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		got = append(got, m)
	}
	if len(got) != 3 {
		t.Fatalf("got %d lines, want 3", len(got))
	}
	if got[0]["name"] != "ok" || got[0]["output"] != `user:<é>;{"b": 1, "a": 2}` {
		t.Errorf("line 1 = %v", got[0])
	}
	if _, has := got[0]["error"]; has {
		t.Errorf("line 1 has an error field: %v", got[0])
	}
	if got[1]["error"] != "nope: bad role" {
		t.Errorf("line 2 = %v", got[1])
	}
	if got[2]["error"] == "" || got[2]["output"] != "" {
		t.Errorf("line 3 = %v", got[2])
	}
}

func TestTemplateCasesToolMissingFile(t *testing.T) {
	if err := templateCases(&bytes.Buffer{}, filepath.Join(t.TempDir(), "absent.json")); err == nil {
		t.Fatal("want error for a missing file")
	}
}
