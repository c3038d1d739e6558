package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseDefaults(t *testing.T) {
	c, err := Parse("helexa.toml", []byte(""))
	if err != nil {
		t.Fatal(err)
	}
	if c.Gateway.Listen != DefaultGatewayListen || c.Gateway.MetricsListen != DefaultMetricsListen {
		t.Errorf("listen defaults: %q %q", c.Gateway.Listen, c.Gateway.MetricsListen)
	}
	if c.Gateway.PollInterval.D() != 2*time.Second || c.Eviction.Strategy != "lru" || c.Neuron.Listen != DefaultNeuronListen {
		t.Errorf("defaults not applied: %+v", c)
	}
	if len(c.Neuron.ModelsDirs) != 1 || c.Neuron.ModelsDirs[0] != DefaultModelsDir() {
		t.Errorf("models_dir default: %v", c.Neuron.ModelsDirs)
	}
}

func TestParseFull(t *testing.T) {
	src := `
[gateway]
listen = "127.0.0.1:9000"
api_keys = ["k1", "k2"]
poll_interval = "500ms"
max_body_mb = 8

[eviction]
strategy = "priority"
defrag_after_cycles = 20
idle_unload_after = "30m"

[[neurons]]
name = "a"
endpoint = "http://10.0.0.1:13131"
token = "t"

[[neurons]]
name = "b"
endpoint = "https://b:13131"

[neuron]
models_dir = ["/m1", "/m2"]
threads = 2
preload = ["x"]
`
	c, err := Parse("h.toml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if c.Gateway.PollInterval.D() != 500*time.Millisecond || len(c.Gateway.APIKeys) != 2 || c.Gateway.MaxBodyMB != 8 {
		t.Errorf("gateway: %+v", c.Gateway)
	}
	if c.Eviction.Strategy != "priority" || c.Eviction.IdleUnloadAfter.D() != 30*time.Minute || c.Eviction.DefragAfterCycles != 20 {
		t.Errorf("eviction: %+v", c.Eviction)
	}
	if len(c.Neurons) != 2 || c.Neurons[0].Token != "t" {
		t.Errorf("neurons: %+v", c.Neurons)
	}
	if strings.Join(c.Neuron.ModelsDirs, ",") != "/m1,/m2" || c.Neuron.Threads != 2 {
		t.Errorf("neuron: %+v", c.Neuron)
	}
}

