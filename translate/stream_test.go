package translate

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/translate")

const streamDir = "../testdata/translate/streams"

// fixedSources makes ids and times reproducible for the test's duration.
func fixedSources(t testing.TB) {
	t.Helper()
	oldID, oldNow := idSource, nowUnix
	idSource = &countingReader{}
	nowUnix = func() int64 { return 1790000000 }
	t.Cleanup(func() { idSource, nowUnix = oldID, oldNow })
}

// countingReader yields 0, 1, 2, … as bytes.
type countingReader struct{ n byte }

func (r *countingReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = r.n
		r.n++
	}
	return len(p), nil
}

// streamSink is what the gateway gives a converter.
type streamSink interface {
	Chunk([]byte) error
	Close() error
	Fail(string) error
}

// feed drives a converter with a transcript: one data payload per line,
// "[DONE]" closes, "!fail msg" fails; without either it closes at the end.
func feed(t testing.TB, s streamSink, transcript []byte) {
	t.Helper()
	sc := bufio.NewScanner(bytes.NewReader(transcript))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
		case line == "[DONE]":
			if err := s.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			return
		case strings.HasPrefix(line, "!fail "):
			if err := s.Fail(strings.TrimPrefix(line, "!fail ")); err != nil {
				t.Fatalf("Fail: %v", err)
			}
			return
		default:
			if err := s.Chunk([]byte(line)); err != nil {
				t.Fatalf("Chunk(%s): %v", line, err)
			}
		}
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

