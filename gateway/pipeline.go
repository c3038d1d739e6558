package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"helexa/translate"
)

// Every API route runs one pipeline (serve): read the body, decode it in
// the route's dialect, resolve the model, rewrite the model value, send to
// a neuron, then relay the answer or pump the stream. A dialectRoute says
// only what differs between routes: how its body is decoded into the
// neuron's, and how the neuron's answer becomes the client's.

// request is what a route learns from the client's body.
type request struct {
	model     string // the name the client asked for
	stream    bool
	keepUsage bool   // an OpenAI stream asked for the usage chunk
	upstream  []byte // the neuron's body before the model is rewritten
}

// dialectRoute is one API route's part of the pipeline. The functions are
// pure: they hold no state and are safe for concurrent use.
type dialectRoute struct {
	api     string
	dialect dialect
	path    string // the neuron route
	// decode reads the client's body (valid JSON) into the neuron's.
	decode func(body []byte) (request, *apiError)
	// answer turns the neuron's 2xx body into the client's; nil relays it
	// as it came.
	answer func(resp, body []byte, r request) ([]byte, error)
	// sink writes the client's stream of the neuron's chunks.
	sink func(w io.Writer, body []byte, r request, flush func()) streamSink
}

// The OpenAI routes the neuron speaks natively: the body is forwarded as it
// came, only the model value is rewritten (and usage asked for when
// streaming).
var (
	chatRoute = &dialectRoute{api: apiChat, dialect: dialectOpenAI, path: "/v1/chat/completions",
		decode: decodeOpenAI, sink: newOpenAISink}
	completionsRoute = &dialectRoute{api: apiCompletions, dialect: dialectOpenAI, path: "/v1/completions",
		decode: decodeOpenAI, sink: newOpenAISink}
	// embeddingsRoute never streams: the answer is relayed whole.
	embeddingsRoute = &dialectRoute{api: apiEmbeddings, dialect: dialectOpenAI, path: "/v1/embeddings",
		decode: decodeEmbeddings}
)

// The Anthropic Messages and OpenAI Responses routes are translated to chat
// completions (translate/) and their answers translated back.
var (
	messagesRoute = &dialectRoute{api: apiMessages, dialect: dialectAnthropic, path: "/v1/chat/completions",
		decode: translated(translate.AnthropicToChat),
		answer: func(resp, _ []byte, r request) ([]byte, error) { return translate.ChatToAnthropic(resp, r.model) },
		sink: func(w io.Writer, _ []byte, r request, flush func()) streamSink {
			return translate.NewAnthropicStream(w, r.model, flush)
		}}
	responsesRoute = &dialectRoute{api: apiResponses, dialect: dialectOpenAI, path: "/v1/chat/completions",
		decode: translated(translate.ResponsesToChat),
		answer: func(resp, body []byte, _ request) ([]byte, error) { return translate.ChatToResponses(resp, body) },
		sink: func(w io.Writer, body []byte, _ request, flush func()) streamSink {
			return translate.NewResponsesStream(w, body, flush)
		}}
	// countTokensRoute serves /v1/messages/count_tokens through the neuron's
	// /tokenize, which renders the messages with the model's chat template.
	countTokensRoute = &dialectRoute{api: apiCountTokens, dialect: dialectAnthropic, path: "/tokenize",
		decode: decodeCountTokens, answer: answerCountTokens}
)

func decodeOpenAI(body []byte) (request, *apiError) {
	facts, err := inspect(body)
	if err != nil {
		return request{}, badRequest("", err.Error())
	}
	if !facts.HasModel || facts.ModelBad || facts.Model == "" {
		return request{}, missingModel()
	}
	return request{model: facts.Model, stream: facts.Stream, keepUsage: facts.WantUsage, upstream: body}, nil
}

// decodeEmbeddings reads an embeddings request: the model, nothing else
// (the body is forwarded as it came; an embeddings answer never streams).
func decodeEmbeddings(body []byte) (request, *apiError) {
	r, aerr := decodeOpenAI(body)
	if aerr != nil {
		return r, aerr
	}
	if r.stream {
		return request{}, badRequest("stream", "embeddings are not streamed; leave stream out")
	}
	return r, nil
}

// translated adapts a translate request converter to a route decoder.
func translated(toChat func([]byte) ([]byte, translate.RequestInfo, error)) func([]byte) (request, *apiError) {
	return func(body []byte) (request, *apiError) {
		chat, info, err := toChat(body)
		if err != nil {
			return request{}, translateError(err)
		}
		if info.Model == "" {
			return request{}, missingModel()
		}
		return request{model: info.Model, stream: info.Stream, upstream: chat}, nil
	}
}

func decodeCountTokens(body []byte) (request, *apiError) {
	tok, model, err := translate.AnthropicCountToTokenize(body)
	if err != nil {
		return request{}, translateError(err)
	}
	if model == "" {
		return request{}, missingModel()
	}
	return request{model: model, upstream: tok}, nil
}

