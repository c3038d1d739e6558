package chattmpl

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func render(t *testing.T, src string, in Input) string {
	t.Helper()
	tmpl, err := Parse(src)
	if err != nil {
		t.Fatalf("Parse(%q): %v", src, err)
	}
	out, err := tmpl.Render(in)
	if err != nil {
		t.Fatalf("Render(%q): %v", src, err)
	}
	return out
}

func TestDecodeJSONKeepsOrderAndNumberKinds(t *testing.T) {
	v, err := DecodeJSON([]byte(`{"z": 1, "a": 2.0, "m": [1e3, -0, 12345678901234567890, "s", null, true], "é": {}}`))
	if err != nil {
		t.Fatal(err)
	}
	d := v.(*Dict)
	if diff := cmp.Diff([]any{"z", "a", "m", "é"}, d.Keys()); diff != "" {
		t.Errorf("keys (-want +got):\n%s", diff)
	}
	if got := repr(v); got != `{'z': 1, 'a': 2.0, 'm': [1000.0, 0, 12345678901234567890, 's', None, True], 'é': {}}` {
		t.Errorf("repr = %s", got)
	}
	for _, bad := range []string{`{"a":}`, `[1,`, `{"a":1} x`, ``, `{1: 2}`} {
		if _, err := DecodeJSON([]byte(bad)); err == nil {
			t.Errorf("DecodeJSON(%q): want error", bad)
		}
	}
	deep := strings.Repeat("[", 600) + strings.Repeat("]", 600)
	if _, err := DecodeJSON([]byte(deep)); err == nil {
		t.Error("want error for JSON nested 600 deep")
	}
}

func TestPyFloat(t *testing.T) {
	f := func(x float64, want string) {
		t.Helper()
		if got := pyFloat(x); got != want {
			t.Errorf("pyFloat(%v) = %s, want %s", x, got, want)
		}
	}
	f(1, "1.0")
	f(2.5, "2.5")
	a, b := 0.1, 0.2 // variables: constant arithmetic would be exact
	f(a+b, "0.30000000000000004")
	f(1e16, "1e+16")
	f(1e15, "1000000000000000.0")
	f(0.0001, "0.0001")
	f(0.00001, "1e-05")
	f(-1.5e-7, "-1.5e-07")
	f(123456789.0, "123456789.0")
}

func TestRenderInput(t *testing.T) {
	const src = `{{ bos_token }}{% for m in messages %}{{ m.role }}={{ m.content }};{% endfor %}` +
		`{{ tools is none }}|{{ tools | tojson if tools else '' }}|{{ enable_thinking }}|{{ n }}|{{ opts | tojson }}|{{ typed[0].k }}|{{ add_generation_prompt }}{{ eos_token }}`
	in := Input{
		Messages:            json.RawMessage(`[{"role":"user","content":"hé"}]`),
		AddGenerationPrompt: true,
		BOSToken:            "<s>",
		EOSToken:            "</s>",
		Extra: map[string]any{"enable_thinking": false, "n": float64(3), "opts": map[string]any{"b": 1.5, "a": []any{"x"}},
			"typed": []map[string]int{{"k": 1}}},
	}
	if got, want := render(t, src, in), `<s>user=hé;True||False|3|{"a": ["x"], "b": 1.5}|1|True</s>`; got != want {
		t.Errorf("without tools:\n got %q\nwant %q", got, want)
	}
	in.Tools = json.RawMessage(`[{"type":"function","function":{"name":"f","parameters":{"z":1,"a":2}}}]`)
	if got, want := render(t, src, in), `<s>user=hé;False|[{"type": "function", "function": {"name": "f", "parameters": {"z": 1, "a": 2}}}]|False|3|{"a": ["x"], "b": 1.5}|1|True</s>`; got != want {
		t.Errorf("with tools:\n got %q\nwant %q", got, want)
	}
}

func TestRenderDocumentsFromExtra(t *testing.T) {
	const src = `{{ documents is none }}{% for d in documents or [] %}[{{ d.title }}]{% endfor %}`
	if got := render(t, src, Input{}); got != "True" {
		t.Errorf("no documents: got %q", got)
	}
	in := Input{Extra: map[string]any{"documents": json.RawMessage(`[{"title":"a"},{"title":"b"}]`)}}
	if got := render(t, src, in); got != "False[a][b]" {
		t.Errorf("documents: got %q", got)
	}
}

func TestRenderBadInput(t *testing.T) {
	tmpl, err := Parse(`{{ messages | length }}`)
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range []Input{
		{Messages: json.RawMessage(`{"role":"user"}`)},
		{Messages: json.RawMessage(`[{"role":`)},
		{Messages: json.RawMessage(`[]`), Tools: json.RawMessage(`"x"`)},
		{Messages: json.RawMessage(`[]`), Extra: map[string]any{"ch": make(chan int)}},
	} {
		if out, err := tmpl.Render(in); err == nil {
			t.Errorf("Render(%+v) = %q, want error", in, out)
		}
	}
	if out, err := tmpl.Render(Input{}); err != nil || out != "0" {
		t.Errorf("Render(empty) = %q, %v; want 0", out, err)
	}
}

