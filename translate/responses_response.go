package translate

import (
	"encoding/json"
	"fmt"
	"strings"
)

// responsesObject is the Responses API response object.
type responsesObject struct {
	ID                 string            `json:"id"`
	Object             string            `json:"object"`
	CreatedAt          int64             `json:"created_at"`
	Status             string            `json:"status"`
	Error              *responsesError   `json:"error"`
	IncompleteDetails  *incompleteDetail `json:"incomplete_details"`
	Instructions       json.RawMessage   `json:"instructions"`
	MaxOutputTokens    *int              `json:"max_output_tokens"`
	Model              string            `json:"model"`
	Output             []any             `json:"output"`
	ParallelToolCalls  bool              `json:"parallel_tool_calls"`
	PreviousResponseID *string           `json:"previous_response_id"`
	Reasoning          json.RawMessage   `json:"reasoning"`
	Store              bool              `json:"store"`
	Temperature        *float64          `json:"temperature"`
	Text               json.RawMessage   `json:"text"`
	ToolChoice         json.RawMessage   `json:"tool_choice"`
	Tools              json.RawMessage   `json:"tools"`
	TopP               *float64          `json:"top_p"`
	Truncation         string            `json:"truncation"`
	Usage              *responsesUsage   `json:"usage"`
	Metadata           json.RawMessage   `json:"metadata"`
}

type responsesError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

type incompleteDetail struct {
	Reason string `json:"reason"`
}

type responsesUsage struct {
	InputTokens        int `json:"input_tokens"`
	InputTokensDetails struct {
		CachedTokens int `json:"cached_tokens"`
	} `json:"input_tokens_details"`
	OutputTokens        int `json:"output_tokens"`
	OutputTokensDetails struct {
		ReasoningTokens int `json:"reasoning_tokens"`
	} `json:"output_tokens_details"`
	TotalTokens int `json:"total_tokens"`
}

func responsesUsageFrom(u Usage, reasoningTokens int) *responsesUsage {
	out := &responsesUsage{InputTokens: u.PromptTokens, OutputTokens: u.CompletionTokens,
		TotalTokens: u.PromptTokens + u.CompletionTokens}
	out.InputTokensDetails.CachedTokens = u.CachedTokens
	out.OutputTokensDetails.ReasoningTokens = reasoningTokens
	return out
}

type responsesMessageItem struct {
	ID      string                `json:"id"`
	Type    string                `json:"type"`
	Status  string                `json:"status"`
	Role    string                `json:"role"`
	Content []responsesOutputText `json:"content"`
}

type responsesOutputText struct {
	Type        string `json:"type"`
	Text        string `json:"text"`
	Annotations []any  `json:"annotations"`
	Logprobs    []any  `json:"logprobs"`
}

func outputText(t string) responsesOutputText {
	return responsesOutputText{Type: "output_text", Text: t, Annotations: []any{}, Logprobs: []any{}}
}

type responsesFunctionCallItem struct {
	ID        string `json:"id"`
	Type      string `json:"type"`
	Status    string `json:"status"`
	CallID    string `json:"call_id"`
	Name      string `json:"name"`
	Namespace string `json:"namespace,omitempty"`
	Arguments string `json:"arguments"`
}

type responsesCustomCallItem struct {
	ID        string `json:"id"`
	Type      string `json:"type"`
	Status    string `json:"status"`
	CallID    string `json:"call_id"`
	Name      string `json:"name"`
	Namespace string `json:"namespace,omitempty"`
	Input     string `json:"input"`
}

type responsesReasoningItem struct {
	ID      string              `json:"id"`
	Type    string              `json:"type"`
	Summary []responsesTextPart `json:"summary"`
}

type responsesTextPart struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

// responsesEcho is what a response repeats of its request.
type responsesEcho struct {
	model      string
	namespaces map[string]bool
	custom     map[string]bool // chat names of custom (free-form) tools
	tmpl       responsesObject
}

