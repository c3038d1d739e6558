package node

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"helexa/node/toolcall"
)

// chatRequest is the part of an OpenAI chat completions request the
// neuron reads.
type chatRequest struct {
	samplingFields
	Messages           json.RawMessage `json:"messages"`
	Tools              json.RawMessage `json:"tools"`
	ToolChoice         json.RawMessage `json:"tool_choice"`
	Logprobs           bool            `json:"logprobs"`
	TopLogprobs        *int            `json:"top_logprobs"`
	ChatTemplateKwargs map[string]any  `json:"chat_template_kwargs"`
	// ReasoningEffort goes to the chat template (gpt-oss and kin) unless
	// chat_template_kwargs sets it.
	ReasoningEffort string `json:"reasoning_effort"`

	// ParallelToolCalls false allows at most one tool call.
	ParallelToolCalls *bool `json:"parallel_tool_calls"`

	// Options read only to refuse what is not supported (see
	// checkOptions): a request is never answered as if it was honoured.
	Functions    json.RawMessage `json:"functions"`
	FunctionCall json.RawMessage `json:"function_call"`
	Audio        json.RawMessage `json:"audio"`
	Modalities   []string        `json:"modalities"`
}

// unsupported is the 400 for an option the neuron does not enforce.
func unsupported(param, format string, args ...any) *apiError {
	e := badRequest(param, format, args...)
	e.Code = "unsupported_parameter"
	return e
}

func isNull(raw json.RawMessage) bool {
	t := bytes.TrimSpace(raw)
	return len(t) == 0 || string(t) == "null"
}

// checkOptions refuses the options the neuron accepts in the API's shape
// but does not enforce, naming each, and reads tool_choice.
func (r *chatRequest) checkOptions() (toolChoice, error) {
	if !isNull(r.Functions) {
		return toolChoice{}, unsupported("functions", "functions is not supported; use tools")
	}
	if !isNull(r.FunctionCall) {
		return toolChoice{}, unsupported("function_call", "function_call is not supported; use tool_choice")
	}
	if !isNull(r.Audio) {
		return toolChoice{}, unsupported("audio", "audio output is not supported")
	}
	for _, m := range r.Modalities {
		if m != "text" {
			return toolChoice{}, unsupported("modalities", "output modality %q is not supported (text only)", m)
		}
	}
	return parseToolChoice(r.ToolChoice)
}

type usage struct {
	PromptTokens        int           `json:"prompt_tokens"`
	CompletionTokens    int           `json:"completion_tokens"`
	TotalTokens         int           `json:"total_tokens"`
	PromptTokensDetails promptDetails `json:"prompt_tokens_details"`
}

type promptDetails struct {
	CachedTokens int `json:"cached_tokens"`
}

func usageOf(r genResult) usage {
	return usage{PromptTokens: r.PromptTokens, CompletionTokens: r.CompletionTokens,
		TotalTokens: r.PromptTokens + r.CompletionTokens, PromptTokensDetails: promptDetails{CachedTokens: r.CachedTokens}}
}

type toolCallOut struct {
	Index    *int         `json:"index,omitempty"`
	ID       string       `json:"id,omitempty"`
	Type     string       `json:"type,omitempty"`
	Function functionCall `json:"function"`
}

type functionCall struct {
	Name      string `json:"name,omitempty"`
	Arguments string `json:"arguments"`
}

type chatMessage struct {
	Role             string        `json:"role"`
	Content          *string       `json:"content"`
	ReasoningContent string        `json:"reasoning_content,omitempty"`
	ToolCalls        []toolCallOut `json:"tool_calls,omitempty"`
}

type chatDelta struct {
	Role             string        `json:"role,omitempty"`
	Content          *string       `json:"content,omitempty"`
	ReasoningContent *string       `json:"reasoning_content,omitempty"`
	ToolCalls        []toolCallOut `json:"tool_calls,omitempty"`
}

type logprobEntry struct {
	Token       string       `json:"token"`
	Logprob     float32      `json:"logprob"`
	Bytes       []int        `json:"bytes"`
	TopLogprobs []topLogprob `json:"top_logprobs"`
}

type topLogprob struct {
	Token   string  `json:"token"`
	Logprob float32 `json:"logprob"`
	Bytes   []int   `json:"bytes"`
	ID      int32   `json:"id"`
}

type chatLogprobs struct {
	Content []logprobEntry `json:"content"`
}

type chatChoice struct {
	Index        int           `json:"index"`
	Message      *chatMessage  `json:"message,omitempty"`
	Delta        *chatDelta    `json:"delta,omitempty"`
	Logprobs     *chatLogprobs `json:"logprobs"`
	FinishReason *string       `json:"finish_reason"`
}