func TestStreamGolden(t *testing.T) {
	inputs, err := filepath.Glob(filepath.Join(streamDir, "*.jsonl"))
	if err != nil || len(inputs) == 0 {
		t.Fatalf("no transcripts in %s: %v", streamDir, err)
	}
	req, err := os.ReadFile(filepath.Join(streamDir, "request.responses.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range inputs {
		name := strings.TrimSuffix(filepath.Base(in), ".jsonl")
		transcript, err := os.ReadFile(in)
		if err != nil {
			t.Fatal(err)
		}
		for _, dialect := range []string{"anthropic", "responses"} {
			t.Run(name+"/"+dialect, func(t *testing.T) {
				fixedSources(t)
				var out bytes.Buffer
				flushes := 0
				flush := func() { flushes++ }
				if dialect == "anthropic" {
					feed(t, NewAnthropicStream(&out, "claude-local", flush), transcript)
					if err := checkAnthropicEvents(out.Bytes()); err != nil {
						t.Fatalf("invalid Anthropic stream: %v\n%s", err, out.Bytes())
					}
				} else {
					feed(t, NewResponsesStream(&out, req, flush), transcript)
					if err := checkResponsesEvents(out.Bytes()); err != nil {
						t.Fatalf("invalid Responses stream: %v\n%s", err, out.Bytes())
					}
				}
				if flushes == 0 {
					t.Error("flush never called")
				}
				golden := filepath.Join(streamDir, name+"."+dialect+".sse")
				if *update {
					if err := os.WriteFile(golden, out.Bytes(), 0o644); err != nil {
						t.Fatal(err)
					}
					return
				}
				want, err := os.ReadFile(golden)
				if err != nil {
					t.Fatalf("%v (run go test -update to create it)", err)
				}
				if !bytes.Equal(out.Bytes(), want) {
					t.Fatalf("output differs from %s (go test -update rewrites it)\n got:\n%s\nwant:\n%s", golden, out.Bytes(), want)
				}
			})
		}
	}
}

type parsedEvent struct {
	name string
	data map[string]any
}

func parseEvents(out []byte) ([]parsedEvent, error) {
	r := NewSSEReader(bytes.NewReader(out))
	var evs []parsedEvent
	for {
		name, data, err := r.Next()
		if err == io.EOF {
			return evs, nil
		}
		if err != nil {
			return nil, err
		}
		var m map[string]any
		if err := json.Unmarshal(data, &m); err != nil {
			return nil, fmt.Errorf("event %d (%s): data is not a JSON object: %v", len(evs), name, err)
		}
		if m["type"] != name {
			return nil, fmt.Errorf("event %d: name %q but data type %v", len(evs), name, m["type"])
		}
		evs = append(evs, parsedEvent{name, m})
	}
}

func num(v any) int {
	f, _ := v.(float64)
	return int(f)
}

// checkAnthropicEvents verifies the Messages streaming grammar: message_start
// first; blocks numbered from 0, one open at a time, deltas matching the
// block's kind; one ping right after the first block starts; message_delta
// then message_stop last, or an error event last.
func checkAnthropicEvents(out []byte) error {
	evs, err := parseEvents(out)
	if err != nil {
		return err
	}
	if len(evs) == 0 {
		return fmt.Errorf("no events")
	}
	if last := evs[len(evs)-1].name; last != "message_stop" && last != "error" {
		return fmt.Errorf("last event %s", last)
	}
	open, blocks, pings := -1, 0, 0
	kinds := map[int]string{}
	sawDelta := false
	for i, e := range evs {
		if i == 0 && e.name != "message_start" && e.name != "error" {
			return fmt.Errorf("first event %s", e.name)
		}
		if i > 0 && e.name == "message_start" {
			return fmt.Errorf("event %d: second message_start", i)
		}
		if sawDelta && e.name != "message_stop" {
			return fmt.Errorf("event %d: %s after message_delta", i, e.name)
		}
		switch e.name {
		case "content_block_start":
			if open >= 0 {
				return fmt.Errorf("event %d: block %d starts while %d is open", i, num(e.data["index"]), open)
			}
			if num(e.data["index"]) != blocks {
				return fmt.Errorf("event %d: block index %d, want %d", i, num(e.data["index"]), blocks)
			}
			cb, _ := e.data["content_block"].(map[string]any)
			kinds[blocks], _ = cb["type"].(string)
			open = blocks
			blocks++
			if blocks == 1 && (i+1 >= len(evs) || evs[i+1].name != "ping") {
				return fmt.Errorf("event %d: no ping after the first content_block_start", i)
			}
		case "ping":
			if pings++; pings > 1 {
				return fmt.Errorf("event %d: second ping", i)
			}
		case "content_block_delta":
			idx := num(e.data["index"])
			kind, ok := kinds[idx]
			if !ok || idx != open {
				return fmt.Errorf("event %d: delta for block %d while %d is open", i, idx, open)
			}
			d, _ := e.data["delta"].(map[string]any)
			want := map[string][]string{"text": {"text_delta"}, "tool_use": {"input_json_delta"},
				"thinking": {"thinking_delta", "signature_delta"}}[kind]
			dt, _ := d["type"].(string)
			if !contains(want, dt) {
				return fmt.Errorf("event %d: %s in a %s block", i, dt, kind)
			}
		case "content_block_stop":
			if num(e.data["index"]) != open {
				return fmt.Errorf("event %d: stop of block %d while %d is open", i, num(e.data["index"]), open)
			}
			open = -1
		case "message_delta":
			if open >= 0 {
				return fmt.Errorf("event %d: message_delta with block %d open", i, open)
			}
			sawDelta = true
		case "message_stop":
			if !sawDelta {
				return fmt.Errorf("event %d: message_stop without message_delta", i)
			}
		case "error":
			if i != len(evs)-1 {
				return fmt.Errorf("event %d: error is not last", i)
			}
		case "message_start":
		default:
			return fmt.Errorf("event %d: unknown event %s", i, e.name)
		}
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// checkResponsesEvents verifies the Responses streaming grammar: sequence
// numbers from 0 without gaps; response.created and response.in_progress
// first; every item added once and done once, deltas only for open items,
// done text equal to the deltas; a terminal response event last whose output
// holds every item.
func checkResponsesEvents(out []byte) error {
	evs, err := parseEvents(out)
	if err != nil {
		return err
	}
	if len(evs) < 3 {
		return fmt.Errorf("only %d events", len(evs))
	}
	if evs[0].name != "response.created" || evs[1].name != "response.in_progress" {
		return fmt.Errorf("starts with %s, %s", evs[0].name, evs[1].name)
	}
	last := evs[len(evs)-1]
	switch last.name {
	case "response.completed", "response.incomplete", "response.failed":
	default:
		return fmt.Errorf("last event %s", last.name)
	}
	type item struct {
		id   string
		text strings.Builder
		done bool
	}
	var items []*item
	byID := map[string]*item{}
	for i, e := range evs {
		if num(e.data["sequence_number"]) != i {
			return fmt.Errorf("event %d (%s): sequence_number %v", i, e.name, e.data["sequence_number"])
		}
		if strings.HasPrefix(e.name, "response.") && e.data["response"] != nil && i != len(evs)-1 && i > 1 {
			return fmt.Errorf("event %d: %s before the end", i, e.name)
		}
		id, _ := e.data["item_id"].(string)
		switch e.name {
		case "response.output_item.added":
			it, _ := e.data["item"].(map[string]any)
			iid, _ := it["id"].(string)
			if num(e.data["output_index"]) != len(items) || byID[iid] != nil || iid == "" {
				return fmt.Errorf("event %d: item %q added at %d with %d items", i, iid, num(e.data["output_index"]), len(items))
			}
			n := &item{id: iid}
			items = append(items, n)
			byID[iid] = n
		case "response.output_text.delta", "response.function_call_arguments.delta", "response.reasoning_summary_text.delta",
			"response.custom_tool_call_input.delta":
			it := byID[id]
			if it == nil || it.done {
				return fmt.Errorf("event %d: delta for item %q that is not open", i, id)
			}
			d, _ := e.data["delta"].(string)
			it.text.WriteString(d)
		case "response.output_text.done", "response.function_call_arguments.done", "response.reasoning_summary_text.done",
			"response.custom_tool_call_input.done":
			it := byID[id]
			if it == nil || it.done {
				return fmt.Errorf("event %d: done for item %q that is not open", i, id)
			}
			key := "text"
			switch e.name {
			case "response.function_call_arguments.done":
				key = "arguments"
			case "response.custom_tool_call_input.done":
				key = "input"
			}
			if got, _ := e.data[key].(string); got != it.text.String() {
				return fmt.Errorf("event %d: done %s %q, deltas gave %q", i, key, got, it.text.String())
			}
		case "response.output_item.done":
			it2, _ := e.data["item"].(map[string]any)
			iid, _ := it2["id"].(string)
			it := byID[iid]
			if it == nil || it.done {
				return fmt.Errorf("event %d: item %q done twice or never added", i, iid)
			}
			it.done = true
		}
	}
	resp, _ := last.data["response"].(map[string]any)
	output, _ := resp["output"].([]any)
	if len(output) != len(items) {
		return fmt.Errorf("final response has %d items, stream added %d", len(output), len(items))
	}
	for _, it := range items {
		if !it.done && last.name != "response.failed" {
			return fmt.Errorf("item %s never done", it.id)
		}
	}
	return nil
}

// An unreadable chunk must not truncate the client's stream silently.
func TestStreamBadChunk(t *testing.T) {
	fixedSources(t)
	good := []byte(`{"id":"chatcmpl-x","created":1,"choices":[{"index":0,"delta":{"content":"hi"}}]}`)
	for _, dialect := range []string{"anthropic", "responses"} {
		var out bytes.Buffer
		var s streamSink
		if dialect == "anthropic" {
			s = NewAnthropicStream(&out, "m", nil)
		} else {
			s = NewResponsesStream(&out, []byte(`{"model":"m"}`), nil)
		}
		if err := s.Chunk(good); err != nil {
			t.Fatal(err)
		}
		err := s.Chunk([]byte(`{"choices":[{"delta":`))
		if !errors.Is(err, ErrBadChunk) {
			t.Fatalf("%s: err = %v, want ErrBadChunk", dialect, err)
		}
		n := out.Len()
		if err := s.Close(); err != nil || out.Len() != n {
			t.Fatalf("%s: Close after failure wrote %d bytes, err %v", dialect, out.Len()-n, err)
		}
		evs, err := parseEvents(out.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		last := evs[len(evs)-1].name
		if (dialect == "anthropic" && last != "error") || (dialect == "responses" && last != "response.failed") {
			t.Fatalf("%s: stream ends with %s", dialect, last)
		}
	}
}

type failWriter struct{ n int }

func (w *failWriter) Write(p []byte) (int, error) {
	if w.n--; w.n < 0 {
		return 0, errors.New("client gone")
	}
	return len(p), nil
}

func TestStreamWriteError(t *testing.T) {
	chunk := []byte(`{"id":"x","choices":[{"index":0,"delta":{"content":"hi"}}]}`)
	for _, s := range []streamSink{
		NewAnthropicStream(&failWriter{}, "m", nil),
		NewResponsesStream(&failWriter{}, nil, nil),
	} {
		if err := s.Chunk(chunk); err == nil || !strings.Contains(err.Error(), "client gone") {
			t.Fatalf("%T: err = %v, want the write error", s, err)
		}
	}
}

// A prompt count the upstream sends early reaches message_start.
func TestAnthropicStreamEarlyUsage(t *testing.T) {
	var out bytes.Buffer
	s := NewAnthropicStream(&out, "m", nil)
	if err := s.Chunk([]byte(`{"id":"x","choices":[{"index":0,"delta":{"content":"a"}}],"usage":{"prompt_tokens":12,"completion_tokens":1,"prompt_tokens_details":{"cached_tokens":2}}}`)); err != nil {
		t.Fatal(err)
	}
	evs, err := parseEvents(out.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	msg, _ := evs[0].data["message"].(map[string]any)
	u, _ := msg["usage"].(map[string]any)
	if num(u["input_tokens"]) != 10 || num(u["cache_read_input_tokens"]) != 2 || num(u["output_tokens"]) != 0 {
		t.Fatalf("message_start usage = %v", u)
	}
}
