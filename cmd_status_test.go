package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"helexa/gateway"
)

// fakeGateway answers /fleet and /v1/models with fixed reports, requiring
// the API key "k".
func fakeGateway(t *testing.T) *httptest.Server {
	seen := time.Now().Add(-3 * time.Second)
	fleet := gateway.FleetReport{Nodes: []gateway.FleetNode{
		{Name: "gpu-a", Endpoint: "http://10.0.0.2:13131", Healthy: true, State: "healthy", Hostname: "box-a",
			MemUsedMB: 20480, MemFreeMB: 61440, ModelsReady: 1,
			Devices: []gateway.FleetDevice{{Index: 0, Kind: "cuda", Name: "NVIDIA H100", MemTotalMB: 81920, MemUsedMB: 20480, MemFreeMB: 61440}},
			Models: []gateway.FleetModel{
				{ID: "qwen3-8b", Status: "loaded", MemEstimateMB: 9000, ContextLength: 8192, InFlight: 2, LastUsed: &seen, Pinned: true},
				{ID: "llama-3-8b", Status: "available", MemEstimateMB: 9500},
			}},
		{Name: "gpu-b", Endpoint: "http://10.0.0.3:13131", State: "unhealthy", LastError: "connection refused", Devices: []gateway.FleetDevice{}, Models: []gateway.FleetModel{}},
	}}
	models := gateway.ModelList{Object: "list", Data: []gateway.ModelEntry{
		{ID: "fast", Object: "model", Loaded: true, AliasOf: "qwen3-8b", ContextLength: 8192, Locations: []gateway.Location{{Node: "gpu-a", Status: "loaded"}}},
		{ID: "qwen3-8b", Object: "model", Loaded: true, ContextLength: 8192, Locations: []gateway.Location{{Node: "gpu-a", Status: "loaded"}}},
		{ID: "future", Object: "model", InCatalogue: true, Locations: []gateway.Location{}},
	}}
	moe := &models.Data[1]
	moe.Arch, moe.ParamCount, moe.ActiveParamCount, moe.Quant = "qwen3moe", 30_532_000_000, 3_300_000_000, "Q4_K_M"
	moe.Capabilities = []string{"chat", "completion", "tools"}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer k" {
			w.WriteHeader(401)
			_, _ = w.Write([]byte(`{"error":{"message":"invalid API key","type":"authentication_error"}}`))
			return
		}
		switch r.URL.Path {
		case "/fleet":
			_ = json.NewEncoder(w).Encode(fleet)
		case "/v1/models":
			_ = json.NewEncoder(w).Encode(models)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func runCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := rootCommand()
	var out bytes.Buffer
	cmd.Writer = &out
	err := cmd.Run(context.Background(), append([]string{"helexa"}, args...))
	return out.String(), err
}

func TestStatusCommand(t *testing.T) {
	srv := fakeGateway(t)
	out, err := runCLI(t, "status", "--url", srv.URL, "--api-key", "k")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"NODE", "gpu-a", "healthy", "box-a", "20.0 GB", "60.0 GB", "1/2", "gpu-b", "unhealthy (connection refused)",
		"NVIDIA H100", "qwen3-8b", "loaded (pinned)", "3s ago", "llama-3-8b", "available"} {
		if !strings.Contains(out, want) {
			t.Errorf("status output lacks %q:\n%s", want, out)
		}
	}
}

func TestModelsCommand(t *testing.T) {
	srv := fakeGateway(t)
	t.Setenv("HELEXA_API_KEY", "k")
	out, err := runCLI(t, "models", "--url", srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"MODEL", "fast → qwen3-8b", "gpu-a:loaded", "8192", "future", "catalogue only",
		"qwen3moe", "30.5B (3.3B active)", "Q4_K_M", "chat,completion,tools"} {
		if !strings.Contains(out, want) {
			t.Errorf("models output lacks %q:\n%s", want, out)
		}
	}
	out, err = runCLI(t, "models", "--url", srv.URL, "--json")
	if err != nil || !strings.Contains(out, `"alias_of":"qwen3-8b"`) {
		t.Fatalf("--json: %v\n%s", err, out)
	}
}

func TestStatusCommandErrors(t *testing.T) {
	srv := fakeGateway(t)
	_, err := runCLI(t, "status", "--url", srv.URL, "--api-key", "wrong")
	if err == nil || !strings.Contains(err.Error(), "invalid API key") || !strings.Contains(err.Error(), "--api-key") {
		t.Fatalf("bad key: %v", err)
	}
	_, err = runCLI(t, "status", "--url", "http://127.0.0.1:1")
	if err == nil || !strings.Contains(err.Error(), "asking the gateway") {
		t.Fatalf("unreachable: %v", err)
	}
}

// --watch redraws the fleet every poll: off a terminal, repeated tables
// under time stamps; on one, each frame clears the screen first. A failed
// poll shows in its frame and the next one draws the table again.
func TestWatchFleet(t *testing.T) {
	calls := 0
	fetch := func(context.Context) ([]byte, error) {
		calls++
		if calls == 2 {
			return nil, errors.New("gateway unreachable")
		}
		return json.Marshal(gateway.FleetReport{Nodes: []gateway.FleetNode{{Name: "gpu1", State: "healthy", Healthy: true}}})
	}
	var plain bytes.Buffer
	if err := watchFleet(context.Background(), &plain, fetch, 10*time.Millisecond, false, "http://gw", 3); err != nil {
		t.Fatal(err)
	}
	got := plain.String()
	if strings.Count(got, "== ") != 3 || strings.Count(got, "NODE") != 2 || !strings.Contains(got, "error: gateway unreachable") || strings.Contains(got, "\x1b[") {
		t.Fatalf("plain frames:\n%s", got)
	}
	calls = 0
	var tty bytes.Buffer
	if err := watchFleet(context.Background(), &tty, fetch, 10*time.Millisecond, true, "http://gw", 1); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(tty.String(), "\x1b[H\x1b[2J") || !strings.Contains(tty.String(), "gpu1") {
		t.Fatalf("terminal frame: %q", tty.String())
	}
	// it stops when interrupted
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- watchFleet(ctx, io.Discard, fetch, time.Hour, false, "http://gw", 0) }()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