type chatResponse struct {
	ID      string       `json:"id"`
	Object  string       `json:"object"`
	Created int64        `json:"created"`
	Model   string       `json:"model"`
	Choices []chatChoice `json:"choices"`
	Usage   *usage       `json:"usage,omitempty"`
	Timings *timings     `json:"timings,omitempty"`
}

func newID(prefix string) string {
	var b [12]byte
	for i := range b {
		b[i] = byte(rand.Uint32())
	}
	return prefix + hex.EncodeToString(b[:])
}

func bytesOf(s string) []int {
	out := make([]int, len(s))
	for i := range len(s) {
		out[i] = int(s[i])
	}
	return out
}

// logprobOf builds a logprobs entry for a token event.
func (in *instance) logprobOf(ev tokenEvent) logprobEntry {
	text := in.m.TokenText(ev.ID)
	e := logprobEntry{Token: text, Logprob: ev.Logprob, Bytes: bytesOf(text), TopLogprobs: []topLogprob{}}
	for _, t := range ev.Top {
		tt := in.m.TokenText(t.ID)
		e.TopLogprobs = append(e.TopLogprobs, topLogprob{Token: tt, Logprob: t.Logprob, Bytes: bytesOf(tt), ID: t.ID})
	}
	return e
}

// normaliseMessages prepares messages for a chat template: text parts are
// joined into a string, and tool-call arguments given as JSON text become
// objects (what templates expect).
func normaliseMessages(raw json.RawMessage, model string) (json.RawMessage, error) {
	if len(bytes.TrimSpace(raw)) == 0 || string(bytes.TrimSpace(raw)) == "null" {
		return nil, badRequest("messages", "messages is required")
	}
	var msgs []map[string]any
	if err := json.Unmarshal(raw, &msgs); err != nil {
		return nil, badRequest("messages", "messages must be a list of message objects: %v", err)
	}
	if len(msgs) == 0 {
		return nil, badRequest("messages", "messages must not be empty")
	}
	for i, m := range msgs {
		role, _ := m["role"].(string)
		if role == "" {
			return nil, badRequest("messages", "messages[%d] has no role", i)
		}
		switch c := m["content"].(type) {
		case nil, string:
		case []any:
			var b strings.Builder
			for j, p := range c {
				part, _ := p.(map[string]any)
				typ, _ := part["type"].(string)
				switch typ {
				case "text", "input_text", "output_text":
					t, _ := part["text"].(string)
					b.WriteString(t)
				case "image_url", "input_image", "image":
					return nil, lacksCapability(model, "vision", fmt.Sprintf("messages[%d].content[%d] is an image", i, j))
				case "input_audio", "audio":
					return nil, lacksCapability(model, "audio", fmt.Sprintf("messages[%d].content[%d] is audio", i, j))
				default:
					return nil, badRequest("messages", "messages[%d].content[%d]: content type %q is not supported (text only)", i, j, typ)
				}
			}
			m["content"] = b.String()
		default:
			return nil, badRequest("messages", "messages[%d].content must be a string or a list of parts", i)
		}
		if tcs, ok := m["tool_calls"].([]any); ok {
			for _, tc := range tcs {
				fn, _ := tc.(map[string]any)["function"].(map[string]any)
				if fn == nil {
					continue
				}
				if s, ok := fn["arguments"].(string); ok {
					var obj map[string]any
					if json.Unmarshal([]byte(s), &obj) == nil {
						fn["arguments"] = obj
					}
				}
			}
		}
	}
	return json.Marshal(msgs)
}

// lacksCapability is the 400 for input the model cannot take; the
// capability is the one /models would list if the model had it.
func lacksCapability(model, capability, what string) *apiError {
	return &apiError{Status: 400, Code: "model_lacks_capability", Param: "messages",
		Message: fmt.Sprintf("%s, but model %s does not have the %q capability (no model on this neuron reads %s input yet); send text only",
			what, model, capability, map[string]string{"vision": "image", "audio": "audio"}[capability])}
}

// chatPrompt renders and tokenizes a chat request's prompt. The caller
// holds a gate place (rendering and tokenizing are work to admit) and has
// checked the raw size with checkChatBytes.
func (in *instance) chatPrompt(messages, tools json.RawMessage, extra map[string]any) (string, []int32, error) {
	if in.m.EmbeddingOnly {
		return "", nil, embeddingOnlyError(in.id, "chat messages")
	}
	if in.m.Render == nil {
		return "", nil, badRequest("model", "model %s has no chat template; use /v1/completions", in.id)
	}
	msgs, err := normaliseMessages(messages, in.id)
	if err != nil {
		return "", nil, err
	}
	if t := bytes.TrimSpace(tools); len(t) > 0 && string(t) != "null" {
		var list []json.RawMessage
		if err := json.Unmarshal(t, &list); err != nil {
			return "", nil, badRequest("tools", "tools must be a list of tool objects")
		}
		if len(list) == 0 {
			tools = nil
		}
	} else {
		tools = nil
	}
	prompt, err := in.m.Render(renderInput{Messages: msgs, Tools: tools, AddGenerationPrompt: true, Extra: extra})
	if err != nil {
		return "", nil, badRequest("messages", "rendering the chat template: %v", err)
	}
	if err := in.checkPromptBytes("messages", len(prompt), false); err != nil {
		return "", nil, err
	}
	return prompt, in.m.Encode(prompt, in.addBOSFor(prompt), true), nil
}

