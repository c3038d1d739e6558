// Package toolcall turns generated text into OpenAI chat fields: content,
// reasoning_content and tool_calls.
//
// A Parser takes the text incrementally (one decoded token at a time) and
// returns deltas as soon as they are decided. Text that might be the start
// of a marker (a "<tool_" at the end of what came so far) is held back until
// the next text decides it, and flushed as text at the end. A tool call is
// emitted once its block is complete and parses; a block that only looks
// like a call but does not parse is given back as content.
//
// Formats (several may be active at once, following the model's chat
// template and vocabulary, see Detect):
//
//	Hermes / Qwen    <tool_call>{"name": …, "arguments": {…}}</tool_call>
//	Qwen3-Coder      <tool_call><function=NAME><parameter=P>value</parameter></function></tool_call>
//	Llama 3.x        {"name": …, "parameters": {…}} (optionally after <|python_tag|>)
//	Mistral          [TOOL_CALLS][{"name": …, "arguments": {…}}, …] or [TOOL_CALLS]NAME[ARGS]{…}
//	reasoning        <think>…</think>
package toolcall

import (
	"strings"
)

// Format is a set of tool-call formats.
type Format uint8

// The formats.
const (
	Hermes Format = 1 << iota
	Qwen3Coder
	Llama3JSON
	Mistral
)

// Markers.
const (
	thinkOpen      = "<think>"
	thinkClose     = "</think>"
	toolCallOpen   = "<tool_call>"
	toolCallClose  = "</tool_call>"
	functionOpen   = "<function="
	functionClose  = "</function>"
	pythonTag      = "<|python_tag|>"
	mistralCalls   = "[TOOL_CALLS]"
	mistralArgs    = "[ARGS]"
	parameterOpen  = "<parameter="
	parameterClose = "</parameter>"
)

// Markers returns the texts that switch the parsers' state. A vocabulary
// may hold them as control tokens, whose text a decoder must then keep.
func Markers() []string {
	return []string{thinkOpen, thinkClose, toolCallOpen, toolCallClose, pythonTag, mistralCalls, mistralArgs}
}

// Config says which formats a parser recognises.
type Config struct {
	// Tools are the tool-call formats; 0 parses no tool calls.
	Tools Format
	// Reasoning enables <think>…</think> as reasoning_content.
	Reasoning bool
	// StartInReasoning is set when the prompt already opened <think> (the
	// template ends the generation prompt with it): generation starts
	// inside the reasoning block.
	StartInReasoning bool
	// NewID makes tool-call ids; nil uses "call_" and a random suffix.
	NewID func() string
	// ParamTypes types Qwen3-Coder parameter values by the request's tool
	// schemas (ToolParamTypes); nil guesses from the text.
	ParamTypes ParamTypes
}

// Detect chooses the formats from a model's chat template and a
// vocabulary lookup (hasToken reports whether a special token exists;
// nil means none do).
func Detect(template string, hasToken func(string) bool) Config {
	has := func(s string) bool { return hasToken != nil && hasToken(s) }
	var c Config
	if strings.Contains(template, toolCallOpen) || has(toolCallOpen) {
		c.Tools |= Hermes
	}
	if strings.Contains(template, functionOpen) || strings.Contains(template, parameterOpen) {
		c.Tools |= Qwen3Coder | Hermes
	}
	if strings.Contains(template, pythonTag) || (strings.Contains(template, "ipython") && strings.Contains(template, "<|start_header_id|>")) {
		c.Tools |= Llama3JSON
	}
	if strings.Contains(template, mistralCalls) || has(mistralCalls) {
		c.Tools |= Mistral
	}
	if strings.Contains(template, thinkOpen) || has(thinkOpen) {
		c.Reasoning = true
	}
	return c
}

// OpenedThink reports whether a rendered prompt ends inside a <think>
// block the template opened.
func OpenedThink(prompt string) bool {
	p := strings.TrimRight(prompt, " \t\r\n")
	return strings.HasSuffix(p, thinkOpen)
}

// Delta is one piece of output. Exactly one field is set.
type Delta struct {
	Content   string
	Reasoning string
	Call      *CallDelta
}

// CallDelta is a streaming tool-call fragment: the first for an index
// carries ID and Name, later ones Arguments fragments.
type CallDelta struct {
	Index     int
	ID        string
	Name      string
	Arguments string
}

// Call is a complete tool call; Arguments is a JSON object's text.
type Call struct {
	ID        string
	Name      string
	Arguments string
}

// Result is the whole parsed output.
type Result struct {
	Content   string
	Reasoning string
	Calls     []Call
}
