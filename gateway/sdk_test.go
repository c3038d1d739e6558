package gateway

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/anthropics/anthropic-sdk-go/v2"
	aoption "github.com/anthropics/anthropic-sdk-go/v2/option"
	"github.com/openai/openai-go/v3"
	ooption "github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/responses"
	"github.com/openai/openai-go/v3/shared"

	"helexa/roles/config"
)

// The official SDKs against the gateway over a fake neuron: streaming,
// non-streaming, tool calls and errors.

func sdkGateway(t *testing.T) *testGateway {
	a := newFakeNeuron(t, "a", "m1*")
	return startGateway(t, []*fakeNeuron{a}, withAlias("claude-fast", "m1"),
		func(cfg *config.Config, _ *config.Catalogue) { cfg.Gateway.APIKeys = []string{"k"} })
}

func openaiClient(tg *testGateway, key string) openai.Client {
	return openai.NewClient(ooption.WithBaseURL(tg.srv.URL+"/v1/"), ooption.WithAPIKey(key), ooption.WithMaxRetries(0))
}

func anthropicClient(tg *testGateway, key string) anthropic.Client {
	return anthropic.NewClient(aoption.WithBaseURL(tg.srv.URL), aoption.WithAPIKey(key), aoption.WithMaxRetries(0))
}

var weatherTool = openai.ChatCompletionFunctionTool(shared.FunctionDefinitionParam{
	Name:       "get_weather",
	Parameters: shared.FunctionParameters{"type": "object", "properties": map[string]any{"city": map[string]any{"type": "string"}}},
})

