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

// apiError is an error with its HTTP status and OpenAI error fields; the
// error type follows from the status (internal/apierr's one table).
type apiError struct {
	Status     int
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
	return &apiError{Status: http.StatusBadRequest, Param: param, Message: fmt.Sprintf(format, args...)}
}

// toAPIError maps any error to the status and envelope it answers with.
func toAPIError(err error) *apiError {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae
	}
	msg := err.Error()
	switch {
	case errors.Is(err, errModelNotFound):
		return &apiError{Status: http.StatusNotFound, Code: "model_not_found", Param: "model", Message: msg}
	case errors.Is(err, errModelNotLoaded):
		return &apiError{Status: http.StatusNotFound, Code: "model_not_loaded", Param: "model", Message: msg}
	case errors.Is(err, errNoMemory):
		return &apiError{Status: http.StatusInsufficientStorage, Code: "insufficient_memory", Message: msg}
	case errors.Is(err, errUnsupported):
		return &apiError{Status: http.StatusUnprocessableEntity, Code: "unsupported_model", Message: msg}
	case errors.Is(err, errQueueFull), errors.Is(err, errQueueTimeout):
		return &apiError{Status: http.StatusServiceUnavailable, Code: "overloaded", Message: msg, RetryAfter: time.Second}
	case errors.Is(err, device.ErrFault):
		return &apiError{Status: http.StatusInternalServerError, Code: "model_failed", Message: msg}
	case errors.Is(err, errDraining), errors.Is(err, errShuttingDown):
		return &apiError{Status: http.StatusServiceUnavailable, Code: "unavailable", Message: msg, RetryAfter: 5 * time.Second}
	}
	return &apiError{Status: http.StatusInternalServerError, Code: "internal_error", Message: msg}
}

// envelope is ae's OpenAI error envelope.
func (ae *apiError) envelope() []byte {
	return apierr.OpenAI(ae.Status, ae.Code, ae.Param, ae.Message)
}

// writeError answers with the OpenAI error envelope.
func writeError(c echo.Context, err error) error {
	ae := toAPIError(err)
	if ae.RetryAfter > 0 {
		c.Response().Header().Set("Retry-After", strconv.Itoa(int(max(1, ae.RetryAfter.Round(time.Second)/time.Second))))
	}
	return c.JSONBlob(ae.Status, ae.envelope())
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
