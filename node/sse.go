package node

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
)

// sseWriter writes a server-sent event stream. Headers go out with the
// first event, so an error before any output can still set the status.
type sseWriter struct {
	c       echo.Context
	started bool
	last    time.Time // the last write
}

func (w *sseWriter) start() {
	if w.started {
		return
	}
	w.started = true
	h := w.c.Response().Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("Connection", "keep-alive")
	h.Set("X-Accel-Buffering", "no")
	w.c.Response().WriteHeader(http.StatusOK)
}

// send writes one data event and flushes it.
func (w *sseWriter) send(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encoding event: %w", err)
	}
	return w.raw(b)
}

func (w *sseWriter) raw(b []byte) error {
	w.start()
	r := w.c.Response()
	if _, err := r.Write([]byte("data: ")); err != nil {
		return err
	}
	if _, err := r.Write(b); err != nil {
		return err
	}
	if _, err := r.Write([]byte("\n\n")); err != nil {
		return err
	}
	r.Flush()
	w.last = time.Now()
	return nil
}

// keepAlive writes an SSE comment, which clients ignore, when the stream
// has written nothing for keepAliveEvery, so that proxies and the gateway
// (stream_idle_timeout) see that a stream holding its text back is alive.
// Before the first event (the headers not sent yet) it writes nothing.
func (w *sseWriter) keepAlive() error {
	if !w.started || time.Since(w.last) < keepAliveEvery {
		return nil
	}
	r := w.c.Response()
	if _, err := r.Write([]byte(": keep-alive\n\n")); err != nil {
		return err
	}
	r.Flush()
	w.last = time.Now()
	return nil
}

func (w *sseWriter) done() error { return w.raw([]byte("[DONE]")) }

// fail ends a stream with an error: before any output as a plain error
// response, after it as an error event (the status is already sent).
func (w *sseWriter) fail(err error) error {
	if !w.started {
		return writeError(w.c, err)
	}
	ae := toAPIError(err)
	_ = w.raw(ae.envelope())
	return nil
}
