package translate

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// namespaceSep joins a Responses tool namespace and a tool name into one
// chat function name ("multi_agent_v1__spawn_agent"): chat tools have no
// namespaces, and this separator is valid in every function-name pattern.
const namespaceSep = "__"

type responsesRequest struct {
	Model              string            `json:"model"`
	Input              json.RawMessage   `json:"input"`
	Instructions       json.RawMessage   `json:"instructions"`
	Stream             bool              `json:"stream"`
	Tools              []json.RawMessage `json:"tools"`
	ToolChoice         json.RawMessage   `json:"tool_choice"`
	MaxOutputTokens    *int              `json:"max_output_tokens"`
	Temperature        *float64          `json:"temperature"`
	TopP               *float64          `json:"top_p"`
	TopK               *int              `json:"top_k"`
	ParallelToolCalls  *bool             `json:"parallel_tool_calls"`
	Reasoning          json.RawMessage   `json:"reasoning"`
	Text               json.RawMessage   `json:"text"`
	PreviousResponseID *string           `json:"previous_response_id"`
	Store              json.RawMessage   `json:"store"`
	Metadata           json.RawMessage   `json:"metadata"`
	User               string            `json:"user"`
	// include, prompt_cache_key, client_metadata, truncation, service_tier
	// and other fields are accepted and ignored.
}

// responsesItem is one input item; which fields are set depends on Type.
type responsesItem struct {
	Type      string          `json:"type"`
	Role      string          `json:"role"`
	Content   json.RawMessage `json:"content"`
	CallID    string          `json:"call_id"`
	Name      string          `json:"name"`
	Namespace string          `json:"namespace"`
	Arguments json.RawMessage `json:"arguments"` // a JSON string; an object is accepted
	Output    json.RawMessage `json:"output"`
	Summary   []responsesPart `json:"summary"`
	Input     string          `json:"input"` // custom_tool_call
}

type responsesPart struct {
	Type     string          `json:"type"`
	Text     string          `json:"text"`
	Refusal  string          `json:"refusal"`
	ImageURL json.RawMessage `json:"image_url"`
	FileID   string          `json:"file_id"`
	Detail   string          `json:"detail"`
}

type responsesTool struct {
	Type        string            `json:"type"`
	Name        string            `json:"name"`
	Description string            `json:"description"`
	Parameters  json.RawMessage   `json:"parameters"`
	Strict      *bool             `json:"strict"`
	Tools       []json.RawMessage `json:"tools"`  // type "namespace"
	Format      *customToolFormat `json:"format"` // type "custom"
}

type customToolFormat struct {
	Type       string `json:"type"`
	Syntax     string `json:"syntax"`
	Definition string `json:"definition"`
}

// customToolSchema is the parameters of the chat function standing for a
// custom (free-form input) tool: its one argument is the input text.
var customToolSchema = json.RawMessage(`{"type":"object","properties":{"input":{"type":"string","description":"The tool's raw input."}},"required":["input"]}`)

// customToolArgs wraps a custom tool call's input as function arguments.
func customToolArgs(input string) string {
	b, _ := marshal(struct {
		Input string `json:"input"`
	}{input}) // a string always encodes
	return string(b)
}

// customToolInput unwraps the input of a custom tool call from function
// arguments; arguments of another shape are passed on as they are.
func customToolInput(args string) string {
	var v struct {
		Input *string `json:"input"`
	}
	if json.Unmarshal([]byte(args), &v) == nil && v.Input != nil {
		return *v.Input
	}
	return args
}

