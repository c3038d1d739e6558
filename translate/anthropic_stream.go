package translate

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"helexa/internal/apierr"
)

// AnthropicStream converts the chunks of an OpenAI chat completion stream
// into Anthropic Messages stream events: message_start, then for each
// content block content_block_start, deltas and content_block_stop (one ping
// after the first block starts), then message_delta with the stop reason and
// usage, and message_stop. Not safe for concurrent use.
type AnthropicStream struct {
	w     io.Writer
	flush func()
	model string
	buf   bytes.Buffer
	json  jsonWriter

	started, ended bool
	pinged         bool
	next           int // index of the next content block
	open           int // index of the open block, -1 when none
	openKind       string
	thinking       bytes.Buffer     // text of the open thinking block, for its signature
	tools          map[int]struct{} // tool calls seen, by callKeys key
	openTool       int              // key of the call in the open tool_use block
	pending        []*pendingCall   // calls held back, in arrival order
	callKeys       toolCallKeys
	sawTool        bool
	finish         string
	matched        string
	usage          Usage
	haveUsage      bool
}

// NewAnthropicStream returns a converter writing events to w; flush, when
// not nil, is called after each batch of events. model is the name the
// client asked for.
func NewAnthropicStream(w io.Writer, model string, flush func()) *AnthropicStream {
	return &AnthropicStream{w: w, flush: flush, model: model, open: -1, tools: map[int]struct{}{}}
}

// Chunk converts one data payload of an OpenAI stream (not "[DONE]"). A
// payload carrying an error object ends the stream with an error event. A
// payload that is not a JSON chunk fails the stream (the client gets an error
// event) and returns an error wrapping ErrBadChunk.
func (s *AnthropicStream) Chunk(data []byte) error {
	if s.ended {
		return nil
	}
	c, ended, err := decodeChunk(data, s.Fail)
	if ended {
		return err
	}
	if c.Usage != nil {
		s.usage, s.haveUsage = c.Usage.toUsage(), true
	}
	if !s.started {
		s.start(c.ID)
	}
	for i := range c.Choices {
		ch := &c.Choices[i]
		if ch.Index != 0 {
			continue // n > 1 has no Anthropic form
		}
		d := &ch.Delta
		if t := d.reasoning(); t != "" {
			if s.openKind != "thinking" {
				s.startBlock("thinking", anthropicThinkingBlock{Type: "thinking"})
			}
			s.thinking.WriteString(t)
			s.delta(s.open, anthropicDelta{Type: "thinking_delta", Thinking: &t})
		}
		if t := str(d.Content); t != "" {
			if s.openKind != "text" {
				s.startBlock("text", anthropicTextBlock{Type: "text", Text: ""})
			}
			s.delta(s.open, anthropicDelta{Type: "text_delta", Text: &t})
		}
		for k, tc := range d.ToolCalls {
			s.toolFragment(k, tc)
		}
		if ch.FinishReason != "" {
			s.finish = ch.FinishReason
			if m := c.matchedStop(ch); m != "" {
				s.matched = m
			}
		}
	}
	return s.write()
}

// toolFragment handles one tool_calls entry. The first call streams live;
// a call that starts while another tool block is open is held back and
// written whole when that block closes, because OpenAI streams may
// interleave the fragments of parallel calls while Anthropic blocks are
// strictly sequential.
func (s *AnthropicStream) toolFragment(pos int, tc chatToolCall) {
	idx := s.callKeys.key(pos, tc)
	if s.openKind == "tool_use" && s.openTool == idx {
		s.toolArgs(tc.Function.Arguments)
		return
	}
	if p := s.pendingTool(idx); p != nil {
		p.args.WriteString(tc.Function.Arguments)
		return
	}
	if _, seen := s.tools[idx]; seen {
		return // a fragment for a call already written whole: nothing valid to do
	}
	s.tools[idx] = struct{}{}
	s.sawTool = true
	if s.openKind == "tool_use" {
		p := &pendingCall{index: idx, id: tc.ID, name: tc.Function.Name}
		p.args.WriteString(tc.Function.Arguments)
		s.pending = append(s.pending, p)
		return
	}
	s.startBlock("tool_use", anthropicToolUseBlock{
		Type: "tool_use", ID: toolUseID(tc.ID), Name: tc.Function.Name, Input: json.RawMessage("{}"),
	})
	s.openTool = idx
	s.toolArgs(tc.Function.Arguments)
}

