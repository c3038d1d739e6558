package roles

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

func TestMain(m *testing.M) {
	// Gateways started by these tests keep their usage store here, not in
	// the home folder.
	dir, err := os.MkdirTemp("", "helexa-state-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Setenv("HELEXA_STATE_DIR", dir)
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// slowNeuron is a minimal neuron with model m1 loaded whose streams send
// one chunk every 100 ms.
func slowNeuron(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/health":
			io.WriteString(w, `{"status":"ok","models":[{"id":"m1"}],"devices":[]}`)
		case "/models":
			io.WriteString(w, `{"data":[{"id":"m1","status":"loaded"}]}`)
		case "/discovery":
			io.WriteString(w, `{"hostname":"slow","devices":[]}`)
		case "/v1/chat/completions":
			w.Header().Set("Content-Type", "text/event-stream")
			fl := http.NewResponseController(w)
			for i := range 8 {
				fmt.Fprintf(w, "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"model\":\"m1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"t%d\"},\"finish_reason\":null}]}\n\n", i)
				_ = fl.Flush()
				time.Sleep(100 * time.Millisecond)
			}
			io.WriteString(w, "data: [DONE]\n\n")
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// SIGHUP reloads the keys and the neuron list from the file without
// dropping a stream in flight; a bad file is refused and changes nothing.
func TestSIGHUPReloads(t *testing.T) {
	neuron := slowNeuron(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "helexa.toml")
	write := func(s string) {
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	conf := func(key string) string {
		return fmt.Sprintf("[gateway]\nlisten = \"127.0.0.1:0\"\nmetrics_listen = \"\"\npoll_interval = \"100ms\"\nstate_dir = \"st\"\napi_keys = [%q]\n\n[[neurons]]\nname = \"slow\"\nendpoint = %q\n", key, neuron.URL)
	}
	write(conf("old"))
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan Addrs, 1)
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Options{Role: "gateway", ConfigPath: path, Log: zerolog.New(io.Discard), Ready: func(a Addrs) { ready <- a }})
	}()
	var a Addrs
	select {
	case a = <-ready:
	case err := <-done:
		t.Fatalf("gateway did not start: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("gateway did not start in 10s")
	}
	t.Cleanup(func() { cancel(); <-done })
	if _, err := os.Stat(filepath.Join(dir, "st", "usage.db")); err != nil {
		t.Errorf("usage store not beside the config: %v", err)
	}
	status := func(key string) int {
		req, _ := http.NewRequest(http.MethodGet, "http://"+a.Gateway+"/v1/models", nil)
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if status("old") != 200 {
		t.Fatal("the first key does not work")
	}
	// A stream in flight across the reload.
	var resp *http.Response
	deadline := time.Now().Add(5 * time.Second)
	for {
		req, _ := http.NewRequest(http.MethodPost, "http://"+a.Gateway+"/v1/chat/completions",
			strings.NewReader(`{"model":"m1","stream":true,"messages":[{"role":"user","content":"hi"}]}`))
		req.Header.Set("Authorization", "Bearer old")
		var err error
		if resp, err = http.DefaultClient.Do(req); err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode == 200 || time.Now().After(deadline) {
			break
		}
		resp.Body.Close()
		time.Sleep(50 * time.Millisecond)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	if line, _ := br.ReadString('\n'); !strings.HasPrefix(line, "data: ") {
		t.Fatalf("stream did not start: %d %q", resp.StatusCode, line)
	}

	write(conf("new"))
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(5 * time.Second)
	for status("new") != 200 {
		if time.Now().After(deadline) {
			t.Fatal("SIGHUP did not load the new key")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if status("old") != 401 {
		t.Error("the removed key still works")
	}
	rest, err := io.ReadAll(br)
	if err != nil || !strings.Contains(string(rest), "[DONE]") || strings.Count(string(rest), "data: {") != 7 {
		t.Errorf("the stream in flight was cut by the reload: %v %q", err, rest)
	}

	// A bad file is logged and refused.
	write("[gateway]\napi_keys = [\"newer\"]\nnot_a_key = 1\n")
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if status("new") != 200 || status("newer") != 401 {
		t.Error("a bad file changed the running configuration")
	}
}