// checkChatBytes refuses, before any decoding or rendering, messages and
// tools too large to fit the context.
func (in *instance) checkChatBytes(messages, tools json.RawMessage) error {
	return in.checkPromptBytes("messages", len(messages)+len(tools), true)
}

// addBOSFor reports whether encoding a rendered prompt should add BOS:
// not when the template already wrote it.
func (in *instance) addBOSFor(prompt string) bool {
	return in.m.BOSText == "" || !strings.HasPrefix(prompt, in.m.BOSText)
}

func (s *Server) handleChat(c echo.Context) error {
	var req chatRequest
	if err := decodeBody(c, &req); err != nil {
		return writeError(c, err)
	}
	in, err := s.instanceFor(req.Model)
	if err != nil {
		return writeError(c, err)
	}
	if in.m.EmbeddingOnly {
		return writeError(c, embeddingOnlyError(in.id, "chat completions"))
	}
	g, err := req.resolve(in.m)
	if err != nil {
		return writeError(c, err)
	}
	topN := 0
	if req.TopLogprobs != nil {
		if *req.TopLogprobs < 0 || *req.TopLogprobs > 20 {
			return writeError(c, badRequest("top_logprobs", "top_logprobs must be between 0 and 20, got %d", *req.TopLogprobs))
		}
		if req.Logprobs {
			topN = *req.TopLogprobs
		}
	}
	choice, err := req.checkOptions()
	if err != nil {
		return writeError(c, err)
	}
	toolDefs, err := parseTools(req.Tools)
	if err != nil {
		return writeError(c, err)
	}
	if (choice.mode == "required" || choice.mode == "function") && len(toolDefs) == 0 {
		return writeError(c, badRequest("tool_choice", "tool_choice %q needs tools", choice.mode))
	}
	if err := in.checkChatBytes(req.Messages, req.Tools); err != nil {
		return writeError(c, err)
	}
	// Admission before any work that grows with the request.
	arrived := time.Now()
	release, err := in.admit(c.Request().Context())
	if err != nil {
		return writeError(c, err)
	}
	defer release()

	toolsOn := len(toolDefs) > 0 && choice.mode != "none"
	tools := req.Tools
	if !toolsOn {
		tools = nil
	}
	kwargs := req.ChatTemplateKwargs
	if req.ReasoningEffort != "" {
		if _, set := kwargs["reasoning_effort"]; !set {
			kwargs = maps.Clone(kwargs)
			if kwargs == nil {
				kwargs = map[string]any{}
			}
			kwargs["reasoning_effort"] = req.ReasoningEffort
		}
	}
	prompt, ids, err := in.chatPrompt(req.Messages, tools, kwargs)
	if err != nil {
		return writeError(c, err)
	}
	if len(ids) >= in.nctx {
		return writeError(c, contextError(len(ids), in.nctx))
	}
	pcfg := in.tools
	pcfg.Tools = callFormat(pcfg.Tools, choice)
	if !toolsOn {
		pcfg.Tools, toolDefs = 0, nil
	}
	pcfg.StartInReasoning = pcfg.Reasoning && toolcall.OpenedThink(prompt)
	if toolsOn {
		pcfg.ParamTypes = toolcall.ToolParamTypes(req.Tools)
	}
	parser := toolcall.NewParser(pcfg)
	cons, err := buildConstraint(constraintInput{grammar: req.Grammar, responseFormat: req.ResponseFormat, jsonSchema: req.JSONSchema,
		tools: toolDefs, choice: choice, parallel: req.ParallelToolCalls == nil || *req.ParallelToolCalls,
		format: pcfg.Tools, mistralArgs: strings.Contains(in.m.Template, "[ARGS]"), think: thinkModeOf(pcfg, prompt)})
	if err != nil {
		return writeError(c, err)
	}

	gr := genRequest{Prompt: ids, MaxTokens: g.maxTokens, Params: g.params, Seed: g.seed, Stops: g.stops,
		Logprobs: req.Logprobs, TopLogprobs: topN, Arrived: arrived, IgnoreEOS: g.ignoreEOS, Constraint: cons}
	id, created := newID("chatcmpl-"), time.Now().Unix()
	if req.Stream {
		return s.streamChat(c, in, &req, gr, parser, id, created)
	}

	var lps []logprobEntry
	gr.Emit = func(ev tokenEvent) error {
		parser.Add(ev.Text)
		if req.Logprobs && ev.ID >= 0 {
			lps = append(lps, in.logprobOf(ev))
		}
		return nil
	}
	res, err := in.generate(c.Request().Context(), gr)
	if err != nil {
		return writeError(c, err)
	}
	parser.Finish()
	out := parser.Result()
	msg := &chatMessage{Role: "assistant", ReasoningContent: out.Reasoning}
	if out.Content != "" || len(out.Calls) == 0 {
		msg.Content = &out.Content
	}
	finish := res.Finish
	for _, tc := range out.Calls {
		msg.ToolCalls = append(msg.ToolCalls, toolCallOut{ID: tc.ID, Type: "function", Function: functionCall{Name: tc.Name, Arguments: tc.Arguments}})
	}
	if len(out.Calls) > 0 && finish == "stop" {
		finish = "tool_calls"
	}
	u, t := usageOf(res), res.timings()
	resp := chatResponse{ID: id, Object: "chat.completion", Created: created, Model: req.Model,
		Choices: []chatChoice{{Message: msg, FinishReason: &finish}}, Usage: &u, Timings: &t}
	if req.Logprobs {
		resp.Choices[0].Logprobs = &chatLogprobs{Content: lps}
	}
	return c.JSON(http.StatusOK, resp)
}

