package translate

import (
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
