// Package config loads and validates helexa.toml (one file for every role)
// and the models.toml catalogue. Loading is strict: an unknown key, a wrong
// type or a bad value is refused, and every problem is reported at once with
// the key and the line it sits on.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/pelletier/go-toml/v2"
)

// Default ports and values. They are documented in helexa.example.toml.
const (
	DefaultGatewayListen = "0.0.0.0:31313"
	DefaultMetricsListen = "0.0.0.0:31314"
	DefaultNeuronListen  = "0.0.0.0:13131"
	// DefaultNeuronListenAll is the neuron's address under --role=all:
	// loopback only, the local gateway is its one client.
	DefaultNeuronListenAll = "127.0.0.1:13131"
	DefaultPriority        = 100
)

// Duration is a time.Duration written in Go's format ("5s", "30m").
type Duration time.Duration

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("not a duration (use Go's format, e.g. \"5s\", \"30m\"): %q", string(b))
	}
	*d = Duration(v)
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// Config is the whole helexa.toml. The zero value of each section is
// replaced by the defaults in Default.
type Config struct {
	Gateway  Gateway     `toml:"gateway"`
	Eviction Eviction    `toml:"eviction"`
	Neurons  []NeuronRef `toml:"neurons"`
	Neuron   Neuron      `toml:"neuron"`
	// Keys are the gateway's API keys with limits ([[keys]]).
	Keys []Key `toml:"keys"`
}

// Gateway configures --role=gateway.
type Gateway struct {
	// Listen is the API address (OpenAI + Anthropic).
	Listen string `toml:"listen"`
	// MetricsListen serves GET /metrics. Empty disables it.
	MetricsListen string `toml:"metrics_listen"`
	// Models is the path of the models.toml catalogue; empty means none.
	Models string `toml:"models"`
	// APIKeys, when set, are required as Authorization: Bearer or x-api-key.
	APIKeys []string `toml:"api_keys"`
	// PollInterval is how often each neuron's /health and /models are read.
	PollInterval Duration `toml:"poll_interval"`
	// MaxBodyMB limits request bodies (413 above it).
	MaxBodyMB int `toml:"max_body_mb"`
	// ConnectTimeout bounds dialing a neuron.
	ConnectTimeout Duration `toml:"connect_timeout"`
	// LoadTimeout bounds a cold load on a neuron.
	LoadTimeout Duration `toml:"load_timeout"`
	// FirstByteTimeout bounds the wait for a neuron's response headers.
	FirstByteTimeout Duration `toml:"first_byte_timeout"`
	// RequestTimeout bounds a whole request; 0 means no limit.
	RequestTimeout Duration `toml:"request_timeout"`
	// StreamIdleTimeout ends an answer whose neuron sends no byte for this
	// long (a frozen node) with an error event in the client's dialect.
	StreamIdleTimeout Duration `toml:"stream_idle_timeout"`
	// Server holds the client-facing connection limits.
	Server `toml:",inline"`
	// AllowUnauthenticated lets the gateway listen beyond loopback without
	// api_keys. Without it, such a gateway listens on loopback only.
	AllowUnauthenticated bool `toml:"allow_unauthenticated"`
	// MetricsToken, when set, is required as Authorization: Bearer on
	// GET /metrics.
	MetricsToken string `toml:"metrics_token"`
	// AdminKeys sign in to the web console (GET /ui) and its admin API;
	// they are also API keys without limits.
	AdminKeys []string `toml:"admin_keys"`
	// StateDir holds the usage store (usage.db). Empty: ~/.helexa/state
	// (HELEXA_STATE_DIR overrides); a relative path is taken from the
	// config file's folder.
	StateDir string `toml:"state_dir"`
	// UsageRetention removes the usage store's hours older than this,
	// checked hourly; 0 keeps them for ever. At least 31 days, so that a
	// monthly budget is still counted whole.
	UsageRetention Duration `toml:"usage_retention"`
}

// Server is the connection hygiene of one HTTP server, in [gateway] and
// [neuron] alike.
type Server struct {
	// IdleTimeout closes a keep-alive connection idle this long.
	IdleTimeout Duration `toml:"idle_timeout"`
	// ReadTimeout bounds reading a request's headers and body: a client
	// that trickles them is cut off. Answers, streams included, are not
	// bounded by it.
	ReadTimeout Duration `toml:"read_timeout"`
	// MaxConnsPerClient caps the open connections from one client address;
	// 0 means no cap.
	MaxConnsPerClient int `toml:"max_conns_per_client"`
}

