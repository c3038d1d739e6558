package translate

import (
	"bytes"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// ResponsesStream converts the chunks of an OpenAI chat completion stream
// into Responses API stream events, each with its sequence_number:
// response.created, response.in_progress, then per output item
// response.output_item.added, its part and delta events and
// response.output_item.done, and finally response.completed (or
// response.incomplete when generation hit max_output_tokens). Reasoning is
// streamed as a reasoning item's summary text. Not safe for concurrent use.
type ResponsesStream struct {
	w     io.Writer
	flush func()
	echo  *responsesEcho
	buf   bytes.Buffer
	val   bytes.Buffer
	json  jsonWriter

	seq            int
	started, ended bool
	id             string
	created        int64
	items          []*streamItem
	cur            *streamItem         // open message or reasoning item
	calls          []*streamItem       // open function calls
	tools          map[int]*streamItem // callKeys key → item
	callKeys       toolCallKeys
	finish         string
	usage          *chatUsage
}

type streamItem struct {
	kind   string // "message", "reasoning", "function_call" or "custom_tool_call"
	index  int    // output_index
	id     string
	text   strings.Builder // message text, reasoning text or arguments
	callID string
	name   string
	ns     string
	done   bool
}

// NewResponsesStream returns a converter writing events to w; req is the
// original Responses request, whose settings the response repeats. flush,
// when not nil, is called after each batch of events.
func NewResponsesStream(w io.Writer, req []byte, flush func()) *ResponsesStream {
	return &ResponsesStream{w: w, flush: flush, echo: newResponsesEcho(req), tools: map[int]*streamItem{}}
}

// Chunk converts one data payload of an OpenAI stream (not "[DONE]"). A
// payload carrying an error object fails the response. A payload that is
// not a JSON chunk fails the response too and returns an error wrapping
// ErrBadChunk.
func (s *ResponsesStream) Chunk(data []byte) error {
	if s.ended {
		return nil
	}
	c, ended, err := decodeChunk(data, s.Fail)
	if ended {
		return err
	}
	if !s.started {
		s.start(c.ID, c.Created, c.Model)
	}
	if c.Usage != nil {
		s.usage = c.Usage
	}
	for i := range c.Choices {
		ch := &c.Choices[i]
		if ch.Index != 0 {
			continue
		}
		d := &ch.Delta
		if t := d.reasoning(); t != "" {
			s.reasoningDelta(t)
		}
		if t := str(d.Content); t != "" {
			s.textDelta(t)
		}
		for k, tc := range d.ToolCalls {
			s.toolFragment(k, tc)
		}
		if ch.FinishReason != "" {
			s.finish = ch.FinishReason
		}
	}
	return s.write()
}

func (s *ResponsesStream) start(upstreamID string, created int64, model string) {
	s.started = true
	s.id = idFrom("resp_", upstreamID)
	s.created = created
	if s.created == 0 {
		s.created = nowUnix()
	}
	r := s.echo.response(s.id, s.created, model)
	r.Status = "in_progress"
	s.emit("response.created", "response", r)
	s.emit("response.in_progress", "response", r)
}

func (s *ResponsesStream) newItem(kind, prefix string) *streamItem {
	it := &streamItem{kind: kind, index: len(s.items)}
	it.id = itemID(prefix, s.id, it.index)
	s.items = append(s.items, it)
	return it
}

func (s *ResponsesStream) reasoningDelta(t string) {
	if s.cur == nil || s.cur.kind != "reasoning" {
		s.closeAll()
		s.cur = s.newItem("reasoning", "rs_")
		s.emit("response.output_item.added", "output_index", s.cur.index, "item",
			responsesReasoningItem{ID: s.cur.id, Type: "reasoning", Summary: []responsesTextPart{}})
		s.emit("response.reasoning_summary_part.added", "item_id", s.cur.id, "output_index", s.cur.index,
			"summary_index", 0, "part", responsesTextPart{Type: "summary_text"})
	}
	s.cur.text.WriteString(t)
	s.emit("response.reasoning_summary_text.delta", "item_id", s.cur.id, "output_index", s.cur.index,
		"summary_index", 0, "delta", t)
}

func (s *ResponsesStream) textDelta(t string) {
	if s.cur == nil || s.cur.kind != "message" {
		s.closeAll()
		s.cur = s.newItem("message", "msg_")
		s.emit("response.output_item.added", "output_index", s.cur.index, "item",
			responsesMessageItem{ID: s.cur.id, Type: "message", Status: "in_progress", Role: "assistant",
				Content: []responsesOutputText{}})
		s.emit("response.content_part.added", "item_id", s.cur.id, "output_index", s.cur.index,
			"content_index", 0, "part", outputText(""))
	}
	s.cur.text.WriteString(t)
	s.emit("response.output_text.delta", "item_id", s.cur.id, "output_index", s.cur.index,
		"content_index", 0, "delta", t, "logprobs", []any{})
}

func (s *ResponsesStream) toolFragment(pos int, tc chatToolCall) {
	idx := s.callKeys.key(pos, tc)
	it, ok := s.tools[idx]
	if !ok {
		s.closeCurrent()
		if s.echo.custom[tc.Function.Name] {
			it = s.newItem("custom_tool_call", "ctc_")
		} else {
			it = s.newItem("function_call", "fc_")
		}
		it.callID = tc.ID
		if it.callID == "" {
			it.callID = randomID("call_")
		}
		it.ns, it.name = s.echo.splitName(tc.Function.Name)
		s.tools[idx] = it
		s.calls = append(s.calls, it)
		s.emit("response.output_item.added", "output_index", it.index, "item", s.callItem(it, "in_progress"))
	}
	if a := tc.Function.Arguments; a != "" {
		it.text.WriteString(a)
		if it.kind == "function_call" {
			s.emit("response.function_call_arguments.delta", "item_id", it.id, "output_index", it.index, "delta", a)
		}
		// A custom tool's input is JSON-wrapped in the arguments; it is
		// written whole when the call is done.
	}
}

// callItem is a function or custom tool call item; its arguments or input
// are filled in once the call is complete.
func (s *ResponsesStream) callItem(it *streamItem, status string) any {
	args := ""
	if status != "in_progress" {
		args = it.text.String()
	}
	if it.kind == "custom_tool_call" {
		if args != "" {
			args = customToolInput(args)
		}
		return responsesCustomCallItem{ID: it.id, Type: "custom_tool_call", Status: status, CallID: it.callID,
			Name: it.name, Namespace: it.ns, Input: args}
	}
	return responsesFunctionCallItem{ID: it.id, Type: "function_call", Status: status, CallID: it.callID,
		Name: it.name, Namespace: it.ns, Arguments: args}
}

// finalItem is an item's complete form, as output_item.done and the final
// response carry it.
func (s *ResponsesStream) finalItem(it *streamItem) any {
	switch it.kind {
	case "reasoning":
		return responsesReasoningItem{ID: it.id, Type: "reasoning",
			Summary: []responsesTextPart{{Type: "summary_text", Text: it.text.String()}}}
	case "message":
		return responsesMessageItem{ID: it.id, Type: "message", Status: itemStatus(it), Role: "assistant",
			Content: []responsesOutputText{outputText(it.text.String())}}
	}
	return s.callItem(it, itemStatus(it))
}

// itemStatus is "completed" for a finished item, "incomplete" for one a
// failure cut short.
func itemStatus(it *streamItem) string {
	if it.done {
		return "completed"
	}
	return "incomplete"
}

// closeCurrent finishes the open message or reasoning item.
func (s *ResponsesStream) closeCurrent() {
	it := s.cur
	if it == nil {
		return
	}
	s.cur = nil
	it.done = true
	text := it.text.String()
	switch it.kind {
	case "reasoning":
		s.emit("response.reasoning_summary_text.done", "item_id", it.id, "output_index", it.index,
			"summary_index", 0, "text", text)
		s.emit("response.reasoning_summary_part.done", "item_id", it.id, "output_index", it.index,
			"summary_index", 0, "part", responsesTextPart{Type: "summary_text", Text: text})
	case "message":
		s.emit("response.output_text.done", "item_id", it.id, "output_index", it.index,
			"content_index", 0, "text", text, "logprobs", []any{})
		s.emit("response.content_part.done", "item_id", it.id, "output_index", it.index,
			"content_index", 0, "part", outputText(text))
	}
	s.emit("response.output_item.done", "output_index", it.index, "item", s.finalItem(it))
}

// closeAll finishes every open item. Function calls stay open until then,
// so fragments of parallel calls may interleave.
func (s *ResponsesStream) closeAll() {
	s.closeCurrent()
	for _, it := range s.calls {
		it.done = true
		args := it.text.String()
		if it.kind == "custom_tool_call" {
			input := customToolInput(args)
			if input != "" {
				s.emit("response.custom_tool_call_input.delta", "item_id", it.id, "output_index", it.index, "delta", input)
			}
			s.emit("response.custom_tool_call_input.done", "item_id", it.id, "output_index", it.index, "input", input)
		} else {
			s.emit("response.function_call_arguments.done", "item_id", it.id, "output_index", it.index,
				"name", it.name, "arguments", args)
		}
		s.emit("response.output_item.done", "output_index", it.index, "item", s.finalItem(it))
	}
	s.calls = s.calls[:0]
}

func (s *ResponsesStream) final(status string) responsesObject {
	r := s.echo.response(s.id, s.created, "")
	r.Status = status
	for _, it := range s.items {
		r.Output = append(r.Output, s.finalItem(it))
	}
	if s.usage != nil {
		r.Usage = responsesUsageFrom(s.usage.toUsage(), s.usage.reasoningTokens())
	}
	return r
}

// Close ends the stream normally: it finishes the open items and writes
// response.completed, or response.incomplete when the upstream stopped at
// its token limit. It does nothing after the stream has ended.
func (s *ResponsesStream) Close() error {
	if s.ended {
		return nil
	}
	if !s.started {
		s.start("", 0, "")
	}
	s.closeAll()
	status, detail := finishStatus(s.finish)
	r := s.final(status)
	r.IncompleteDetails = detail
	if status == "incomplete" {
		s.emit("response.incomplete", "response", r)
	} else {
		s.emit("response.completed", "response", r)
	}
	s.ended = true
	return s.write()
}

// Fail ends the stream with an error event and response.failed carrying
// msg, so a client never mistakes a failed generation for a short one. It
// does nothing after the stream has ended.
func (s *ResponsesStream) Fail(msg string) error {
	if s.ended {
		return nil
	}
	if !s.started {
		s.start("", 0, "")
	}
	s.ended = true
	s.emit("error", "code", "server_error", "message", msg, "param", nil)
	r := s.final("failed")
	r.Error = &responsesError{Code: "server_error", Message: msg}
	s.emit("response.failed", "response", r)
	return s.write()
}

// Usage returns the usage the upstream reported, and whether it did.
func (s *ResponsesStream) Usage() (Usage, bool) {
	if s.usage == nil {
		return Usage{}, false
	}
	return s.usage.toUsage(), true
}

// emit writes one event: an object with type and sequence_number first,
// then the given key/value pairs in order.
func (s *ResponsesStream) emit(typ string, kv ...any) {
	v := &s.val
	v.Reset()
	v.WriteString(`{"type":`)
	v.WriteString(strconv.Quote(typ))
	v.WriteString(`,"sequence_number":`)
	v.WriteString(strconv.Itoa(s.seq))
	s.seq++
	for i := 0; i+1 < len(kv); i += 2 {
		key, _ := kv[i].(string)
		v.WriteString(`,"`)
		v.WriteString(key)
		v.WriteString(`":`)
		v.Write(s.json.encode(kv[i+1], "null"))
	}
	v.WriteByte('}')
	writeEvent(&s.buf, typ, v.Bytes())
}

// KeepAlive writes an SSE comment (the Responses stream has no ping
// event), so that clients and proxies see a stream whose upstream holds
// its text back is alive. It does nothing after the stream has ended.
func (s *ResponsesStream) KeepAlive() error {
	if s.ended {
		return nil
	}
	s.buf.WriteString(": keep-alive\n\n")
	return s.write()
}

func (s *ResponsesStream) write() error {
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
