package config

import (
	"encoding/hex"
	"fmt"
	"path"
	"strings"
)

// Key is one [[keys]] entry: an API key with a name, the models it may use
// and its limits. A zero limit means no limit.
type Key struct {
	// Name identifies the key in metrics, the usage store and the console;
	// the secret itself is never shown.
	Name string `toml:"name"`
	// Key is the secret as clients send it; KeySHA256 is its SHA-256 in hex
	// instead, so that no secret need sit in the file. Exactly one is set.
	Key       string `toml:"key"`
	KeySHA256 string `toml:"key_sha256"`
	// Models lists the model ids, aliases or globs (path.Match syntax, e.g.
	// "qwen*") the key may use; empty allows every model.
	Models []string `toml:"models"`
	// RPM is requests per minute, TPM tokens (prompt + completion) per
	// minute.
	RPM int `toml:"rpm"`
	TPM int `toml:"tpm"`
	// MaxParallel is the most requests (streams included) the key has in
	// flight at once.
	MaxParallel int `toml:"max_parallel"`
	// BudgetTokens is how many tokens (prompt + completion) the key may use
	// per BudgetPeriod: "day", "week" (from Monday) or "month", aligned to
	// the calendar in UTC.
	BudgetTokens int64  `toml:"budget_tokens"`
	BudgetPeriod string `toml:"budget_period"`
	// Priority protects the models the key uses from eviction under the
	// "priority" strategy: a model counts as at least the priority of the
	// keys that used it since it was loaded. 0 adds nothing.
	Priority int `toml:"priority"`
}

// Budget periods.
const (
	PeriodDay   = "day"
	PeriodWeek  = "week"
	PeriodMonth = "month"
)

func validateKeys(keys []Key, data []byte) []Problem {
	var probs []Problem
	add := func(key, format string, args ...any) {
		probs = append(probs, Problem{Key: key, Line: lineOf(data, key), Msg: fmt.Sprintf(format, args...)})
	}
	names := map[string]bool{}
	secrets := map[string]bool{}
	for i, k := range keys {
		at := fmt.Sprintf("keys[%d]", i)
		if k.Name != "" {
			at = fmt.Sprintf("keys[%d] (%s)", i, k.Name)
		}
		switch {
		case strings.TrimSpace(k.Name) == "":
			add("keys.name", "%s: name is required", at)
		case names[k.Name]:
			add("keys.name", "%s: duplicate name %q", at, k.Name)
		}
		names[k.Name] = true
		switch {
		case k.Key == "" && k.KeySHA256 == "":
			add("keys.key", "%s: set key or key_sha256", at)
		case k.Key != "" && k.KeySHA256 != "":
			add("keys.key_sha256", "%s: set key or key_sha256, not both", at)
		case k.KeySHA256 != "":
			if b, err := hex.DecodeString(k.KeySHA256); err != nil || len(b) != 32 {
				add("keys.key_sha256", "%s: must be 64 hex digits (sha256sum of the key)", at)
			}
		}
		secret := k.Key
		if secret == "" {
			secret = "sha256:" + strings.ToLower(k.KeySHA256)
		}
		if secret != "" && secrets[secret] {
			add("keys.key", "%s: the same key is configured twice", at)
		}
		secrets[secret] = true
		for _, m := range k.Models {
			if _, err := path.Match(m, ""); err != nil || m == "" {
				add("keys.models", "%s: %q is not a model id or glob", at, m)
			}
		}
		for _, v := range []struct {
			key string
			n   int64
		}{{"keys.rpm", int64(k.RPM)}, {"keys.tpm", int64(k.TPM)}, {"keys.max_parallel", int64(k.MaxParallel)}, {"keys.budget_tokens", k.BudgetTokens}, {"keys.priority", int64(k.Priority)}} {
			if v.n < 0 {
				add(v.key, "%s: must not be negative, got %d", at, v.n)
			}
		}
		switch k.BudgetPeriod {
		case PeriodDay, PeriodWeek, PeriodMonth:
		case "":
			if k.BudgetTokens > 0 {
				add("keys.budget_period", "%s: budget_tokens needs budget_period (day, week or month)", at)
			}
		default:
			add("keys.budget_period", "%s: must be day, week or month, got %q", at, k.BudgetPeriod)
		}
	}
	return probs
}
