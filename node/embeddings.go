package node

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"

	"github.com/labstack/echo/v4"

	"helexa/node/device"
	"helexa/node/engine"
)

// maxEmbeddingInputs bounds the inputs of one /v1/embeddings request, as
// OpenAI's API does.
const maxEmbeddingInputs = 2048

// embeddingRequest is an OpenAI embeddings request.
type embeddingRequest struct {
	Model          string          `json:"model"`
	Input          json.RawMessage `json:"input"`
	EncodingFormat string          `json:"encoding_format"`
	Dimensions     *int            `json:"dimensions"`
	User           string          `json:"user"`
}

type embeddingData struct {
	Object    string `json:"object"`
	Index     int    `json:"index"`
	Embedding any    `json:"embedding"` // []float32, or a base64 string
}

type embeddingUsage struct {
	PromptTokens int `json:"prompt_tokens"`
	TotalTokens  int `json:"total_tokens"`
}

type embeddingResponse struct {
	Object string          `json:"object"`
	Data   []embeddingData `json:"data"`
	Model  string          `json:"model"`
	Usage  embeddingUsage  `json:"usage"`
}

// embeddingInput is one input: text to tokenize, or token ids.
type embeddingInput struct {
	text   string
	ids    []int32
	isText bool
}

// parseEmbeddingInput reads input as a string, a list of strings, a list
// of token ids, or a list of lists of token ids.
func parseEmbeddingInput(raw json.RawMessage) ([]embeddingInput, error) {
	t := bytes.TrimSpace(raw)
	if len(t) == 0 || string(t) == "null" {
		return nil, badRequest("input", "input is required")
	}
	var text string
	if json.Unmarshal(t, &text) == nil {
		return []embeddingInput{{text: text, isText: true}}, nil
	}
	var list []json.RawMessage
	if json.Unmarshal(t, &list) != nil {
		return nil, badRequest("input", "input must be a string, a list of strings, a list of token ids, or a list of lists of token ids")
	}
	if len(list) == 0 {
		return nil, badRequest("input", "input is an empty list")
	}
	if len(list) > maxEmbeddingInputs {
		return nil, badRequest("input", "input has %d items; at most %d are allowed", len(list), maxEmbeddingInputs)
	}
	var ids []int32
	if json.Unmarshal(t, &ids) == nil {
		return []embeddingInput{{ids: ids}}, nil
	}
	out := make([]embeddingInput, len(list))
	for i, item := range list {
		var s string
		if json.Unmarshal(item, &s) == nil {
			out[i] = embeddingInput{text: s, isText: true}
			continue
		}
		var ids []int32
		if json.Unmarshal(item, &ids) == nil {
			out[i] = embeddingInput{ids: ids}
			continue
		}
		return nil, badRequest("input", "input[%d] must be a string or a list of token ids", i)
	}
	return out, nil
}

// embeddingOnlyError is the 400 for generation asked of a model that only
// computes embeddings. (No route path in the message: the gateway strips
// path-like words from neuron messages.)
func embeddingOnlyError(model, what string) *apiError {
	return &apiError{Status: http.StatusBadRequest, Code: "model_lacks_capability", Param: "model",
		Message: fmt.Sprintf("model %s is an embedding model: it has the \"embeddings\" capability only and cannot serve %s; use the embeddings API", model, what)}
}

