package translate

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// MaxSSELine is the longest line SSEReader accepts, in bytes.
const MaxSSELine = 16 << 20

// ErrSSELineTooLong is returned by SSEReader.Next for a line over MaxSSELine.
var ErrSSELineTooLong = errors.New("sse: line longer than 16 MiB")

// SSEReader reads Server-Sent Events from an upstream stream. It accepts
// "\n" and "\r\n" line ends, joins multi-line data with "\n", skips comment
// lines (unless Comments is set) and events without data, and returns
// "[DONE]" as ordinary data. Not safe for concurrent use.
type SSEReader struct {
	// Comments makes Next return each comment line (a keep-alive) as an
	// event named ":" with no data, so a relay can pass it on.
	Comments bool

	r     *bufio.Reader
	line  []byte
	event string
	data  []byte
	has   bool // a data field was seen for the pending event
}

// NewSSEReader returns a reader of the events in r.
func NewSSEReader(r io.Reader) *SSEReader {
	return &SSEReader{r: bufio.NewReaderSize(r, 64<<10)}
}

// Reset makes s read r from its start, keeping its buffers, so that a
// reader can be pooled. A nil r releases the one it held.
func (s *SSEReader) Reset(r io.Reader) {
	s.r.Reset(r)
	s.event, s.data, s.has = "", s.data[:0], false
}

// Next returns the next event's name (empty when the stream gave none) and
// data. It returns io.EOF after the last event; an event still pending when
// the stream ends without a blank line is returned first. The data slice is
// valid until the next call.
func (s *SSEReader) Next() (event string, data []byte, err error) {
	for {
		line, err := s.readLine()
		if err != nil {
			if err == io.EOF && s.has {
				return s.dispatch()
			}
			return "", nil, err
		}
		if len(line) == 0 {
			if s.has {
				return s.dispatch()
			}
			s.event = ""
			continue
		}
		if line[0] == ':' {
			if s.Comments {
				return ":", nil, nil
			}
			continue // comment
		}
		field, value := line, []byte(nil)
		if i := bytes.IndexByte(line, ':'); i >= 0 {
			field, value = line[:i], line[i+1:]
			if len(value) > 0 && value[0] == ' ' {
				value = value[1:]
			}
		}
		switch string(field) {
		case "data":
			if s.has {
				s.data = append(s.data, '\n')
			}
			s.data = append(s.data, value...)
			s.has = true
		case "event":
			s.event = string(value)
		}
		// id, retry and unknown fields are ignored.
	}
}

func (s *SSEReader) dispatch() (string, []byte, error) {
	ev, data := s.event, s.data
	s.event, s.data, s.has = "", s.data[:0], false
	return ev, data, nil
}

// readLine returns one line without its end. The final line of a stream
// without a trailing newline is returned before io.EOF.
func (s *SSEReader) readLine() ([]byte, error) {
	s.line = s.line[:0]
	for {
		frag, err := s.r.ReadSlice('\n')
		if len(s.line)+len(frag) > MaxSSELine+2 {
			return nil, ErrSSELineTooLong
		}
		s.line = append(s.line, frag...)
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			if err == io.EOF && len(s.line) > 0 {
				break
			}
			if err == io.EOF {
				return nil, io.EOF
			}
			return nil, fmt.Errorf("reading event stream: %w", err)
		}
		break
	}
	line := s.line
	line = bytes.TrimSuffix(line, []byte{'\n'})
	line = bytes.TrimSuffix(line, []byte{'\r'})
	if len(line) > MaxSSELine {
		return nil, ErrSSELineTooLong
	}
	return line, nil
}