func TestOpenAISDKChat(t *testing.T) {
	tg := sdkGateway(t)
	c := openaiClient(tg, "k")
	ctx := context.Background()
	params := openai.ChatCompletionNewParams{Model: "m1", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")}}

	resp, err := c.Chat.Completions.New(ctx, params)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Choices[0].Message.Content != "Hello there!" || resp.Usage.CompletionTokens != 3 {
		t.Fatalf("answer %+v", resp)
	}

	stream := c.Chat.Completions.NewStreaming(ctx, params)
	var acc openai.ChatCompletionAccumulator
	for stream.Next() {
		acc.AddChunk(stream.Current())
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if got := acc.Choices[0].Message.Content; got != "Hello there!" {
		t.Fatalf("streamed %q", got)
	}

	tp := params
	tp.Tools = []openai.ChatCompletionToolUnionParam{weatherTool}
	resp, err = c.Chat.Completions.New(ctx, tp)
	if err != nil {
		t.Fatal(err)
	}
	tc := resp.Choices[0].Message.ToolCalls
	if len(tc) != 1 || tc[0].Function.Name != "get_weather" || tc[0].Function.Arguments != `{"city":"Paris"}` || resp.Choices[0].FinishReason != "tool_calls" {
		t.Fatalf("tool call %+v", resp.Choices[0])
	}
	stream = c.Chat.Completions.NewStreaming(ctx, tp)
	acc = openai.ChatCompletionAccumulator{}
	for stream.Next() {
		acc.AddChunk(stream.Current())
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if tc := acc.Choices[0].Message.ToolCalls; len(tc) != 1 || tc[0].Function.Arguments != `{"city":"Paris"}` {
		t.Fatalf("streamed tool call %+v", acc.Choices[0].Message)
	}
}

func TestOpenAISDKErrors(t *testing.T) {
	tg := sdkGateway(t)
	ctx := context.Background()
	params := openai.ChatCompletionNewParams{Model: "nope", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")}}
	good, bad := openaiClient(tg, "k"), openaiClient(tg, "bad")
	_, err := good.Chat.Completions.New(ctx, params)
	var oe *openai.Error
	if !errors.As(err, &oe) || oe.StatusCode != http.StatusNotFound || oe.Code != "model_not_found" {
		t.Fatalf("unknown model: %v", err)
	}
	params.Model = "m1"
	_, err = bad.Chat.Completions.New(ctx, params)
	if !errors.As(err, &oe) || oe.StatusCode != http.StatusUnauthorized {
		t.Fatalf("bad key: %v", err)
	}
	// A stream that breaks off surfaces as an error, not a short answer.
	fakeOf(t, tg).set(func(f *fakeNeuron) { f.breakAfter = 2 })
	stream := good.Chat.Completions.NewStreaming(ctx, params)
	for stream.Next() {
	}
	if stream.Err() == nil {
		t.Fatal("broken stream ended without error")
	}
}

func TestOpenAISDKResponses(t *testing.T) {
	tg := sdkGateway(t)
	c := openaiClient(tg, "k")
	ctx := context.Background()
	params := responses.ResponseNewParams{Model: "m1", Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("hi")}}
	resp, err := c.Responses.New(ctx, params)
	if err != nil {
		t.Fatal(err)
	}
	if resp.OutputText() != "Hello there!" {
		t.Fatalf("output %q", resp.OutputText())
	}
	stream := c.Responses.NewStreaming(ctx, params)
	text, completed := "", false
	for stream.Next() {
		ev := stream.Current()
		switch ev.Type {
		case "response.output_text.delta":
			text += ev.Delta
		case "response.completed":
			completed = true
		}
	}
	if err := stream.Err(); err != nil || text != "Hello there!" || !completed {
		t.Fatalf("stream %q completed=%v err=%v", text, completed, err)
	}
	params.PreviousResponseID = openai.String("resp_123")
	_, err = c.Responses.New(ctx, params)
	var oe *openai.Error
	if !errors.As(err, &oe) || oe.StatusCode != http.StatusBadRequest {
		t.Fatalf("previous_response_id: %v", err)
	}
}

func TestAnthropicSDKMessages(t *testing.T) {
	tg := sdkGateway(t)
	c := anthropicClient(tg, "k")
	ctx := context.Background()
	params := anthropic.MessageNewParams{Model: "claude-fast", MaxTokens: 64,
		Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("hi"))}}
	msg, err := c.Messages.New(ctx, params)
	if err != nil {
		t.Fatal(err)
	}
	if len(msg.Content) != 1 || msg.Content[0].Text != "Hello there!" || msg.StopReason != anthropic.StopReasonEndTurn || msg.Usage.OutputTokens != 3 {
		t.Fatalf("message %+v", msg)
	}
	if string(msg.Model) != "claude-fast" {
		t.Fatalf("model %q, want the name the client asked for", msg.Model)
	}

	stream := c.Messages.NewStreaming(ctx, params)
	var acc anthropic.Message
	for stream.Next() {
		if err := acc.Accumulate(stream.Current()); err != nil {
			t.Fatal(err)
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if len(acc.Content) != 1 || acc.Content[0].Text != "Hello there!" || acc.StopReason != anthropic.StopReasonEndTurn {
		t.Fatalf("streamed %+v", acc)
	}

	tp := params
	tp.Tools = []anthropic.ToolUnionParam{{OfTool: &anthropic.ToolParam{Name: "get_weather",
		InputSchema: anthropic.ToolInputSchemaParam{Properties: map[string]any{"city": map[string]any{"type": "string"}}}}}}
	msg, err = c.Messages.New(ctx, tp)
	if err != nil {
		t.Fatal(err)
	}
	if len(msg.Content) != 1 || msg.Content[0].Type != "tool_use" || msg.Content[0].Name != "get_weather" || string(msg.Content[0].Input) != `{"city":"Paris"}` || msg.StopReason != anthropic.StopReasonToolUse {
		t.Fatalf("tool use %+v", msg)
	}
	stream = c.Messages.NewStreaming(ctx, tp)
	acc = anthropic.Message{}
	for stream.Next() {
		if err := acc.Accumulate(stream.Current()); err != nil {
			t.Fatal(err)
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if len(acc.Content) != 1 || acc.Content[0].Type != "tool_use" || string(acc.Content[0].Input) != `{"city":"Paris"}` {
		t.Fatalf("streamed tool use %+v", acc.Content)
	}

	count, err := c.Messages.CountTokens(ctx, anthropic.MessageCountTokensParams{Model: "claude-fast",
		Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("hi"))}})
	if err != nil || count.InputTokens != 7 {
		t.Fatalf("count_tokens %+v %v", count, err)
	}
}

func TestAnthropicSDKErrors(t *testing.T) {
	tg := sdkGateway(t)
	ctx := context.Background()
	params := anthropic.MessageNewParams{Model: "nope", MaxTokens: 8,
		Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("hi"))}}
	good, bad := anthropicClient(tg, "k"), anthropicClient(tg, "bad")
	_, err := good.Messages.New(ctx, params)
	var ae *anthropic.Error
	if !errors.As(err, &ae) || ae.StatusCode != http.StatusNotFound {
		t.Fatalf("unknown model: %v", err)
	}
	params.Model = "m1"
	_, err = bad.Messages.New(ctx, params)
	if !errors.As(err, &ae) || ae.StatusCode != http.StatusUnauthorized {
		t.Fatalf("bad key: %v", err)
	}
	fakeOf(t, tg).set(func(f *fakeNeuron) { f.breakAfter = 2 })
	stream := good.Messages.NewStreaming(ctx, params)
	for stream.Next() {
	}
	if stream.Err() == nil {
		t.Fatal("broken stream ended without error")
	}
}

// fakeOf finds the fake neuron behind the gateway's first node.
func fakeOf(t *testing.T, tg *testGateway) *fakeNeuron {
	t.Helper()
	f, ok := fakes.Load(tg.g.fleet.nodes[0].ref.Endpoint)
	if !ok {
		t.Fatal("no fake neuron registered")
	}
	return f.(*fakeNeuron)
}
