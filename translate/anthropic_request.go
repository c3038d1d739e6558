package translate

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
)

// RequestInfo is what the gateway needs to know about a translated request.
type RequestInfo struct {
	Model      string // model the client asked for
	Stream     bool   // the client wants a stream
	MaxTokens  int    // requested output budget; 0 when not given
	WantsUsage bool   // the client's dialect reports usage (always true for Anthropic and Responses)
	HasTools   bool   // the request declares tools
}

type anthropicRequest struct {
	Model         string               `json:"model"`
	Messages      []anthropicMessage   `json:"messages"`
	System        json.RawMessage      `json:"system"`
	MaxTokens     *int                 `json:"max_tokens"`
	StopSequences []string             `json:"stop_sequences"`
	Stream        bool                 `json:"stream"`
	Temperature   *float64             `json:"temperature"`
	TopP          *float64             `json:"top_p"`
	TopK          *int                 `json:"top_k"`
	Tools         []anthropicTool      `json:"tools"`
	ToolChoice    *anthropicToolChoice `json:"tool_choice"`
	Metadata      json.RawMessage      `json:"metadata"`
	Thinking      json.RawMessage      `json:"thinking"`
	OutputConfig  json.RawMessage      `json:"output_config"`
	// OutputFormat is structured outputs' first spelling (now
	// output_config.format).
	OutputFormat json.RawMessage `json:"output_format"`
	// cache_control, context_management, service_tier and other fields are
	// accepted and ignored.
}

type anthropicMessage struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
}

type anthropicBlock struct {
	Type      string           `json:"type"`
	Text      string           `json:"text"`
	Source    *anthropicSource `json:"source"`
	ID        string           `json:"id"`
	Name      string           `json:"name"`
	Input     json.RawMessage  `json:"input"`
	ToolUseID string           `json:"tool_use_id"`
	Content   json.RawMessage  `json:"content"`
	IsError   bool             `json:"is_error"`
	Thinking  string           `json:"thinking"`
}

type anthropicSource struct {
	Type      string `json:"type"`
	MediaType string `json:"media_type"`
	Data      string `json:"data"`
	URL       string `json:"url"`
}

type anthropicTool struct {
	Type        string          `json:"type"`
	Name        string          `json:"name"`
	Description string          `json:"description"`
	InputSchema json.RawMessage `json:"input_schema"`
}

type anthropicToolChoice struct {
	Type                   string `json:"type"`
	Name                   string `json:"name"`
	DisableParallelToolUse bool   `json:"disable_parallel_tool_use"`
}

// emptySchema is the parameters of a tool declared without a schema.
var emptySchema = json.RawMessage(`{"type":"object","properties":{}}`)

// AnthropicToChat translates an Anthropic Messages request into an OpenAI
// chat completions request. Streaming requests always ask the upstream for
// usage. Errors are *Error with Status 400.
func AnthropicToChat(body []byte) (chat []byte, info RequestInfo, err error) {
	req, cr, err := anthropicToChatRequest(body)
	if err != nil {
		return nil, RequestInfo{}, err
	}
	info = RequestInfo{Model: req.Model, Stream: req.Stream, WantsUsage: true, HasTools: len(cr.Tools) > 0}
	if req.MaxTokens != nil {
		info.MaxTokens = *req.MaxTokens
	}
	out, err := marshal(cr)
	if err != nil {
		return nil, RequestInfo{}, fmt.Errorf("encoding chat request: %w", err)
	}
	return out, info, nil
}

// AnthropicCountToTokenize translates an Anthropic count_tokens request into
// the neuron's /tokenize body {"model","messages","tools"}, with messages and
// tools in OpenAI form.
func AnthropicCountToTokenize(body []byte) (tokenize []byte, model string, err error) {
	req, cr, err := anthropicToChatRequest(body)
	if err != nil {
		return nil, "", err
	}
	out, err := marshal(struct {
		Model    string        `json:"model"`
		Messages []chatMessage `json:"messages"`
		Tools    []chatTool    `json:"tools,omitempty"`
	}{cr.Model, cr.Messages, cr.Tools})
	if err != nil {
		return nil, "", fmt.Errorf("encoding tokenize request: %w", err)
	}
	return out, req.Model, nil
}

