package gateway

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"helexa/translate"
)

// The Anthropic Messages and OpenAI Responses routes are translated to chat
// completions (translate/), sent like any other request, and their answers
// translated back, streaming or not.

// dialectRoute describes one translated route.
type dialectRoute struct {
	api     string
	dialect dialect
	// toChat turns the client's body into a chat completions body.
	toChat func(body []byte) ([]byte, translate.RequestInfo, error)
	// fromChat turns a chat completion into the client's answer.
	fromChat func(chatResp, reqBody []byte, model string) ([]byte, error)
	// sink writes the client's stream.
	sink func(w io.Writer, reqBody []byte, model string, flush func()) streamSink
}

var messagesRoute = dialectRoute{
	api:      apiMessages,
	dialect:  dialectAnthropic,
	toChat:   translate.AnthropicToChat,
	fromChat: func(resp, _ []byte, model string) ([]byte, error) { return translate.ChatToAnthropic(resp, model) },
	sink: func(w io.Writer, _ []byte, model string, flush func()) streamSink {
		return translate.NewAnthropicStream(w, model, flush)
	},
}

var responsesRoute = dialectRoute{
	api:      apiResponses,
	dialect:  dialectOpenAI,
	toChat:   translate.ResponsesToChat,
	fromChat: func(resp, req []byte, _ string) ([]byte, error) { return translate.ChatToResponses(resp, req) },
	sink: func(w io.Writer, req []byte, _ string, flush func()) streamSink {
		return translate.NewResponsesStream(w, req, flush)
	},
}

func (g *Gateway) handleMessages(ec echo.Context) error { return g.serveTranslated(ec, messagesRoute) }

func (g *Gateway) handleResponses(ec echo.Context) error {
	return g.serveTranslated(ec, responsesRoute)
}

// translateError maps a translation error to the client's error.
func translateError(err error) *apiError {
	var te *translate.Error
	if errors.As(err, &te) {
		code := te.Code
		if code == "" {
			code = "invalid_request"
		}
		msg := te.Message
		if te.Param != "" {
			msg = fmt.Sprintf("%s: %s", te.Param, te.Message)
		}
		return &apiError{Status: te.Status, Code: code, Reason: "bad_request", Message: msg}
	}
	return &apiError{Status: http.StatusBadRequest, Code: "invalid_request", Reason: "bad_request", Message: err.Error()}
}

func (g *Gateway) serveTranslated(ec echo.Context, rt dialectRoute) error {
	r, w := ec.Request(), ec.Response()
	c := &call{api: rt.api, dialect: rt.dialect, path: "/v1/chat/completions", start: time.Now()}
	defer g.finish(c)
	fail := func(e *apiError) error { return c.fail(w, e) }
	body, aerr := g.readBody(r)
	if aerr != nil {
		return fail(aerr)
	}
	defer putBuf(body)
	chat, info, err := rt.toChat(body.Bytes())
	if err != nil {
		return fail(translateError(err))
	}
	if info.Model == "" {
		return fail(&apiError{Status: http.StatusBadRequest, Code: "missing_model", Reason: "bad_request", Message: "the request needs a \"model\" string"})
	}
	id, aerr := g.resolve(info.Model)
	if aerr != nil {
		return fail(aerr)
	}
	c.model, c.stream = id, info.Stream
	nb, _, err := rewriteRequest(nil, chat, id, info.Stream)
	if err != nil {
		return fail(&apiError{Status: http.StatusInternalServerError, Code: "internal_error", Message: fmt.Sprintf("translated request: %v", err)})
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
	if !info.Stream {
		c.ttft = time.Since(c.start)
		resp, err := io.ReadAll(up.resp.Body)
		if err != nil {
			return fail(&apiError{Status: http.StatusBadGateway, Code: "upstream_error", Reason: "upstream_read", Message: fmt.Sprintf("reading the answer of node %s: %v", c.node, err)})
		}
		if u, ok := usageOf(resp); ok {
			c.usage, c.hasUsage = u, true
		}
		if tps, ok := decodeSpeed(resp); ok {
			c.tps = tps
		}
		out, err := rt.fromChat(resp, body.Bytes(), info.Model)
		if err != nil {
			return fail(&apiError{Status: http.StatusBadGateway, Code: "upstream_error", Reason: "translate_answer", Message: fmt.Sprintf("translating the answer of node %s: %v", c.node, err)})
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		c.code = http.StatusOK
		_, _ = w.Write(out)
		return nil
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	c.code = http.StatusOK
	sink := rt.sink(w, body.Bytes(), info.Model, flusher(w))
	_ = g.pump(r.Context(), c, up.resp.Body, sink)
	return nil
}

// handleCountTokens serves POST /v1/messages/count_tokens through the
// neuron's /tokenize, which renders the messages with the model's chat
// template.
func (g *Gateway) handleCountTokens(ec echo.Context) error {
	r, w := ec.Request(), ec.Response()
	c := &call{api: apiCountTokens, dialect: dialectAnthropic, path: "/tokenize", start: time.Now()}
	defer g.finish(c)
	fail := func(e *apiError) error { return c.fail(w, e) }
	body, aerr := g.readBody(r)
	if aerr != nil {
		return fail(aerr)
	}
	defer putBuf(body)
	tok, model, err := translate.AnthropicCountToTokenize(body.Bytes())
	if err != nil {
		return fail(translateError(err))
	}
	if model == "" {
		return fail(&apiError{Status: http.StatusBadRequest, Code: "missing_model", Reason: "bad_request", Message: "the request needs a \"model\" string"})
	}
	id, aerr := g.resolve(model)
	if aerr != nil {
		return fail(aerr)
	}
	c.model = id
	nb, _, err := rewriteRequest(nil, tok, id, false)
	if err != nil {
		return fail(&apiError{Status: http.StatusInternalServerError, Code: "internal_error", Message: fmt.Sprintf("tokenize request: %v", err)})
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
	var tr struct {
		Tokens []int `json:"tokens"`
		Count  *int  `json:"count"`
	}
	if err := json.NewDecoder(io.LimitReader(up.resp.Body, 64<<20)).Decode(&tr); err != nil {
		return fail(&apiError{Status: http.StatusBadGateway, Code: "upstream_error", Reason: "upstream_read", Message: fmt.Sprintf("reading /tokenize of node %s: %v", c.node, err)})
	}
	n := len(tr.Tokens)
	if tr.Count != nil {
		n = *tr.Count
	}
	c.code = http.StatusOK
	return ec.JSON(http.StatusOK, map[string]int{"input_tokens": n})
}
