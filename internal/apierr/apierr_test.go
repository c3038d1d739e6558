package apierr

import (
	"encoding/json"
	"testing"
)

// The error type of each status, per family, as the real APIs send them.
func TestTypes(t *testing.T) {
	openai := map[int]string{
		400: "invalid_request_error", 401: "invalid_request_error", 403: "invalid_request_error",
		404: "invalid_request_error", 413: "invalid_request_error", 422: "invalid_request_error",
		429: "requests", 500: "server_error", 502: "server_error", 503: "server_error", 504: "server_error",
	}
	anthropic := map[int]string{
		400: "invalid_request_error", 401: "authentication_error", 402: "billing_error", 403: "permission_error",
		404: "not_found_error", 413: "request_too_large", 422: "invalid_request_error", 429: "rate_limit_error",
		500: "api_error", 502: "api_error", 503: "overloaded_error", 504: "timeout_error", 529: "overloaded_error",
	}
	for st, want := range openai {
		if got := OpenAIType(st); got != want {
			t.Errorf("OpenAIType(%d) = %q, want %q", st, got, want)
		}
	}
	for st, want := range anthropic {
		if got := AnthropicType(st); got != want {
			t.Errorf("AnthropicType(%d) = %q, want %q", st, got, want)
		}
	}
}

func TestEnvelopes(t *testing.T) {
	f := func(got []byte, want string) {
		t.Helper()
		var a, b any
		if err := json.Unmarshal(got, &a); err != nil {
			t.Fatalf("%s: %v", got, err)
		}
		_ = json.Unmarshal([]byte(want), &b)
		ga, _ := json.Marshal(a)
		gb, _ := json.Marshal(b)
		if string(ga) != string(gb) {
			t.Errorf("got %s, want %s", ga, gb)
		}
	}
	f(OpenAI(404, "model_not_found", "model", "no such model"),
		`{"error":{"message":"no such model","type":"invalid_request_error","code":"model_not_found","param":"model"}}`)
	f(OpenAI(500, "", "", "boom"), `{"error":{"message":"boom","type":"server_error","code":null,"param":null}}`)
	f(Anthropic(504, `late "x"`), `{"type":"error","error":{"type":"timeout_error","message":"late \"x\""}}`)
}
