package node

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"helexa/internal/apierr"
	"helexa/node/device"
)

// apiError is an error with its HTTP status and OpenAI error fields.
type apiError struct {
	Status     int
	Type       string // invalid_request_error, not_found_error, ...
	Code       string // context_length_exceeded, model_not_loaded, ...
	Param      string
	Message    string
	RetryAfter time.Duration // 429/503
}

func (e *apiError) Error() string { return e.Message }

// Sentinel errors of the neuron, mapped to statuses by toAPIError.
var (
	errModelNotFound  = errors.New("model not found")
	errModelNotLoaded = errors.New("model not loaded")
	errNoMemory       = errors.New("insufficient memory")
	errUnsupported    = errors.New("unsupported or corrupt model")
	errQueueFull      = errors.New("queue full")
	errQueueTimeout   = errors.New("timed out waiting in the queue")
	errDraining       = errors.New("model is unloading")
	errShuttingDown   = errors.New("neuron is shutting down")
)

func badRequest(param, format string, args ...any) *apiError {
	return &apiError{Status: http.StatusBadRequest, Type: "invalid_request_error", Param: param, Message: fmt.Sprintf(format, args...)}
}

// toAPIError maps any error to the status and envelope it answers with.
func toAPIError(err error) *apiError {
	ae := toAPIErrorOwn(err)
	// The type always comes from the one OpenAI table (internal/apierr).
	out := *ae
	out.Type = apierr.OpenAIType(out.Status)
	return &out
}

func toAPIErrorOwn(err error) *apiError {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae
	}
	msg := err.Error()
	switch {
	case errors.Is(err, errModelNotFound):
		return &apiError{Status: http.StatusNotFound, Type: "not_found_error", Code: "model_not_found", Param: "model", Message: msg}
	case errors.Is(err, errModelNotLoaded):
		return &apiError{Status: http.StatusNotFound, Type: "not_found_error", Code: "model_not_loaded", Param: "model", Message: msg}
	case errors.Is(err, errNoMemory):
		return &apiError{Status: http.StatusInsufficientStorage, Type: "server_error", Code: "insufficient_memory", Message: msg}
	case errors.Is(err, errUnsupported):
		return &apiError{Status: http.StatusUnprocessableEntity, Type: "invalid_request_error", Code: "unsupported_model", Message: msg}
	case errors.Is(err, errQueueFull), errors.Is(err, errQueueTimeout):
		return &apiError{Status: http.StatusServiceUnavailable, Type: "server_error", Code: "overloaded", Message: msg, RetryAfter: time.Second}
	case errors.Is(err, device.ErrFault):
		return &apiError{Status: http.StatusInternalServerError, Type: "server_error", Code: "model_failed", Message: msg}
	case errors.Is(err, errDraining), errors.Is(err, errShuttingDown):
		return &apiError{Status: http.StatusServiceUnavailable, Type: "server_error", Code: "unavailable", Message: msg, RetryAfter: 5 * time.Second}
	}
	return &apiError{Status: http.StatusInternalServerError, Type: "server_error", Code: "internal_error", Message: msg}
}

type errorBody struct {
	Error errorFields `json:"error"`
}

type errorFields struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Code    *string `json:"code"`
	Param   *string `json:"param"`
}

func strOrNil(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// writeError answers with the OpenAI error envelope.
func writeError(c echo.Context, err error) error {
	ae := toAPIError(err)
	if ae.RetryAfter > 0 {
		c.Response().Header().Set("Retry-After", strconv.Itoa(int(max(1, ae.RetryAfter.Round(time.Second)/time.Second))))
	}
	return c.JSON(ae.Status, errorBody{Error: errorFields{Message: ae.Message, Type: ae.Type, Code: strOrNil(ae.Code), Param: strOrNil(ae.Param)}})
}

// httpErrorHandler turns echo's own errors (unknown route, wrong method)
// into the envelope too.
func httpErrorHandler(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	var he *echo.HTTPError
	if errors.As(err, &he) {
		_ = writeError(c, &apiError{Status: he.Code, Message: fmt.Sprint(he.Message)})
		return
	}
	_ = writeError(c, err)
}
