package node

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
)

// completionRequest is an OpenAI legacy completions request.
type completionRequest struct {
	samplingFields
	Prompt   json.RawMessage `json:"prompt"`
	Logprobs *int            `json:"logprobs"`
	Echo     bool            `json:"echo"`
	Suffix   *string         `json:"suffix"`
	BestOf   *int            `json:"best_of"`
}

type completionLogprobs struct {
	Tokens        []string             `json:"tokens"`
	TokenLogprobs []float32            `json:"token_logprobs"`
	TopLogprobs   []map[string]float32 `json:"top_logprobs"`
	TextOffset    []int                `json:"text_offset"`
	// TokenIDs are the ids of Tokens (an extension; lets a client compare
	// against token-level references).
	TokenIDs []int32 `json:"token_ids"`
}

type completionChoice struct {
	Text         string              `json:"text"`
	Index        int                 `json:"index"`
	Logprobs     *completionLogprobs `json:"logprobs"`
	FinishReason *string             `json:"finish_reason"`
}

type completionResponse struct {
	ID      string             `json:"id"`
	Object  string             `json:"object"`
	Created int64              `json:"created"`
	Model   string             `json:"model"`
	Choices []completionChoice `json:"choices"`
	Usage   *usage             `json:"usage,omitempty"`
	Timings *timings           `json:"timings,omitempty"`
}

// promptTokens reads prompt as text, a list of token ids, or a list
// holding one text or one list of ids. The caller holds a gate place and
// has checked the raw size.
func (in *instance) promptTokens(raw json.RawMessage) ([]int32, error) {
	t := bytes.TrimSpace(raw)
	if len(t) == 0 || string(t) == "null" {
		return nil, badRequest("prompt", "prompt is required")
	}
	var text string
	if json.Unmarshal(t, &text) == nil {
		if err := in.checkPromptBytes("prompt", len(text), false); err != nil {
			return nil, err
		}
		return in.m.Encode(text, true, true), nil
	}
	var ids []int32
	if json.Unmarshal(t, &ids) == nil {
		if len(ids) == 0 {
			return nil, badRequest("prompt", "prompt is empty")
		}
		for i, id := range ids {
			if id < 0 || int(id) >= in.m.NVocab {
				return nil, badRequest("prompt", "prompt[%d]: token id %d is outside the vocabulary of %d", i, id, in.m.NVocab)
			}
		}
		return ids, nil
	}
	var list []json.RawMessage
	if json.Unmarshal(t, &list) == nil {
		if len(list) != 1 {
			return nil, badRequest("prompt", "only one prompt per request is supported, got %d", len(list))
		}
		return in.promptTokens(list[0])
	}
	return nil, badRequest("prompt", "prompt must be a string, a list of token ids, or a list holding one of those")
}

