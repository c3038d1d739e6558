package translate

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"strings"
	"time"
)

// The internal form: OpenAI chat completions, as far as translation needs it.

type chatRequest struct {
	Model             string          `json:"model"`
	Messages          []chatMessage   `json:"messages"`
	Stream            bool            `json:"stream,omitempty"`
	StreamOptions     *streamOptions  `json:"stream_options,omitempty"`
	MaxTokens         *int            `json:"max_tokens,omitempty"`
	Temperature       *float64        `json:"temperature,omitempty"`
	TopP              *float64        `json:"top_p,omitempty"`
	TopK              *int            `json:"top_k,omitempty"`
	Stop              []string        `json:"stop,omitempty"`
	Tools             []chatTool      `json:"tools,omitempty"`
	ToolChoice        any             `json:"tool_choice,omitempty"`
	ParallelToolCalls *bool           `json:"parallel_tool_calls,omitempty"`
	ResponseFormat    json.RawMessage `json:"response_format,omitempty"`
	ReasoningEffort   string          `json:"reasoning_effort,omitempty"`
	User              string          `json:"user,omitempty"`
	// Keyword arguments for the model's chat template: enable_thinking
	// (Qwen3 and kin) and reasoning_effort (gpt-oss) switch reasoning.
	ChatTemplateKwargs map[string]any `json:"chat_template_kwargs,omitempty"`
}

// setReasoning records the client's reasoning wishes for the chat template:
// enabled is nil when the client did not say; effort is empty when it did
// not say, or said something no template knows.
func (r *chatRequest) setReasoning(enabled *bool, effort string) {
	if enabled == nil && effort == "" {
		return
	}
	if r.ChatTemplateKwargs == nil {
		r.ChatTemplateKwargs = map[string]any{}
	}
	if enabled != nil {
		r.ChatTemplateKwargs["enable_thinking"] = *enabled
	}
	if effort != "" {
		r.ChatTemplateKwargs["reasoning_effort"] = effort
	}
}

// templateEffort keeps the effort levels chat templates understand.
func templateEffort(effort string) string {
	switch effort {
	case "low", "medium", "high":
		return effort
	}
	return ""
}

type streamOptions struct {
	IncludeUsage bool `json:"include_usage"`
}

// chatMessage is one message; Content is a string, a []chatPart or nil
// (null, for an assistant message that only calls tools).
type chatMessage struct {
	Role             string         `json:"role"`
	Content          any            `json:"content"`
	ReasoningContent string         `json:"reasoning_content,omitempty"`
	ToolCalls        []chatToolCall `json:"tool_calls,omitempty"`
	ToolCallID       string         `json:"tool_call_id,omitempty"`
}

type chatPart struct {
	Type     string        `json:"type"`
	Text     *string       `json:"text,omitempty"`
	ImageURL *chatImageURL `json:"image_url,omitempty"`
}

type chatImageURL struct {
	URL    string `json:"url"`
	Detail string `json:"detail,omitempty"`
}

type chatTool struct {
	Type     string       `json:"type"`
	Function chatFunction `json:"function"`
}

type chatFunction struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	Parameters  json.RawMessage `json:"parameters,omitempty"`
	Strict      *bool           `json:"strict,omitempty"`
}

type chatToolCall struct {
	Index    *int             `json:"index,omitempty"`
	ID       string           `json:"id,omitempty"`
	Type     string           `json:"type,omitempty"`
	Function chatFunctionCall `json:"function"`
}

type chatFunctionCall struct {
	Name      string `json:"name,omitempty"`
	Arguments string `json:"arguments"`
}

type namedToolChoice struct {
	Type     string `json:"type"`
	Function struct {
		Name string `json:"name"`
	} `json:"function"`
}

func toolChoiceFunction(name string) namedToolChoice {
	c := namedToolChoice{Type: "function"}
	c.Function.Name = name
	return c
}

// chatResponse is a non-streaming chat completion.
type chatResponse struct {
	ID      string       `json:"id"`
	Model   string       `json:"model"`
	Created int64        `json:"created"`
	Choices []chatChoice `json:"choices"`
	Usage   *chatUsage   `json:"usage"`
	// llama.cpp reports the stop string that ended generation here.
	StoppingWord string `json:"stopping_word"`
}

type chatChoice struct {
	Index        int             `json:"index"`
	Message      chatRespMessage `json:"message"`
	Delta        chatRespMessage `json:"delta"`
	FinishReason string          `json:"finish_reason"`
	// Matched stop sequence, as vLLM (stop_reason) and SGLang
	// (matched_stop) report it; a number means a stop token, not a string.
	StopReason  json.RawMessage `json:"stop_reason"`
	MatchedStop json.RawMessage `json:"matched_stop"`
}

type chatRespMessage struct {
	Role             string         `json:"role"`
	Content          *string        `json:"content"`
	ReasoningContent *string        `json:"reasoning_content"`
	Reasoning        *string        `json:"reasoning"`
	ToolCalls        []chatToolCall `json:"tool_calls"`
}

