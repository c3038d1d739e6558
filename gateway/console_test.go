package gateway

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"helexa/roles/config"
)

func withAdmin(keys ...string) gwOpt {
	return func(cfg *config.Config, _ *config.Catalogue) { cfg.Gateway.AdminKeys = keys }
}

// The admin API opens only to admin keys; the page itself carries no data.
func TestConsoleAPIAdminOnly(t *testing.T) {
	a := newFakeNeuron(t, "a", "m1*", "m2")
	tg := startGateway(t, []*fakeNeuron{a}, withAdmin("adm"), withKeys(config.Key{Name: "alice", Key: "sk-alice-secret", RPM: 10, BudgetTokens: 100, BudgetPeriod: "day"}))
	if code, _, b := tg.post(t, "/v1/chat/completions", chatReq("m1", ""), bearer("sk-alice-secret")...); code != 200 {
		t.Fatalf("%d %s", code, b)
	}
	for _, k := range []string{"", "sk-alice-secret", "wrong"} {
		if code, _ := tg.get(t, "/ui/api/overview", bearer(k)...); code != 401 {
			t.Errorf("overview with %q: %d, want 401", k, code)
		}
	}
	code, b := tg.get(t, "/ui/api/overview", bearer("adm")...)
	if code != 200 {
		t.Fatalf("overview: %d %s", code, b)
	}
	if strings.Contains(string(b), "sk-alice") || strings.Contains(string(b), `"adm"`) {
		t.Error("the overview shows a key's secret")
	}
	var o Overview
	if err := json.Unmarshal(b, &o); err != nil {
		t.Fatal(err)
	}
	var alice *KeyView
	for i := range o.Keys {
		if o.Keys[i].Name == "alice" {
			alice = &o.Keys[i]
		}
	}
	if alice == nil || alice.BudgetSpent != 14 || alice.Requests != 1 || alice.RPM != 10 {
		t.Errorf("alice in the overview: %+v", alice)
	}
	if len(o.Fleet.Nodes) != 1 || len(o.Models) < 2 {
		t.Errorf("overview fleet/models: %+v", o)
	}
	// The admin key is an API key without limits.
	if code, _, b := tg.post(t, "/v1/chat/completions", chatReq("m1", ""), bearer("adm")...); code != 200 {
		t.Errorf("admin key on the API: %d %s", code, b)
	}
	waitFor(t, "usage in the hourly series", func() bool {
		_, b := tg.get(t, "/ui/api/usage?key=alice&hours=3", bearer("adm")...)
		var pts []UsagePoint
		_ = json.Unmarshal(b, &pts)
		return len(pts) == 3 && pts[2].Requests == 1 && pts[2].Completion == 3
	})
	// Pin from the console: the evictor keeps it loaded, and the pin is
	// shown.
	req, _ := http.NewRequest(http.MethodPost, tg.srv.URL+"/ui/api/pin", strings.NewReader(`{"node":"a","model":"m2","pinned":true}`))
	req.Header.Set("Authorization", "Bearer adm")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("pin: %v %v", err, resp)
	}
	resp.Body.Close()
	waitFor(t, "the pinned model loaded", func() bool { return a.status("m2") == statusLoaded })
	if !tg.g.pinnedOn("m2", "a") {
		t.Error("pin not recorded")
	}
}

// browser finds a Chromium or Chrome to drive, or "".
func browser() string {
	if p := os.Getenv("HELEXA_CHROME"); p != "" {
		return p
	}
	for _, n := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "headless-shell"} {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	return ""
}

