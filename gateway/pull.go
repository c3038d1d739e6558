package gateway

import (
	"bytes"
	"fmt"
	"io"
	"net/http"

	"github.com/labstack/echo/v4"
)

// POST /nodes/{node}/models/pull forwards a pull request to that neuron's
// POST /models/pull with the neuron's token, and streams its answer (NDJSON
// progress lines, or one JSON object with "stream": false) back as it
// comes. The neuron downloads into its own models folder; the gateway sees
// the new model at its next poll.
func (g *Gateway) handlePull(c echo.Context) error {
	name := c.Param("node")
	g.fleet.mu.RLock()
	n := g.fleet.byName[name]
	g.fleet.mu.RUnlock()
	if n == nil {
		writeError(c.Response(), dialectOpenAI, &apiError{Status: http.StatusNotFound, Code: "node_not_found",
			Message: fmt.Sprintf("no node named %q is configured", name)})
		return nil
	}
	body, err := io.ReadAll(io.LimitReader(c.Request().Body, 1<<20))
	if err != nil {
		writeError(c.Response(), dialectOpenAI, &apiError{Status: http.StatusBadRequest, Code: "invalid_request_error",
			Message: fmt.Sprintf("reading the request body: %v", err)})
		return nil
	}
	req, err := g.newRequest(c.Request().Context(), n, http.MethodPost, "/models/pull", bytes.TrimSpace(body))
	if err != nil {
		return err
	}
	resp, err := g.client.Do(req)
	if err != nil {
		writeError(c.Response(), dialectOpenAI, &apiError{Status: http.StatusBadGateway, Code: "node_unreachable",
			Message: fmt.Sprintf("asking node %s to pull: %v", name, err)})
		return nil
	}
	defer resp.Body.Close()
	w := c.Response()
	for _, k := range []string{"Content-Type", "Cache-Control", "Retry-After"} {
		if v := resp.Header.Get(k); v != "" {
			w.Header().Set(k, v)
		}
	}
	w.WriteHeader(resp.StatusCode)
	buf := make([]byte, 32<<10)
	for {
		k, rerr := resp.Body.Read(buf)
		if k > 0 {
			if _, err := w.Write(buf[:k]); err != nil {
				return nil // the client left; its context ends the neuron's pull
			}
			w.Flush()
		}
		if rerr != nil {
			if rerr != io.EOF {
				g.log.Warn().Str("node", name).Err(rerr).Msg("pull stream from the node ended early")
			}
			return nil
		}
	}
}
