package translate

import (
	"errors"
	"io"
	"strings"
	"testing"
)

type sseEvent struct{ event, data string }

func readAllEvents(r io.Reader) ([]sseEvent, error) {
	sr := NewSSEReader(r)
	var out []sseEvent
	for {
		ev, data, err := sr.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, sseEvent{ev, string(data)})
	}
}

func TestSSEReader(t *testing.T) {
	f := func(name, in string, want ...sseEvent) {
		t.Helper()
		t.Run(name, func(t *testing.T) {
			got, err := readAllEvents(strings.NewReader(in))
			if err != nil {
				t.Fatalf("error: %v", err)
			}
			if len(got) != len(want) {
				t.Fatalf("got %d events %q, want %d %q", len(got), got, len(want), want)
			}
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("event %d = %q, want %q", i, got[i], want[i])
				}
			}
		})
	}
	f("empty", "")
	f("openai stream", "data: {\"a\":1}\n\ndata: {\"b\":2}\n\ndata: [DONE]\n\n",
		sseEvent{"", `{"a":1}`}, sseEvent{"", `{"b":2}`}, sseEvent{"", "[DONE]"})
	f("crlf", "event: x\r\ndata: 1\r\n\r\ndata: 2\r\n\r\n", sseEvent{"x", "1"}, sseEvent{"", "2"})
	f("multi-line data", "data: a\ndata: b\ndata:c\n\n", sseEvent{"", "a\nb\nc"})
	f("comments and unknown fields", ": keep-alive\nid: 7\nretry: 100\ndata: x\n\n: bye\n", sseEvent{"", "x"})
	f("event name resets per event", "event: one\ndata: 1\n\ndata: 2\n\n", sseEvent{"one", "1"}, sseEvent{"", "2"})
	f("event without data is dropped", "event: lonely\n\ndata: 2\n\n", sseEvent{"", "2"})
	f("no final blank line", "data: last", sseEvent{"", "last"})
	f("empty data field", "data:\n\n", sseEvent{"", ""})
	f("only one leading space stripped", "data:  two\n\n", sseEvent{"", " two"})
	f("blank lines between events", "\n\n\ndata: a\n\n\n\ndata: b\n\n", sseEvent{"", "a"}, sseEvent{"", "b"})
}

func TestSSEReaderLongLine(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates 16 MiB")
	}
	big := strings.Repeat("x", MaxSSELine-len("data: "))
	got, err := readAllEvents(strings.NewReader("data: " + big + "\n\n"))
	if err != nil || len(got) != 1 || len(got[0].data) != len(big) {
		t.Fatalf("line at the limit: %d events, err %v", len(got), err)
	}
	_, err = readAllEvents(strings.NewReader("data: " + big + "x\n\n"))
	if !errors.Is(err, ErrSSELineTooLong) {
		t.Fatalf("line over the limit: err = %v, want ErrSSELineTooLong", err)
	}
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

func TestSSEReaderReadError(t *testing.T) {
	boom := errors.New("boom")
	_, err := readAllEvents(io.MultiReader(strings.NewReader("data: a\n"), errReader{boom}))
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want wrapped boom", err)
	}
}

func FuzzSSEReader(f *testing.F) {
	for _, s := range []string{
		"data: {\"a\":1}\n\ndata: [DONE]\n\n",
		"event: x\r\ndata: 1\r\ndata: 2\r\n\r\n",
		": c\n\ndata",
		"data:\r\n\r\n\r",
		"event\nid\n:\n\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		events, err := readAllEvents(strings.NewReader(string(in)))
		if err != nil {
			t.Fatalf("error on %d bytes: %v", len(in), err)
		}
		var total int
		for _, e := range events {
			total += len(e.data)
		}
		if total > len(in) {
			t.Fatalf("%d bytes of data from %d bytes of input", total, len(in))
		}
	})
}

func TestBadRequestText(t *testing.T) {
	e := badRequest("model", "field required")
	if e.Error() != "invalid_request_error (model): field required" || e.Text() != "model: field required" {
		t.Fatalf("Error() = %q, Text() = %q", e.Error(), e.Text())
	}
}

// With Comments set, each comment line comes back as an event named ":"
// (a relay passes keep-alives on), in order with the data events.
func TestSSEReaderComments(t *testing.T) {
	sr := NewSSEReader(strings.NewReader("data: a\n\n: keep-alive\n\n: another\ndata: b\n\n"))
	sr.Comments = true
	var got []sseEvent
	for {
		ev, data, err := sr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, sseEvent{ev, string(data)})
	}
	want := []sseEvent{{"", "a"}, {":", ""}, {":", ""}, {"", "b"}}
	if len(got) != len(want) {
		t.Fatalf("events %q, want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("event %d = %q, want %q", i, got[i], want[i])
		}
	}
}
