package translate

import "encoding/json"

// Usage is the token accounting of one OpenAI chat completion.
type Usage struct {
	PromptTokens     int // all prompt tokens, cached ones included
	CompletionTokens int // generated tokens, reasoning included
	CachedTokens     int // prompt tokens served from the prefix cache
}

type chatUsage struct {
	PromptTokens        int `json:"prompt_tokens"`
	CompletionTokens    int `json:"completion_tokens"`
	TotalTokens         int `json:"total_tokens"`
	PromptTokensDetails *struct {
		CachedTokens int `json:"cached_tokens"`
	} `json:"prompt_tokens_details,omitempty"`
	CompletionTokensDetails *struct {
		ReasoningTokens int `json:"reasoning_tokens"`
	} `json:"completion_tokens_details,omitempty"`
}

func (u *chatUsage) toUsage() Usage {
	out := Usage{PromptTokens: u.PromptTokens, CompletionTokens: u.CompletionTokens}
	if u.PromptTokensDetails != nil {
		out.CachedTokens = u.PromptTokensDetails.CachedTokens
	}
	return out
}

func (u *chatUsage) reasoningTokens() int {
	if u == nil || u.CompletionTokensDetails == nil {
		return 0
	}
	return u.CompletionTokensDetails.ReasoningTokens
}

// ParseUsage reads the usage object of an OpenAI chat completion or of a
// chat.completion.chunk. It reports false when data is not JSON or carries
// no usage (most chunks of a stream).
func ParseUsage(data []byte) (Usage, bool) {
	var v struct {
		Usage *chatUsage `json:"usage"`
	}
	if err := json.Unmarshal(data, &v); err != nil || v.Usage == nil {
		return Usage{}, false
	}
	return v.Usage.toUsage(), true
}