// newResponsesEcho reads the parts of the original request a response
// repeats. A request that does not parse gives defaults: the request was
// validated before it was forwarded, so this only guards against misuse.
func newResponsesEcho(req []byte) *responsesEcho {
	var r responsesRequest
	_ = json.Unmarshal(req, &r)
	e := &responsesEcho{model: r.Model, namespaces: map[string]bool{}, custom: map[string]bool{}}
	for _, raw := range r.Tools {
		var t responsesTool
		if json.Unmarshal(raw, &t) != nil || t.Name == "" {
			continue
		}
		switch t.Type {
		case "namespace":
			e.namespaces[t.Name] = true
			for _, inner := range t.Tools {
				var it responsesTool
				if json.Unmarshal(inner, &it) == nil && it.Type == "custom" {
					e.custom[t.Name+namespaceSep+it.Name] = true
				}
			}
		case "custom":
			e.custom[t.Name] = true
		}
	}
	t := responsesObject{
		Object:            "response",
		Model:             r.Model,
		Output:            []any{},
		Instructions:      jsonOr(r.Instructions, "null"),
		MaxOutputTokens:   r.MaxOutputTokens,
		ParallelToolCalls: r.ParallelToolCalls == nil || *r.ParallelToolCalls,
		Reasoning:         jsonOr(r.Reasoning, `{"effort":null,"summary":null}`),
		Temperature:       r.Temperature,
		Text:              jsonOr(r.Text, `{"format":{"type":"text"}}`),
		ToolChoice:        jsonOr(r.ToolChoice, `"auto"`),
		Tools:             json.RawMessage(`[]`),
		TopP:              r.TopP,
		Truncation:        "disabled",
		Metadata:          jsonOr(r.Metadata, `{}`),
	}
	if len(r.Tools) > 0 {
		if b, err := json.Marshal(r.Tools); err == nil {
			t.Tools = b
		}
	}
	var store bool
	if json.Unmarshal(r.Store, &store) == nil {
		t.Store = store
	}
	e.tmpl = t
	return e
}

func jsonOr(raw json.RawMessage, def string) json.RawMessage {
	if isJSONNull(raw) {
		return json.RawMessage(def)
	}
	return raw
}

// splitName undoes the namespace flattening of a tool name.
func (e *responsesEcho) splitName(name string) (namespace, fn string) {
	if i := strings.Index(name, namespaceSep); i > 0 && e.namespaces[name[:i]] {
		return name[:i], name[i+len(namespaceSep):]
	}
	return "", name
}

// response returns a fresh response object with the given id.
func (e *responsesEcho) response(id string, created int64, model string) responsesObject {
	r := e.tmpl
	r.ID, r.CreatedAt = id, created
	if r.Model == "" {
		r.Model = model
	}
	r.Output = []any{}
	return r
}

// finishStatus maps a finish_reason to a response status.
func finishStatus(finish string) (string, *incompleteDetail) {
	switch finish {
	case "length":
		return "incomplete", &incompleteDetail{Reason: "max_output_tokens"}
	case "content_filter":
		return "incomplete", &incompleteDetail{Reason: "content_filter"}
	}
	return "completed", nil
}

// itemIDs derives the ids of a response's items from its id.
func itemID(prefix, respID string, n int) string {
	return fmt.Sprintf("%s%s_%d", prefix, strings.TrimPrefix(respID, "resp_"), n)
}

// ChatToResponses translates a non-streaming chat completion into a
// Responses API response object; req is the original Responses request,
// whose settings the response repeats.
func ChatToResponses(chatResp []byte, req []byte) ([]byte, error) {
	var r chatResponse
	if err := json.Unmarshal(chatResp, &r); err != nil {
		return nil, fmt.Errorf("decoding chat completion: %w", err)
	}
	if len(r.Choices) == 0 {
		return nil, fmt.Errorf("decoding chat completion: no choices")
	}
	e := newResponsesEcho(req)
	created := r.Created
	if created == 0 {
		created = nowUnix()
	}
	id := idFrom("resp_", r.ID)
	out := e.response(id, created, r.Model)
	c := &r.Choices[0]
	n := 0
	if t := c.Message.reasoning(); t != "" {
		out.Output = append(out.Output, responsesReasoningItem{ID: itemID("rs_", id, n), Type: "reasoning",
			Summary: []responsesTextPart{{Type: "summary_text", Text: t}}})
		n++
	}
	if t := str(c.Message.Content); t != "" || len(c.Message.ToolCalls) == 0 {
		out.Output = append(out.Output, responsesMessageItem{ID: itemID("msg_", id, n), Type: "message",
			Status: "completed", Role: "assistant", Content: []responsesOutputText{outputText(t)}})
		n++
	}
	for _, tc := range c.Message.ToolCalls {
		ns, name := e.splitName(tc.Function.Name)
		callID := tc.ID
		if callID == "" {
			callID = randomID("call_")
		}
		if e.custom[tc.Function.Name] {
			out.Output = append(out.Output, responsesCustomCallItem{ID: itemID("ctc_", id, n), Type: "custom_tool_call",
				Status: "completed", CallID: callID, Name: name, Namespace: ns, Input: customToolInput(tc.Function.Arguments)})
		} else {
			out.Output = append(out.Output, responsesFunctionCallItem{ID: itemID("fc_", id, n), Type: "function_call",
				Status: "completed", CallID: callID, Name: name, Namespace: ns, Arguments: tc.Function.Arguments})
		}
		n++
	}
	out.Status, out.IncompleteDetails = finishStatus(c.FinishReason)
	if r.Usage != nil {
		out.Usage = responsesUsageFrom(r.Usage.toUsage(), r.Usage.reasoningTokens())
	}
	return marshal(out)
}