func TestChatML(t *testing.T) {
	in := Input{
		Messages:            json.RawMessage(`[{"role":"system","content":"S"},{"role":"user","content":[{"type":"text","text":"a"},{"type":"image_url"},{"type":"text","text":"b"}]}]`),
		AddGenerationPrompt: true,
	}
	want := "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nab<|im_end|>\n<|im_start|>assistant\n"
	if got := render(t, ChatML, in); got != want {
		t.Errorf("got %q\nwant %q", got, want)
	}
}

func TestWhitespaceControl(t *testing.T) {
	f := func(src, want string) {
		t.Helper()
		if got := render(t, src, Input{}); got != want {
			t.Errorf("%q:\n got %q\nwant %q", src, got, want)
		}
	}
	// trim_blocks: the newline after a block tag goes; lstrip_blocks: the
	// indentation before a block tag goes.
	f("{% if true %}\nyes\n{% endif %}\n", "yes\n")
	f("  {% if true %}\n  x\n  {% endif %}\n", "  x\n")
	// Output tags are not stripped.
	f("  {{ 'a' }}\n  {{ 'b' }}\n", "  a\n  b")
	// "-" strips all whitespace on its side, "+" turns lstrip/trim off.
	f("a  \n {%- if true -%}  \n b {%- endif %}", "ab")
	f("a\n  {%+ if true +%}\nb{% endif %}", "a\n  \nb")
	// Comments strip like block tags.
	f("a\n  {# note #}\nb", "a\nb")
	// A block tag after text on the same line keeps the text's spaces.
	f("x  {% if true %}y{% endif %}", "x  y")
	// One trailing newline of the template is dropped, not two.
	f("z\n\n", "z\n")
	f("a\r\n{% if true %}\r\nb\r\n{% endif %}", "a\nb\n")
}

func TestLoopControls(t *testing.T) {
	f := func(src, want string) {
		t.Helper()
		if got := render(t, src, Input{}); got != want {
			t.Errorf("%q:\n got %q\nwant %q", src, got, want)
		}
	}
	f("{% for i in range(10) %}{% if i == 4 %}{% break %}{% endif %}{% if i is odd %}{% continue %}{% endif %}{{ i }}{% endfor %}", "02")
	f("{% for a in 'ab' %}{% for b in 'xyz' %}{% if b == 'y' %}{% break %}{% endif %}{{ a }}{{ b }}{% endfor %}{% endfor %}", "axbx")
	f("{% for i in [] %}x{% else %}empty{% endfor %}", "empty")
	f("{% for x in 'abc' %}{{ loop.index }}{{ loop.first }}{{ loop.last }}{{ loop.length }}{% endfor %}", "1TrueFalse32FalseFalse33FalseTrue3")
	if _, err := mustParse(t, "{% break %}").Render(Input{}); err == nil {
		t.Error("break outside a loop: want error")
	}
}

func mustParse(t *testing.T, src string) *Template {
	t.Helper()
	tmpl, err := Parse(src)
	if err != nil {
		t.Fatal(err)
	}
	return tmpl
}

func TestToJSONOrderAndUnicode(t *testing.T) {
	in := Input{Messages: json.RawMessage(`[{"z":"日本 é \"q\" <&> \u0001 \n","a":[1,2.50,{"y":null,"x":true}],"m":{}}]`)}
	if got, want := render(t, `{{ messages[0] | tojson }}`, in), `{"z": "日本 é \"q\" <&> \u0001 \n", "a": [1, 2.5, {"y": null, "x": true}], "m": {}}`; got != want {
		t.Errorf("tojson:\n got %s\nwant %s", got, want)
	}
	want := "{\n  \"z\": \"日本 é \\\"q\\\" <&> \\u0001 \\n\",\n  \"a\": [\n    1,\n    2.5,\n    {\n      \"y\": null,\n      \"x\": true\n    }\n  ],\n  \"m\": {}\n}"
	if got := render(t, `{{ messages[0] | tojson(indent=2) }}`, in); got != want {
		t.Errorf("tojson(indent=2):\n got %s\nwant %s", got, want)
	}
}

func TestSlicing(t *testing.T) {
	in := Input{Messages: json.RawMessage(`[0,1,2,3,4]`)}
	got := render(t, `{{ messages[::-1] }}{{ messages[1:3] }}{{ messages[-2:] }}{{ messages[::2] }}{{ messages[3:0:-1] }}{{ 'héllo'[::-1] }}{{ 'abc'[1:] }}`, in)
	if want := `[4, 3, 2, 1, 0][1, 2][3, 4][0, 2, 4][3, 2, 1]olléhbc`; got != want {
		t.Errorf("got %s\nwant %s", got, want)
	}
}