// ResponsesToChat translates an OpenAI Responses API request into a chat
// completions request. Responses are not stored, so previous_response_id is
// refused with a 400 *Error; clients send the whole conversation instead.
func ResponsesToChat(body []byte) (chat []byte, info RequestInfo, err error) {
	var req responsesRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, RequestInfo{}, bodyError(err)
	}
	if req.PreviousResponseID != nil && *req.PreviousResponseID != "" {
		return nil, RequestInfo{}, badRequest("previous_response_id",
			"responses are not stored; send the whole conversation in input")
	}
	if req.Model == "" {
		return nil, RequestInfo{}, badRequest("model", "field required")
	}
	if err := checkSampling(sampling{maxName: "max_output_tokens", max: req.MaxOutputTokens, temperature: req.Temperature, maxTemperature: 2, topP: req.TopP, topK: req.TopK}); err != nil {
		return nil, RequestInfo{}, err
	}
	cr := chatRequest{
		Model:             req.Model,
		Stream:            req.Stream,
		MaxTokens:         req.MaxOutputTokens,
		Temperature:       req.Temperature,
		TopP:              req.TopP,
		TopK:              req.TopK,
		ParallelToolCalls: req.ParallelToolCalls,
		User:              req.User,
	}
	if req.Stream {
		cr.StreamOptions = &streamOptions{IncludeUsage: true}
	}
	if cr.MaxTokens != nil && *cr.MaxTokens == 0 {
		cr.MaxTokens = nil
	}
	var reasoning struct {
		Effort string `json:"effort"`
	}
	if json.Unmarshal(req.Reasoning, &reasoning) == nil {
		cr.ReasoningEffort = reasoning.Effort
		var enabled *bool
		if reasoning.Effort == "none" {
			enabled = new(false)
		}
		cr.setReasoning(enabled, templateEffort(reasoning.Effort))
	}
	rf, err := responsesTextFormat(req.Text)
	if err != nil {
		return nil, RequestInfo{}, err
	}
	cr.ResponseFormat = rf

	systems, err := responsesInstructions(req.Instructions)
	if err != nil {
		return nil, RequestInfo{}, err
	}
	msgs, more, err := responsesInput(req.Input)
	if err != nil {
		return nil, RequestInfo{}, err
	}
	systems = append(systems, more...)
	if len(systems) > 0 {
		msgs = append([]chatMessage{{Role: "system", Content: strings.Join(systems, "\n\n")}}, msgs...)
	}
	if msgs == nil {
		msgs = []chatMessage{}
	}
	cr.Messages = msgs

	for i, raw := range req.Tools {
		tools, err := responsesTools(raw, fmt.Sprintf("tools[%d]", i), "")
		if err != nil {
			return nil, RequestInfo{}, err
		}
		cr.Tools = append(cr.Tools, tools...)
	}
	tc, allowed, err := responsesToolChoice(req.ToolChoice)
	if err != nil {
		return nil, RequestInfo{}, err
	}
	if allowed != nil {
		// allowed_tools: the model may call only these; the others
		// are left out of the request.
		kept := cr.Tools[:0]
		for _, t := range cr.Tools {
			if allowed[t.Function.Name] {
				kept = append(kept, t)
			}
		}
		cr.Tools = kept
		if len(cr.Tools) == 0 && tc == "required" {
			return nil, RequestInfo{}, badRequest("tool_choice.tools", "none of the allowed tools is declared in tools")
		}
	}
	if tc != nil && (len(cr.Tools) > 0 || tc == "none") {
		cr.ToolChoice = tc
	}
	if len(cr.Tools) == 0 {
		cr.ParallelToolCalls = nil
	}

	info = RequestInfo{Model: req.Model, Stream: req.Stream, WantsUsage: true, HasTools: len(cr.Tools) > 0}
	if req.MaxOutputTokens != nil {
		info.MaxTokens = *req.MaxOutputTokens
	}
	out, err := marshal(cr)
	if err != nil {
		return nil, RequestInfo{}, fmt.Errorf("encoding chat request: %w", err)
	}
	return out, info, nil
}

