package gateway

import (
	"bufio"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"helexa/roles/config"
)

func TestReloadKeepsInFlightAndSwapsConfig(t *testing.T) {
	a := newFakeNeuron(t, "a", "m1*")
	b := newFakeNeuron(t, "b", "m2*")
	a.set(func(f *fakeNeuron) { f.tokenDelay = 100 * time.Millisecond })
	tg := startGateway(t, []*fakeNeuron{a}, withKeys(config.Key{Name: "alice", Key: "sk-a", RPM: 100}))
	// A stream in flight on node a when a is dropped from the list.
	req, _ := http.NewRequest(http.MethodPost, tg.srv.URL+"/v1/chat/completions", strings.NewReader(chatReq("m1", `"stream":true`)))
	req.Header.Set("Authorization", "Bearer sk-a")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	if line, err := br.ReadString('\n'); err != nil || !strings.HasPrefix(line, "data: ") {
		t.Fatalf("first line %q: %v", line, err)
	}

	cfg := tg.g.cfg
	cfg.Neurons = []config.NeuronRef{b.ref()}
	cfg.Keys = []config.Key{{Name: "bob", Key: "sk-b"}, {Name: "alice", Key: "sk-a2", RPM: 100}}
	cat := config.Catalogue{Aliases: map[string]string{"fast": "m2"}}
	if err := tg.g.Reload(cfg, cat); err != nil {
		t.Fatal(err)
	}
	rest, err := io.ReadAll(br)
	if err != nil || !strings.Contains(string(rest), "[DONE]") || strings.Contains(string(rest), "error") {
		t.Fatalf("the stream in flight did not finish whole: %v %s", err, rest)
	}
	if code, _, _ := tg.post(t, "/v1/chat/completions", chatReq("m2", ""), bearer("sk-a")...); code != 401 {
		t.Errorf("old secret after reload: %d, want 401", code)
	}
	waitFor(t, "node b polled", func() bool {
		code, _, _ := tg.post(t, "/v1/chat/completions", chatReq("fast", ""), bearer("sk-b")...)
		return code == 200
	})
	if code, _, _ := tg.post(t, "/v1/chat/completions", chatReq("m1", ""), bearer("sk-b")...); code != 404 {
		t.Errorf("m1 after its node left: %d, want 404", code)
	}
	// alice kept her name: her counters carry over.
	if v := tg.g.keyStates["alice"].view(time.Now(), nil); v.Requests != 1 {
		t.Errorf("alice's requests after reload: %d, want 1", v.Requests)
	}

	// A bad configuration changes nothing.
	bad := cfg
	bad.Neurons = []config.NeuronRef{b.ref(), b.ref()}
	if err := tg.g.Reload(bad, config.Catalogue{}); err == nil {
		t.Error("duplicate neurons accepted")
	}
	bad = cfg
	bad.Keys = []config.Key{{Name: "x", Key: "same"}, {Name: "y", Key: "same"}}
	if err := tg.g.Reload(bad, config.Catalogue{}); err == nil {
		t.Error("two keys with one secret accepted")
	}
	if code, _, b := tg.post(t, "/v1/chat/completions", chatReq("fast", ""), bearer("sk-b")...); code != 200 {
		t.Errorf("after refused reloads: %d %s", code, b)
	}
}

// Reloads while requests run: nothing fails that should not, and the race
// detector sees no unguarded state.
func TestReloadUnderLoad(t *testing.T) {
	a := newFakeNeuron(t, "a", "m1*")
	// A slow poll: under -race on a busy machine 50 ms polls time out and
	// mark the node unhealthy, which is not what this test is about.
	tg := startGateway(t, []*fakeNeuron{a}, withKeys(config.Key{Name: "k", Key: "sk-k", RPM: 100000, MaxParallel: 100}),
		func(cfg *config.Config, _ *config.Catalogue) { cfg.Gateway.PollInterval = config.Duration(time.Second) })
	stop := make(chan struct{})
	errs := make(chan string, 100)
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				req, _ := http.NewRequest(http.MethodPost, tg.srv.URL+"/v1/chat/completions", strings.NewReader(chatReq("m1", `"stream":true`)))
				req.Header.Set("Authorization", "Bearer sk-k")
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					errs <- err.Error()
					return
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || !strings.Contains(string(b), "[DONE]") {
					errs <- string(b)
					return
				}
			}
		}()
	}
	cfg := tg.g.cfg
	for i := range 20 {
		cfg.Keys = []config.Key{{Name: "k", Key: "sk-k", RPM: 100000 + i, MaxParallel: 100 + i, Models: []string{"m*"}}}
		if err := tg.g.Reload(cfg, config.Catalogue{Aliases: map[string]string{"x": "m1"}}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}