func (s *Server) streamChat(c echo.Context, in *instance, req *chatRequest, gr genRequest, parser *toolcall.Parser, id string, created int64) error {
	w := &sseWriter{c: c}
	gr.KeepAlive = w.keepAlive
	chunk := func(d *chatDelta, lp *chatLogprobs, finish *string) chatResponse {
		return chatResponse{ID: id, Object: "chat.completion.chunk", Created: created, Model: req.Model,
			Choices: []chatChoice{{Delta: d, Logprobs: lp, FinishReason: finish}}}
	}
	anyCalls := false
	deltaOf := func(ds []toolcall.Delta) *chatDelta {
		if len(ds) == 0 {
			return nil
		}
		var d chatDelta
		var content, reasoning strings.Builder
		for _, x := range ds {
			content.WriteString(x.Content)
			reasoning.WriteString(x.Reasoning)
			if cd := x.Call; cd != nil {
				anyCalls = true
				i := cd.Index
				tc := toolCallOut{Index: &i, Function: functionCall{Name: cd.Name, Arguments: cd.Arguments}}
				if cd.ID != "" {
					tc.ID, tc.Type = cd.ID, "function"
				}
				d.ToolCalls = append(d.ToolCalls, tc)
			}
		}
		if content.Len() > 0 {
			s := content.String()
			d.Content = &s
		}
		if reasoning.Len() > 0 {
			s := reasoning.String()
			d.ReasoningContent = &s
		}
		return &d
	}
	first := true
	emit := func(d *chatDelta, lp *chatLogprobs) error {
		if first {
			first = false
			empty := ""
			if err := w.send(chunk(&chatDelta{Role: "assistant", Content: &empty}, nil, nil)); err != nil {
				return err
			}
		}
		if d == nil && lp == nil {
			return nil
		}
		if d == nil {
			d = &chatDelta{}
		}
		return w.send(chunk(d, lp, nil))
	}
	gr.Emit = func(ev tokenEvent) error {
		d := deltaOf(parser.Add(ev.Text))
		var lp *chatLogprobs
		if req.Logprobs && ev.ID >= 0 {
			lp = &chatLogprobs{Content: []logprobEntry{in.logprobOf(ev)}}
		}
		return emit(d, lp)
	}
	ctx, cancel := context.WithCancel(c.Request().Context())
	defer cancel()
	res, err := in.generate(ctx, gr)
	if err != nil {
		if ctx.Err() != nil {
			return nil // the client went away
		}
		return w.fail(err)
	}
	if err := emit(deltaOf(parser.Finish()), nil); err != nil {
		return nil
	}
	finish := res.Finish
	if anyCalls && finish == "stop" {
		finish = "tool_calls"
	}
	last := chunk(&chatDelta{}, nil, &finish)
	t := res.timings()
	last.Timings = &t
	if err := w.send(last); err != nil {
		return nil
	}
	if req.StreamOptions != nil && req.StreamOptions.IncludeUsage {
		u := usageOf(res)
		if err := w.send(chatResponse{ID: id, Object: "chat.completion.chunk", Created: created, Model: req.Model,
			Choices: []chatChoice{}, Usage: &u, Timings: &t}); err != nil {
			return nil
		}
	}
	_ = w.done()
	return nil
}