// responsesTools maps one tool declaration. Function tools map one to one;
// a custom (free-form) tool becomes a function taking its input as one
// string argument; a namespace contributes its tools under prefixed names;
// tool types a local model cannot run (web_search, file_search, …) are
// dropped.
func responsesTools(raw json.RawMessage, param, namespace string) ([]chatTool, error) {
	var t responsesTool
	if err := json.Unmarshal(raw, &t); err != nil {
		return nil, badRequest(param, "%s", jsonErrText(err))
	}
	switch t.Type {
	case "function":
		if t.Name == "" {
			return nil, badRequest(param+".name", "field required")
		}
		params := t.Parameters
		if isJSONNull(params) {
			params = emptySchema
		}
		name := t.Name
		if namespace != "" {
			name = namespace + namespaceSep + name
		}
		return []chatTool{{Type: "function", Function: chatFunction{
			Name: name, Description: t.Description, Parameters: params, Strict: t.Strict,
		}}}, nil
	case "custom":
		if t.Name == "" {
			return nil, badRequest(param+".name", "field required")
		}
		desc := t.Description
		if f := t.Format; f != nil && f.Type == "grammar" && f.Definition != "" {
			desc += "\n\nThe input must follow this " + f.Syntax + " grammar:\n" + f.Definition
		}
		desc = strings.TrimSpace(desc + "\n\nPass the whole input as the string argument \"input\".")
		name := t.Name
		if namespace != "" {
			name = namespace + namespaceSep + name
		}
		return []chatTool{{Type: "function", Function: chatFunction{
			Name: name, Description: desc, Parameters: customToolSchema,
		}}}, nil
	case "namespace":
		if namespace != "" || t.Name == "" {
			return nil, nil
		}
		var out []chatTool
		for j, inner := range t.Tools {
			tools, err := responsesTools(inner, fmt.Sprintf("%s.tools[%d]", param, j), t.Name)
			if err != nil {
				return nil, err
			}
			out = append(out, tools...)
		}
		return out, nil
	}
	return nil, nil
}

// responsesToolChoice maps tool_choice; for allowed_tools it also returns
// the names of the tools the model may call. Forcing a hosted tool (which
// a neuron cannot run) is a 400, never an unconstrained answer.
func responsesToolChoice(raw json.RawMessage) (any, map[string]bool, error) {
	if isJSONNull(raw) {
		return nil, nil, nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		switch s {
		case "auto", "none", "required":
			return s, nil, nil
		}
		return nil, nil, badRequest("tool_choice", "unexpected value %q", s)
	}
	var obj struct {
		Type  string `json:"type"`
		Name  string `json:"name"`
		Mode  string `json:"mode"`
		Tools []struct {
			Type string `json:"type"`
			Name string `json:"name"`
		} `json:"tools"`
	}
	if err := json.Unmarshal(raw, &obj); err != nil {
		return nil, nil, badRequest("tool_choice", "want a string or an object")
	}
	switch obj.Type {
	case "function", "custom":
		if obj.Name == "" {
			return nil, nil, badRequest("tool_choice.name", "field required")
		}
		return toolChoiceFunction(obj.Name), nil, nil
	case "allowed_tools":
		allowed := map[string]bool{}
		for _, t := range obj.Tools {
			if t.Name != "" {
				allowed[t.Name] = true
			}
		}
		switch obj.Mode {
		case "required":
			return "required", allowed, nil
		case "auto", "":
			return "auto", allowed, nil
		}
		return nil, nil, badRequest("tool_choice.mode", "unexpected value %q", obj.Mode)
	}
	return nil, nil, badRequest("tool_choice.type", "tool choice %q forces a hosted tool, which is not available here", obj.Type)
}

// responsesTextFormat maps text.format to a chat response_format.
func responsesTextFormat(raw json.RawMessage) (json.RawMessage, error) {
	if isJSONNull(raw) {
		return nil, nil
	}
	var text struct {
		Format *struct {
			Type        string          `json:"type"`
			Name        string          `json:"name"`
			Description string          `json:"description,omitempty"`
			Schema      json.RawMessage `json:"schema"`
			Strict      *bool           `json:"strict"`
		} `json:"format"`
	}
	if err := json.Unmarshal(raw, &text); err != nil {
		return nil, badRequest("text", "%s", jsonErrText(err))
	}
	f := text.Format
	if f == nil {
		return nil, nil
	}
	switch f.Type {
	case "json_schema":
		if isJSONNull(f.Schema) {
			return nil, badRequest("text.format.schema", "field required for type json_schema")
		}
		name := f.Name
		if name == "" {
			name = "response"
		}
		type jsonSchema struct {
			Name        string          `json:"name"`
			Description string          `json:"description,omitempty"`
			Schema      json.RawMessage `json:"schema"`
			Strict      *bool           `json:"strict,omitempty"`
		}
		return marshal(struct {
			Type       string     `json:"type"`
			JSONSchema jsonSchema `json:"json_schema"`
		}{"json_schema", jsonSchema{name, f.Description, f.Schema, f.Strict}})
	case "json_object":
		return json.RawMessage(`{"type":"json_object"}`), nil
	case "text", "":
		return nil, nil
	}
	return nil, badRequest("text.format.type", "unexpected value %q", f.Type)
}