// Eviction configures how the gateway frees memory on a node.
type Eviction struct {
	// Strategy is "lru" or "priority".
	Strategy string `toml:"strategy"`
	// DefragAfterCycles: after this many load/unload cycles on a node, unload
	// all its unpinned models once it is idle. 0 disables.
	DefragAfterCycles int `toml:"defrag_after_cycles"`
	// IdleUnloadAfter unloads a model idle this long; 0 disables. A
	// catalogue entry's own idle_unload_after wins.
	IdleUnloadAfter Duration `toml:"idle_unload_after"`
}

// NeuronRef is one neuron the gateway fronts.
type NeuronRef struct {
	Name     string `toml:"name"`
	Endpoint string `toml:"endpoint"`
	Token    string `toml:"token"`
}

// Neuron configures --role=neuron.
type Neuron struct {
	// Name is how the gateway calls this node under --role=all; defaults to
	// the host name.
	Name string `toml:"name"`
	// Listen is the neuron API address.
	Listen string `toml:"listen"`
	// ModelsDirRaw is models_dir as written: a string or a list of strings.
	ModelsDirRaw any `toml:"models_dir"`
	// ModelsDirs is models_dir normalised to a list.
	ModelsDirs []string `toml:"-"`
	// Token, when set, is required as Authorization: Bearer.
	Token string `toml:"token"`
	// Threads is the number of CPU worker threads; 0 means all cores.
	Threads int `toml:"threads"`
	// ContextLength is the default context for a load (the most
	// positions one sequence holds); 0 means the model's own.
	ContextLength int `toml:"context_length"`
	// MaxInFlight requests generate at once per model (sequences in its
	// batch).
	MaxInFlight int `toml:"max_in_flight"`
	// BatchTokens is the most tokens one batched step computes while
	// sequences decode: their next tokens, then prompt chunks.
	BatchTokens int `toml:"batch_tokens"`
	// MaxOutputTokens caps every request's completion (0: no cap but the
	// context); a model's load may set its own.
	MaxOutputTokens int `toml:"max_output_tokens"`
	// KVCacheShare is the share of a device's free memory (at load) a
	// model's KV cache pool may take; the pool never exceeds what
	// MaxInFlight sequences of the full context need.
	KVCacheShare float64 `toml:"kv_cache_share"`
	// MaxQueueDepth requests wait per model beyond MaxInFlight.
	MaxQueueDepth int `toml:"max_queue_depth"`
	// MaxWait is the longest a queued request waits.
	MaxWait Duration `toml:"max_wait"`
	// Preload lists model ids loaded at start.
	Preload []string `toml:"preload"`
	// DemoModel: when the models folder is empty, put the demo model there
	// (the built-in one, else a download; default true).
	DemoModel *bool `toml:"demo_model"`
	// DemoModelURL is where the demo model comes from when the binary has
	// none built in.
	DemoModelURL string `toml:"demo_model_url"`
	// FollowSymlinks lets a models folder hold symbolic links to models
	// outside it; by default such links are skipped.
	FollowSymlinks bool `toml:"follow_symlinks"`
	// Server holds the connection limits.
	Server `toml:",inline"`
	// AllowUnauthenticated lets the neuron listen beyond loopback without a
	// token. Without it, such a neuron listens on loopback only.
	AllowUnauthenticated bool `toml:"allow_unauthenticated"`
}

// DefaultBatchTokens is the neuron's default batch_tokens: small enough
// that a prompt read beside decoding sequences delays their next token
// little on a CPU, large enough that prompts keep moving. (Measured with
// BenchmarkChunkedPrefill on a 125M model, 7 streams decoding while a
// 512-token prompt is read: 64 let their inter-token p99 rise 3.3x, 32
// 2.4x, with the prompt's first token 1.9x later than on an idle model;
// the load generator's throughput at 8 and 16 streams was the same.)
const DefaultBatchTokens = 32

// DefaultModelsDir is the neuron's models folder when none is configured.
func DefaultModelsDir() string {
	if d := os.Getenv("HELEXA_MODELS_DIR"); d != "" {
		return d
	}
	home, err := os.UserHomeDir()
	if err != nil || home == "" {
		return "models"
	}
	return filepath.Join(home, ".helexa", "models")
}

// DefaultDemoModelURL is the stories260K demo model (about 1.2 MB).
const DefaultDemoModelURL = "https://huggingface.co/ggml-org/tiny-llamas/resolve/main/stories260K.gguf"

