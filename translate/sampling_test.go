package translate

import (
	"errors"
	"strings"
	"testing"
)

// A negative, non-integer or absurd numeric field is a 400 that names the
// field as the dialect spells it.
func TestNumericFieldsRefused(t *testing.T) {
	f := func(name string, conv func([]byte) error, body, param string) {
		t.Helper()
		err := conv([]byte(body))
		var te *Error
		if !errors.As(err, &te) {
			t.Fatalf("%s %s: err = %v, want *Error", name, body, err)
		}
		if te.Status != 400 || te.Param != param {
			t.Fatalf("%s %s: status %d param %q (%s), want 400 %q", name, body, te.Status, te.Param, te.Message, param)
		}
		if strings.Contains(te.Message, "Go struct") || strings.Contains(te.Message, "anthropicRequest") {
			t.Fatalf("%s: message leaks Go names: %s", name, te.Message)
		}
	}
	msgs := func(extra string) string {
		return `{"model":"m","messages":[{"role":"user","content":"hi"}],` + extra + `}`
	}
	an := func(b []byte) error { _, _, err := AnthropicToChat(b); return err }
	f("messages", an, msgs(`"max_tokens":-1`), "max_tokens")
	f("messages", an, msgs(`"max_tokens":2.5`), "max_tokens")
	f("messages", an, msgs(`"max_tokens":9223372036854775807`), "max_tokens")
	f("messages", an, msgs(`"max_tokens":1e30`), "max_tokens")
	f("messages", an, msgs(`"max_tokens":2147483648`), "max_tokens")
	f("messages", an, msgs(`"max_tokens":10,"temperature":-0.5`), "temperature")
	f("messages", an, msgs(`"max_tokens":10,"temperature":1e300`), "temperature")
	f("messages", an, msgs(`"max_tokens":10,"top_p":1.5`), "top_p")
	f("messages", an, msgs(`"max_tokens":10,"top_k":-3`), "top_k")
	f("messages", an, msgs(`"max_tokens":10,"top_k":1.5`), "top_k")
	f("messages", an, msgs(`"max_tokens":10,"top_k":99999999999`), "top_k")
	re := func(b []byte) error { _, _, err := ResponsesToChat(b); return err }
	in := func(extra string) string { return `{"model":"m","input":"hi",` + extra + `}` }
	f("responses", re, in(`"max_output_tokens":-5`), "max_output_tokens")
	f("responses", re, in(`"max_output_tokens":3.5`), "max_output_tokens")
	f("responses", re, in(`"max_output_tokens":9223372036854775807`), "max_output_tokens")
	f("responses", re, in(`"temperature":2.5`), "temperature")
	f("responses", re, in(`"top_p":-1`), "top_p")
	f("responses", re, in(`"top_k":-1`), "top_k")

	// In range passes.
	if _, _, err := AnthropicToChat([]byte(msgs(`"max_tokens":2147483647,"temperature":1,"top_p":0,"top_k":40`))); err != nil {
		t.Fatalf("in range: %v", err)
	}
	if _, _, err := ResponsesToChat([]byte(in(`"max_output_tokens":16,"temperature":2,"top_p":1`))); err != nil {
		t.Fatalf("in range: %v", err)
	}
}
