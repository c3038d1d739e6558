package gateway

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

// TestEmbeddingsRoutedLikeChat: /v1/embeddings resolves the model, loads
// it on demand, forwards the body with only the model rewritten, relays
// the answer and counts it under api="embeddings".
func TestEmbeddingsRoutedLikeChat(t *testing.T) {
	a := newFakeNeuron(t, "a", "embed-small")
	tg := startGateway(t, []*fakeNeuron{a}, withAlias("e5", "embed-small"))
	body := `{"model":"e5","input":["hello","world"],"encoding_format":"float"}`
	code, _, resp := tg.post(t, "/v1/embeddings", body)
	if code != 200 {
		t.Fatalf("status %d: %s", code, resp)
	}
	var ans struct {
		Object string `json:"object"`
		Data   []struct {
			Embedding []float32 `json:"embedding"`
		} `json:"data"`
		Usage struct {
			PromptTokens int `json:"prompt_tokens"`
		} `json:"usage"`
	}
	if err := json.Unmarshal(resp, &ans); err != nil || ans.Object != "list" || len(ans.Data) != 1 || ans.Usage.PromptTokens != 5 {
		t.Fatalf("answer %s (%v)", resp, err)
	}
	if a.loads.Load() != 1 {
		t.Fatalf("%d loads, want the cold load", a.loads.Load())
	}
	a.mu.Lock()
	path, sent := a.lastPath, string(a.lastBody)
	a.mu.Unlock()
	if path != "/v1/embeddings" || sent != strings.Replace(body, `"e5"`, `"embed-small"`, 1) {
		t.Fatalf("neuron got %s %s", path, sent)
	}
	out := scrapeMetrics(t, tg.g)
	if !strings.Contains(out, `cortex_requests_total{model="embed-small",node="a",api="embeddings",code="200"} 1`) {
		t.Fatalf("request not counted:\n%s", out)
	}
	// no streaming, no model: 400 before any neuron is asked
	for _, b := range []string{`{"model":"embed-small","input":"x","stream":true}`, `{"input":"x"}`} {
		if code, _, resp := tg.post(t, "/v1/embeddings", b); code != 400 || !strings.Contains(string(resp), `"error"`) {
			t.Errorf("%s: %d %s", b, code, resp)
		}
	}
}

// TestModelFactsInListings: /v1/models and /fleet carry each model's
// architecture, parameter counts, quantization and capabilities.
func TestModelFactsInListings(t *testing.T) {
	a := newFakeNeuron(t, "a", "m1*", "embed-small")
	tg := startGateway(t, []*fakeNeuron{a}, withAlias("fast", "m1"))
	_, body := tg.get(t, "/v1/models")
	var ml ModelList
	if err := json.Unmarshal(body, &ml); err != nil {
		t.Fatal(err)
	}
	got := map[string]ModelEntry{}
	for _, e := range ml.Data {
		got[e.ID] = e
	}
	if e := got["m1"]; e.Arch != "llama" || e.ParamCount != 25_000_000 || e.ActiveParamCount != 25_000_000 || e.Quant != "Q8_0" ||
		!slices.Equal(e.Capabilities, []string{"chat", "completion", "tools"}) {
		t.Errorf("m1: %+v", e)
	}
	if e := got["embed-small"]; e.Arch != "bert" || !slices.Contains(e.Capabilities, "embeddings") || slices.Contains(e.Capabilities, "chat") {
		t.Errorf("embed-small: %+v", e)
	}
	if e := got["fast"]; e.Arch != "llama" || e.ParamCount != 25_000_000 {
		t.Errorf("alias: %+v", e)
	}
	_, body = tg.get(t, "/fleet")
	var fr FleetReport
	if err := json.Unmarshal(body, &fr); err != nil || len(fr.Nodes) != 1 || len(fr.Nodes[0].Models) != 2 {
		t.Fatalf("%s (%v)", body, err)
	}
	if m := fr.Nodes[0].Models[0]; m.ID != "embed-small" || m.Arch != "bert" || m.ParamCount != 33_000_000 || m.Quant != "Q8_0" ||
		!slices.Equal(m.Capabilities, []string{"embeddings", "tokenize"}) {
		t.Errorf("fleet: %+v", m)
	}
}