// Default returns a configuration with every default filled in.
func Default() Config {
	var c Config
	c.applyDefaults()
	return c
}

func (c *Config) applyDefaults() {
	g := &c.Gateway
	if g.Listen == "" {
		g.Listen = DefaultGatewayListen
	}
	if g.MetricsListen == "" {
		g.MetricsListen = DefaultMetricsListen
	}
	if g.PollInterval == 0 {
		g.PollInterval = Duration(2 * time.Second)
	}
	if g.MaxBodyMB == 0 {
		g.MaxBodyMB = 32
	}
	if g.ConnectTimeout == 0 {
		g.ConnectTimeout = Duration(5 * time.Second)
	}
	if g.LoadTimeout == 0 {
		g.LoadTimeout = Duration(10 * time.Minute)
	}
	if g.FirstByteTimeout == 0 {
		g.FirstByteTimeout = Duration(10 * time.Minute)
	}
	if g.StreamIdleTimeout == 0 {
		g.StreamIdleTimeout = Duration(60 * time.Second)
	}
	g.Server.applyDefaults(1024)
	c.Neuron.Server.applyDefaults(4096)
	if c.Eviction.Strategy == "" {
		c.Eviction.Strategy = "lru"
	}
	n := &c.Neuron
	if n.Listen == "" {
		n.Listen = DefaultNeuronListen
	}
	if n.MaxInFlight == 0 {
		n.MaxInFlight = 16
	}
	if n.BatchTokens == 0 {
		n.BatchTokens = DefaultBatchTokens
	}
	if n.KVCacheShare == 0 {
		n.KVCacheShare = 0.5
	}
	if n.MaxQueueDepth == 0 {
		n.MaxQueueDepth = 64
	}
	if n.MaxWait == 0 {
		n.MaxWait = Duration(2 * time.Minute)
	}
	if n.DemoModel == nil {
		t := true
		n.DemoModel = &t
	}
	if n.DemoModelURL == "" {
		n.DemoModelURL = DefaultDemoModelURL
	}
	if n.Name == "" {
		if h, err := os.Hostname(); err == nil && h != "" {
			n.Name = h
		} else {
			n.Name = "local"
		}
	}
}

func (s *Server) applyDefaults(maxConns int) {
	if s.IdleTimeout == 0 {
		s.IdleTimeout = Duration(2 * time.Minute)
	}
	if s.ReadTimeout == 0 {
		s.ReadTimeout = Duration(time.Minute)
	}
	if s.MaxConnsPerClient == 0 {
		s.MaxConnsPerClient = maxConns
	}
}

// Problem is one thing wrong with a configuration file.
type Problem struct {
	Key  string // dotted key, e.g. "gateway.poll_interval"
	Line int    // 1-based; 0 when unknown
	Msg  string
}

func (p Problem) String() string {
	if p.Line > 0 {
		return fmt.Sprintf("line %d: %s: %s", p.Line, p.Key, p.Msg)
	}
	return fmt.Sprintf("%s: %s", p.Key, p.Msg)
}

// Error lists every problem found in one file.
type Error struct {
	File     string
	Problems []Problem
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d problem(s):", e.File, len(e.Problems))
	for _, p := range e.Problems {
		b.WriteString("\n  ")
		b.WriteString(p.String())
	}
	return b.String()
}

// Load reads and validates helexa.toml. An empty path gives the defaults.
func Load(path string) (Config, error) {
	if path == "" {
		c := Default()
		c.Neuron.ModelsDirs = []string{DefaultModelsDir()}
		return c, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("reading config: %w", err)
	}
	c, err := Parse(path, data)
	if err != nil {
		return Config{}, err
	}
	if d := c.Gateway.StateDir; d != "" && !filepath.IsAbs(d) {
		c.Gateway.StateDir = filepath.Join(filepath.Dir(path), d)
	}
	return c, nil
}

// MinUsageRetention is the shortest usage_retention: the 31 days of the
// longest budget period.
const MinUsageRetention = 31 * 24 * time.Hour

// DefaultStateDir is the gateway's state folder when none is configured:
// HELEXA_STATE_DIR, else ~/.helexa/state.
func DefaultStateDir() string {
	if d := os.Getenv("HELEXA_STATE_DIR"); d != "" {
		return d
	}
	home, err := os.UserHomeDir()
	if err != nil || home == "" {
		return "state"
	}
	return filepath.Join(home, ".helexa", "state")
}

