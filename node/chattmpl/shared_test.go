package chattmpl

import (
	"encoding/json"
	"helexa/internal/testshared"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// sharedDir finds ../shared beside the directory holding go.mod.
func sharedDir(t testing.TB) string {
	t.Helper()
	return testshared.Dir(t)
}

// templateCase is one case of the shared template tables.
type templateCase struct {
	Name          string          `json:"name"`
	Template      string          `json:"template"`
	Context       json.RawMessage `json:"context"`
	Expected      *string         `json:"expected"`
	ExpectedError bool            `json:"expected_error"`
	Error         string          `json:"error"`
}

func loadCases(t testing.TB, file string) []templateCase {
	t.Helper()
	path := filepath.Join(sharedDir(t), "templates", file)
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		t.Skipf("%s not present; skipping shared template cases", path)
	}
	if err != nil {
		t.Fatal(err)
	}
	var cases []templateCase
	if err := json.Unmarshal(data, &cases); err != nil {
		t.Fatalf("decoding %s: %v", path, err)
	}
	return cases
}

func runCase(t *testing.T, c templateCase) {
	t.Helper()
	tmpl, err := Parse(c.Template)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	got, err := RenderContext(tmpl, c.Context)
	if c.ExpectedError {
		if err == nil {
			t.Fatalf("want error %q, got output %q", c.Error, got)
		}
		if !strings.Contains(err.Error(), c.Error) {
			t.Fatalf("error %q does not contain %q", err, c.Error)
		}
		return
	}
	if err != nil {
		t.Fatalf("Render: %v", err)
	}
	if c.Expected == nil {
		t.Fatal("case has neither expected nor expected_error")
	}
	if got != *c.Expected {
		t.Errorf("output mismatch\n got: %q\nwant: %q", got, *c.Expected)
	}
}

func TestSharedCases(t *testing.T) {
	for _, file := range []string{"chat-templates.public.json", "hf-templates.public.json"} {
		t.Run(file, func(t *testing.T) {
			cases := loadCases(t, file)
			if len(cases) == 0 {
				t.Fatal("no cases")
			}
			for _, c := range cases {
				t.Run(c.Name, func(t *testing.T) { runCase(t, c) })
			}
		})
	}
}

// TestSharedCasesViaInput renders the shared cases through Render(Input),
// the path the neuron uses, to check the context mapping. Render passes
// tools = None when there are none (as transformers does), while the shared
// contexts leave tools out; for those cases the reference is RenderContext
// with "tools": null added.
func TestSharedCasesViaInput(t *testing.T) {
	for _, file := range []string{"chat-templates.public.json", "hf-templates.public.json"} {
		for _, c := range loadCases(t, file) {
			t.Run(c.Name, func(t *testing.T) {
				var ctx struct {
					Messages            json.RawMessage `json:"messages"`
					Tools               json.RawMessage `json:"tools"`
					AddGenerationPrompt bool            `json:"add_generation_prompt"`
					BOSToken            string          `json:"bos_token"`
					EOSToken            string          `json:"eos_token"`
				}
				if err := json.Unmarshal(c.Context, &ctx); err != nil {
					t.Fatal(err)
				}
				tmpl, err := Parse(c.Template)
				if err != nil {
					t.Fatal(err)
				}
				got, err := tmpl.Render(Input{Messages: ctx.Messages, Tools: ctx.Tools,
					AddGenerationPrompt: ctx.AddGenerationPrompt, BOSToken: ctx.BOSToken, EOSToken: ctx.EOSToken})
				want, wantErr := c.Expected, c.ExpectedError
				if len(ctx.Tools) == 0 {
					withNull := append(json.RawMessage(`{"tools": null, `), c.Context[1:]...)
					ref, refErr := RenderContext(tmpl, withNull)
					want, wantErr = &ref, refErr != nil
					if refErr != nil {
						c.Error = refErr.Error()
					}
				}
				if wantErr {
					if err == nil || !strings.Contains(err.Error(), c.Error) {
						t.Fatalf("want error containing %q, got %v", c.Error, err)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				if got != *want {
					t.Errorf("output mismatch\n got: %q\nwant: %q", got, *want)
				}
			})
		}
	}
}
