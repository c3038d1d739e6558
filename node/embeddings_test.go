package node

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"io"
	"math"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"

	"helexa/node/device"
	"helexa/node/engine"
	"helexa/node/gguf"
)

// writeBertGGUF writes a small random bert model (engine's synthetic
// weights and WordPiece vocabulary) to dir/name.gguf.
func writeBertGGUF(t *testing.T, dir, name string, ctx int) string {
	t.Helper()
	toks, types := engine.BertSyntheticVocab()
	spec := engine.SyntheticSpec{Arch: "bert", Vocab: len(toks), Dim: 32, Layers: 2, Heads: 2, FFN: 64, Ctx: ctx, Seed: 5}
	w, err := engine.SyntheticWeights(spec)
	if err != nil {
		t.Fatal(err)
	}
	g := gguf.NewWriter()
	g.Set("general.architecture", gguf.NewValue("bert"))
	for k, v := range map[string]uint32{"context_length": uint32(ctx), "embedding_length": 32, "feed_forward_length": 64,
		"block_count": 2, "attention.head_count": 2, "pooling_type": 1} {
		g.Set("bert."+k, gguf.NewValue(v))
	}
	g.Set("bert.attention.layer_norm_epsilon", gguf.NewValue(float32(1e-12)))
	g.Set("tokenizer.ggml.model", gguf.NewValue("bert"))
	g.Set("tokenizer.ggml.tokens", gguf.NewArray(toks))
	g.Set("tokenizer.ggml.token_type", gguf.NewArray(types))
	g.Set("tokenizer.ggml.bos_token_id", gguf.NewValue(uint32(2)))
	g.Set("tokenizer.ggml.seperator_token_id", gguf.NewValue(uint32(3)))
	g.Set("tokenizer.ggml.unknown_token_id", gguf.NewValue(uint32(1)))
	ts := []*engine.Tensor{w.TokEmbd, w.Bert.TypeEmbd, w.Bert.PosEmbd, w.Bert.EmbNorm, w.Bert.EmbNormB}
	for i, l := range w.Bert.Layers {
		for _, x := range []*engine.Tensor{l.Wq, l.Bq, l.Wk, l.Bk, l.Wv, l.Bv, l.Wo, l.Bo, l.AttnNorm, l.AttnNormB,
			l.Up, l.UpB, l.Down, l.DownB, l.OutNorm, l.OutNormB} {
			if !strings.HasPrefix(x.Name, "blk.") {
				t.Fatalf("layer %d tensor %s", i, x.Name)
			}
			ts = append(ts, x)
		}
	}
	for _, x := range ts {
		dims := make([]uint64, len(x.Dims))
		for i, d := range x.Dims {
			dims[i] = uint64(d)
		}
		if err := g.AddTensor(x.Name, x.Type, dims, x.Data); err != nil {
			t.Fatal(err)
		}
	}
	p := filepath.Join(dir, name+".gguf")
	if err := g.WriteFile(p); err != nil {
		t.Fatal(err)
	}
	return p
}

func startBertNeuron(t *testing.T) (*testNeuron, string) {
	t.Helper()
	dir := t.TempDir()
	p := writeBertGGUF(t, dir, "tiny-bert", 16)
	n := startNeuron(t, testConfig(dir), realEngine())
	n.load(t, "tiny-bert", 0)
	return n, p
}