// responsesInput maps input (a string or a list of items) to chat messages.
// System and developer messages are returned apart, to join the system
// prompt: chat templates commonly refuse a system message that is not first.
func responsesInput(raw json.RawMessage) (msgs []chatMessage, systems []string, err error) {
	if isJSONNull(raw) {
		return nil, nil, badRequest("input", "field required")
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return []chatMessage{{Role: "user", Content: s}}, nil, nil
	}
	var items []responsesItem
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, nil, badRequest("input", "want a string or an array of items: %s", jsonErrText(err))
	}
	var reasoning []string // reasoning items waiting for their assistant turn
	// assistant returns the assistant message that output items of the
	// current turn join, starting one when the last message is not one.
	assistant := func() *chatMessage {
		if n := len(msgs); n == 0 || msgs[n-1].Role != "assistant" {
			msgs = append(msgs, chatMessage{Role: "assistant"})
		}
		m := &msgs[len(msgs)-1]
		if len(reasoning) > 0 {
			if m.ReasoningContent != "" {
				reasoning = append([]string{m.ReasoningContent}, reasoning...)
			}
			m.ReasoningContent = strings.Join(reasoning, "\n\n")
			reasoning = nil
		}
		return m
	}
	for i, it := range items {
		param := fmt.Sprintf("input[%d]", i)
		typ := it.Type
		if typ == "" && it.Role != "" {
			typ = "message"
		}
		switch typ {
		case "message":
			switch it.Role {
			case "system", "developer":
				t, err := responsesContent(it.Content, param+".content")
				if err != nil {
					return nil, nil, err
				}
				if c, ok := t.(string); ok && c != "" {
					systems = append(systems, c)
				}
			case "user":
				c, err := responsesContent(it.Content, param+".content")
				if err != nil {
					return nil, nil, err
				}
				msgs = append(msgs, chatMessage{Role: "user", Content: c})
				reasoning = nil // reasoning belongs to the turn it preceded
			case "assistant":
				c, err := responsesContent(it.Content, param+".content")
				if err != nil {
					return nil, nil, err
				}
				text, _ := c.(string)
				m := assistant()
				if len(m.ToolCalls) > 0 {
					// Text after calls in one turn: a new assistant message.
					msgs = append(msgs, chatMessage{Role: "assistant"})
					m = &msgs[len(msgs)-1]
				}
				if prev, _ := m.Content.(string); prev != "" {
					text = prev + "\n\n" + text
				}
				m.Content = text
			default:
				return nil, nil, badRequest(param+".role", "unexpected role %q", it.Role)
			}
		case "function_call":
			if it.Name == "" {
				return nil, nil, badRequest(param+".name", "field required")
			}
			name := it.Name
			if it.Namespace != "" {
				name = it.Namespace + namespaceSep + name
			}
			id := it.CallID
			if id == "" {
				id = randomID("call_")
			}
			args := itemArguments(it.Arguments)
			m := assistant()
			m.ToolCalls = append(m.ToolCalls, chatToolCall{ID: id, Type: "function",
				Function: chatFunctionCall{Name: name, Arguments: args}})
		case "custom_tool_call":
			if it.Name == "" {
				return nil, nil, badRequest(param+".name", "field required")
			}
			id := it.CallID
			if id == "" {
				id = randomID("call_")
			}
			m := assistant()
			m.ToolCalls = append(m.ToolCalls, chatToolCall{ID: id, Type: "function",
				Function: chatFunctionCall{Name: it.Name, Arguments: customToolArgs(it.Input)}})
		case "function_call_output", "custom_tool_call_output":
			if it.CallID == "" {
				return nil, nil, badRequest(param+".call_id", "field required")
			}
			out, err := toolOutputText(it.Output, param+".output")
			if err != nil {
				return nil, nil, err
			}
			msgs = append(msgs, chatMessage{Role: "tool", ToolCallID: it.CallID, Content: out})
		case "reasoning":
			var texts []string
			for _, p := range it.Summary {
				if p.Text != "" {
					texts = append(texts, p.Text)
				}
			}
			var content []responsesPart
			if json.Unmarshal(it.Content, &content) == nil {
				for _, p := range content {
					if p.Text != "" {
						texts = append(texts, p.Text)
					}
				}
			}
			if len(texts) > 0 {
				reasoning = append(reasoning, strings.Join(texts, "\n\n"))
			}
		}
		// item_reference, web_search_call, and other item types carry nothing
		// a chat model can use; they are skipped.
	}
	for i := range msgs {
		if msgs[i].Role == "assistant" && msgs[i].Content == nil && len(msgs[i].ToolCalls) == 0 {
			msgs[i].Content = ""
		}
	}
	return msgs, systems, nil
}