// Parse validates the text of a helexa.toml; name is used in messages.
func Parse(name string, data []byte) (Config, error) {
	var c Config
	probs := decodeStrict(data, &c)
	if len(probs) > 0 {
		return Config{}, &Error{File: name, Problems: probs}
	}
	c.applyDefaults()
	probs = append(probs, c.validate(data)...)
	if len(probs) > 0 {
		sort.SliceStable(probs, func(i, j int) bool { return probs[i].Line < probs[j].Line })
		return Config{}, &Error{File: name, Problems: probs}
	}
	return c, nil
}

// decodeStrict decodes data into v refusing unknown keys, and turns the
// decoder's errors into Problems.
func decodeStrict(data []byte, v any) []Problem {
	dec := toml.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		return nil
	}
	var strict *toml.StrictMissingError
	if errors.As(err, &strict) {
		var probs []Problem
		for _, e := range strict.Errors {
			line, _ := e.Position()
			probs = append(probs, Problem{Key: strings.Join(e.Key(), "."), Line: line, Msg: "unknown key"})
		}
		return probs
	}
	var de *toml.DecodeError
	if errors.As(err, &de) {
		line, _ := de.Position()
		return []Problem{{Key: strings.Join(de.Key(), "."), Line: line, Msg: de.Error()}}
	}
	return []Problem{{Key: "(file)", Msg: err.Error()}}
}

func (c *Config) validate(data []byte) []Problem {
	var probs []Problem
	add := func(key, format string, args ...any) {
		probs = append(probs, Problem{Key: key, Line: lineOf(data, key), Msg: fmt.Sprintf(format, args...)})
	}
	g := c.Gateway
	if err := checkAddr(g.Listen); err != nil {
		add("gateway.listen", "%v", err)
	}
	if g.MetricsListen != "" {
		if err := checkAddr(g.MetricsListen); err != nil {
			add("gateway.metrics_listen", "%v", err)
		}
	}
	if g.PollInterval < Duration(100*time.Millisecond) {
		add("gateway.poll_interval", "must be at least 100ms, got %s", g.PollInterval.D())
	}
	if g.MaxBodyMB < 0 {
		add("gateway.max_body_mb", "must be positive, got %d", g.MaxBodyMB)
	}
	for i, k := range g.APIKeys {
		if strings.TrimSpace(k) == "" {
			add("gateway.api_keys", "entry %d is empty", i)
		}
	}
	for i, k := range g.AdminKeys {
		if strings.TrimSpace(k) == "" {
			add("gateway.admin_keys", "entry %d is empty", i)
		}
	}
	probs = append(probs, validateKeys(c.Keys, data)...)
	for _, d := range []struct {
		key string
		v   Duration
	}{{"gateway.connect_timeout", g.ConnectTimeout}, {"gateway.load_timeout", g.LoadTimeout}, {"gateway.first_byte_timeout", g.FirstByteTimeout}, {"gateway.request_timeout", g.RequestTimeout}, {"eviction.idle_unload_after", c.Eviction.IdleUnloadAfter}, {"neuron.max_wait", c.Neuron.MaxWait},
		{"gateway.stream_idle_timeout", g.StreamIdleTimeout}, {"gateway.idle_timeout", g.IdleTimeout}, {"gateway.read_timeout", g.ReadTimeout},
		{"neuron.idle_timeout", c.Neuron.IdleTimeout}, {"neuron.read_timeout", c.Neuron.ReadTimeout}, {"gateway.usage_retention", g.UsageRetention}} {
		if d.v < 0 {
			add(d.key, "must not be negative, got %s", d.v.D())
		}
	}
	if r := g.UsageRetention.D(); r > 0 && r < MinUsageRetention {
		add("gateway.usage_retention", "must be 0 (keep everything) or at least %s (a monthly budget counts 31 days), got %s", MinUsageRetention, r)
	}
	switch c.Eviction.Strategy {
	case "lru", "priority":
	default:
		add("eviction.strategy", "must be \"lru\" or \"priority\", got %q", c.Eviction.Strategy)
	}
	if c.Eviction.DefragAfterCycles < 0 {
		add("eviction.defrag_after_cycles", "must not be negative, got %d", c.Eviction.DefragAfterCycles)
	}
	seen := map[string]bool{}
	for i, n := range c.Neurons {
		key := fmt.Sprintf("neurons[%d]", i)
		if n.Name == "" {
			add("neurons.name", "%s: name is required", key)
		} else if seen[n.Name] {
			add("neurons.name", "%s: duplicate name %q", key, n.Name)
		}
		seen[n.Name] = true
		if !strings.HasPrefix(n.Endpoint, "http://") && !strings.HasPrefix(n.Endpoint, "https://") {
			add("neurons.endpoint", "%s: endpoint must be an http:// or https:// URL, got %q", key, n.Endpoint)
		}
	}
	nr := &c.Neuron
	if err := checkAddr(nr.Listen); err != nil {
		add("neuron.listen", "%v", err)
	}
	switch v := nr.ModelsDirRaw.(type) {
	case nil:
		nr.ModelsDirs = []string{DefaultModelsDir()}
	case string:
		if v == "" {
			add("neuron.models_dir", "must not be empty")
		}
		nr.ModelsDirs = []string{v}
	case []any:
		for i, e := range v {
			s, ok := e.(string)
			if !ok || s == "" {
				add("neuron.models_dir", "entry %d must be a non-empty string", i)
				continue
			}
			nr.ModelsDirs = append(nr.ModelsDirs, s)
		}
		if len(v) == 0 {
			add("neuron.models_dir", "must list at least one folder")
		}
	default:
		add("neuron.models_dir", "must be a string or a list of strings, got %T", v)
	}
	for i, d := range nr.ModelsDirs {
		nr.ModelsDirs[i] = expandHome(d)
	}
	c.Gateway.StateDir = expandHome(c.Gateway.StateDir)
	if nr.Threads < 0 {
		add("neuron.threads", "must not be negative, got %d", nr.Threads)
	}
	if nr.ContextLength < 0 {
		add("neuron.context_length", "must not be negative, got %d", nr.ContextLength)
	}
	if nr.MaxInFlight < 0 {
		add("neuron.max_in_flight", "must be positive, got %d", nr.MaxInFlight)
	}
	if g.MaxConnsPerClient < 0 {
		add("gateway.max_conns_per_client", "must not be negative, got %d", g.MaxConnsPerClient)
	}
	if nr.MaxConnsPerClient < 0 {
		add("neuron.max_conns_per_client", "must not be negative, got %d", nr.MaxConnsPerClient)
	}
	if nr.MaxQueueDepth < 0 {
		add("neuron.max_queue_depth", "must not be negative, got %d", nr.MaxQueueDepth)
	}
	if nr.BatchTokens < 0 {
		add("neuron.batch_tokens", "must be positive, got %d", nr.BatchTokens)
	}
	if nr.MaxOutputTokens < 0 {
		add("neuron.max_output_tokens", "must not be negative, got %d", nr.MaxOutputTokens)
	}
	if nr.KVCacheShare < 0 || nr.KVCacheShare > 1 {
		add("neuron.kv_cache_share", "must be between 0 and 1, got %g", nr.KVCacheShare)
	}
	return probs
}