func (s *Server) handleEmbeddings(c echo.Context) error {
	var req embeddingRequest
	if err := decodeBody(c, &req); err != nil {
		return writeError(c, err)
	}
	in, err := s.instanceFor(req.Model)
	if err != nil {
		return writeError(c, err)
	}
	em := in.m.Engine
	if em == nil || !in.m.CanEmbed {
		return writeError(c, &apiError{Status: http.StatusBadRequest, Code: "model_lacks_capability", Param: "model",
			Message: fmt.Sprintf("model %s does not have the \"embeddings\" capability on this neuron's %s backend", in.id, in.dev.w.Name())})
	}
	format := req.EncodingFormat
	switch format {
	case "", "float":
		format = "float"
	case "base64":
	default:
		return writeError(c, badRequest("encoding_format", "encoding_format must be \"float\" or \"base64\", got %q", req.EncodingFormat))
	}
	dim := em.EmbedDim()
	if req.Dimensions != nil && *req.Dimensions != dim {
		return writeError(c, unsupported("dimensions", "dimensions %d is not supported: model %s gives embeddings of %d dimensions and does not shorten them", *req.Dimensions, in.id, dim))
	}
	// (no bound on the whole input's size beyond the body's: a batch of
	// many short inputs is fine; each text is bounded below)
	inputs, err := parseEmbeddingInput(req.Input)
	if err != nil {
		return writeError(c, err)
	}
	ctx := c.Request().Context()
	release, err := in.admit(ctx)
	if err != nil {
		return writeError(c, err)
	}
	defer release()

	// tokenize and check every input before computing any
	toks := make([][]int32, len(inputs))
	total := 0
	for i, inp := range inputs {
		param := "input"
		if len(inputs) > 1 {
			param = fmt.Sprintf("input[%d]", i)
		}
		ids := inp.ids
		if inp.isText {
			if inp.text == "" {
				return writeError(c, badRequest(param, "%s is an empty string", param))
			}
			if err := in.checkPromptBytes(param, len(inp.text), false); err != nil {
				return writeError(c, err)
			}
			ids = in.m.Encode(inp.text, true, false)
		}
		if len(ids) == 0 {
			return writeError(c, badRequest(param, "%s holds no tokens", param))
		}
		for j, id := range ids {
			if id < 0 || int(id) >= in.m.NVocab {
				return writeError(c, badRequest(param, "%s[%d]: token id %d is outside the vocabulary of %d", param, j, id, in.m.NVocab))
			}
		}
		if len(ids) > in.nctx {
			return writeError(c, &apiError{Status: http.StatusBadRequest, Code: "context_length_exceeded", Param: param,
				Message: fmt.Sprintf("%s is %d tokens long, more than the model's context of %d tokens", param, len(ids), in.nctx)})
		}
		toks[i] = ids
		total += len(ids)
	}

	resp := embeddingResponse{Object: "list", Model: in.id, Data: make([]embeddingData, len(toks)),
		Usage: embeddingUsage{PromptTokens: total, TotalTokens: total}}
	for i, ids := range toks {
		vec, err := em.Embed(ctx, ids)
		if err != nil {
			return writeError(c, in.embedErr(err))
		}
		d := embeddingData{Object: "embedding", Index: i}
		if format == "base64" {
			d.Embedding = encodeFloatsBase64(vec)
		} else {
			d.Embedding = vec
		}
		resp.Data[i] = d
	}
	s.metrics.embedded(in.id, len(toks), total)
	return c.JSON(http.StatusOK, resp)
}

// embedErr maps an embedding failure to its answer; a fault reading the
// weights fails and unloads the model, as a forward pass's does.
func (in *instance) embedErr(err error) error {
	if ferr := device.AsFault(err); ferr != nil {
		in.srv.log.Error().Str("model", in.id).Err(ferr).Msg("reading the model's weights faulted; unloading it")
		go in.srv.failModel(in.id, ferr)
		return ferr
	}
	if errors.Is(err, engine.ErrNoEmbeddings) {
		return &apiError{Status: http.StatusBadRequest, Code: "model_lacks_capability", Param: "model",
			Message: fmt.Sprintf("model %s does not have the \"embeddings\" capability", in.id)}
	}
	var ae *apiError
	if errors.As(err, &ae) || errors.Is(err, errDraining) {
		return err
	}
	if in.ctx.Err() != nil {
		return fmt.Errorf("%w: %s", errDraining, in.id)
	}
	return fmt.Errorf("embedding with %s: %w", in.id, err)
}

// encodeFloatsBase64 is OpenAI's base64 encoding: the little-endian
// float32 bytes of the vector.
func encodeFloatsBase64(v []float32) string {
	b := make([]byte, 4*len(v))
	for i, f := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(f))
	}
	return base64.StdEncoding.EncodeToString(b)
}

// embedExecutor runs an engine model's embedding work on the device
// worker, so it never overlaps the scheduler's forward passes; a memory
// fault becomes an error, as in a scheduler step.
func embedExecutor(w *device.Worker) engine.Executor {
	return func(ctx context.Context, fn func() error) error {
		return w.Do(ctx, func() error { return device.CatchFault(fn) })
	}
}
