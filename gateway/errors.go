package gateway

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
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
	Reason     string // metrics reason; defaults to Code
	RetryAfter int    // seconds; 0 uses the default for 429/503
}

func (e *apiError) Error() string { return e.Message }

// openAIType maps a status to the OpenAI error type.
func openAIType(status int) string {
	switch {
	case status == http.StatusUnauthorized:
		return "authentication_error"
	case status == http.StatusForbidden:
		return "permission_error"
	case status == http.StatusNotFound:
		return "invalid_request_error"
	case status == http.StatusTooManyRequests:
		return "rate_limit_error"
	case status >= 500:
		return "server_error"
	default:
		return "invalid_request_error"
	}
}

// anthropicType maps a status to the Anthropic error type.
func anthropicType(status int) string {
	switch status {
	case http.StatusBadRequest, http.StatusUnprocessableEntity:
		return "invalid_request_error"
	case http.StatusUnauthorized:
		return "authentication_error"
	case http.StatusForbidden:
		return "permission_error"
	case http.StatusNotFound:
		return "not_found_error"
	case http.StatusRequestEntityTooLarge:
		return "request_too_large"
	case http.StatusTooManyRequests:
		return "rate_limit_error"
	case http.StatusServiceUnavailable, 529:
		return "overloaded_error"
	}
	if status >= 500 {
		return "api_error"
	}
	return "invalid_request_error"
}

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

// envelope encodes e in the dialect's error shape.
func (d dialect) envelope(e *apiError) []byte {
	var v any
	if d == dialectAnthropic {
		var a anthropicEnvelope
		a.Type = "error"
		a.Error.Type = anthropicType(e.Status)
		a.Error.Message = e.Message
		v = a
	} else {
		var o openAIEnvelope
		o.Error.Message = e.Message
		o.Error.Type = openAIType(e.Status)
		if e.Code != "" {
			c := e.Code
			o.Error.Code = &c
		}
		v = o
	}
	b, _ := json.Marshal(v)
	return b
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
			return inner.Message, code
		}
		var s string
		if json.Unmarshal(o.Error, &s) == nil && s != "" {
			return s, ""
		}
	}
	if len(body) > 512 {
		body = body[:512]
	}
	return string(body), ""
}
