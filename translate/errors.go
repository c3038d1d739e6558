package translate

import (
	"encoding/json"
	"errors"
	"fmt"
)

// Error is a client-facing translation error: the HTTP status to answer with
// and the fields of the family's error envelope. Text gives the message for
// envelopes without a param field.
type Error struct {
	Status  int    // HTTP status, e.g. 400
	Type    string // error type, e.g. "invalid_request_error"
	Code    string // machine-readable code, may be empty
	Param   string // offending request field ("messages[2].content"), may be empty
	Message string // what is wrong with it; does not repeat Param
}

// Error implements the error interface.
func (e *Error) Error() string {
	if e.Param != "" {
		return fmt.Sprintf("%s (%s): %s", e.Type, e.Param, e.Message)
	}
	return e.Type + ": " + e.Message
}

// Text is the message with the param in front, for envelopes (Anthropic's)
// that have no param field.
func (e *Error) Text() string {
	if e.Param != "" {
		return e.Param + ": " + e.Message
	}
	return e.Message
}

// ErrBadChunk is wrapped by the stream converters' Chunk for a payload that
// is not a chat.completion.chunk; the client's stream has then been ended
// with an error event.
var ErrBadChunk = errors.New("unreadable upstream stream chunk")

// badRequest returns a 400 invalid_request_error about param.
func badRequest(param, format string, args ...any) *Error {
	return &Error{
		Status:  400,
		Type:    "invalid_request_error",
		Param:   param,
		Message: fmt.Sprintf(format, args...),
	}
}

type openAIErrorBody struct {
	Error openAIErrorFields `json:"error"`
}

type openAIErrorFields struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Code    *string `json:"code"`
	Param   *string `json:"param"`
}

// OpenAIError returns the OpenAI error envelope
// {"error":{"message","type","code","param"}} for an HTTP status. An empty
// code is written as null.
func OpenAIError(status int, code, msg string) []byte {
	return openAIErrorJSON(status, code, "", msg)
}

// OpenAIErrorFrom returns the OpenAI envelope for e, keeping its param.
func OpenAIErrorFrom(e *Error) []byte {
	return openAIErrorJSON(e.Status, e.Code, e.Param, e.Message)
}

func openAIErrorJSON(status int, code, param, msg string) []byte {
	f := openAIErrorFields{Message: msg, Type: openAIErrorType(status)}
	if code != "" {
		f.Code = &code
	}
	if param != "" {
		f.Param = &param
	}
	b, _ := json.Marshal(openAIErrorBody{Error: f}) // cannot fail: strings only
	return b
}

// openAIErrorType is the OpenAI "type" for an HTTP status.
func openAIErrorType(status int) string {
	switch {
	case status == 401:
		return "authentication_error"
	case status == 403:
		return "permission_error"
	case status == 404:
		return "not_found_error"
	case status == 429:
		return "rate_limit_error"
	case status >= 500:
		return "server_error"
	default:
		return "invalid_request_error"
	}
}

// AnthropicErrorType is the Anthropic error "type" for an HTTP status.
func AnthropicErrorType(status int) string {
	switch status {
	case 400:
		return "invalid_request_error"
	case 401:
		return "authentication_error"
	case 402:
		return "billing_error"
	case 403:
		return "permission_error"
	case 404:
		return "not_found_error"
	case 413:
		return "request_too_large"
	case 429:
		return "rate_limit_error"
	case 503, 529:
		return "overloaded_error"
	case 504:
		return "timeout_error"
	}
	switch {
	case status >= 500:
		return "api_error"
	case status >= 400:
		return "invalid_request_error"
	}
	return "api_error"
}

type anthropicErrorBody struct {
	Type  string              `json:"type"`
	Error anthropicErrorInner `json:"error"`
}

type anthropicErrorInner struct {
	Type    string `json:"type"`
	Message string `json:"message"`
}

// AnthropicError returns the Anthropic error envelope
// {"type":"error","error":{"type","message"}}, the type derived from status.
func AnthropicError(status int, msg string) []byte {
	b, _ := json.Marshal(anthropicErrorBody{
		Type:  "error",
		Error: anthropicErrorInner{Type: AnthropicErrorType(status), Message: msg},
	})
	return b
}