func TestErrors(t *testing.T) {
	old := maxSteps
	maxSteps = 100000
	t.Cleanup(func() { maxSteps = old })
	f := func(src, wantSub string) {
		t.Helper()
		tmpl, err := Parse(src)
		if err == nil {
			var out string
			out, err = tmpl.Render(Input{Messages: json.RawMessage(`[{"role":"user"}]`)})
			if err == nil {
				t.Errorf("%q: want error containing %q, got output %q", src, wantSub, out)
				return
			}
		}
		if !strings.Contains(err.Error(), wantSub) {
			t.Errorf("%q: error %q does not contain %q", src, err, wantSub)
		}
	}
	f("{{ nope.x }}", "'nope' is undefined")
	f("{{ messages[0].content.strip() }}", "'dict object' has no attribute 'content'")
	f("{{ 1 + 'a' }}", "unsupported operand type(s) for +: 'int' and 'str'")
	f("{{ 'a' + 1 }}", `can only concatenate str (not "int") to str`)
	f("{{ 1 / 0 }}", "division by zero")
	f("{{ x | nosuch }}", "No filter named 'nosuch'.")
	f("{% if true %}", "line 1")
	f("{% for %}", "expected a name")
	f("\n\n{{ 'a' ~ }}", "line 3")
	f("{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}", "recursion")
	f("{{ messages.append(1) }}", "unsafe")
	f("{{ range(100000000) | length }}", "too large")
	f("{{ 'x' * 100000000000 }}", "too long")
	f("{% set ns = namespace(s='x' * 40000000) %}{% for i in range(3) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}", "too long")
	f("{% include 'x' %}", "unknown or misplaced statement")
	f("{{ dict([[range, 1]]) }}", "unhashable")
	f("{{ {[1]: 2} }}", "unhashable")
	f("{{ "+strings.Repeat("(", 1000)+"1"+strings.Repeat(")", 1000)+" }}", "nested")
	f(strings.Repeat("{% if true %}", 500), "nested")
	f("{{ "+strings.Repeat("not ", 1000)+"x }}", "nested")
	f("{% for i in range(100000) %}{% for j in range(1000) %}{% endfor %}{% endfor %}", "loop iterations")
}

func TestConcurrentRender(t *testing.T) {
	tmpl := mustParse(t, `{% set ns = namespace(n=0) %}{% for m in messages %}{% set ns.n = ns.n + 1 %}{{ m.content }}{% endfor %}{{ ns.n }}`)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				msgs := fmt.Sprintf(`[{"content":"g%d"},{"content":"i%d"}]`, g, i)
				out, err := tmpl.Render(Input{Messages: json.RawMessage(msgs)})
				if want := fmt.Sprintf("g%di%d2", g, i); err != nil || out != want {
					t.Errorf("got %q, %v; want %q", out, err, want)
					return
				}
			}
		}(g)
	}
	wg.Wait()
}

func FuzzParseRender(f *testing.F) {
	for _, c := range jinjaCases {
		f.Add(c.tmpl)
	}
	f.Add(ChatML)
	msgs := json.RawMessage(`[{"role":"system","content":"s"},{"role":"user","content":[{"type":"text","text":"t"}]},{"role":"assistant","content":null,"tool_calls":[{"function":{"name":"f","arguments":{"a":1}}}]}]`)
	f.Fuzz(func(t *testing.T, src string) {
		tmpl, err := Parse(src)
		if err != nil {
			if strings.Contains(err.Error(), "internal error") {
				t.Fatalf("Parse(%q) hit an internal error: %v", src, err)
			}
			return
		}
		out, err := tmpl.Render(Input{Messages: msgs, Tools: json.RawMessage(`[{"type":"function"}]`)})
		if err != nil && strings.Contains(err.Error(), "internal error") {
			t.Fatalf("Render(%q) hit an internal error: %v", src, err)
		}
		_ = out
	})
}

func TestDictOrderAndLookupAtAllSizes(t *testing.T) {
	for _, n := range []int{0, 1, dictScanMax, dictScanMax + 1, 40} {
		d := NewDict()
		for i := n - 1; i >= 0; i-- {
			d.Set(fmt.Sprintf("k%d", i), int64(i))
		}
		if n > 0 {
			d.Set("k0", "again") // an existing key keeps its place
		}
		for i := 0; i < n; i++ {
			v, ok := d.Get(fmt.Sprintf("k%d", i))
			if !ok || i > 0 && v != int64(i) || i == 0 && v != "again" {
				t.Fatalf("n=%d: Get(k%d) = %v, %v", n, i, v, ok)
			}
		}
		if _, ok := d.Get("absent"); ok {
			t.Fatalf("n=%d: Get(absent) found", n)
		}
		if d.Len() != n {
			t.Fatalf("n=%d: Len = %d", n, d.Len())
		}
		for j, k := range d.Keys() {
			if want := fmt.Sprintf("k%d", n-1-j); k != want {
				t.Fatalf("n=%d: key %d = %v, want %s", n, j, k, want)
			}
		}
	}
	d := NewDict()
	d.Set(int64(1), "int")
	d.Set(1.0, "float") // 1 == 1.0 in Python: same key
	d.Set(true, "bool")
	if d.Len() != 1 || repr(d) != "{1: 'bool'}" {
		t.Errorf("numeric keys: %s", repr(d))
	}
}
