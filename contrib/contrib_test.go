// Package contrib holds the operators' files that ship beside the binary:
// the Grafana dashboard (grafana/helexa.json) and the Prometheus alert
// rules (prometheus/alerts.yml). Its tests check them against the metrics
// the gateway and the neuron really export.
package contrib

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"helexa/gateway"
	"helexa/internal/tools"
	"helexa/node"
	"helexa/roles/config"
)

var metricRe = regexp.MustCompile(`\b(?:cortex|neuron)_[a-z0-9_]+\b`)

// exprs returns every PromQL expression of the dashboard.
func dashboardExprs(t *testing.T) []string {
	b, err := os.ReadFile(filepath.Join("grafana", "helexa.json"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				if s, ok := e.(string); ok && (k == "expr" || k == "definition") {
					out = append(out, s)
				}
				walk(e)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	var d any
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("grafana/helexa.json: %v", err)
	}
	walk(d)
	if len(out) < 20 {
		t.Fatalf("the dashboard has only %d queries", len(out))
	}
	return out
}

// exported starts a neuron serving a small synthetic model and a gateway
// in front of it, sends completions through, and returns the metric names
// both /metrics pages show, plus the gateway's declared families.
func exported(t *testing.T) map[string]bool {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir := t.TempDir()
	synth := tools.Command()
	synth.Writer = io.Discard
	if err := synth.Run(ctx, []string{"tools", "synth", "--dim", "64", "--layers", "2", "--heads", "4", "--ffn", "172",
		"--ctx", "256", "--out", filepath.Join(dir, "m.gguf")}); err != nil {
		t.Fatal(err)
	}
	no := false
	ns, err := node.New(config.Neuron{ModelsDirs: []string{dir}, MaxInFlight: 2, MaxQueueDepth: 2, MaxWait: config.Duration(30 * time.Second),
		DemoModel: &no, Threads: 1, BatchTokens: config.DefaultBatchTokens, KVCacheShare: 0.5}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	ndone := make(chan struct{})
	go func() { _ = ns.Start(ctx); close(ndone) }()
	nsrv := httptest.NewServer(ns.Handler())
	defer func() {
		nsrv.Close()
		cancel()
		<-ndone
		_ = ns.Shutdown(context.Background())
	}()

	cfg := config.Default()
	cfg.Neurons = []config.NeuronRef{{Name: "n1", Endpoint: nsrv.URL}}
	cfg.Gateway.PollInterval = config.Duration(50 * time.Millisecond)
	g, err := gateway.New(cfg, config.Catalogue{}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	gdone := make(chan struct{})
	go func() { g.Run(ctx); close(gdone) }()
	gsrv := httptest.NewServer(g.Handler())
	defer func() {
		gsrv.Close()
		cancel()
		<-gdone
		_ = g.Shutdown(context.Background())
	}()

	get := func(url string) string {
		t.Helper()
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(get(gsrv.URL+"/v1/models"), `"id":"m"`) {
		if time.Now().After(deadline) {
			t.Fatal("the gateway does not list the model")
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, body := range []string{
		`{"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokens":4,"ignore_eos":true,"stream":true}`,
		`{"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokens":4,"ignore_eos":true}`,
		`{"model":"not-there","messages":[{"role":"user","content":"hi"}]}`,
	} {
		resp, err := http.Post(gsrv.URL+"/v1/chat/completions", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	// the gateway's next poll sees the loaded model and the devices
	time.Sleep(200 * time.Millisecond)

	rec := httptest.NewRecorder()
	g.MetricsHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	page := rec.Body.String() + "\n" + get(nsrv.URL+"/metrics")
	names := map[string]bool{}
	for _, line := range strings.Split(page, "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		name := line
		if i := strings.IndexAny(line, "{ "); i >= 0 {
			name = line[:i]
		}
		names[name] = true
	}
	for _, want := range []string{"cortex_requests_total", "cortex_time_to_first_token_seconds_bucket", "cortex_node_up",
		"neuron_in_flight", "neuron_time_to_first_token_seconds_bucket"} {
		if !names[want] {
			t.Fatalf("the scrape lacks %s; got:\n%s", want, page)
		}
	}
	for fam, typ := range gateway.MetricFamilies() {
		if typ == "histogram" {
			for _, s := range []string{"_bucket", "_sum", "_count"} {
				names[fam+s] = true
			}
			continue
		}
		names[fam] = true
	}
	return names
}

// Every metric the dashboard and the alert rules name is one the gateway
// or the neuron exports, and each part of the issue has its panel.
func TestDashboardAndAlertsUseExportedMetrics(t *testing.T) {
	names := exported(t)
	rules, err := os.ReadFile(filepath.Join("prometheus", "alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	sources := map[string][]string{"grafana/helexa.json": dashboardExprs(t), "prometheus/alerts.yml": {string(rules)}}
	used := map[string]bool{}
	for file, texts := range sources {
		for _, s := range texts {
			for _, m := range metricRe.FindAllString(s, -1) {
				used[m] = true
				if !names[m] {
					t.Errorf("%s names %s, which neither the gateway nor the neuron exports", file, m)
				}
			}
		}
	}
	for _, want := range []string{"cortex_requests_total", "cortex_request_errors_total", "cortex_time_to_first_token_seconds_bucket",
		"cortex_request_duration_seconds_bucket", "cortex_tokens_per_second_bucket", "cortex_model_in_flight", "neuron_queue_depth",
		"cortex_model_loaded", "cortex_device_mem_used_mb", "cortex_evictions_total", "cortex_cold_starts_total", "cortex_model_load_seconds_bucket"} {
		if !used[want] {
			t.Errorf("nothing shows %s", want)
		}
	}
	for _, alert := range []string{"HelexaNodeDown", "HelexaHighErrorRate", "HelexaSlowFirstToken", "HelexaQueueSaturated", "HelexaDeviceMemoryLow"} {
		if !strings.Contains(string(rules), "alert: "+alert) {
			t.Errorf("no alert %s", alert)
		}
	}
}

// promtool accepts the rules (CI installs it; skipped without it).
func TestAlertRulesPromtool(t *testing.T) {
	if _, err := exec.LookPath("promtool"); err != nil {
		t.Skip("promtool is not installed (apt-get install prometheus)")
	}
	out, err := exec.Command("promtool", "check", "rules", filepath.Join("prometheus", "alerts.yml")).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}
}
