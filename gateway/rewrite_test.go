package gateway

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestRewriteRequest(t *testing.T) {
	f := func(in, model string, usage bool, want string, wantChanged bool) {
		t.Helper()
		got, changed, err := rewriteRequest(nil, []byte(in), model, usage)
		if err != nil {
			t.Fatalf("rewrite(%s): %v", in, err)
		}
		if string(got) != want || changed != wantChanged {
			t.Fatalf("rewrite(%s)\n got %s (changed %v)\nwant %s (changed %v)", in, got, changed, want, wantChanged)
		}
	}
	f(`{"model":"a"}`, "a", false, `{"model":"a"}`, false)
	f(`{"model":"alias","x":1}`, "real", false, `{"model":"real","x":1}`, true)
	f(` { "x" : {"model":"inner"} , "model" : "alias" } `, "id/with\"quote", false, ` { "x" : {"model":"inner"} , "model" : "id/with\"quote" } `, true)
	f(`{"model":"a","stream":true}`, "a", true, `{"stream_options":{"include_usage":true},"model":"a","stream":true}`, true)
	f(`{}`, "a", true, `{"stream_options":{"include_usage":true}}`, true)
	f(`{"model":"a","stream_options":{"include_usage":false}}`, "a", true, `{"model":"a","stream_options":{"include_usage":true}}`, true)
	f(`{"model":"a","stream_options":null}`, "a", true, `{"model":"a","stream_options":{"include_usage":true}}`, true)
	f(`{"model":"a","stream_options":{"include_usage":true}}`, "a", true, `{"model":"a","stream_options":{"include_usage":true}}`, false)
	f(`{"mod\u0065l":"x","model":"y"}`, "z", false, `{"mod\u0065l":"z","model":"z"}`, true)
	f(`{"s":"a \" } , \"model\":1","model":"b"}`, "c", false, `{"s":"a \" } , \"model\":1","model":"c"}`, true)
}

func TestInspect(t *testing.T) {
	f := func(in string, want reqFacts) {
		t.Helper()
		got, err := inspect([]byte(in))
		if err != nil {
			t.Fatalf("inspect(%s): %v", in, err)
		}
		if got != want {
			t.Fatalf("inspect(%s) = %+v, want %+v", in, got, want)
		}
	}
	f(`{"model":"m","stream":true}`, reqFacts{Model: "m", HasModel: true, Stream: true})
	f(`{"model":"\u00e9"}`, reqFacts{Model: "é", HasModel: true})
	f(`{"model":null}`, reqFacts{HasModel: true, ModelBad: true})
	f(`{"stream":false,"stream_options":{"include_usage":true}}`, reqFacts{HasSO: true, WantUsage: true})
	f(`{"model":"a","model":"b"}`, reqFacts{Model: "b", HasModel: true})
	if _, err := inspect([]byte(`[1]`)); err == nil {
		t.Fatal("array accepted")
	}
}

func TestDecodeSpeed(t *testing.T) {
	tps, ok := decodeSpeed([]byte(`{"usage":{},"timings":{"prompt_n":11,"prompt_ms":5.0,"predicted_n":3,"predicted_ms":30.0}}`))
	if !ok || tps != 100 {
		t.Fatalf("tps %v %v", tps, ok)
	}
	if _, ok := decodeSpeed([]byte(`{"timings":{"predicted_n":0}}`)); ok {
		t.Fatal("speed from no tokens")
	}
}

func TestUsageAndChunkKind(t *testing.T) {
	u, ok := usageOf([]byte(`{"choices":[],"usage":{"prompt_tokens":11,"completion_tokens":3,"prompt_tokens_details":{"cached_tokens":2}}}`))
	if !ok || u != (usage{11, 3, 2}) {
		t.Fatalf("usage %+v %v", u, ok)
	}
	if _, ok := usageOf([]byte(`{"usage":null}`)); ok {
		t.Fatal("null usage read")
	}
	f := func(in string, choices, usageOnly bool) {
		t.Helper()
		c, u := chunkKind([]byte(in))
		if c != choices || u != usageOnly {
			t.Fatalf("chunkKind(%s) = %v %v", in, c, u)
		}
	}
	f(`{"choices":[{"delta":{}}]}`, true, false)
	f(`{"choices":[ ],"usage":{"prompt_tokens":1}}`, false, true)
	f(`{"choices":[{"delta":{}}],"usage":{"prompt_tokens":1}}`, true, false)
	f(`{"choices":[],"usage":null}`, false, false)
}

