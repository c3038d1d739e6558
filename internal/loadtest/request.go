package loadtest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"
)

// reqResult is what one streamed request measured.
type reqResult struct {
	start, end  time.Time
	chunks      []time.Time // arrival of each chunk that carried output
	usageOut    int         // completion_tokens from the usage chunk, -1 when none came
	usagePrompt int         // prompt_tokens from the usage chunk, 0 when none came
	err         error
}

// HTTPError is a non-200 answer to a request.
type HTTPError struct {
	Status  int
	Message string // the error envelope's message, else the start of the body
}

func (e *HTTPError) Error() string {
	msg := fmt.Sprintf("the server answered %d %s", e.Status, http.StatusText(e.Status))
	if e.Message != "" {
		msg += ": " + e.Message
	}
	switch e.Status {
	case http.StatusUnauthorized, http.StatusForbidden:
		msg += " (check --api-key)"
	case http.StatusNotFound:
		msg += " (check --model, and that --url is the API root)"
	}
	return msg
}

// body is the JSON of one request.
func (r *runner) body(prompt string, maxTokens int) []byte {
	req := map[string]any{
		"model":          r.cfg.Model,
		"stream":         true,
		"stream_options": map[string]any{"include_usage": true},
		"max_tokens":     maxTokens,
		"ignore_eos":     true,
		"temperature":    0,
	}
	if r.cfg.Endpoint == Completions {
		req["prompt"] = prompt
	} else {
		req["messages"] = []map[string]string{{"role": "user", "content": prompt}}
	}
	b, _ := json.Marshal(req) // maps of strings and numbers always encode
	return b
}

// do sends one streaming request and reads its stream to the end.
func (r *runner) do(ctx context.Context, prompt string, maxTokens int) (res reqResult) {
	res.usageOut = -1
	if r.cfg.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, r.cfg.Timeout)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.url, bytes.NewReader(r.body(prompt, maxTokens)))
	if err != nil {
		res.err = fmt.Errorf("building the request: %w", err)
		return res
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream")
	if r.cfg.APIKey != "" {
		req.Header.Set("Authorization", "Bearer "+r.cfg.APIKey)
	}
	res.start = r.cfg.now()
	resp, err := r.client.Do(req)
	if err != nil {
		res.err = timeoutHint(ctx, err, r.cfg.Timeout)
		return res
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		res.err = &HTTPError{Status: resp.StatusCode, Message: errorMessage(b)}
		return res
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "text/event-stream" {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		res.err = fmt.Errorf("the answer is not an event stream (Content-Type %q): %s", resp.Header.Get("Content-Type"), shorten(string(b), 200))
		return res
	}
	if err := r.readStream(resp.Body, &res); err != nil {
		res.err = timeoutHint(ctx, err, r.cfg.Timeout)
	}
	return res
}

// timeoutHint names the per-request timeout when it was what ended a
// request.
func timeoutHint(ctx context.Context, err error, timeout time.Duration) error {
	if timeout > 0 && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("no complete answer within --timeout %s: %w", timeout, err)
	}
	return err
}

// streamChunk holds the fields of a chat or completions chunk that carry
// output or usage.
type streamChunk struct {
	Choices []struct {
		Delta *struct {
			Content          string `json:"content"`
			ReasoningContent string `json:"reasoning_content"`
			Reasoning        string `json:"reasoning"`
			ToolCalls        []struct {
				Function struct {
					Name      string `json:"name"`
					Arguments string `json:"arguments"`
				} `json:"function"`
			} `json:"tool_calls"`
		} `json:"delta"`
		Text string `json:"text"`
	} `json:"choices"`
	Usage *struct {
		PromptTokens     int `json:"prompt_tokens"`
		CompletionTokens int `json:"completion_tokens"`
	} `json:"usage"`
	Error json.RawMessage `json:"error"`
}

// hasOutput reports whether the chunk carries generated text.
func (c *streamChunk) hasOutput() bool {
	for _, ch := range c.Choices {
		if ch.Text != "" {
			return true
		}
		if d := ch.Delta; d != nil {
			if d.Content != "" || d.ReasoningContent != "" || d.Reasoning != "" {
				return true
			}
			for _, tc := range d.ToolCalls {
				if tc.Function.Name != "" || tc.Function.Arguments != "" {
					return true
				}
			}
		}
	}
	return false
}

// readStream reads server-sent events until [DONE] or the end of the
// body, stamping each chunk that carries output.
func (r *runner) readStream(body io.Reader, res *reqResult) error {
	br := bufio.NewReaderSize(body, 64<<10)
	events := 0
	for {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 {
			data, ok := bytes.CutPrefix(bytes.TrimRight(line, "\r\n"), []byte("data:"))
			if ok {
				data = bytes.TrimSpace(data)
				events++
				if string(data) == "[DONE]" {
					break
				}
				now := r.cfg.now()
				var c streamChunk
				if jerr := json.Unmarshal(data, &c); jerr != nil {
					return fmt.Errorf("event %d of the stream is not JSON (%v): %s", events, jerr, shorten(string(data), 200))
				}
				if len(c.Error) > 0 && string(c.Error) != "null" {
					return fmt.Errorf("the stream ended with an error after %d output chunks: %s", len(res.chunks), errorMessage(data))
				}
				if c.hasOutput() {
					res.chunks = append(res.chunks, now)
				}
				if c.Usage != nil {
					res.usageOut, res.usagePrompt = c.Usage.CompletionTokens, c.Usage.PromptTokens
				}
			}
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("the stream broke after %d output chunks: %w", len(res.chunks), err)
		}
	}
	res.end = r.cfg.now()
	if len(res.chunks) == 0 {
		return fmt.Errorf("the stream carried no output (%d events)", events)
	}
	return nil
}

// errorMessage is the message of an OpenAI or Anthropic error envelope
// ({"error": {"message": …}} or {"error": "…"}), else the body itself,
// shortened.
func errorMessage(b []byte) string {
	var env struct {
		Error   json.RawMessage `json:"error"`
		Message string          `json:"message"`
	}
	if json.Unmarshal(b, &env) == nil {
		var obj struct {
			Message string `json:"message"`
		}
		var s string
		switch {
		case json.Unmarshal(env.Error, &obj) == nil && obj.Message != "":
			return obj.Message
		case json.Unmarshal(env.Error, &s) == nil && s != "":
			return s
		case env.Message != "":
			return env.Message
		}
	}
	return shorten(strings.TrimSpace(string(b)), 200)
}

func shorten(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
