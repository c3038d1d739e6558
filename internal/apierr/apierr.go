// Package apierr holds the one status-to-error-type table of each API
// family helexa speaks, and their error envelopes. The gateway, the
// dialect translators and the neuron all answer errors through it, so a
// status means the same error type on every route.
package apierr

import "encoding/json"

// OpenAIType is the "type" of an OpenAI error envelope for an HTTP status,
// as OpenAI's API sends it: every client error is an invalid_request_error
// (a wrong key and an unknown model included: OpenAI tells them apart by
// "code", not by "type"), a rate limit is "requests", a server failure is
// server_error.
func OpenAIType(status int) string {
	switch {
	case status == 429:
		return "requests"
	case status >= 500:
		return "server_error"
	default:
		return "invalid_request_error"
	}
}

// AnthropicType is the error "type" of an Anthropic envelope for an HTTP
// status, as Anthropic's API documents it. Other 4xx statuses are
// invalid_request_error, other 5xx api_error. 503, which Anthropic does not
// send, means the same as its 529: no capacity right now.
func AnthropicType(status int) string {
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
	case 500:
		return "api_error"
	case 503, 529:
		return "overloaded_error"
	case 504:
		return "timeout_error"
	}
	if status >= 500 {
		return "api_error"
	}
	return "invalid_request_error"
}

type openAIBody struct {
	Error openAIFields `json:"error"`
}

type openAIFields struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Code    *string `json:"code"`
	Param   *string `json:"param"`
}

// OpenAI returns the envelope {"error":{"message","type","code","param"}}
// for status; an empty code or param is written as null.
func OpenAI(status int, code, param, msg string) []byte {
	f := openAIFields{Message: msg, Type: OpenAIType(status)}
	if code != "" {
		f.Code = &code
	}
	if param != "" {
		f.Param = &param
	}
	b, _ := json.Marshal(openAIBody{Error: f}) // strings only: cannot fail
	return b
}

type anthropicBody struct {
	Type  string         `json:"type"`
	Error anthropicInner `json:"error"`
}

type anthropicInner struct {
	Type    string `json:"type"`
	Message string `json:"message"`
}

// Anthropic returns the envelope {"type":"error","error":{"type","message"}}
// for status.
func Anthropic(status int, msg string) []byte {
	b, _ := json.Marshal(anthropicBody{Type: "error", Error: anthropicInner{Type: AnthropicType(status), Message: msg}})
	return b
}

// OpenAITyped is OpenAI with an explicit error type, for the errors whose
// type OpenAI's API sets apart from the status (a 429 "insufficient_quota"
// when a budget is spent, beside the plain rate limit's "requests").
func OpenAITyped(status int, typ, code, param, msg string) []byte {
	if typ == "" {
		typ = OpenAIType(status)
	}
	f := openAIFields{Message: msg, Type: typ}
	if code != "" {
		f.Code = &code
	}
	if param != "" {
		f.Param = &param
	}
	b, _ := json.Marshal(openAIBody{Error: f}) // strings only: cannot fail
	return b
}
