package chattmpl

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// qwen3Template returns the Qwen3 template of the shared cases.
func qwen3Template(b *testing.B) string {
	b.Helper()
	for _, c := range loadCases(b, "hf-templates.public.json") {
		if strings.HasPrefix(c.Name, "qwen3/") {
			return c.Template
		}
	}
	b.Skip("no qwen3 template in the shared cases")
	return ""
}

// conversation20 is a 20-message tool-using conversation: a system prompt,
// user turns, assistant turns with reasoning and tool calls, tool results.
func conversation20() (msgs, tools json.RawMessage) {
	var m []map[string]any
	m = append(m, map[string]any{"role": "system", "content": "You are a careful coding assistant. Answer briefly and use tools when useful."})
	for i := 0; len(m) < 20; i++ {
		switch i % 4 {
		case 0:
			m = append(m, map[string]any{"role": "user", "content": fmt.Sprintf("Step %d: find the weather in city %d and summarise it in two sentences, with ünïcödé ✓.", i, i)})
		case 1:
			m = append(m, map[string]any{"role": "assistant", "content": "", "reasoning_content": "I should call the weather tool first.",
				"tool_calls": []any{map[string]any{"id": fmt.Sprintf("call_%d", i), "type": "function",
					"function": map[string]any{"name": "get_weather", "arguments": map[string]any{"city": fmt.Sprintf("City %d", i), "unit": "celsius"}}}}})
		case 2:
			m = append(m, map[string]any{"role": "tool", "tool_call_id": fmt.Sprintf("call_%d", i-1), "content": `{"temperature": 21, "condition": "sunny", "wind_kph": 12}`})
		case 3:
			m = append(m, map[string]any{"role": "assistant", "content": "<think>\nThe tool says sunny.\n</think>\n\nIt is sunny and 21°C with a light breeze. A fine day to be outside."})
		}
	}
	m = append(m[:19], map[string]any{"role": "user", "content": "Thanks. One more city, please."})
	t := []any{
		map[string]any{"type": "function", "function": map[string]any{"name": "get_weather", "description": "Get the current weather in a city",
			"parameters": map[string]any{"type": "object", "properties": map[string]any{
				"city": map[string]any{"type": "string", "description": "City name"},
				"unit": map[string]any{"type": "string", "enum": []any{"celsius", "fahrenheit"}}}, "required": []any{"city"}}}},
		map[string]any{"type": "function", "function": map[string]any{"name": "search", "description": "Search the web",
			"parameters": map[string]any{"type": "object", "properties": map[string]any{"query": map[string]any{"type": "string"}}, "required": []any{"query"}}}},
	}
	msgs, _ = json.Marshal(m)
	tools, _ = json.Marshal(t)
	return msgs, tools
}

func BenchmarkRenderQwen3Conversation20(b *testing.B) {
	tmpl, err := Parse(qwen3Template(b))
	if err != nil {
		b.Fatal(err)
	}
	msgs, tools := conversation20()
	in := Input{Messages: msgs, Tools: tools, AddGenerationPrompt: true}
	out, err := tmpl.Render(in)
	if err != nil {
		b.Fatal(err)
	}
	if n := strings.Count(out, "<|im_start|>"); n < 15 {
		b.Fatalf("rendered %d turns, want at least 15:\n%s", n, out)
	}
	b.SetBytes(int64(len(out)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := tmpl.Render(in); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseQwen3(b *testing.B) {
	src := qwen3Template(b)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := Parse(src); err != nil {
			b.Fatal(err)
		}
	}
}