// reasoning returns the reasoning text under either common field name.
func (m *chatRespMessage) reasoning() string {
	if m.ReasoningContent != nil {
		return *m.ReasoningContent
	}
	if m.Reasoning != nil {
		return *m.Reasoning
	}
	return ""
}

// matchedStop returns the stop string the upstream says ended generation,
// or "" when it does not say.
func (r *chatResponse) matchedStop(c *chatChoice) string {
	for _, raw := range []json.RawMessage{c.StopReason, c.MatchedStop} {
		var s string
		if len(raw) > 0 && raw[0] == '"' && json.Unmarshal(raw, &s) == nil && s != "" {
			return s
		}
	}
	return r.StoppingWord
}

// chatStreamError is the error object an upstream may send inside a stream.
type chatStreamError struct {
	Error *struct {
		Message string `json:"message"`
	} `json:"error"`
}

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// Sources of ids and times; tests replace them for reproducible output.
var (
	idSource io.Reader = rand.Reader
	nowUnix            = func() int64 { return time.Now().Unix() }
)

// randomID returns prefix followed by 24 random hex digits.
func randomID(prefix string) string {
	var b [12]byte
	_, _ = io.ReadFull(idSource, b[:]) // crypto/rand never fails
	return prefix + hex.EncodeToString(b[:])
}

// idFrom derives an id with prefix from an upstream id, keeping only
// characters safe in any client's id pattern; it falls back to a random id.
func idFrom(prefix, upstream string) string {
	if strings.HasPrefix(upstream, prefix) {
		return sanitizeID(upstream)
	}
	upstream = strings.TrimPrefix(upstream, "chatcmpl-")
	upstream = strings.TrimPrefix(upstream, "chatcmpl_")
	s := sanitizeID(upstream)
	if s == "" {
		return randomID(prefix)
	}
	return prefix + s
}

func sanitizeID(s string) string {
	var b strings.Builder
	for i := 0; i < len(s) && b.Len() < 128; i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' {
			b.WriteByte(c)
		}
	}
	return b.String()
}

// isJSONNull reports whether raw is absent or the literal null.
func isJSONNull(raw json.RawMessage) bool {
	t := bytes.TrimSpace(raw)
	return len(t) == 0 || string(t) == "null"
}

// argsString renders a tool input for an OpenAI arguments string. Objects
// are compacted; a missing input becomes "{}".
func argsString(raw json.RawMessage) string {
	if isJSONNull(raw) {
		return "{}"
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return string(raw)
	}
	return buf.String()
}

// argsObject renders an OpenAI arguments string as a JSON value for an
// Anthropic tool_use input. Arguments that are not a JSON object (a model
// may emit anything) are wrapped so the client still gets an object.
func argsObject(args string) json.RawMessage {
	t := strings.TrimSpace(args)
	if t == "" {
		return json.RawMessage("{}")
	}
	if t[0] == '{' && json.Valid([]byte(t)) {
		var buf bytes.Buffer
		if json.Compact(&buf, []byte(t)) == nil {
			return buf.Bytes()
		}
	}
	b, _ := json.Marshal(map[string]string{"_raw_arguments": args})
	return b
}

// jsonWriter encodes values without HTML escaping into a reused buffer; the
// stream converters use one each, so a token costs no encoder allocations.
type jsonWriter struct {
	buf bytes.Buffer
	enc *json.Encoder
}

// encode returns the encoding of v, valid until the next call; a value that
// does not encode (none of those built here) gives fallback.
func (w *jsonWriter) encode(v any, fallback string) []byte {
	if w.enc == nil {
		w.enc = json.NewEncoder(&w.buf)
		w.enc.SetEscapeHTML(false)
	}
	w.buf.Reset()
	if err := w.enc.Encode(v); err != nil {
		return []byte(fallback)
	}
	return bytes.TrimSuffix(w.buf.Bytes(), []byte{'\n'})
}

// marshal encodes v without HTML escaping, as the upstream wrote it.
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte{'\n'}), nil
}

// toolCallKeys tells apart the tool calls of one streamed choice. OpenAI
// streams name a call by its index and send its id once; some servers
// instead send every call whole at index 0, each with its own id. A
// fragment whose id differs from the one its index last had starts a new
// call.
type toolCallKeys struct {
	byIndex map[int]callKey
	next    int
}

type callKey struct {
	key int
	id  string
}

// key returns the call a fragment belongs to, numbered from 0 in order of
// appearance. pos is the fragment's position in its delta, used when it has
// no index.
func (k *toolCallKeys) key(pos int, tc chatToolCall) int {
	idx := pos
	if tc.Index != nil {
		idx = *tc.Index
	}
	if k.byIndex == nil {
		k.byIndex = map[int]callKey{}
	}
	cur, ok := k.byIndex[idx]
	if ok && (tc.ID == "" || tc.ID == cur.id || cur.id == "") {
		if cur.id == "" && tc.ID != "" {
			cur.id = tc.ID
			k.byIndex[idx] = cur
		}
		return cur.key
	}
	cur = callKey{key: k.next, id: tc.ID}
	k.next++
	k.byIndex[idx] = cur
	return cur.key
}