func (s *AnthropicStream) toolArgs(args string) {
	if args != "" {
		s.delta(s.open, anthropicDelta{Type: "input_json_delta", PartialJSON: &args})
	}
}

func (s *AnthropicStream) pendingTool(idx int) *pendingCall {
	for _, p := range s.pending {
		if p.index == idx {
			return p
		}
	}
	return nil
}

// pendingCall is a tool call held back while another tool block is open.
type pendingCall struct {
	index    int
	id, name string
	args     strings.Builder
}

func (s *AnthropicStream) start(upstreamID string) {
	s.started = true
	s.event("message_start", messageStartEvent{Type: "message_start", Message: anthropicResponse{
		ID: idFrom("msg_", upstreamID), Type: "message", Role: "assistant",
		Content: []json.RawMessage{}, Model: s.model,
		Usage: startUsage(s.usage),
	}})
}

// startUsage is message_start's usage: the prompt side when the upstream
// already told it (most tell only at the end; message_delta then has it).
func startUsage(u Usage) anthropicUsage {
	a := anthropicUsageFrom(u)
	a.OutputTokens = 0
	return a
}

func (s *AnthropicStream) startBlock(kind string, block any) {
	s.stopBlock()
	s.open, s.openKind = s.next, kind
	s.next++
	s.event("content_block_start", blockStartEvent{Type: "content_block_start", Index: s.open, ContentBlock: block})
	if !s.pinged {
		s.pinged = true
		s.event("ping", typeOnly{Type: "ping"})
	}
}

func (s *AnthropicStream) stopBlock() {
	if s.open < 0 {
		return
	}
	wasTool := s.openKind == "tool_use"
	if s.openKind == "thinking" {
		sig := thinkingSignature(s.thinking.String())
		s.delta(s.open, anthropicDelta{Type: "signature_delta", Signature: &sig})
		s.thinking.Reset()
	}
	s.event("content_block_stop", blockStopEvent{Type: "content_block_stop", Index: s.open})
	s.open, s.openKind = -1, ""
	if wasTool {
		pending := s.pending
		s.pending = nil
		for _, p := range pending {
			s.startBlock("tool_use", anthropicToolUseBlock{
				Type: "tool_use", ID: toolUseID(p.id), Name: p.name, Input: json.RawMessage("{}"),
			})
			s.toolArgs(p.args.String())
			s.event("content_block_stop", blockStopEvent{Type: "content_block_stop", Index: s.open})
			s.open, s.openKind = -1, ""
		}
	}
}

// Close ends the stream normally: it closes the open block and writes
// message_delta (stop reason, usage) and message_stop. It does nothing
// after the stream has ended.
func (s *AnthropicStream) Close() error {
	if s.ended {
		return nil
	}
	if !s.started {
		s.start("")
	}
	s.stopBlock()
	finish := s.finish
	if s.sawTool && (finish == "" || finish == "stop") {
		finish = "tool_calls"
	}
	reason, seq := anthropicStopReason(finish, s.matched)
	ev := messageDeltaEvent{Type: "message_delta", Usage: anthropicUsageFrom(s.usage)}
	ev.Delta.StopReason, ev.Delta.StopSequence = &reason, seq
	s.event("message_delta", ev)
	s.event("message_stop", typeOnly{Type: "message_stop"})
	s.ended = true
	return s.write()
}

