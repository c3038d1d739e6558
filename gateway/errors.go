package gateway

import (
	"encoding/json"
	"errors"
	"net/http"
	"regexp"
	"strconv"
	"strings"

	"helexa/internal/apierr"
)

// dialect is the API family of a route; it picks the error envelope and the
// streaming error event.
type dialect int

const (
	dialectOpenAI dialect = iota
	dialectAnthropic
)

// apiError is an error answered to a client: status, OpenAI-style code and
// a message written for the user.
type apiError struct {
	Status     int
	Code       string // OpenAI error code, e.g. "model_not_found"
	Message    string
	Param      string // the request field at fault (OpenAI envelope), may be empty
	Reason     string // metrics reason; defaults to Code
	RetryAfter int    // seconds; 0 uses the default for 429/503
	Type       string // OpenAI error type when it is not the status's (insufficient_quota)
}

func (e *apiError) Error() string { return e.Message }

// envelope encodes e in the dialect's error shape; the error type comes
// from the family's one table (internal/apierr).
func (d dialect) envelope(e *apiError) []byte {
	if d == dialectAnthropic {
		return apierr.Anthropic(e.Status, e.Message)
	}
	if e.Type != "" {
		return apierr.OpenAITyped(e.Status, e.Type, e.Code, e.Param, e.Message)
	}
	return apierr.OpenAI(e.Status, e.Code, e.Param, e.Message)
}

// writeError answers e in the dialect's envelope, with Retry-After on 429
// and 503.
func writeError(w http.ResponseWriter, d dialect, e *apiError) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	if e.Status == http.StatusTooManyRequests || e.Status == http.StatusServiceUnavailable {
		ra := e.RetryAfter
		if ra <= 0 {
			ra = 5
		}
		h.Set("Retry-After", strconv.Itoa(ra))
	}
	w.WriteHeader(e.Status)
	_, _ = w.Write(d.envelope(e))
}

// asAPIError turns any error into an apiError (500 for unknown errors).
func asAPIError(err error) *apiError {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae
	}
	return &apiError{Status: http.StatusInternalServerError, Code: "internal_error", Message: err.Error()}
}

// upstreamMessage pulls the message out of a neuron's error body (either
// envelope); the raw body, trimmed, when it has neither.
func upstreamMessage(body []byte) (msg, code string) {
	var o struct {
		Error json.RawMessage `json:"error"`
	}
	if json.Unmarshal(body, &o) == nil && len(o.Error) > 0 {
		var inner struct {
			Message string `json:"message"`
			Code    any    `json:"code"`
			Type    string `json:"type"`
		}
		if json.Unmarshal(o.Error, &inner) == nil && inner.Message != "" {
			if s, ok := inner.Code.(string); ok {
				code = s
			}
			return redactPaths(inner.Message), code
		}
		var s string
		if json.Unmarshal(o.Error, &s) == nil && s != "" {
			return redactPaths(s), ""
		}
	}
	if len(body) > 512 {
		body = body[:512]
	}
	return redactPaths(string(body)), ""
}

// pathRE matches an absolute file path in a message: a Unix path that
// starts a word (so URLs, whose slashes follow a colon, are left alone) or
// a Windows drive path.
var pathRE = regexp.MustCompile(`(^|[\s"'(=\[])(/[^\s"'()\[\],;]+|[A-Za-z]:\\[^\s"'(),;]+)`)

// redactPaths replaces every absolute path in a neuron's message with its
// last element, so that a client or /fleet never learns where a node keeps
// its files.
func redactPaths(s string) string {
	if !strings.ContainsAny(s, "/\\") {
		return s
	}
	return pathRE.ReplaceAllStringFunc(s, func(m string) string {
		lead := ""
		if m != "" && (m[0] != '/' && !(len(m) > 1 && m[1] == ':')) {
			lead, m = m[:1], m[1:]
		}
		base := m
		if i := strings.LastIndexAny(m, "/\\"); i >= 0 {
			base = m[i+1:]
		}
		if base == "" {
			base = "…"
		}
		return lead + base
	})
}
