package gateway

import (
	"encoding/json"
	"net/http/httptest"
	"testing"
)

type openAIEnvelope struct {
	Error struct {
		Message string  `json:"message"`
		Type    string  `json:"type"`
		Code    *string `json:"code"`
		Param   *string `json:"param"`
	} `json:"error"`
}

type anthropicEnvelope struct {
	Type  string `json:"type"`
	Error struct {
		Type    string `json:"type"`
		Message string `json:"message"`
	} `json:"error"`
}

// Each family's error type per status, as the gateway writes it: one table
// per family (internal/apierr), the same on every route.
func TestErrorTypePerStatus(t *testing.T) {
	openai := map[int]string{400: "invalid_request_error", 401: "invalid_request_error", 404: "invalid_request_error",
		413: "invalid_request_error", 422: "invalid_request_error", 429: "requests", 500: "server_error",
		502: "server_error", 503: "server_error", 504: "server_error"}
	anthropic := map[int]string{400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
		404: "not_found_error", 413: "request_too_large", 422: "invalid_request_error", 429: "rate_limit_error",
		500: "api_error", 502: "api_error", 503: "overloaded_error", 504: "timeout_error", 529: "overloaded_error"}
	for st, want := range openai {
		rec := httptest.NewRecorder()
		writeError(rec, dialectOpenAI, &apiError{Status: st, Code: "c", Message: "m"})
		var e openAIEnvelope
		if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error.Type != want || rec.Code != st {
			t.Errorf("OpenAI %d: %d %s, want type %q", st, rec.Code, rec.Body, want)
		}
	}
	for st, want := range anthropic {
		rec := httptest.NewRecorder()
		writeError(rec, dialectAnthropic, &apiError{Status: st, Message: "m"})
		var e anthropicEnvelope
		if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Type != "error" || e.Error.Type != want || rec.Code != st {
			t.Errorf("Anthropic %d: %d %s, want type %q", st, rec.Code, rec.Body, want)
		}
	}
}

func TestRedactPaths(t *testing.T) {
	f := func(in, want string) {
		t.Helper()
		if got := redactPaths(in); got != want {
			t.Errorf("redactPaths(%q) = %q, want %q", in, got, want)
		}
	}
	f("unsupported or corrupt model: /srv/models/secret/x.gguf: bad magic", "unsupported or corrupt model: x.gguf: bad magic")
	f(`open "/home/ann/.helexa/models/m.gguf": no such file`, `open "m.gguf": no such file`)
	f("reading C:\\models\\m.gguf failed", "reading m.gguf failed")
	f("/abs/at/start.gguf", "start.gguf")
	f(`Get "http://127.0.0.1:13131/health": refused`, `Get "http://127.0.0.1:13131/health": refused`)
	f("model org/name is not loaded", "model org/name is not loaded")
	f("no path here", "no path here")
}