func anthropicToChatRequest(body []byte) (*anthropicRequest, *chatRequest, error) {
	var req anthropicRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, nil, bodyError(err)
	}
	if req.Model == "" {
		return nil, nil, badRequest("model", "field required")
	}
	if req.Messages == nil {
		return nil, nil, badRequest("messages", "field required")
	}
	if err := checkSampling(sampling{maxName: "max_tokens", max: req.MaxTokens, temperature: req.Temperature, maxTemperature: 1, topP: req.TopP, topK: req.TopK}); err != nil {
		return nil, nil, err
	}
	cr := &chatRequest{
		Model:       req.Model,
		Stream:      req.Stream,
		MaxTokens:   req.MaxTokens,
		Temperature: req.Temperature,
		TopP:        req.TopP,
		TopK:        req.TopK,
		Stop:        req.StopSequences,
	}
	if req.Stream {
		cr.StreamOptions = &streamOptions{IncludeUsage: true}
	}
	if req.MaxTokens != nil && *req.MaxTokens == 0 {
		cr.MaxTokens = nil
	}
	var meta struct {
		UserID string `json:"user_id"`
	}
	if json.Unmarshal(req.Metadata, &meta) == nil {
		cr.User = meta.UserID
	}
	var thinking struct {
		Type string `json:"type"`
	}
	var enabled *bool
	if json.Unmarshal(req.Thinking, &thinking) == nil {
		switch thinking.Type {
		case "enabled", "adaptive":
			enabled = new(true)
		case "disabled":
			enabled = new(false)
		}
	}
	var output struct {
		Effort string          `json:"effort"`
		Format json.RawMessage `json:"format"`
	}
	_ = json.Unmarshal(req.OutputConfig, &output) // lenient: a malformed hint is ignored
	cr.setReasoning(enabled, templateEffort(output.Effort))
	param := "output_config.format"
	if isJSONNull(output.Format) {
		output.Format, param = req.OutputFormat, "output_format"
	}
	rf, err := anthropicOutputFormat(output.Format, param)
	if err != nil {
		return nil, nil, err
	}
	cr.ResponseFormat = rf

	system, err := anthropicSystemText(req.System, "system")
	if err != nil {
		return nil, nil, err
	}
	var systems []string
	if system != "" {
		systems = append(systems, system)
	}
	var msgs []chatMessage
	for i, m := range req.Messages {
		param := fmt.Sprintf("messages[%d]", i)
		switch m.Role {
		case "system", "developer":
			// Some clients (Claude Code) put system text between turns; chat
			// templates commonly refuse a system message that is not first,
			// so it joins the leading system prompt.
			t, err := anthropicSystemText(m.Content, param+".content")
			if err != nil {
				return nil, nil, err
			}
			if t != "" {
				systems = append(systems, t)
			}
		case "user":
			out, err := anthropicUserMessage(m.Content, param)
			if err != nil {
				return nil, nil, err
			}
			msgs = append(msgs, out...)
		case "assistant":
			out, err := anthropicAssistantMessage(m.Content, param)
			if err != nil {
				return nil, nil, err
			}
			msgs = append(msgs, out)
		default:
			return nil, nil, badRequest(param+".role", "unexpected role %q, want \"user\" or \"assistant\"", m.Role)
		}
	}
	if len(systems) > 0 {
		msgs = append([]chatMessage{{Role: "system", Content: strings.Join(systems, "\n\n")}}, msgs...)
	}
	if msgs == nil {
		msgs = []chatMessage{}
	}
	cr.Messages = msgs

	for i, t := range req.Tools {
		if t.Type != "" && t.Type != "custom" {
			continue // a server tool (web_search_…, bash_…): nothing a local model runs
		}
		if t.Name == "" {
			return nil, nil, badRequest(fmt.Sprintf("tools[%d].name", i), "field required")
		}
		params := t.InputSchema
		if isJSONNull(params) {
			params = emptySchema
		}
		cr.Tools = append(cr.Tools, chatTool{Type: "function", Function: chatFunction{
			Name: t.Name, Description: t.Description, Parameters: params,
		}})
	}
	if tc := req.ToolChoice; tc != nil {
		switch tc.Type {
		case "auto", "":
			if len(cr.Tools) > 0 {
				cr.ToolChoice = "auto"
			}
		case "any":
			cr.ToolChoice = "required"
		case "none":
			cr.ToolChoice = "none"
		case "tool":
			if tc.Name == "" {
				return nil, nil, badRequest("tool_choice.name", "field required for type \"tool\"")
			}
			cr.ToolChoice = toolChoiceFunction(tc.Name)
		default:
			return nil, nil, badRequest("tool_choice.type", "unexpected value %q", tc.Type)
		}
		if tc.DisableParallelToolUse {
			f := false
			cr.ParallelToolCalls = &f
		}
	}
	return &req, cr, nil
}