func TestParseModelsDirString(t *testing.T) {
	c, err := Parse("h.toml", []byte("[neuron]\nmodels_dir = \"/models\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Neuron.ModelsDirs) != 1 || c.Neuron.ModelsDirs[0] != "/models" {
		t.Errorf("got %v", c.Neuron.ModelsDirs)
	}
}

func TestParseRefusesBadInput(t *testing.T) {
	f := func(name, src string, wantLines []int, wantIn ...string) {
		t.Helper()
		_, err := Parse("h.toml", []byte(src))
		var ce *Error
		if !errors.As(err, &ce) {
			t.Fatalf("%s: want *Error, got %v", name, err)
		}
		msg := err.Error()
		for _, w := range wantIn {
			if !strings.Contains(msg, w) {
				t.Errorf("%s: message %q lacks %q", name, msg, w)
			}
		}
		if len(ce.Problems) != len(wantLines) {
			t.Fatalf("%s: %d problems, want %d: %s", name, len(ce.Problems), len(wantLines), msg)
		}
		for i, p := range ce.Problems {
			if p.Line != wantLines[i] {
				t.Errorf("%s: problem %d at line %d, want %d (%s)", name, i, p.Line, wantLines[i], p)
			}
		}
	}
	f("unknown keys, all listed", "[gateway]\nlisten = \"0.0.0.0:1\"\nlistn = \"x\"\n[neuron]\nbogus = 1\n", []int{3, 5}, "gateway.listn", "neuron.bogus", "unknown key")
	f("wrong type", "[gateway]\n\npoll_interval = 5\n", []int{3}, "poll_interval")
	f("bad duration", "[gateway]\npoll_interval = \"5 seconds\"\n", []int{2}, "poll_interval", "duration")
	f("bad values, all listed", "[gateway]\nlisten = \"nope\"\n[eviction]\nstrategy = \"fifo\"\n[neuron]\nthreads = -1\n", []int{2, 4, 6}, "gateway.listen", "eviction.strategy", "neuron.threads")
	f("neuron endpoint", "[[neurons]]\nname = \"a\"\nendpoint = \"ftp://x\"\n", []int{3}, "endpoint")
	f("duplicate neuron", "[[neurons]]\nname = \"a\"\nendpoint = \"http://x\"\n[[neurons]]\nname = \"a\"\nendpoint = \"http://y\"\n", []int{2}, "duplicate")
	f("models_dir type", "[neuron]\nmodels_dir = 3\n", []int{2}, "models_dir")
}

func TestLoadFileAndMissing(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "h.toml")
	if err := os.WriteFile(p, []byte("[gateway]\nlisten = \"127.0.0.1:1\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := Load(p)
	if err != nil || c.Gateway.Listen != "127.0.0.1:1" {
		t.Fatalf("Load: %v %+v", err, c.Gateway)
	}
	if _, err := Load(filepath.Join(dir, "missing.toml")); err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
}

func TestExampleConfigsParse(t *testing.T) {
	root := filepath.Join("..", "..")
	for _, name := range []string{"helexa.example.toml"} {
		data, err := os.ReadFile(filepath.Join(root, name))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Parse(name, data); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	data, err := os.ReadFile(filepath.Join(root, "models.example.toml"))
	if err != nil {
		t.Fatal(err)
	}
	cat, err := ParseCatalogue("models.example.toml", data)
	if err != nil {
		t.Fatal(err)
	}
	if len(cat.Models) == 0 || len(cat.Aliases) == 0 {
		t.Errorf("example catalogue is empty: %+v", cat)
	}
}

func TestCatalogue(t *testing.T) {
	src := `
[[models]]
id = "llama-8b"
mem_mb = 6000
pinned_on = ["gpu1"]
priority = 200
idle_unload_after = "10m"

[[models]]
id = "qwen"

[aliases]
"fast" = "qwen"
`
	c, err := ParseCatalogue("models.toml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	m, ok := c.Find("llama-8b")
	if !ok || m.PriorityOr() != 200 || m.IdleUnloadAfter.D() != 10*time.Minute {
		t.Errorf("find: %+v %v", m, ok)
	}
	q, _ := c.Find("qwen")
	if q.PriorityOr() != DefaultPriority {
		t.Errorf("default priority: %d", q.PriorityOr())
	}
	if c.Resolve("fast") != "qwen" || c.Resolve("other") != "other" {
		t.Errorf("resolve")
	}
	bad := []string{
		"[[models]]\nid = \"\"\n",
		"[[models]]\nid = \"a\"\n[[models]]\nid = \"a\"\n",
		"[[models]]\nid = \"a\"\nmem_mb = -1\n",
		"[[models]]\nid = \"a\"\nbogus = 1\n",
		"[aliases]\n\"a\" = \"\"\n",
		"[[models]]\nid = \"a\"\n[aliases]\n\"a\" = \"b\"\n",
		"[aliases]\n\"x\" = \"y\"\n\"y\" = \"z\"\n",
	}
	for _, src := range bad {
		if _, err := ParseCatalogue("m.toml", []byte(src)); err == nil {
			t.Errorf("accepted bad catalogue:\n%s", src)
		}
	}
}

func TestConnectionKeys(t *testing.T) {
	c, err := Parse("x", []byte("[gateway]\nidle_timeout = \"5s\"\nread_timeout = \"7s\"\nmax_conns_per_client = 3\nstream_idle_timeout = \"9s\"\nmetrics_token = \"m\"\nallow_unauthenticated = true\n[neuron]\nread_timeout = \"8s\"\nallow_unauthenticated = true\n"))
	if err != nil {
		t.Fatal(err)
	}
	g, n := c.Gateway, c.Neuron
	if g.IdleTimeout.D().String() != "5s" || g.ReadTimeout.D().String() != "7s" || g.MaxConnsPerClient != 3 ||
		g.StreamIdleTimeout.D().String() != "9s" || g.MetricsToken != "m" || !g.AllowUnauthenticated ||
		n.ReadTimeout.D().String() != "8s" || n.IdleTimeout.D().String() != "2m0s" || n.MaxConnsPerClient != 4096 || !n.AllowUnauthenticated {
		t.Fatalf("gateway %+v, neuron %+v", g, n.Server)
	}
	for _, bad := range []string{
		"[gateway]\nmax_conns_per_client = -1", "[neuron]\nmax_conns_per_client = -1",
		"[gateway]\nread_timeout = \"-1s\"", "[neuron]\nidle_timeout = \"-1s\"", "[gateway]\nstream_idle_timeout = \"-5s\"",
	} {
		if _, err := Parse("x", []byte(bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// usage_retention: 0 by default (keep everything), at least 31 days when
// set, never negative.
func TestUsageRetention(t *testing.T) {
	c, err := Parse("x", []byte("[gateway]\nusage_retention = \"744h\"\n"))
	if err != nil || c.Gateway.UsageRetention.D() != 744*time.Hour {
		t.Fatalf("744h: %v, %v", c.Gateway.UsageRetention.D(), err)
	}
	if c, err := Parse("x", []byte("")); err != nil || c.Gateway.UsageRetention != 0 {
		t.Fatalf("default: %v, %v", c.Gateway.UsageRetention.D(), err)
	}
	for _, bad := range []string{"[gateway]\nusage_retention = \"24h\"", "[gateway]\nusage_retention = \"-1h\""} {
		if _, err := Parse("x", []byte(bad)); err == nil || !strings.Contains(err.Error(), "usage_retention") {
			t.Errorf("%q: %v", bad, err)
		}
	}
}