// TestConsoleInBrowser drives the console in headless Chromium, served
// under a path prefix as behind a reverse proxy: it signs in, shows the
// fleet of fake neurons, loads a model from the page, streams a reply in
// the playground, and takes a screenshot (HELEXA_UI_SCREENSHOT_DIR, else
// the test's temporary folder).
func TestConsoleInBrowser(t *testing.T) {
	exe := browser()
	if exe == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("no Chromium or Chrome found, and CI must run the console test (.ci/run installs chromium)")
		}
		t.Skip("no Chromium or Chrome found (install chromium, or set HELEXA_CHROME)")
	}
	a := newFakeNeuron(t, "gpu-a", "m1*", "m2")
	b := newFakeNeuron(t, "gpu-b", "m3*")
	a.set(func(f *fakeNeuron) { f.tokenDelay = 20 * time.Millisecond })
	tg := startGateway(t, []*fakeNeuron{a, b}, withAdmin("adm-key"),
		withKeys(config.Key{Name: "alice", Key: "sk-a", RPM: 60, TPM: 10000, MaxParallel: 4, BudgetTokens: 1000, BudgetPeriod: "day"},
			config.Key{Name: "ci-bot", Key: "sk-ci", Models: []string{"m3"}}))
	for range 3 {
		tg.post(t, "/v1/chat/completions", chatReq("m1", ""), bearer("sk-a")...)
	}
	tg.post(t, "/v1/chat/completions", chatReq("m1", ""), bearer("sk-ci")...) // refused: not on its list
	// A reverse proxy serving the gateway under /helexa/.
	proxy := httptest.NewServer(http.StripPrefix("/helexa", tg.g.Handler()))
	t.Cleanup(proxy.Close)

	opts := append(chromedp.DefaultExecAllocatorOptions[:0:0],
		chromedp.ExecPath(exe), chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("headless", true), chromedp.Flag("no-sandbox", true), chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true), chromedp.Flag("no-first-run", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true), chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(1400, 1100))
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelA()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancelT := context.WithTimeout(ctx, 90*time.Second)
	defer cancelT()

	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }
	text := func(sel string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Text(css(sel)))
		if err != nil {
			t.Fatalf("reading %s: %v", sel, err)
		}
		return v
	}
	poll := func(what, expr string) {
		t.Helper()
		if _, err := chromedp.Run(ctx, chromedp.Poll[bool](expr)); err != nil {
			t.Fatalf("waiting for %s: %v", what, err)
		}
	}
	err := chromedp.Do(ctx,
		chromedp.Navigate(proxy.URL+"/helexa/ui"),
		chromedp.WaitVisible(css("#key")),
		chromedp.SendKeys(css("#key"), "adm-key"),
		chromedp.Click(css("#signin-btn")),
		chromedp.WaitVisible(css(`.node[data-node="gpu-b"]`)),
	)
	if err != nil {
		t.Fatalf("signing in: %v", err)
	}
	nodes, keys := text("#nodes"), text("#keys")
	for _, want := range []string{"gpu-a", "gpu-b", "healthy", "m1", "m3", "loaded"} {
		if !strings.Contains(nodes, want) {
			t.Errorf("the nodes panel lacks %q: %s", want, nodes)
		}
	}
	for _, want := range []string{"alice", "ci-bot", "admin"} {
		if !strings.Contains(keys, want) {
			t.Errorf("the keys panel lacks %q: %s", want, keys)
		}
	}
	if strings.Contains(keys, "sk-") {
		t.Error("the page shows a secret")
	}

	// Load m2 on gpu-a from the page, through the confirmation.
	err = chromedp.Do(ctx,
		chromedp.SetValue(css(`select[data-load="gpu-a"]`), "m2"),
		chromedp.Click(css(`button[data-act="load"][data-node="gpu-a"]`)),
		chromedp.WaitVisible(css("#confirm-ok")),
		chromedp.Click(css("#confirm-ok")),
	)
	if err != nil {
		t.Fatalf("loading from the page: %v", err)
	}
	waitFor(t, "the load to reach the neuron", func() bool { return a.status("m2") == statusLoaded })
	if a.loads.Load() != 1 {
		t.Errorf("neuron loads: %d, want 1", a.loads.Load())
	}

	// The playground streams a reply and shows TTFT and tok/s.
	err = chromedp.Do(ctx,
		chromedp.WaitVisible(css(`button[data-act="unload"][data-model="m2"]`)),
		chromedp.SetValue(css("#pg-model"), "m1"),
		chromedp.SendKeys(css("#pg-prompt"), "Say hello"),
		chromedp.Click(css("#pg-send")),
	)
	if err != nil {
		t.Fatalf("playground: %v", err)
	}
	poll("the streamed reply", `document.querySelector("#pg-out").textContent.includes("Hello there!") && document.querySelector("#pg-stats").textContent.includes("tok/s")`)
	if out, stats := text("#pg-out"), text("#pg-stats"); !strings.Contains(out, "Hello there!") || !strings.Contains(stats, "TTFT") {
		t.Errorf("playground: %q / %q", out, stats)
	}
	// Wait for a poll that shows the playground's request in the models
	// panel, the chart and the refused request, then take the screenshot.
	poll("the playground's request counted", `[...document.querySelectorAll("#keys tbody tr")].some(r => r.cells[0].textContent.startsWith("admin") && r.cells[1].textContent.trim() === "1")`)
	poll("model timings", `[...document.querySelectorAll("#models tbody tr")].some(r => r.cells[0].textContent === "m1" && r.cells[2].textContent.trim() === "4" && r.textContent.includes("ms"))`)
	poll("the chart and the errors", `document.querySelectorAll("#chart rect").length > 0 && document.querySelector("#errors").textContent.includes("model_not_allowed")`)
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	dir := os.Getenv("HELEXA_UI_SCREENSHOT_DIR")
	if dir == "" {
		dir = t.TempDir()
	}
	p := filepath.Join(dir, "console.png")
	if err := os.WriteFile(p, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s (%d bytes)", p, len(shot))
}

// The page loads nothing from elsewhere and names no absolute path, so it
// works offline and under any path prefix.
func TestConsolePageSelfContained(t *testing.T) {
	page := string(consolePage)
	for _, bad := range []string{"http://", "https://", `src="/`, `href="/`, `fetch("/`, "@import", "<link", "url("} {
		if strings.Contains(page, bad) {
			t.Errorf("the console page contains %q", bad)
		}
	}
	a := newFakeNeuron(t, "a")
	tg := startGateway(t, []*fakeNeuron{a}, withAdmin("adm"))
	req, _ := http.NewRequest(http.MethodGet, tg.srv.URL+"/ui", nil)
	resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc := resp.Header.Get("Location"); resp.StatusCode/100 != 3 || loc != "ui/" {
		t.Errorf("GET /ui: %d Location %q, want a redirect to the relative ui/", resp.StatusCode, loc)
	}
	if code, b := tg.get(t, "/ui/"); code != 200 || !strings.Contains(string(b), "helexa console") {
		t.Errorf("GET /ui/: %d", code)
	}
}
