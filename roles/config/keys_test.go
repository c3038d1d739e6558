package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseKeys(t *testing.T) {
	src := `
[gateway]
admin_keys = ["adm"]
state_dir = "st"

[[keys]]
name = "alice"
key = "sk-alice"
models = ["qwen*", "llama-3"]
rpm = 60
tpm = 10000
max_parallel = 2
budget_tokens = 1000000
budget_period = "month"
priority = 200

[[keys]]
name = "ci"
key_sha256 = "` + strings.Repeat("ab", 32) + `"
`
	c, err := Parse("h.toml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Keys) != 2 || c.Keys[0].RPM != 60 || c.Keys[0].BudgetPeriod != PeriodMonth || c.Keys[1].KeySHA256 == "" {
		t.Errorf("keys: %+v", c.Keys)
	}
	if len(c.Gateway.AdminKeys) != 1 || c.Gateway.StateDir != "st" {
		t.Errorf("gateway: %+v", c.Gateway)
	}
	// A relative state_dir is taken from the config file's folder.
	dir := t.TempDir()
	p := filepath.Join(dir, "helexa.toml")
	if err := os.WriteFile(p, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	lc, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if lc.Gateway.StateDir != filepath.Join(dir, "st") {
		t.Errorf("state_dir = %q", lc.Gateway.StateDir)
	}
}

func TestParseKeysRefusesBadEntries(t *testing.T) {
	for _, tc := range []struct{ name, src, want string }{
		{"no name", `[[keys]]` + "\nkey = \"a\"", "name is required"},
		{"duplicate name", "[[keys]]\nname = \"a\"\nkey = \"x\"\n[[keys]]\nname = \"a\"\nkey = \"y\"", "duplicate name"},
		{"no secret", "[[keys]]\nname = \"a\"", "set key or key_sha256"},
		{"both secrets", "[[keys]]\nname = \"a\"\nkey = \"x\"\nkey_sha256 = \"" + strings.Repeat("0", 64) + "\"", "not both"},
		{"bad hash", "[[keys]]\nname = \"a\"\nkey_sha256 = \"abc\"", "64 hex digits"},
		{"same secret twice", "[[keys]]\nname = \"a\"\nkey = \"x\"\n[[keys]]\nname = \"b\"\nkey = \"x\"", "configured twice"},
		{"negative rpm", "[[keys]]\nname = \"a\"\nkey = \"x\"\nrpm = -1", "keys.rpm"},
		{"budget without period", "[[keys]]\nname = \"a\"\nkey = \"x\"\nbudget_tokens = 5", "needs budget_period"},
		{"bad period", "[[keys]]\nname = \"a\"\nkey = \"x\"\nbudget_tokens = 5\nbudget_period = \"year\"", "day, week or month"},
		{"bad glob", "[[keys]]\nname = \"a\"\nkey = \"x\"\nmodels = [\"[\"]", "not a model id or glob"},
		{"unknown field", "[[keys]]\nname = \"a\"\nkey = \"x\"\nrps = 3", "unknown key"},
		{"empty admin key", "[gateway]\nadmin_keys = [\"\"]", "admin_keys"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("h.toml", []byte(tc.src))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}
