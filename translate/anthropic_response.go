package translate

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
)

type anthropicResponse struct {
	ID           string            `json:"id"`
	Type         string            `json:"type"`
	Role         string            `json:"role"`
	Model        string            `json:"model"`
	Content      []json.RawMessage `json:"content"`
	StopReason   *string           `json:"stop_reason"`
	StopSequence *string           `json:"stop_sequence"`
	Usage        anthropicUsage    `json:"usage"`
}

type anthropicUsage struct {
	InputTokens              int `json:"input_tokens"`
	OutputTokens             int `json:"output_tokens"`
	CacheCreationInputTokens int `json:"cache_creation_input_tokens"`
	CacheReadInputTokens     int `json:"cache_read_input_tokens"`
}

func anthropicUsageFrom(u Usage) anthropicUsage {
	cached := min(max(u.CachedTokens, 0), u.PromptTokens)
	return anthropicUsage{
		InputTokens:          u.PromptTokens - cached,
		OutputTokens:         u.CompletionTokens,
		CacheReadInputTokens: cached,
	}
}

type anthropicTextBlock struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

type anthropicThinkingBlock struct {
	Type      string `json:"type"`
	Thinking  string `json:"thinking"`
	Signature string `json:"signature"`
}

type anthropicToolUseBlock struct {
	Type  string          `json:"type"`
	ID    string          `json:"id"`
	Name  string          `json:"name"`
	Input json.RawMessage `json:"input"`
}

// thinkingSignature is the opaque signature of a thinking block. Clients
// send it back unchanged; helexa does not verify it, but clients expect one.
func thinkingSignature(thinking string) string {
	sum := sha256.Sum256([]byte(thinking))
	return base64.RawURLEncoding.EncodeToString(sum[:18])
}

// anthropicStopReason maps an OpenAI finish_reason; matched is the stop
// string the upstream reports, if any.
func anthropicStopReason(finish, matched string) (reason string, seq *string) {
	switch finish {
	case "length":
		return "max_tokens", nil
	case "tool_calls", "function_call":
		return "tool_use", nil
	case "content_filter":
		return "refusal", nil
	}
	if matched != "" {
		return "stop_sequence", &matched
	}
	return "end_turn", nil
}

// toolUseID maps an OpenAI tool call id to an Anthropic one: ids that
// already look like toolu_… pass through; others are prefixed, and the
// request direction passes the result through unchanged, so one id names
// one call in both directions.
func toolUseID(id string) string {
	return idFrom("toolu_", id)
}

// ChatToAnthropic translates a non-streaming OpenAI chat completion into an
// Anthropic message. model is the name the client asked for.
func ChatToAnthropic(chatResp []byte, model string) ([]byte, error) {
	var r chatResponse
	if err := json.Unmarshal(chatResp, &r); err != nil {
		return nil, fmt.Errorf("decoding chat completion: %w", err)
	}
	if len(r.Choices) == 0 {
		return nil, fmt.Errorf("decoding chat completion: no choices")
	}
	c := &r.Choices[0]
	out := anthropicResponse{
		ID:      idFrom("msg_", r.ID),
		Type:    "message",
		Role:    "assistant",
		Model:   model,
		Content: []json.RawMessage{},
	}
	if model == "" {
		out.Model = r.Model
	}
	add := func(v any) error {
		b, err := marshal(v)
		if err != nil {
			return fmt.Errorf("encoding content block: %w", err)
		}
		out.Content = append(out.Content, b)
		return nil
	}
	if t := c.Message.reasoning(); t != "" {
		if err := add(anthropicThinkingBlock{Type: "thinking", Thinking: t, Signature: thinkingSignature(t)}); err != nil {
			return nil, err
		}
	}
	if t := str(c.Message.Content); t != "" {
		if err := add(anthropicTextBlock{Type: "text", Text: t}); err != nil {
			return nil, err
		}
	}
	for _, tc := range c.Message.ToolCalls {
		if err := add(anthropicToolUseBlock{
			Type: "tool_use", ID: toolUseID(tc.ID), Name: tc.Function.Name,
			Input: argsObject(tc.Function.Arguments),
		}); err != nil {
			return nil, err
		}
	}
	finish := c.FinishReason
	if finish == "" || (finish == "stop" && len(c.Message.ToolCalls) > 0) {
		if len(c.Message.ToolCalls) > 0 {
			finish = "tool_calls"
		}
	}
	reason, seq := anthropicStopReason(finish, r.matchedStop(c))
	out.StopReason, out.StopSequence = &reason, seq
	if r.Usage != nil {
		out.Usage = anthropicUsageFrom(r.Usage.toUsage())
	}
	return marshal(out)
}