// anthropicOutputFormat maps structured outputs ({"type": "json_schema",
// "schema": …}) to a chat response_format. A constraint is never
// dropped: a format of another type is a 400.
func anthropicOutputFormat(raw json.RawMessage, param string) (json.RawMessage, error) {
	if isJSONNull(raw) {
		return nil, nil
	}
	var f struct {
		Type   string          `json:"type"`
		Schema json.RawMessage `json:"schema"`
	}
	if err := json.Unmarshal(raw, &f); err != nil {
		return nil, badRequest(param, "%s", jsonErrText(err))
	}
	if f.Type != "json_schema" {
		return nil, badRequest(param+".type", "unexpected value %q", f.Type)
	}
	if isJSONNull(f.Schema) {
		return nil, badRequest(param+".schema", "field required for type json_schema")
	}
	return marshal(struct {
		Type       string `json:"type"`
		JSONSchema struct {
			Name   string          `json:"name"`
			Schema json.RawMessage `json:"schema"`
			Strict bool            `json:"strict"`
		} `json:"json_schema"`
	}{Type: "json_schema", JSONSchema: struct {
		Name   string          `json:"name"`
		Schema json.RawMessage `json:"schema"`
		Strict bool            `json:"strict"`
	}{"output", f.Schema, true}})
}

// anthropicSystemText flattens a system prompt: a string or text blocks,
// joined with blank lines.
func anthropicSystemText(raw json.RawMessage, param string) (string, error) {
	if isJSONNull(raw) {
		return "", nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s, nil
	}
	var blocks []anthropicBlock
	if err := json.Unmarshal(raw, &blocks); err != nil {
		return "", badRequest(param, "want a string or an array of text blocks: %s", jsonErrText(err))
	}
	var texts []string
	for _, b := range blocks {
		if (b.Type == "text" || b.Type == "") && b.Text != "" && !strings.HasPrefix(b.Text, billingHeader) {
			texts = append(texts, b.Text)
		}
	}
	return strings.Join(texts, "\n\n"), nil
}

// billingHeader starts a system block Claude Code sends for Anthropic's
// accounting, not for the model; it is left out of the prompt.
const billingHeader = "x-anthropic-billing-header:"

// anthropicContent decodes a message's content: a string is one text block.
func anthropicContent(raw json.RawMessage, param string) ([]anthropicBlock, error) {
	if isJSONNull(raw) {
		return nil, nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return []anthropicBlock{{Type: "text", Text: s}}, nil
	}
	var blocks []anthropicBlock
	if err := json.Unmarshal(raw, &blocks); err != nil {
		return nil, badRequest(param, "want a string or an array of content blocks: %s", jsonErrText(err))
	}
	return blocks, nil
}

// anthropicImageURL returns the image_url for an image block's source.
func anthropicImageURL(src *anthropicSource, param string) (string, error) {
	if src == nil {
		return "", badRequest(param, "image block without a source")
	}
	switch src.Type {
	case "base64":
		if src.Data == "" {
			return "", badRequest(param, "image source has no data")
		}
		mt := src.MediaType
		if mt == "" {
			mt = "image/png"
		}
		return "data:" + mt + ";base64," + src.Data, nil
	case "url":
		if src.URL == "" {
			return "", badRequest(param, "image source has no url")
		}
		return src.URL, nil
	}
	return "", badRequest(param, "image source type %q is not supported (use base64 or url)", src.Type)
}

// partsBuilder collects the text and image parts of one OpenAI message.
type partsBuilder struct {
	parts    []chatPart
	hasImage bool
}

func (p *partsBuilder) text(t string) {
	p.parts = append(p.parts, chatPart{Type: "text", Text: &t})
}

func (p *partsBuilder) image(url string) {
	p.hasImage = true
	p.parts = append(p.parts, chatPart{Type: "image_url", ImageURL: &chatImageURL{URL: url}})
}

func (p *partsBuilder) empty() bool { return len(p.parts) == 0 }

// content is a plain string when there are only text parts (what every chat
// template understands), otherwise the parts.
func (p *partsBuilder) content(sep string) any {
	if p.hasImage {
		return p.parts
	}
	texts := make([]string, len(p.parts))
	for i, part := range p.parts {
		texts[i] = *part.Text
	}
	return strings.Join(texts, sep)
}

