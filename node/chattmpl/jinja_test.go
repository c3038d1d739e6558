package chattmpl

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func fixedClock(t *testing.T) {
	t.Helper()
	old := timeNow
	timeNow = func() time.Time { return time.Date(2026, 3, 5, 14, 7, 9, 0, time.UTC) }
	t.Cleanup(func() { timeNow = old })
}

func TestJinjaCases(t *testing.T) {
	fixedClock(t)
	for _, c := range jinjaCases {
		t.Run(c.name, func(t *testing.T) {
			tmpl, err := Parse(c.tmpl)
			if err != nil {
				if c.wantErr == "" {
					t.Fatalf("Parse: %v", err)
				}
				return // a syntax error, as jinja2 reports too
			}
			got, err := RenderContext(tmpl, []byte(c.ctx))
			if c.wantErr != "" {
				if err == nil {
					t.Fatalf("want error containing %q, got output %q", c.wantErr, got)
				}
				if !strings.Contains(err.Error(), c.wantErr) {
					t.Errorf("error %q does not contain jinja2's %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Render: %v", err)
			}
			if got != c.want {
				t.Errorf("\n got: %q\nwant: %q", got, c.want)
			}
		})
	}
}

func TestRaiseExceptionMessage(t *testing.T) {
	const msg = `Conversation roles must alternate user/assistant/user/assistant/... "quoted" {braces}`
	tmpl, err := Parse(`{% for m in messages %}{% if m.role == 'bad' %}{{ raise_exception('` +
		strings.ReplaceAll(msg, `"`, `\"`) + `') }}{% endif %}{{ m.role }}{% endfor %}`)
	if err != nil {
		t.Fatal(err)
	}
	out, err := tmpl.Render(Input{Messages: []byte(`[{"role":"user"},{"role":"bad"}]`)})
	if err == nil {
		t.Fatalf("want error, got %q", out)
	}
	var re *RaiseError
	if !errors.As(err, &re) {
		t.Fatalf("error %T %v is not a *RaiseError", err, err)
	}
	if re.Message != msg || err.Error() != msg {
		t.Errorf("message %q, want %q", re.Message, msg)
	}
	if out != "" {
		t.Errorf("partial output %q returned with error", out)
	}
}

func TestExprCases(t *testing.T) {
	for _, c := range exprCases {
		tmpl, err := Parse(c.tmpl)
		if err != nil {
			t.Errorf("%s: Parse(%s): %v", c.name, c.tmpl, err)
			continue
		}
		got, err := RenderContext(tmpl, []byte(exprContext))
		if err != nil {
			t.Errorf("%s: %s: %v", c.name, c.tmpl, err)
			continue
		}
		if got != c.want {
			t.Errorf("%s: %s\n got %q\nwant %q", c.name, c.tmpl, got, c.want)
		}
	}
}

func TestStmtCases(t *testing.T) {
	for _, c := range stmtCases {
		tmpl, err := Parse(c.tmpl)
		if err != nil {
			t.Errorf("%s: Parse: %v", c.name, err)
			continue
		}
		got, err := RenderContext(tmpl, []byte(stmtContext))
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if got != c.want {
			t.Errorf("%s: %s\n got %q\nwant %q", c.name, c.tmpl, got, c.want)
		}
	}
}
