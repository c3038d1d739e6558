package gateway

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
)

// readBody reads the request body into a pooled buffer, refusing one over
// the limit with 413 and an empty or malformed one with 400.
func (g *Gateway) readBody(r *http.Request) (*bytes.Buffer, *apiError) {
	b := getBuf()
	_, err := b.ReadFrom(io.LimitReader(r.Body, g.maxBody+1))
	if err != nil {
		putBuf(b)
		return nil, &apiError{Status: http.StatusBadRequest, Code: "invalid_request", Reason: "bad_request", Message: fmt.Sprintf("reading request body: %v", err)}
	}
	if int64(b.Len()) > g.maxBody {
		putBuf(b)
		return nil, &apiError{Status: http.StatusRequestEntityTooLarge, Code: "request_too_large", Reason: "too_large",
			Message: fmt.Sprintf("request body is larger than the limit of %d MB", g.maxBody>>20)}
	}
	if !json.Valid(b.Bytes()) {
		putBuf(b)
		return nil, &apiError{Status: http.StatusBadRequest, Code: "invalid_json", Reason: "bad_request", Message: "request body is not valid JSON"}
	}
	return b, nil
}

// openAIHandler serves the OpenAI routes that the neuron speaks natively:
// chat completions and completions. The body is forwarded as it came; only
// the model value is rewritten and usage is asked for when streaming.
func (g *Gateway) openAIHandler(api, path string) echo.HandlerFunc {
	return func(ec echo.Context) error {
		r, w := ec.Request(), ec.Response()
		c := &call{api: api, dialect: dialectOpenAI, path: path, start: time.Now()}
		defer g.finish(c)
		fail := func(e *apiError) error { return c.fail(w, e) }
		body, aerr := g.readBody(r)
		if aerr != nil {
			return fail(aerr)
		}
		var out *[]byte
		defer func() {
			// The transport may still be writing a body the neuron
			// answered before reading; then the buffers are left to the GC.
			if c.bodyReleased() {
				putBuf(body)
				if out != nil {
					putSlice(out)
				}
			}
		}()
		facts, err := inspect(body.Bytes())
		if err != nil {
			return fail(&apiError{Status: http.StatusBadRequest, Code: "invalid_request", Reason: "bad_request", Message: err.Error()})
		}
		if !facts.HasModel || facts.ModelBad || facts.Model == "" {
			return fail(&apiError{Status: http.StatusBadRequest, Code: "missing_model", Reason: "bad_request", Message: "the request needs a \"model\" string"})
		}
		id, aerr := g.resolve(facts.Model)
		if aerr != nil {
			return fail(aerr)
		}
		c.model, c.stream = id, facts.Stream
		out = getSlice()
		nb, changed, err := rewriteRequest((*out)[:0], body.Bytes(), id, facts.Stream)
		if changed {
			*out = nb[:0] // keep the grown slice for the pool
		}
		if err != nil {
			return fail(&apiError{Status: http.StatusBadRequest, Code: "invalid_request", Reason: "bad_request", Message: err.Error()})
		}
		c.body = nb
		up, err := g.send(r.Context(), c)
		if err != nil {
			if gone := r.Context().Err(); gone != nil {
				return g.ctxDone(c, gone, fail)
			}
			return fail(asAPIError(err))
		}
		defer up.close()
		if up.resp.StatusCode/100 != 2 {
			return fail(relayError(up))
		}
		c.ttft = time.Since(c.start)
		if !facts.Stream {
			return g.relayJSON(c, w, up)
		}
		c.ttft = 0
		h := w.Header()
		h.Set("Content-Type", "text/event-stream")
		h.Set("Cache-Control", "no-cache")
		h.Set("X-Accel-Buffering", "no")
		w.WriteHeader(http.StatusOK)
		c.code = http.StatusOK
		sink := &openAISink{w: w, flush: flusher(w), keepUsage: facts.WantUsage}
		_ = g.pump(r.Context(), c, up.resp.Body, sink)
		return nil
	}
}

// relayJSON copies a non-streaming answer, reading its usage for metrics.
func (g *Gateway) relayJSON(c *call, w http.ResponseWriter, up *upstream) error {
	b := getBuf()
	defer putBuf(b)
	if _, err := b.ReadFrom(up.resp.Body); err != nil {
		c.reason = "upstream_read"
		writeError(w, c.dialect, &apiError{Status: http.StatusBadGateway, Code: "upstream_error", Message: fmt.Sprintf("reading the answer of node %s: %v", c.node, err)})
		c.code = http.StatusBadGateway
		return nil
	}
	if u, ok := usageOf(b.Bytes()); ok {
		c.usage, c.hasUsage = u, true
	}
	if tps, ok := decodeSpeed(b.Bytes()); ok {
		c.tps = tps
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	c.code = http.StatusOK
	_, _ = w.Write(b.Bytes())
	return nil
}
