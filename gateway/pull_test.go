package gateway

import (
	"bufio"
	"io"
	"net/http"
	"strings"
	"testing"
)

// POST /nodes/{node}/models/pull reaches that neuron's /models/pull with
// the neuron's token, the body as sent, and streams the lines back as the
// neuron writes them; an unknown node is a 404.
func TestPullForwarded(t *testing.T) {
	fn := newFakeNeuron(t, "gpu1")
	fn.token = "node-secret"
	var gotAuth, gotBody string
	next := make(chan struct{})
	fn.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/models/pull" {
			fn.serve(w, r)
			return
		}
		gotAuth = r.Header.Get("Authorization")
		b, _ := io.ReadAll(r.Body)
		gotBody = string(b)
		w.Header().Set("Content-Type", "application/x-ndjson")
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, `{"status":"downloading","file":"m.gguf","completed":1,"total":2}`+"\n")
		w.(http.Flusher).Flush()
		<-next // the first line must reach the client before the neuron goes on
		_, _ = io.WriteString(w, `{"status":"success","model":"m"}`+"\n")
	})
	tg := startGateway(t, []*fakeNeuron{fn})

	resp, err := http.Post(tg.srv.URL+"/nodes/gpu1/models/pull", "application/json", strings.NewReader(`{"model":"org/m-GGUF:Q4_K_M"}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/x-ndjson" {
		t.Fatalf("status %d, type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	rd := bufio.NewReader(resp.Body)
	first, err := rd.ReadString('\n')
	if err != nil || !strings.Contains(first, `"downloading"`) {
		t.Fatalf("first line %q, %v", first, err)
	}
	close(next)
	rest, _ := io.ReadAll(rd)
	if !strings.Contains(string(rest), `"success"`) {
		t.Fatalf("rest %q", rest)
	}
	if gotAuth != "Bearer node-secret" || gotBody != `{"model":"org/m-GGUF:Q4_K_M"}` {
		t.Fatalf("neuron saw auth %q body %q", gotAuth, gotBody)
	}

	code, _, body := tg.post(t, "/nodes/nope/models/pull", `{"model":"org/m"}`)
	if code != http.StatusNotFound || !strings.Contains(string(body), "node_not_found") {
		t.Fatalf("unknown node: %d %s", code, body)
	}
}