// responsesContent maps message content: a string, or parts (input_text,
// output_text, input_image, refusal). Text-only content becomes one string.
func responsesContent(raw json.RawMessage, param string) (any, error) {
	if isJSONNull(raw) {
		return "", nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s, nil
	}
	var parts []responsesPart
	if err := json.Unmarshal(raw, &parts); err != nil {
		return nil, badRequest(param, "want a string or an array of content parts: %s", jsonErrText(err))
	}
	var pb partsBuilder
	for j, p := range parts {
		switch p.Type {
		case "input_text", "output_text", "text", "summary_text", "reasoning_text":
			pb.text(p.Text)
		case "refusal":
			pb.text(p.Refusal)
		case "input_image":
			var url string
			if json.Unmarshal(p.ImageURL, &url) != nil || url == "" {
				// Some clients send {"url": …}.
				var obj struct {
					URL string `json:"url"`
				}
				if json.Unmarshal(p.ImageURL, &obj) != nil || obj.URL == "" {
					pp := fmt.Sprintf("%s[%d]", param, j)
					if p.FileID != "" {
						return nil, badRequest(pp, "images by file_id are not supported; send image_url")
					}
					return nil, badRequest(pp+".image_url", "field required")
				}
				url = obj.URL
			}
			pb.image(url)
		}
	}
	return pb.content("\n\n"), nil
}

// toolOutputText flattens a function_call_output's output: a string or
// content parts. Images in tool output are not representable in a tool
// message and are noted in the text.
func toolOutputText(raw json.RawMessage, param string) (string, error) {
	if isJSONNull(raw) {
		return "", nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s, nil
	}
	var parts []responsesPart
	if err := json.Unmarshal(raw, &parts); err != nil {
		return "", badRequest(param, "want a string or an array of content parts")
	}
	var texts []string
	for _, p := range parts {
		switch p.Type {
		case "input_image":
			texts = append(texts, "[image]")
		default:
			if p.Text != "" {
				texts = append(texts, p.Text)
			}
		}
	}
	return strings.Join(texts, "\n"), nil
}

// responsesInstructions reads instructions: a string, or (as prompt
// templates send them) a list of input items whose text all counts as
// system text.
func responsesInstructions(raw json.RawMessage) ([]string, error) {
	if isJSONNull(raw) {
		return nil, nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		if s == "" {
			return nil, nil
		}
		return []string{s}, nil
	}
	if len(raw) == 0 || raw[0] != '[' {
		return nil, badRequest("instructions", "want a string or an array of input items")
	}
	msgs, systems, err := responsesInput(raw)
	if err != nil {
		var e *Error
		if errors.As(err, &e) {
			e.Param = "instructions" + strings.TrimPrefix(e.Param, "input")
		}
		return nil, err
	}
	for _, m := range msgs {
		if t, ok := m.Content.(string); ok && t != "" {
			systems = append(systems, t)
		}
	}
	return systems, nil
}

// itemArguments reads a function_call item's arguments: a JSON string as
// the API defines it, or an object some clients send; empty means "{}".
func itemArguments(raw json.RawMessage) string {
	if isJSONNull(raw) {
		return "{}"
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		if strings.TrimSpace(s) == "" {
			return "{}"
		}
		return s
	}
	return argsString(raw)
}