// Fail ends the stream with an Anthropic error event carrying msg, so a
// client never mistakes a failed generation for a short one. It does nothing
// after the stream has ended.
func (s *AnthropicStream) Fail(msg string) error {
	if s.ended {
		return nil
	}
	s.ended = true
	s.event("error", json.RawMessage(apierr.Anthropic(http.StatusBadGateway, msg)))
	return s.write()
}

// KeepAlive writes a ping event, as Anthropic's API does while a message
// is in progress (an SSE comment before message_start), so that clients
// and proxies see a stream whose upstream holds its text back is alive. It
// does nothing after the stream has ended.
func (s *AnthropicStream) KeepAlive() error {
	if s.ended {
		return nil
	}
	if !s.started {
		s.buf.WriteString(": keep-alive\n\n")
	} else {
		s.event("ping", typeOnly{Type: "ping"})
	}
	return s.write()
}

// Usage returns the usage the upstream reported, and whether it did.
func (s *AnthropicStream) Usage() (Usage, bool) { return s.usage, s.haveUsage }

func (s *AnthropicStream) delta(index int, d anthropicDelta) {
	s.event("content_block_delta", blockDeltaEvent{Type: "content_block_delta", Index: index, Delta: d})
}

func (s *AnthropicStream) event(name string, v any) {
	writeEvent(&s.buf, name, s.json.encode(v, `{}`))
}

func (s *AnthropicStream) write() error {
	if s.buf.Len() == 0 {
		return nil
	}
	_, err := s.w.Write(s.buf.Bytes())
	s.buf.Reset()
	if err != nil {
		return fmt.Errorf("writing event stream: %w", err)
	}
	if s.flush != nil {
		s.flush()
	}
	return nil
}

// writeEvent formats one SSE event.
func writeEvent(buf *bytes.Buffer, name string, data []byte) {
	buf.WriteString("event: ")
	buf.WriteString(name)
	buf.WriteString("\ndata: ")
	buf.Write(data)
	buf.WriteString("\n\n")
}

type typeOnly struct {
	Type string `json:"type"`
}

type messageStartEvent struct {
	Type    string            `json:"type"`
	Message anthropicResponse `json:"message"`
}

type blockStartEvent struct {
	Type         string `json:"type"`
	Index        int    `json:"index"`
	ContentBlock any    `json:"content_block"`
}

type blockDeltaEvent struct {
	Type  string         `json:"type"`
	Index int            `json:"index"`
	Delta anthropicDelta `json:"delta"`
}

type anthropicDelta struct {
	Type        string  `json:"type"`
	Text        *string `json:"text,omitempty"`
	Thinking    *string `json:"thinking,omitempty"`
	PartialJSON *string `json:"partial_json,omitempty"`
	Signature   *string `json:"signature,omitempty"`
}

type blockStopEvent struct {
	Type  string `json:"type"`
	Index int    `json:"index"`
}

type messageDeltaEvent struct {
	Type  string `json:"type"`
	Delta struct {
		StopReason   *string `json:"stop_reason"`
		StopSequence *string `json:"stop_sequence"`
	} `json:"delta"`
	Usage anthropicUsage `json:"usage"`
}

// decodeChunk decodes one data payload of an upstream OpenAI stream for a
// stream converter. A payload that is not a JSON chunk, or that carries an
// error object, ends the client's stream through fail: ended is then true
// and err is what the caller returns (wrapping ErrBadChunk for an unreadable
// payload).
func decodeChunk(data []byte, fail func(msg string) error) (c chatResponse, ended bool, err error) {
	if err := json.Unmarshal(data, &c); err != nil {
		werr := fail("the model server sent an unreadable stream chunk")
		return c, true, errors.Join(fmt.Errorf("%w: %w", ErrBadChunk, err), werr)
	}
	if len(c.Choices) == 0 {
		var e chatStreamError
		if json.Unmarshal(data, &e) == nil && e.Error != nil {
			return c, true, fail(e.Error.Message)
		}
	}
	return c, false, nil
}
