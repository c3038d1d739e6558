package roles

import (
	"bufio"
	"context"
	"encoding/json"
	"helexa/internal/testshared"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2"
	aoption "github.com/anthropics/anthropic-sdk-go/v2/option"
	"github.com/openai/openai-go/v3"
	ooption "github.com/openai/openai-go/v3/option"
	"github.com/rs/zerolog"

	"helexa/roles/config"
)

// sharedModels returns ../shared/models beside the repository, or skips.
func sharedModels(t testing.TB) string {
	t.Helper()
	dir := testshared.ModuleRoot(t)
	m := filepath.Join(dir, "..", "shared", "models")
	if _, err := os.Stat(m); err != nil {
		t.Skipf("shared models not found at %s", m)
	}
	return m
}

// runAll starts --role=all on loopback ports with models linked from the
// shared folder, and returns the gateway's and neuron's base URLs.
func runAll(t testing.TB, models ...string) (gw, neuron string) {
	t.Helper()
	shared := sharedModels(t)
	dir := t.TempDir()
	for _, m := range models {
		src, _ := filepath.Abs(filepath.Join(shared, m))
		if err := os.Symlink(src, filepath.Join(dir, filepath.Base(m))); err != nil {
			t.Fatal(err)
		}
	}
	toml := `
[gateway]
listen = "127.0.0.1:0"
metrics_listen = ""
poll_interval = "100ms"

[neuron]
listen = "127.0.0.1:0"
models_dir = "` + filepath.ToSlash(dir) + `"
max_in_flight = 2
demo_model = false
follow_symlinks = true
`
	cfg, err := config.Parse("helexa.toml", []byte(toml))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Gateway.StateDir = t.TempDir() // each gateway its own usage store
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan Addrs, 1)
	done := make(chan error, 1)
	go func() {
		done <- RunConfig(ctx, Options{Role: "all", Log: zerolog.New(io.Discard), Ready: func(a Addrs) { ready <- a }}, cfg)
	}()
	var a Addrs
	select {
	case a = <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("helexa --role=all did not start: %v", err)
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatal("helexa --role=all did not start in 30s")
	}
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("RunConfig: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("helexa did not shut down in 30s")
		}
	})
	gw, neuron = "http://"+a.Gateway, "http://"+a.Neuron
	// wait until the gateway has polled the local neuron's models
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(gw + "/v1/models")
		if err == nil {
			var l struct {
				Data []struct {
					ID string `json:"id"`
				} `json:"data"`
			}
			_ = json.NewDecoder(resp.Body).Decode(&l)
			resp.Body.Close()
			if len(l.Data) >= len(models) {
				return gw, neuron
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the gateway never listed the local models (%v)", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestRoleAllEndToEnd: one process serves an OpenAI client and an
// Anthropic client through the gateway to a real model on the local
// neuron (cold-loaded on the first request).
func TestRoleAllEndToEnd(t *testing.T) {
	gw, neuron := runAll(t, "stories260K.gguf")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	oc := openai.NewClient(ooption.WithBaseURL(gw+"/v1/"), ooption.WithAPIKey("unused"), ooption.WithMaxRetries(0))
	params := openai.ChatCompletionNewParams{Model: "stories260K",
		Messages:  []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Tell me a story.")},
		MaxTokens: openai.Int(16), Temperature: openai.Float(0),
		StreamOptions: openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}}
	st := oc.Chat.Completions.NewStreaming(ctx, params)
	var text strings.Builder
	var usage openai.CompletionUsage
	finish := ""
	for st.Next() {
		c := st.Current()
		if len(c.Choices) > 0 {
			text.WriteString(c.Choices[0].Delta.Content)
			if c.Choices[0].FinishReason != "" {
				finish = c.Choices[0].FinishReason
			}
		}
		if c.Usage.TotalTokens > 0 {
			usage = c.Usage
		}
	}
	if err := st.Err(); err != nil {
		t.Fatal(err)
	}
	if text.Len() == 0 || finish != "length" || usage.CompletionTokens != 16 {
		t.Fatalf("OpenAI stream through the gateway: %q finish=%q usage=%+v", text.String(), finish, usage)
	}

	// the same request non-streaming gives the same greedy text
	params.StreamOptions = openai.ChatCompletionStreamOptionsParam{}
	full, err := oc.Chat.Completions.New(ctx, params)
	if err != nil {
		t.Fatal(err)
	}
	if full.Choices[0].Message.Content != text.String() {
		t.Fatalf("non-streaming %q, streaming %q", full.Choices[0].Message.Content, text.String())
	}

	ac := anthropic.NewClient(aoption.WithBaseURL(gw), aoption.WithAPIKey("unused"), aoption.WithMaxRetries(0))
	ast := ac.Messages.NewStreaming(ctx, anthropic.MessageNewParams{Model: "stories260K", MaxTokens: 16,
		Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("Tell me a story."))}},
		aoption.WithJSONSet("temperature", 0))
	var msg anthropic.Message
	for ast.Next() {
		if err := msg.Accumulate(ast.Current()); err != nil {
			t.Fatal(err)
		}
	}
	if err := ast.Err(); err != nil {
		t.Fatal(err)
	}
	if len(msg.Content) != 1 || msg.Content[0].Text != text.String() || msg.StopReason != anthropic.StopReasonMaxTokens || msg.Usage.OutputTokens != 16 {
		t.Fatalf("Anthropic stream through the gateway: %+v (OpenAI text %q)", msg, text.String())
	}

	count, err := ac.Messages.CountTokens(ctx, anthropic.MessageCountTokensParams{Model: "stories260K",
		Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("Tell me a story."))}})
	if err != nil {
		t.Fatal(err)
	}
	if count.InputTokens < 5 || count.InputTokens != usage.PromptTokens {
		t.Fatalf("count_tokens %d, the chat's prompt was %d tokens", count.InputTokens, usage.PromptTokens)
	}

	// the neuron itself answers on loopback
	resp, err := http.Get(neuron + "/discovery")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var d struct {
		CUDA struct {
			Available bool `json:"available"`
		} `json:"cuda"`
		Devices []struct {
			Kind string `json:"kind"`
		} `json:"devices"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&d); err != nil || len(d.Devices) == 0 {
		t.Fatalf("discovery: %+v %v", d, err)
	}
}

// BenchmarkRoleAll measures time to first token and decode speed for
// synth-25m-Q4_K_M, directly against the neuron and through the gateway.
// Run with: go test ./roles -run XXX -bench RoleAll -benchtime 3x
func BenchmarkRoleAll(b *testing.B) {
	gw, neuron := runAll(b, "synth-25m-Q4_K_M.gguf")
	resp, err := http.Post(neuron+"/models/load", "application/json", strings.NewReader(`{"model":"synth-25m-Q4_K_M"}`))
	if err != nil || resp.StatusCode != 200 {
		b.Fatalf("load: %v %v", resp, err)
	}
	resp.Body.Close()
	for range 3 { // warm up: page in the weights, grow the buffers
		timedStream(b, neuron, "synth-25m-Q4_K_M", 64)
	}
	for _, target := range []struct{ name, url string }{{"direct", neuron}, {"gateway", gw}} {
		b.Run(target.name, func(b *testing.B) {
			var ttft, decode time.Duration
			var tokens int
			for b.Loop() {
				tf, dt, n := timedStream(b, target.url, "synth-25m-Q4_K_M", 64)
				ttft += tf
				decode += dt
				tokens += n
			}
			b.ReportMetric(float64(ttft.Milliseconds())/float64(b.N), "ms_ttft")
			if decode > 0 {
				b.ReportMetric(float64(tokens)/decode.Seconds(), "decode_tok/s")
			}
		})
	}
}

// timedStream sends a streaming completion and measures the time to the
// first token (prefill of a 20-token prompt plus the first decode step)
// and the decode rate after it.
func timedStream(b *testing.B, base, model string, n int) (ttft, decode time.Duration, tokens int) {
	// A fresh prompt each time, so no KV prefix is reused: the time to
	// first token includes the whole prefill.
	streamSeq++
	body := `{"model":"` + model + `","prompt":"Story ` + itoa(streamSeq) + `: once upon a time, in a land far away, there lived","max_tokens":` +
		itoa(n) + `,"temperature":0,"stream":true}`
	start := time.Now()
	resp, err := http.Post(base+"/v1/completions", "application/json", strings.NewReader(body))
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		data, _ := io.ReadAll(resp.Body)
		b.Fatalf("%d %s", resp.StatusCode, data)
	}
	sc := bufio.NewScanner(resp.Body)
	var first time.Time
	count := 0
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "data: {") {
			continue
		}
		if !strings.Contains(line, `"finish_reason":null`) {
			continue
		}
		count++
		if count == 1 {
			first = time.Now()
		}
	}
	end := time.Now()
	if count == 0 {
		b.Fatal("no tokens streamed")
	}
	return first.Sub(start), end.Sub(first), count - 1
}

var streamSeq int

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}
