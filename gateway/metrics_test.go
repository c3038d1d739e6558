package gateway

import (
	"bytes"
	"errors"
	"net/http/httptest"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"helexa/roles/config"
)

func scrapeMetrics(t testing.TB, g *Gateway) string {
	t.Helper()
	rec := httptest.NewRecorder()
	g.MetricsHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 {
		t.Fatalf("/metrics: %d", rec.Code)
	}
	return rec.Body.String()
}

// exercise runs traffic of every API family, streaming and not, through a
// gateway so that every metric family has samples.
func exercise(t *testing.T) *testGateway {
	a := newFakeNeuron(t, "a", "m1*", "m2")
	tg := startGateway(t, []*fakeNeuron{a}, withAlias("al\"ias", "m1"))
	for _, s := range []string{"", `"stream":true`} {
		tg.post(t, "/v1/chat/completions", chatReq("m1", s))
		tg.post(t, "/v1/messages", `{"model":"m1","max_tokens":8,"messages":[{"role":"user","content":"hi"}]`+prefixComma(s)+`}`)
		tg.post(t, "/v1/responses", `{"model":"m1","input":"hi"`+prefixComma(s)+`}`)
	}
	tg.post(t, "/v1/completions", `{"model":"m2","prompt":"x"}`) // cold start
	tg.post(t, "/v1/chat/completions", chatReq("nope", ""))
	a.set(func(f *fakeNeuron) { f.failInfer = 500 })
	tg.post(t, "/v1/chat/completions", chatReq("m1", ""))
	tg.g.met.eviction("a", "m\"x", "idle")
	tg.g.keyNamed("k\"1", config.Key{RPM: 1}, false, time.Now()).reject(rejectRPM)
	return tg
}

func prefixComma(s string) string {
	if s == "" {
		return ""
	}
	return "," + s
}

var (
	sampleRe = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="(\\.|[^"\\])*"(,[a-zA-Z_][a-zA-Z0-9_]*="(\\.|[^"\\])*")*)?\})? (-?[0-9.eE+-]+|\+Inf|-Inf|NaN)$`)
	helpRe   = regexp.MustCompile(`^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) \S.*$`)
	typeRe   = regexp.MustCompile(`^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$`)
)

// TestMetricsExposition checks the rules of the text format that promtool
// checks: every family has HELP and TYPE before its samples, once; families
// are contiguous; names and labels are well formed; counters end in _total;
// histograms have le buckets ending in +Inf with _sum and _count.
func TestMetricsExposition(t *testing.T) {
	tg := exercise(t)
	out := scrapeMetrics(t, tg.g)
	fams := map[string]string{}
	seenSamples := map[string]bool{}
	cur := ""
	for i, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		switch {
		case strings.HasPrefix(line, "# HELP "):
			m := helpRe.FindStringSubmatch(line)
			if m == nil {
				t.Fatalf("line %d: bad HELP: %q", i+1, line)
			}
			if _, dup := fams[m[1]]; dup {
				t.Fatalf("line %d: family %s described twice", i+1, m[1])
			}
			fams[m[1]] = ""
			cur = m[1]
		case strings.HasPrefix(line, "# TYPE "):
			m := typeRe.FindStringSubmatch(line)
			if m == nil || m[1] != cur {
				t.Fatalf("line %d: bad or misplaced TYPE: %q", i+1, line)
			}
			fams[m[1]] = m[2]
		default:
			m := sampleRe.FindStringSubmatch(line)
			if m == nil {
				t.Fatalf("line %d: bad sample: %q", i+1, line)
			}
			fam := family(m[1])
			if fam != cur {
				t.Fatalf("line %d: sample of %s outside its family block (%s)", i+1, fam, cur)
			}
			seenSamples[fam] = true
			typ := fams[fam]
			if typ == "counter" && !strings.HasSuffix(fam, "_total") {
				t.Fatalf("counter %s does not end in _total", fam)
			}
			if typ != "counter" && strings.HasSuffix(fam, "_total") {
				t.Fatalf("%s %s ends in _total", typ, fam)
			}
			if typ == "histogram" && m[1] == fam {
				t.Fatalf("histogram %s has a bare sample", fam)
			}
		}
	}
	for name, h := range metricHelp {
		if fams[name] != h[0] {
			t.Errorf("family %s: type %q, want %q", name, fams[name], h[0])
		}
		if !seenSamples[name] {
			t.Errorf("family %s has no samples after traffic", name)
		}
	}
	for _, h := range []string{"cortex_request_duration_seconds", "cortex_time_to_first_token_seconds", "cortex_tokens_per_second", "cortex_model_load_seconds"} {
		for _, suf := range []string{`_bucket{le="+Inf"}`, "_sum ", "_count "} {
			if !strings.Contains(out, h+suf) {
				t.Errorf("histogram %s lacks %s", h, suf)
			}
		}
	}
	// Every API family is counted.
	for _, api := range []string{"chat", "completions", "messages", "responses"} {
		if !strings.Contains(out, `api="`+api+`",code="200"`) {
			t.Errorf("no 200 counted for api %s", api)
		}
	}
}

// TestMetricsPromtool runs promtool check metrics when it is installed.
func TestMetricsPromtool(t *testing.T) {
	path, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not installed; TestMetricsExposition checks the format rules")
	}
	tg := exercise(t)
	out := scrapeMetrics(t, tg.g)
	cmd := exec.Command(path, "check", "metrics")
	cmd.Stdin = strings.NewReader(out)
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	err = cmd.Run()
	if err == nil {
		return
	}
	// The device memory gauges carry the names the project fixed
	// (cortex_device_mem_*_mb); promtool's naming lint flags the "mb"
	// abbreviation. Any other finding, or a parse error, fails.
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 3 {
		t.Fatalf("promtool check metrics: %v\n%s\n--- exposition ---\n%s", err, stderr.String(), out)
	}
	for _, line := range strings.Split(strings.TrimSpace(stderr.String()), "\n") {
		if line == "cortex_device_mem_free_mb metric names should not contain abbreviated units" ||
			line == "cortex_device_mem_used_mb metric names should not contain abbreviated units" {
			continue
		}
		t.Fatalf("promtool check metrics: %q\n--- exposition ---\n%s", line, out)
	}
}