func (s *Server) handleCompletions(c echo.Context) error {
	var req completionRequest
	if err := decodeBody(c, &req); err != nil {
		return writeError(c, err)
	}
	in, err := s.instanceFor(req.Model)
	if err != nil {
		return writeError(c, err)
	}
	if in.m.EmbeddingOnly {
		return writeError(c, embeddingOnlyError(in.id, "completions"))
	}
	g, err := req.resolve(in.m)
	if err != nil {
		return writeError(c, err)
	}
	if req.Echo {
		return writeError(c, unsupported("echo", "echo is not supported"))
	}
	if req.Suffix != nil {
		return writeError(c, unsupported("suffix", "suffix is not supported"))
	}
	if req.BestOf != nil && *req.BestOf != 1 {
		return writeError(c, unsupported("best_of", "only best_of=1 is supported, got %d", *req.BestOf))
	}
	nlp := -1
	if req.Logprobs != nil {
		if *req.Logprobs < 0 || *req.Logprobs > 20 {
			return writeError(c, badRequest("logprobs", "logprobs must be between 0 and 20, got %d", *req.Logprobs))
		}
		nlp = *req.Logprobs
	}
	cons, err := buildConstraint(constraintInput{grammar: req.Grammar, responseFormat: req.ResponseFormat, jsonSchema: req.JSONSchema})
	if err != nil {
		return writeError(c, err)
	}
	if err := in.checkPromptBytes("prompt", len(req.Prompt), true); err != nil {
		return writeError(c, err)
	}
	// Admission before any work that grows with the request.
	arrived := time.Now()
	release, err := in.admit(c.Request().Context())
	if err != nil {
		return writeError(c, err)
	}
	defer release()
	ids, err := in.promptTokens(req.Prompt)
	if err != nil {
		return writeError(c, err)
	}
	if len(ids) >= in.nctx {
		return writeError(c, contextError(len(ids), in.nctx))
	}
	gr := genRequest{Prompt: ids, MaxTokens: g.maxTokens, Params: g.params, Seed: g.seed, Stops: g.stops,
		Logprobs: nlp >= 0, TopLogprobs: max(nlp, 0), Arrived: arrived, IgnoreEOS: g.ignoreEOS, Constraint: cons}
	id, created := newID("cmpl-"), time.Now().Unix()

	var lp *completionLogprobs
	offset := 0
	addLogprob := func(dst *completionLogprobs, ev tokenEvent) {
		text := in.m.TokenText(ev.ID)
		dst.Tokens = append(dst.Tokens, text)
		dst.TokenIDs = append(dst.TokenIDs, ev.ID)
		dst.TokenLogprobs = append(dst.TokenLogprobs, ev.Logprob)
		top := map[string]float32{}
		for _, t := range ev.Top {
			top[in.m.TokenText(t.ID)] = t.Logprob
		}
		dst.TopLogprobs = append(dst.TopLogprobs, top)
		dst.TextOffset = append(dst.TextOffset, offset)
		offset += len(ev.Text)
	}

	if req.Stream {
		w := &sseWriter{c: c}
		gr.KeepAlive = w.keepAlive
		chunk := func(text string, lp *completionLogprobs, finish *string) completionResponse {
			return completionResponse{ID: id, Object: "text_completion", Created: created, Model: req.Model,
				Choices: []completionChoice{{Text: text, Logprobs: lp, FinishReason: finish}}}
		}
		gr.Emit = func(ev tokenEvent) error {
			var l *completionLogprobs
			if gr.Logprobs && ev.ID >= 0 {
				l = &completionLogprobs{}
				addLogprob(l, ev)
			}
			if ev.Text == "" && l == nil {
				return nil
			}
			return w.send(chunk(ev.Text, l, nil))
		}
		ctx, cancel := context.WithCancel(c.Request().Context())
		defer cancel()
		res, err := in.generate(ctx, gr)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return w.fail(err)
		}
		last := chunk("", nil, &res.Finish)
		t := res.timings()
		last.Timings = &t
		if err := w.send(last); err != nil {
			return nil
		}
		if req.StreamOptions != nil && req.StreamOptions.IncludeUsage {
			u := usageOf(res)
			if err := w.send(completionResponse{ID: id, Object: "text_completion", Created: created, Model: req.Model,
				Choices: []completionChoice{}, Usage: &u, Timings: &t}); err != nil {
				return nil
			}
		}
		_ = w.done()
		return nil
	}

	var text bytes.Buffer
	if gr.Logprobs {
		lp = &completionLogprobs{}
	}
	gr.Emit = func(ev tokenEvent) error {
		if lp != nil && ev.ID >= 0 {
			addLogprob(lp, ev)
		}
		text.WriteString(ev.Text)
		return nil
	}
	res, err := in.generate(c.Request().Context(), gr)
	if err != nil {
		return writeError(c, err)
	}
	u, t := usageOf(res), res.timings()
	return c.JSON(http.StatusOK, completionResponse{ID: id, Object: "text_completion", Created: created, Model: req.Model,
		Choices: []completionChoice{{Text: text.String(), Logprobs: lp, FinishReason: &res.Finish}}, Usage: &u, Timings: &t})
}