// FuzzRewriteRequest checks that for any JSON object the rewrite gives valid
// JSON that decodes to the same value with only "model" (when present)
// replaced and, when asked, stream_options set to include usage.
func FuzzRewriteRequest(f *testing.F) {
	for _, s := range []string{
		`{"model":"a"}`, `{}`, ` {"model" : "x\"y", "stream":true, "n":[1,{"model":2}]}`,
		`{"stream_options":{"include_usage":false},"model":"m"}`, `{"model":null}`, `{"mod\u0065l":"q"}`,
		`{"a":"\\","model":"\u00e9\ud83d\ude00"}`, `{"model":"a","model":"b","stream_options":null}`,
	} {
		f.Add([]byte(s), "replacement", true)
		f.Add([]byte(s), "", false)
	}
	f.Fuzz(func(t *testing.T, in []byte, model string, usage bool) {
		if !json.Valid(in) {
			return
		}
		var orig any
		if err := json.Unmarshal(in, &orig); err != nil {
			return
		}
		om, isObj := orig.(map[string]any)
		out, changed, err := rewriteRequest(nil, in, model, usage)
		if !isObj {
			if err == nil {
				t.Fatalf("non-object accepted: %s", in)
			}
			return
		}
		if err != nil {
			t.Fatalf("rewrite(%s): %v", in, err)
		}
		if !json.Valid(out) {
			t.Fatalf("invalid output for %s: %s", in, out)
		}
		if !changed && !bytes.Equal(out, in) {
			t.Fatal("unchanged output differs from input")
		}
		var got map[string]any
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatal(err)
		}
		if _, ok := om["model"]; ok {
			om["model"] = []rune(model) // each invalid byte becomes U+FFFD
			om["model"] = string(om["model"].([]rune))
		}
		if usage {
			so, _ := om["stream_options"].(map[string]any)
			if so == nil || so["include_usage"] != true {
				om["stream_options"] = map[string]any{"include_usage": true}
			}
		}
		if diff := cmp.Diff(any(om), any(got)); diff != "" {
			t.Fatalf("rewrite(%s, %q, %v) changed more than asked (-want +got):\n%s", in, model, usage, diff)
		}
	})
}

// FuzzChunkReaders feeds arbitrary bytes, as a broken neuron could send, to
// the readers used on stream chunks and answers: they must never panic, and
// on valid JSON objects usageOf must agree with encoding/json.
func FuzzChunkReaders(f *testing.F) {
	for _, s := range []string{
		`{"choices":[],"usage":{"prompt_tokens":11,"completion_tokens":3,"prompt_tokens_details":{"cached_tokens":2}}}`,
		`{"choices":[{"delta":{"content":"hi"}}],"timings":{"predicted_n":3,"predicted_ms":30}}`,
		`{"error":{"message":"boom"}}`, `{"`, `{"a":`, `{"a":"\`, `{"a":[{"b":"}`, `{"usage":{"prompt_tokens":`, `[]`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		chunkKind(b)
		isErrorChunk(b)
		decodeSpeed(b)
		_, _ = inspect(b)
		u, ok := usageOf(b)
		if !json.Valid(b) || !ok {
			return
		}
		var v struct {
			Usage *struct {
				Prompt     any `json:"prompt_tokens"`
				Completion any `json:"completion_tokens"`
			} `json:"usage"`
		}
		if json.Unmarshal(b, &v) != nil || v.Usage == nil {
			return
		}
		if p, isNum := v.Usage.Prompt.(float64); isNum && p == float64(int(p)) && p >= 0 && p < 1e9 && bytes.Count(b, []byte(`"usage"`)) == 1 && bytes.Count(b, []byte(`"prompt_tokens"`)) == 1 && int(p) != u.Prompt {
			t.Fatalf("prompt_tokens %v, read %d from %s", p, u.Prompt, b)
		}
	})
}
