package tools

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"helexa/internal/demo"
	"helexa/node"
	"helexa/roles/config"
)

// demoSynthSpec is the model `make build` writes when no stories260K is
// at hand (the Makefile's demo-model recipe uses the same shape).
var demoSynthSpec = synthSpec{Arch: "llama", Dim: 64, Layers: 2, Heads: 4, FFN: 172, Ctx: 512, Type: "F32",
	Seed: 1, Name: "helexa-demo", RopeTheta: 10000, NormEps: 1e-5}

// A neuron with an empty models folder serves the built-in demo model at
// once, without the network, and it answers a chat completion: with the
// synthetic model made from the built-in vocabulary, and with the model
// this binary embeds when it was built with one.
func TestDemoModelServesOffline(t *testing.T) {
	p := filepath.Join(t.TempDir(), "demo.gguf")
	if _, err := writeSynth(context.Background(), demoSynthSpec, demo.ByteVocab(), p); err != nil {
		t.Fatal(err)
	}
	synth, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("synthetic", func(t *testing.T) { demoCompletion(t, synth) })
	t.Run("embedded", func(t *testing.T) {
		data, ok := demo.Model()
		if !ok {
			t.Skip("this test binary has no embedded demo model (run `make demo-model` first)")
		}
		demoCompletion(t, data)
	})
}

func demoCompletion(t *testing.T, model []byte) {
	var hits atomic.Int32
	net := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		http.Error(w, "offline", http.StatusServiceUnavailable)
	}))
	defer net.Close()

	dir := filepath.Join(t.TempDir(), "models")
	yes := true
	cfg := config.Neuron{ModelsDirs: []string{dir}, MaxInFlight: 1, MaxQueueDepth: 1, MaxWait: config.Duration(30 * time.Second),
		DemoModel: &yes, DemoModelURL: net.URL + "/stories260K.gguf", Threads: 1, BatchTokens: config.DefaultBatchTokens, KVCacheShare: 0.5}
	var logs lockedBuffer
	s, err := node.New(cfg, zerolog.New(&logs))
	if err != nil {
		t.Fatal(err)
	}
	s.SetDemoModel(model)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Start(ctx) }()
	defer func() {
		cancel()
		<-done
		_ = s.Shutdown(context.Background())
	}()
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()

	post := func(path, body string) (int, []byte) {
		t.Helper()
		resp, err := http.Post(srv.URL+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(srv.URL + "/v1/models")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if strings.Contains(string(b), `"id":"`+demo.ID+`"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the demo model is not listed: %s\nlogs:\n%s", b, logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if code, b := post("/models/load", `{"model":"demo"}`); code != http.StatusOK {
		t.Fatalf("load: %d %s", code, b)
	}
	code, b := post("/v1/chat/completions",
		`{"model":"demo","messages":[{"role":"user","content":"Once upon a time"}],"max_tokens":8,"temperature":0,"ignore_eos":true}`)
	if code != http.StatusOK {
		t.Fatalf("chat: %d %s", code, b)
	}
	var out struct {
		Choices []struct {
			Message struct {
				Content string `json:"content"`
			} `json:"message"`
		} `json:"choices"`
		Usage struct {
			CompletionTokens int `json:"completion_tokens"`
		} `json:"usage"`
	}
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("chat answer %s: %v", b, err)
	}
	if len(out.Choices) != 1 || out.Choices[0].Message.Content == "" || out.Usage.CompletionTokens != 8 {
		t.Fatalf("chat answer without a completion: %s", b)
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("the neuron went to the network %d times", n)
	}
	got, err := os.ReadFile(filepath.Join(dir, demo.FileName))
	if err != nil || !bytes.Equal(got, model) {
		t.Fatalf("models folder does not hold the demo model (%v)", err)
	}
	if !strings.Contains(logs.String(), "helexa pull") {
		t.Fatalf("the log does not say how to add models:\n%s", logs.String())
	}
}

// lockedBuffer is a bytes.Buffer for logs written from several goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