func expandHome(p string) string {
	if p == "~" || strings.HasPrefix(p, "~/") {
		if home, err := os.UserHomeDir(); err == nil {
			return filepath.Join(home, strings.TrimPrefix(p, "~"))
		}
	}
	return p
}

func checkAddr(a string) error {
	i := strings.LastIndexByte(a, ':')
	if i < 0 {
		return fmt.Errorf("address must be host:port, got %q", a)
	}
	port := a[i+1:]
	if port == "" {
		return fmt.Errorf("address %q has no port", a)
	}
	for _, r := range port {
		if r < '0' || r > '9' {
			return fmt.Errorf("address %q has a bad port", a)
		}
	}
	return nil
}

// lineOf finds the line where a dotted key ("section.key") is written, so a
// validation message can point at it. Array-of-tables sections match every
// [[section]] header; the first line found is returned. 0 when not written.
func lineOf(data []byte, dotted string) int {
	section, key := "", dotted
	if i := strings.LastIndexByte(dotted, '.'); i >= 0 {
		section, key = dotted[:i], dotted[i+1:]
	}
	cur := ""
	for n, raw := range strings.Split(string(data), "\n") {
		line := strings.TrimSpace(raw)
		if strings.HasPrefix(line, "[") {
			cur = strings.Trim(line, "[] \t")
			if j := strings.IndexByte(cur, '#'); j >= 0 {
				cur = strings.TrimSpace(strings.Trim(cur[:j], "[] \t"))
			}
			continue
		}
		k, _, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		k = strings.Trim(strings.TrimSpace(k), `"'`)
		full := k
		if cur != "" {
			full = cur + "." + k
		}
		if full == section+"."+key || (section == "" && full == key) {
			return n + 1
		}
	}
	return 0
}