func answerCountTokens(resp, _ []byte, _ request) ([]byte, error) {
	var tr struct {
		Tokens []int `json:"tokens"`
		Count  *int  `json:"count"`
	}
	if err := json.Unmarshal(resp, &tr); err != nil {
		return nil, fmt.Errorf("reading /tokenize: %w", err)
	}
	n := len(tr.Tokens)
	if tr.Count != nil {
		n = *tr.Count
	}
	return json.Marshal(map[string]int{"input_tokens": n})
}

func newOpenAISink(w io.Writer, _ []byte, r request, flush func()) streamSink {
	return &openAISink{w: w, flush: flush, keepUsage: r.keepUsage}
}

func badRequest(param, msg string) *apiError {
	return &apiError{Status: http.StatusBadRequest, Code: "invalid_request", Reason: "bad_request", Param: param, Message: msg}
}

func missingModel() *apiError {
	return &apiError{Status: http.StatusBadRequest, Code: "missing_model", Reason: "bad_request", Param: "model",
		Message: "the request needs a \"model\" string"}
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
		return &apiError{Status: te.Status, Code: code, Param: te.Param, Reason: "bad_request", Message: msg}
	}
	return badRequest("", err.Error())
}

// readBody reads the request body into a pooled buffer, refusing one over
// the limit with 413 and an empty or malformed one with 400.
func (g *Gateway) readBody(r *http.Request) (*bytes.Buffer, *apiError) {
	b := getBuf()
	_, err := b.ReadFrom(io.LimitReader(r.Body, g.maxBody+1))
	if err != nil {
		putBuf(b)
		return nil, badRequest("", fmt.Sprintf("reading request body: %v", err))
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

// serve is the one request pipeline, parameterised by rt.
func (g *Gateway) serve(rt *dialectRoute) echo.HandlerFunc {
	return func(ec echo.Context) error {
		r, w := ec.Request(), ec.Response()
		c := &call{api: rt.api, dialect: rt.dialect, path: rt.path, start: time.Now()}
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
		req, aerr := rt.decode(body.Bytes())
		if aerr != nil {
			return fail(aerr)
		}
		// authenticate (auth, before serve) → limits → route (send)
		c.key, c.asked = keyOf(ec), req.model
		if aerr := g.checkModel(c, req.model); aerr != nil {
			return fail(aerr)
		}
		id, aerr := g.resolve(req.model)
		if aerr != nil {
			return fail(aerr)
		}
		c.model, c.stream = id, req.stream
		if aerr := g.admit(c); aerr != nil {
			return fail(aerr)
		}
		out = getSlice()
		nb, changed, err := rewriteRequest((*out)[:0], req.upstream, id, req.stream)
		if changed {
			*out = nb[:0] // keep the grown slice for the pool
		}
		if err != nil {
			return fail(badRequest("", err.Error()))
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
		if !req.stream || rt.sink == nil {
			return g.relay(c, w, up, rt, body.Bytes(), req)
		}
		h := w.Header()
		h.Set("Content-Type", "text/event-stream")
		h.Set("Cache-Control", "no-cache")
		h.Set("X-Accel-Buffering", "no")
		w.WriteHeader(http.StatusOK)
		c.code = http.StatusOK
		_ = g.pump(r.Context(), c, up, rt.sink(w, body.Bytes(), req, flusher(w)))
		return nil
	}
}

// maxAnswer bounds a non-streaming answer read from a neuron.
const maxAnswer = 64 << 20

// relay answers a non-streaming request: the neuron's answer, read whole
// (its usage recorded), as it came or translated by the route.
func (g *Gateway) relay(c *call, w http.ResponseWriter, up *upstream, rt *dialectRoute, body []byte, req request) error {
	c.ttft = time.Since(c.start)
	b := getBuf()
	defer putBuf(b)
	n, err := b.ReadFrom(io.LimitReader(up.body, maxAnswer+1))
	if err == nil && n > maxAnswer {
		err = fmt.Errorf("answer larger than %d MB", maxAnswer>>20)
	}
	if err != nil {
		return c.fail(w, g.readError(c, up, err))
	}
	if u, ok := usageOf(b.Bytes()); ok {
		c.usage, c.hasUsage = u, true
	}
	if tps, ok := decodeSpeed(b.Bytes()); ok {
		c.tps = tps
	}
	ans := b.Bytes()
	if rt.answer != nil {
		if ans, err = rt.answer(ans, body, req); err != nil {
			return c.fail(w, &apiError{Status: http.StatusBadGateway, Code: "upstream_error", Reason: "translate_answer",
				Message: fmt.Sprintf("translating the answer of node %s: %v", c.node, err)})
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	c.code = http.StatusOK
	_, _ = w.Write(ans)
	return nil
}

// readError is the client's error for an answer that could not be read:
// 504 when the neuron went silent past stream_idle_timeout, else 502.
func (g *Gateway) readError(c *call, up *upstream, err error) *apiError {
	if up.idle() {
		return &apiError{Status: http.StatusGatewayTimeout, Code: "upstream_timeout", Reason: "upstream_idle",
			Message: fmt.Sprintf("node %s sent nothing for %s (stream_idle_timeout)", c.node, g.idleTimeout)}
	}
	return &apiError{Status: http.StatusBadGateway, Code: "upstream_error", Reason: "upstream_read",
		Message: fmt.Sprintf("reading the answer of node %s: %v", c.node, err)}
}
