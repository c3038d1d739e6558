package node

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// BenchmarkConstrainedDecode measures the decode time per token with and
// without an output grammar on a real model (HELEXA_BENCH_MODEL, else the
// shared synth-25m-Q4_K_M), from the neuron's own timings: free text,
// json_object, and a JSON Schema compiled afresh for every request (cold:
// each grammar state walks the token trie once) or the same schema again
// (warm: the model's grammar cache holds the states earlier answers met),
// and the same greedy request again (every mask cached). It reports
// ms/token and the overhead against free text.
//
//	HELEXA_BENCH_MODEL=/path/synth-125m-Q4_K_M.gguf go test ./node -run XXX -bench ConstrainedDecode -benchtime 4x
func BenchmarkConstrainedDecode(b *testing.B) {
	n, id := benchNeuron(b, 1)
	perToken := func(b *testing.B, body map[string]any) (float64, int) {
		if _, ok := body["temperature"]; !ok {
			body["temperature"] = 1
		}
		body["model"], body["prompt"], body["max_tokens"], body["ignore_eos"] = id, "Once upon a time", 96, true
		data, _ := json.Marshal(body)
		resp, err := http.Post(n.srv.URL+"/v1/completions", "application/json", strings.NewReader(string(data)))
		if err != nil {
			b.Fatal(err)
		}
		defer resp.Body.Close()
		var out completionResponse
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != 200 {
			b.Fatalf("%d %v", resp.StatusCode, err)
		}
		return out.Timings.PredictedMS, out.Timings.PredictedN
	}
	schema := func(salt int) map[string]any {
		s := fmt.Sprintf(`{"type":"object","properties":{"title%d":{"type":"string","maxLength":40},"year":{"type":"integer","minimum":1900,"maximum":2100},"tags":{"type":"array","items":{"type":"string","maxLength":12},"maxItems":4},"ok":{"type":"boolean"}},"required":["title%d","year","tags","ok"],"additionalProperties":false}`, salt, salt)
		return map[string]any{"type": "json_schema", "json_schema": map[string]any{"name": "s", "schema": json.RawMessage(s)}}
	}
	salt := 0
	cases := []struct {
		name string
		body func() map[string]any
	}{
		{"free", func() map[string]any { return map[string]any{} }},
		{"json_object", func() map[string]any { return map[string]any{"response_format": map[string]any{"type": "json_object"}} }},
		{"schema-cold", func() map[string]any { salt++; return map[string]any{"response_format": schema(salt)} }},
		{"schema-warm", func() map[string]any { return map[string]any{"response_format": schema(0)} }},
		// the same greedy request again: every state's mask is cached
		{"schema-repeat", func() map[string]any { return map[string]any{"response_format": schema(-1), "temperature": 0} }},
	}
	// The cases take turns in every round, so that a busy machine slows
	// them alike and the ratios hold.
	ms := make([]float64, len(cases))
	tokens := make([]int, len(cases))
	for _, c := range cases {
		perToken(b, c.body()) // warm up (and fill the cache for the warm cases)
	}
	for b.Loop() {
		for i, c := range cases {
			m, t := perToken(b, c.body())
			ms[i] += m
			tokens[i] += t
		}
	}
	free := ms[0] / float64(tokens[0])
	for i, c := range cases {
		pt := ms[i] / float64(tokens[i])
		b.ReportMetric(pt, c.name+"-ms/token")
		if i > 0 {
			b.ReportMetric((pt/free-1)*100, c.name+"-%overhead")
		}
	}
}
