package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"helexa/internal/pull"
	"helexa/internal/pull/pulltest"
)

// helexa pull puts the file into the first models_dir of --config, taking
// the Hub's address from HF_ENDPOINT.
func TestPullCommand(t *testing.T) {
	data := append([]byte("GGUF"), bytes.Repeat([]byte{1}, 5000)...)
	hub := pulltest.OneFileHub("org/tiny-GGUF", "tiny-Q8_0.gguf", data)
	defer hub.Close()
	t.Setenv("HF_ENDPOINT", hub.URL)
	t.Setenv("HF_TOKEN", "")
	t.Setenv("HELEXA_MODELS_DIR", "")
	dir := filepath.Join(t.TempDir(), "models")
	cfg := filepath.Join(t.TempDir(), "helexa.toml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf("[neuron]\nmodels_dir = %q\n", dir)), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout bytes.Buffer
	cmd := rootCommand()
	cmd.Writer = &stdout
	if err := cmd.Run(context.Background(), []string{"helexa", "--config", cfg, "pull", "org/tiny-GGUF:q8_0"}); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "tiny-Q8_0.gguf")); !bytes.Equal(got, data) {
		t.Fatal("the model is not in the configured models folder")
	}
	if !strings.Contains(stdout.String(), `model "tiny-Q8_0"`) {
		t.Fatalf("output %q", stdout.String())
	}
}

// --node sends the pull to the gateway's /nodes/NAME/models/pull and reads
// the neuron's NDJSON lines to the result or the error.
func TestPullCommandNode(t *testing.T) {
	var path, auth, body string
	answer := ""
	gw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path, auth = r.URL.Path, r.Header.Get("Authorization")
		b, _ := io.ReadAll(r.Body)
		body = string(b)
		w.Header().Set("Content-Type", "application/x-ndjson")
		_, _ = io.WriteString(w, answer)
	}))
	defer gw.Close()
	run := func() (string, error) {
		var stdout bytes.Buffer
		cmd := rootCommand()
		cmd.Writer = &stdout
		err := cmd.Run(context.Background(), []string{"helexa", "pull", "--node", "gpu1", "--url", gw.URL, "--api-key", "k", "org/m-GGUF:Q4_K_M"})
		return stdout.String(), err
	}
	answer = `{"status":"downloading","file":"m.gguf","completed":5,"total":10}` + "\n" + `{"status":"success","model":"m-Q4_K_M","files":["m-Q4_K_M.gguf"],"bytes":10}` + "\n"
	got, err := run()
	if err != nil || !strings.Contains(got, `node gpu1 pulled org/m-GGUF:Q4_K_M: model "m-Q4_K_M"`) {
		t.Fatalf("%q, %v", got, err)
	}
	if path != "/nodes/gpu1/models/pull" || auth != "Bearer k" || !strings.Contains(body, `"model":"org/m-GGUF:Q4_K_M"`) {
		t.Fatalf("gateway saw %s %q %s", path, auth, body)
	}
	answer = `{"status":"error","error":"listing org/m-GGUF: not found (HTTP 404)"}` + "\n"
	if _, err := run(); err == nil || !strings.Contains(err.Error(), "HTTP 404") {
		t.Fatalf("error line: %v", err)
	}
	answer = `{"status":"downloading","file":"m.gguf"}` + "\n"
	if _, err := run(); err == nil || !strings.Contains(err.Error(), "without a result") {
		t.Fatalf("cut stream: %v", err)
	}
}

// Off a terminal, progress is plain lines; on one, a bar redrawn with \r.
func TestPullProgress(t *testing.T) {
	var plain, tty bytes.Buffer
	for _, p := range []*progress{newProgress(&plain, false), newProgress(&tty, true)} {
		p.event(pull.Event{Status: "resolving", File: "org/m:Q4"})
		p.event(pull.Event{Status: "downloading", File: "m.gguf", Completed: 0, Total: 100, Index: 1, Count: 2})
		p.event(pull.Event{Status: "downloading", File: "m.gguf", Completed: 100, Total: 100, Index: 1, Count: 2})
		p.event(pull.Event{Status: "done", File: "m.gguf", Completed: 100, Total: 100, Index: 1, Count: 2})
		p.finish()
	}
	if strings.Contains(plain.String(), "\r") || !strings.Contains(plain.String(), "[1/2] downloading m.gguf:   0%") ||
		!strings.Contains(plain.String(), "[1/2] m.gguf: 100 B, checksum ok") {
		t.Fatalf("plain progress:\n%s", plain.String())
	}
	if !strings.Contains(tty.String(), "\r[1/2] m.gguf  [########################]  100%") {
		t.Fatalf("terminal progress: %q", tty.String())
	}
}