// anthropicUserMessage maps one user turn. tool_result blocks become "tool"
// messages, placed first as OpenAI requires them right after the assistant
// turn that called; the rest becomes one user message.
func anthropicUserMessage(raw json.RawMessage, param string) ([]chatMessage, error) {
	blocks, err := anthropicContent(raw, param+".content")
	if err != nil {
		return nil, err
	}
	var out []chatMessage
	var user partsBuilder
	for j, b := range blocks {
		bp := fmt.Sprintf("%s.content[%d]", param, j)
		switch b.Type {
		case "text":
			user.text(b.Text)
		case "image":
			url, err := anthropicImageURL(b.Source, bp+".source")
			if err != nil {
				return nil, err
			}
			user.image(url)
		case "document":
			if b.Source != nil && b.Source.Type == "text" {
				user.text(b.Source.Data)
				continue
			}
			return nil, badRequest(bp, "only plain-text documents are supported")
		case "tool_result":
			msg, images, err := anthropicToolResult(b, bp)
			if err != nil {
				return nil, err
			}
			out = append(out, msg)
			for _, url := range images {
				user.image(url)
			}
		}
		// thinking, tool_use and unknown blocks in a user turn are ignored.
	}
	if !user.empty() {
		out = append(out, chatMessage{Role: "user", Content: user.content("\n\n")})
	}
	if len(out) == 0 {
		out = append(out, chatMessage{Role: "user", Content: ""})
	}
	return out, nil
}

// anthropicToolResult maps a tool_result block to a tool message. Images in
// the result cannot ride in a tool message; they are returned to be shown to
// the model in the user message that follows.
func anthropicToolResult(b anthropicBlock, param string) (chatMessage, []string, error) {
	if b.ToolUseID == "" {
		return chatMessage{}, nil, badRequest(param+".tool_use_id", "field required")
	}
	inner, err := anthropicContent(b.Content, param+".content")
	if err != nil {
		return chatMessage{}, nil, err
	}
	var texts, images []string
	for k, ib := range inner {
		switch ib.Type {
		case "text":
			texts = append(texts, ib.Text)
		case "image":
			url, err := anthropicImageURL(ib.Source, fmt.Sprintf("%s.content[%d].source", param, k))
			if err != nil {
				return chatMessage{}, nil, err
			}
			images = append(images, url)
		}
	}
	text := strings.Join(texts, "\n")
	if b.IsError {
		text = "Error: " + text
	}
	return chatMessage{Role: "tool", ToolCallID: b.ToolUseID, Content: text}, images, nil
}

// anthropicAssistantMessage maps one assistant turn: text blocks to content,
// thinking blocks to reasoning_content, tool_use blocks to tool_calls.
func anthropicAssistantMessage(raw json.RawMessage, param string) (chatMessage, error) {
	blocks, err := anthropicContent(raw, param+".content")
	if err != nil {
		return chatMessage{}, err
	}
	msg := chatMessage{Role: "assistant"}
	var texts, thinking []string
	for j, b := range blocks {
		switch b.Type {
		case "text":
			texts = append(texts, b.Text)
		case "thinking":
			thinking = append(thinking, b.Thinking)
		case "tool_use":
			if b.Name == "" {
				bp := fmt.Sprintf("%s.content[%d]", param, j)
				return chatMessage{}, badRequest(bp+".name", "field required")
			}
			id := b.ID
			if id == "" {
				id = randomID("toolu_")
			}
			msg.ToolCalls = append(msg.ToolCalls, chatToolCall{
				ID: id, Type: "function",
				Function: chatFunctionCall{Name: b.Name, Arguments: argsString(b.Input)},
			})
		}
	}
	msg.ReasoningContent = strings.Join(thinking, "\n\n")
	if len(texts) > 0 || len(msg.ToolCalls) == 0 {
		msg.Content = strings.Join(texts, "\n\n")
	}
	return msg, nil
}

// bodyError is the 400 for a body that does not decode; a field of the
// wrong type is named as the param.
func bodyError(err error) *Error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		return badRequest(te.Field, "wrong type (got %s, want %s)", te.Value, jsonTypeName(derefKind(te.Type)))
	}
	return badRequest("", "invalid request body: %s", jsonErrText(err))
}

func derefKind(t reflect.Type) reflect.Kind {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t.Kind()
}

// jsonErrText makes encoding/json's messages about Go types readable for API
// clients.
func jsonErrText(err error) string {
	if te, ok := err.(*json.UnmarshalTypeError); ok {
		if te.Field != "" {
			return fmt.Sprintf("%s: wrong type (got %s, want %s)", te.Field, te.Value, jsonTypeName(derefKind(te.Type)))
		}
		return fmt.Sprintf("wrong type (got %s)", te.Value)
	}
	return err.Error()
}

func jsonTypeName(k reflect.Kind) string {
	switch k {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Slice, reflect.Array:
		return "array"
	case reflect.Struct, reflect.Map:
		return "object"
	case reflect.Interface:
		return "value"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "integer"
	}
	return "number"
}
