package node

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"helexa/internal/pull/pulltest"
)

// POST /models/pull streams NDJSON progress, ends with a success line,
// and the model it fetched is listed at once; a second pull finds the file
// there; a bad reference is a 400; the Hub's 404 is an error line.
func TestPullRoute(t *testing.T) {
	data := append([]byte("GGUF"), bytes.Repeat([]byte{7}, 10000)...)
	hub := pulltest.OneFileHub("org/tiny-GGUF", "tiny-Q8_0.gguf", data)
	defer hub.Close()
	t.Setenv("HF_ENDPOINT", hub.URL)
	t.Setenv("HF_TOKEN", "")

	dir := t.TempDir()
	n := startNeuron(t, testConfig(dir), (&synthEngine{}).hooks())
	pullLines := func(body string) (int, []map[string]any) {
		t.Helper()
		resp, err := http.Post(n.srv.URL+"/models/pull", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var lines []map[string]any
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			var m map[string]any
			if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
				t.Fatalf("line %q: %v", sc.Text(), err)
			}
			lines = append(lines, m)
		}
		if ct := resp.Header.Get("Content-Type"); resp.StatusCode == 200 && ct != "application/x-ndjson" {
			t.Fatalf("content type %q", ct)
		}
		return resp.StatusCode, lines
	}
	code, lines := pullLines(`{"model":"org/tiny-GGUF:q8_0"}`)
	if code != 200 || len(lines) < 3 {
		t.Fatalf("pull: %d %v", code, lines)
	}
	last := lines[len(lines)-1]
	if last["status"] != "success" || last["model"] != "tiny-Q8_0" {
		t.Fatalf("last line %v", last)
	}
	var sawDownload bool
	for _, l := range lines {
		sawDownload = sawDownload || l["status"] == "downloading"
	}
	if !sawDownload {
		t.Fatalf("no progress lines: %v", lines)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "tiny-Q8_0.gguf")); !bytes.Equal(got, data) {
		t.Fatal("pulled file differs")
	}
	var list struct {
		Data []struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	n.do(t, "GET", "/models", nil, &list)
	if len(list.Data) != 1 || list.Data[0].ID != "tiny-Q8_0" {
		t.Fatalf("models after the pull: %+v", list)
	}

	var one pullResult
	if code := n.do(t, "POST", "/models/pull", `{"model":"org/tiny-GGUF:Q8_0","stream":false}`, &one); code != 200 || one.Status != "success" {
		t.Fatalf("second pull: %d %+v", code, one)
	}
	if code := n.do(t, "POST", "/models/pull", `{"model":"not a repo"}`, nil); code != http.StatusBadRequest {
		t.Fatalf("bad reference: %d", code)
	}
	code, lines = pullLines(`{"model":"org/missing"}`)
	if code != 200 || lines[len(lines)-1]["status"] != "error" || !strings.Contains(fmt.Sprint(lines[len(lines)-1]["error"]), "404") {
		t.Fatalf("missing repository: %d %v", code, lines)
	}
	var env struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	if code := n.do(t, "POST", "/models/pull", `{"model":"org/missing","stream":false}`, &env); code != http.StatusBadGateway || env.Error.Code != "pull_failed" {
		t.Fatalf("missing repository, not streamed: %d %+v", code, env)
	}
}