func TestEmbeddingsBert(t *testing.T) {
	n, path := startBertNeuron(t)
	// the reference: the engine's own Embed of the same tokens
	m, err := engine.Load(path, engine.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	want := func(text string) []float32 {
		v, err := m.Embed(context.Background(), m.Tok.Encode(text, true, false))
		if err != nil {
			t.Fatal(err)
		}
		return v
	}

	// through the OpenAI SDK, a list of strings, floats
	res, err := n.client().Embeddings.New(context.Background(), openai.EmbeddingNewParams{
		Model: "tiny-bert",
		Input: openai.EmbeddingNewParamsInputUnion{OfArrayOfStrings: []string{"hello world", "the quick brown fox"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Data) != 2 || res.Model != "tiny-bert" || res.Object != "list" {
		t.Fatalf("answer %+v", res)
	}
	wantTokens := len(m.Tok.Encode("hello world", true, false)) + len(m.Tok.Encode("the quick brown fox", true, false))
	if res.Usage.PromptTokens != int64(wantTokens) || res.Usage.TotalTokens != int64(wantTokens) {
		t.Errorf("usage %+v, want %d tokens", res.Usage, wantTokens)
	}
	for i, text := range []string{"hello world", "the quick brown fox"} {
		w := want(text)
		got := res.Data[i].Embedding
		if res.Data[i].Index != int64(i) || len(got) != 32 {
			t.Fatalf("data[%d]: index %d, %d values", i, res.Data[i].Index, len(got))
		}
		for j := range w {
			if math.Abs(got[j]-float64(w[j])) > 1e-6 {
				t.Fatalf("data[%d][%d] = %v, want %v", i, j, got[j], w[j])
			}
		}
	}

	// base64: little-endian float32, the same vector
	var raw struct {
		Data []struct {
			Embedding string `json:"embedding"`
		} `json:"data"`
	}
	if st := n.do(t, "POST", "/v1/embeddings", map[string]any{"model": "tiny-bert", "input": "hello world", "encoding_format": "base64"}, &raw); st != 200 || len(raw.Data) != 1 {
		t.Fatalf("base64: %d %+v", st, raw)
	}
	b, err := base64.StdEncoding.DecodeString(raw.Data[0].Embedding)
	if err != nil || len(b) != 4*32 {
		t.Fatalf("base64 payload: %d bytes, %v", len(b), err)
	}
	w := want("hello world")
	for j := range w {
		if f := math.Float32frombits(binary.LittleEndian.Uint32(b[4*j:])); f != w[j] {
			t.Fatalf("base64[%d] = %v, want %v", j, f, w[j])
		}
	}

	// token ids, one list and a list of lists
	ids := m.Tok.Encode("hello world", true, false)
	var fl struct {
		Data []struct {
			Embedding []float32 `json:"embedding"`
		} `json:"data"`
		Usage struct {
			PromptTokens int `json:"prompt_tokens"`
		} `json:"usage"`
	}
	for _, input := range []any{ids, [][]int32{ids, ids}} {
		if st := n.do(t, "POST", "/v1/embeddings", map[string]any{"model": "tiny-bert", "input": input, "dimensions": 32}, &fl); st != 200 || len(fl.Data) == 0 {
			t.Fatalf("ids %v: %d", input, st)
		}
		if !slices.Equal(fl.Data[0].Embedding, w) || fl.Usage.PromptTokens != len(ids)*len(fl.Data) {
			t.Fatalf("ids: %v, %d tokens", fl.Data[0].Embedding[:3], fl.Usage.PromptTokens)
		}
	}

	var metrics string
	{
		req, _ := http.NewRequest("GET", n.srv.URL+"/metrics", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		metrics = string(b)
	}
	// four requests: the SDK's (2 inputs), base64, ids, lists of ids (2 inputs)
	for _, want := range []string{`neuron_embedding_requests_total{model="tiny-bert"} 4`, `neuron_embedding_inputs_total{model="tiny-bert"} 6`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}

	// an embedding model does not chat or complete; /models says what it does
	var e errEnvelope
	if st := n.do(t, "POST", "/v1/chat/completions", map[string]any{"model": "tiny-bert", "messages": []any{map[string]any{"role": "user", "content": "hi"}}}, &e); st != 400 || code(e) != "model_lacks_capability" {
		t.Errorf("chat: %d %+v", st, e)
	}
	if st := n.do(t, "POST", "/v1/completions", map[string]any{"model": "tiny-bert", "prompt": "hi"}, &e); st != 400 || code(e) != "model_lacks_capability" {
		t.Errorf("completions: %d %+v", st, e)
	}
	if st := n.do(t, "POST", "/tokenize", map[string]any{"model": "tiny-bert", "messages": []any{map[string]any{"role": "user", "content": "hi"}}}, &e); st != 400 || code(e) != "model_lacks_capability" {
		t.Errorf("tokenize messages: %d %+v", st, e)
	}
	var tk struct {
		Tokens []int32 `json:"tokens"`
	}
	if st := n.do(t, "POST", "/tokenize", map[string]any{"model": "tiny-bert", "content": "hello world"}, &tk); st != 200 ||
		!slices.Equal(tk.Tokens, m.Tok.Encode("hello world", false, false)) {
		t.Errorf("tokenize content: %d %v", st, tk.Tokens)
	}
	var list struct {
		Data []modelEntry `json:"data"`
	}
	n.do(t, "GET", "/models", nil, &list)
	if len(list.Data) != 1 || !slices.Equal(list.Data[0].Capabilities, []string{"embeddings", "tokenize"}) || list.Data[0].Arch != "bert" ||
		list.Data[0].ParamCount != m.Info.ParamCount || list.Data[0].ActiveParamCount != m.Info.ParamCount || m.Info.ParamCount == 0 {
		t.Errorf("/models: %+v (params %d)", list.Data, m.Info.ParamCount)
	}
}

func TestEmbeddingsRefusals(t *testing.T) {
	n, _ := startBertNeuron(t)
	// many short inputs are fine, though together they are far longer
	// than the context of 16
	batch := make([]string, 300)
	for i := range batch {
		batch[i] = "hello world"
	}
	var ok struct {
		Data []struct {
			Index int `json:"index"`
		} `json:"data"`
	}
	if st := n.do(t, "POST", "/v1/embeddings", map[string]any{"model": "tiny-bert", "input": batch}, &ok); st != 200 || len(ok.Data) != 300 || ok.Data[299].Index != 299 {
		t.Fatalf("a batch of 300: %d, %d answers", st, len(ok.Data))
	}
	long := strings.Repeat("hello ", 20) // 20 words + [CLS] [SEP] > 16
	for _, c := range []struct {
		body        map[string]any
		status      int
		code, param string
	}{
		{map[string]any{"model": "tiny-bert", "input": long}, 400, "context_length_exceeded", "input"},
		{map[string]any{"model": "tiny-bert", "input": []string{"hello", long}}, 400, "context_length_exceeded", "input[1]"},
		{map[string]any{"model": "tiny-bert", "input": "hello", "dimensions": 16}, 400, "unsupported_parameter", "dimensions"},
		{map[string]any{"model": "tiny-bert", "input": "hello", "encoding_format": "int8"}, 400, "", "encoding_format"},
		{map[string]any{"model": "tiny-bert", "input": ""}, 400, "", "input"},
		{map[string]any{"model": "tiny-bert", "input": []string{}}, 400, "", "input"},
		{map[string]any{"model": "tiny-bert", "input": []int{100000}}, 400, "", "input"},
		{map[string]any{"model": "tiny-bert", "input": map[string]any{"x": 1}}, 400, "", "input"},
		{map[string]any{"model": "tiny-bert"}, 400, "", "input"},
		{map[string]any{"model": "nope", "input": "hello"}, 404, "model_not_found", "model"},
	} {
		var e errEnvelope
		st := n.do(t, "POST", "/v1/embeddings", c.body, &e)
		if st != c.status || code(e) != c.code || param(e) != c.param || e.Error.Message == "" {
			t.Errorf("%v: %d %q %q %q, want %d %q %q", c.body, st, code(e), param(e), e.Error.Message, c.status, c.code, c.param)
		}
	}
}

// TestEmbeddingsNeedACapableRunner: a model whose runner computes no
// embeddings answers 400 model_lacks_capability and does not list the
// capability.
func TestEmbeddingsNeedACapableRunner(t *testing.T) {
	n := startNeuron(t, testConfig(modelsDir(t, "stories260K.gguf")), (&synthEngine{}).hooks())
	n.load(t, "stories260K", 128)
	var e errEnvelope
	if st := n.do(t, "POST", "/v1/embeddings", map[string]any{"model": "stories260K", "input": "hello"}, &e); st != 400 || code(e) != "model_lacks_capability" {
		t.Fatalf("%d %+v", st, e)
	}
	var list struct {
		Data []modelEntry `json:"data"`
	}
	n.do(t, "GET", "/models", nil, &list)
	if slices.Contains(list.Data[0].Capabilities, "embeddings") {
		t.Errorf("capabilities %v", list.Data[0].Capabilities)
	}
}

// embedSynthRunner is the engine double's runner with embeddings: a
// one-hot vector of the sum of the tokens, computed while holding the
// device as a forward pass does (counted in active/maxSeen).
type embedSynthRunner struct{ *synthRunner }

func (r *embedSynthRunner) Embed(tokens []int32) ([]float32, error) {
	e := r.e
	n := e.active.Add(1)
	defer e.active.Add(-1)
	if n > e.maxSeen.Load() {
		e.maxSeen.Store(n)
	}
	time.Sleep(time.Millisecond)
	v := make([]float32, 8)
	s := 0
	for _, t := range tokens {
		s += int(t)
	}
	v[s%8] = 1
	return v, nil
}

// TestEmbeddingsShareTheDeviceWithGeneration: embeddings of a decoder
// run on the device worker, never at the same time as the scheduler's
// forward passes, while completions go on.
func TestEmbeddingsShareTheDeviceWithGeneration(t *testing.T) {
	eng := &synthEngine{embeds: true, delay: time.Millisecond}
	cfg := testConfig(modelsDir(t, "stories260K.gguf"))
	cfg.MaxInFlight, cfg.MaxQueueDepth = 4, 8
	n := startNeuron(t, cfg, eng.hooks())
	n.load(t, "stories260K", 128)
	cl := n.client()
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			_, err := cl.Completions.New(context.Background(), openai.CompletionNewParams{Model: "stories260K",
				Prompt: openai.CompletionNewParamsPromptUnion{OfString: openai.String("Once upon a time")}, MaxTokens: openai.Int(16)})
			if err != nil {
				t.Error(err)
			}
		}()
		go func() {
			defer wg.Done()
			for range 5 {
				res, err := cl.Embeddings.New(context.Background(), openai.EmbeddingNewParams{Model: "stories260K",
					Input: openai.EmbeddingNewParamsInputUnion{OfArrayOfStrings: []string{"a", strings.Repeat("b", i+1)}}})
				if err != nil {
					t.Error(err)
					return
				}
				if len(res.Data) != 2 || len(res.Data[1].Embedding) != 8 {
					t.Errorf("answer %+v", res.Data)
					return
				}
			}
		}()
	}
	wg.Wait()
	if eng.maxSeen.Load() > 1 {
		t.Fatalf("%d device calls ran at once", eng.maxSeen.Load())
	}
	var list struct {
		Data []modelEntry `json:"data"`
	}
	n.do(t, "GET", "/models", nil, &list)
	if !slices.Contains(list.Data[0].Capabilities, "embeddings") || !slices.Contains(list.Data[0].Capabilities, "chat") {
		t.Errorf("capabilities %v", list.Data[0].Capabilities)
	}
}

// TestEmbeddingModelsLoadOnTheCPU: an encoder runs on the CPU whatever the
// device, so its load is accounted there even when a GPU comes first.
func TestEmbeddingModelsLoadOnTheCPU(t *testing.T) {
	dir := t.TempDir()
	writeBertGGUF(t, dir, "tiny-bert", 16)
	n := startNeuron(t, testConfig(dir), realEngine())
	w := device.Start(device.Options{Name: "cuda:fake"})
	gpu := &deviceHandle{index: 0, kind: "cuda", name: "fake GPU", w: w, memTotal: 80 << 30,
		memFree: func() (int64, error) { return 80 << 30, nil }, close: w.Close}
	n.s.mu.Lock()
	n.s.devices = append([]*deviceHandle{gpu}, n.s.devices...)
	n.s.mu.Unlock()
	t.Cleanup(w.Close)
	n.load(t, "tiny-bert", 0)
	n.s.mu.Lock()
	kind := n.s.models["tiny-bert"].inst.dev.kind
	n.s.mu.Unlock()
	if kind != "cpu" {
		t.Fatalf("loaded on %s", kind)
	}
}
