package pull

import (
	"bytes"
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// hubFile is one file of a fake repository.
type hubFile struct {
	data []byte
	lfs  bool
	// badSum makes the Hub announce a SHA-256 the data do not have.
	badSum bool
	// dropOnce makes the CDN cut the first transfer half-way.
	dropOnce bool
}

// fakeHub behaves like the Hugging Face Hub as far as a pull sees it: the
// tree API, resolve URLs that redirect LFS files to a CDN host with
// X-Linked-Etag and X-Linked-Size, small files served directly with their
// git blob id as ETag, gated repositories that answer 401 without a token,
// and a CDN that honours Range.
type fakeHub struct {
	hub, cdn *httptest.Server
	repos    map[string]map[string]*hubFile
	gated    map[string]bool
	token    string
	// pageSize splits the tree listing into pages linked with Link
	// rel="next" (0: one page).
	pageSize int

	mu       sync.Mutex
	hubAuth  []string // Authorization headers the hub saw
	cdnAuth  []string // ... and the CDN
	ranges   []string // Range headers the CDN saw
	dropped  map[string]bool
	requests int
}

func newFakeHub(t *testing.T) *fakeHub {
	h := &fakeHub{repos: map[string]map[string]*hubFile{}, gated: map[string]bool{}, token: "hf_secret", dropped: map[string]bool{}}
	h.cdn = httptest.NewServer(http.HandlerFunc(h.serveCDN))
	h.hub = httptest.NewServer(http.HandlerFunc(h.serveHub))
	t.Cleanup(func() { h.hub.Close(); h.cdn.Close() })
	return h
}

func sha256hex(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

func gitSHA1(b []byte) string {
	h := sha1.New()
	fmt.Fprintf(h, "blob %d\x00", len(b))
	h.Write(b)
	return hex.EncodeToString(h.Sum(nil))
}

func (h *fakeHub) serveHub(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	h.hubAuth = append(h.hubAuth, r.Header.Get("Authorization"))
	h.requests++
	h.mu.Unlock()
	p := r.URL.Path
	if rest, ok := strings.CutPrefix(p, "/api/models/"); ok {
		repo, _, _ := strings.Cut(rest, "/tree/")
		if !h.allowed(w, r, repo) {
			return
		}
		files, ok := h.repos[repo]
		if !ok {
			http.Error(w, `{"error":"Repository not found"}`, http.StatusNotFound)
			return
		}
		var list []map[string]any
		list = append(list, map[string]any{"type": "directory", "path": "sub", "oid": "x", "size": 0})
		names := make([]string, 0, len(files))
		for name := range files {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			f := files[name]
			e := map[string]any{"type": "file", "path": name, "size": len(f.data), "oid": gitSHA1(f.data)}
			if f.lfs {
				e["lfs"] = map[string]any{"oid": sha256hex(f.data), "size": len(f.data), "pointerSize": 134}
			}
			list = append(list, e)
		}
		if h.pageSize > 0 {
			from, _ := strconv.Atoi(r.URL.Query().Get("cursor"))
			to := min(from+h.pageSize, len(list))
			if to < len(list) {
				q := r.URL.Query()
				q.Set("cursor", strconv.Itoa(to))
				w.Header().Set("Link", fmt.Sprintf(`<%s?%s>; rel="next"`, r.URL.Path, q.Encode()))
			}
			list = list[from:to]
		}
		_ = json.NewEncoder(w).Encode(list)
		return
	}
	parts := strings.SplitN(strings.TrimPrefix(p, "/"), "/", 5) // owner name resolve main path
	if len(parts) < 5 || parts[2] != "resolve" {
		http.NotFound(w, r)
		return
	}
	repo := parts[0] + "/" + parts[1]
	if !h.allowed(w, r, repo) {
		return
	}
	f, ok := h.repos[repo][parts[4]]
	if !ok {
		http.Error(w, "Entry not found", http.StatusNotFound)
		return
	}
	if !f.lfs {
		w.Header().Set("ETag", `"`+gitSHA1(f.data)+`"`)
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(f.data))
		return
	}
	sum := sha256hex(f.data)
	if f.badSum {
		sum = sha256hex(append([]byte("other"), f.data...))
	}
	w.Header().Set("X-Linked-Etag", `"`+sum+`"`)
	w.Header().Set("X-Linked-Size", fmt.Sprint(len(f.data)))
	w.Header().Set("Location", h.cdn.URL+"/blobs/"+repo+"/"+parts[4]+"?signature=abc")
	w.WriteHeader(http.StatusFound)
}

func (h *fakeHub) allowed(w http.ResponseWriter, r *http.Request, repo string) bool {
	if h.gated[repo] && r.Header.Get("Authorization") != "Bearer "+h.token {
		http.Error(w, `{"error":"Access to model `+repo+` is restricted. You must have access to it and be authenticated to access it. Please log in."}`, http.StatusUnauthorized)
		return false
	}
	return true
}

func (h *fakeHub) serveCDN(w http.ResponseWriter, r *http.Request) {
	rest := strings.TrimPrefix(r.URL.Path, "/blobs/")
	parts := strings.SplitN(rest, "/", 3)
	h.mu.Lock()
	h.cdnAuth = append(h.cdnAuth, r.Header.Get("Authorization"))
	h.ranges = append(h.ranges, r.Header.Get("Range"))
	f := h.repos[parts[0]+"/"+parts[1]][parts[2]]
	drop := f != nil && f.dropOnce && !h.dropped[rest]
	if drop {
		h.dropped[rest] = true
	}
	h.mu.Unlock()
	if f == nil {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("ETag", `"cdn-etag-not-a-checksum"`)
	if drop {
		// announce the whole file, send half, cut the connection
		w.Header().Set("Content-Length", fmt.Sprint(len(f.data)))
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(f.data[:len(f.data)/2])
		w.(http.Flusher).Flush()
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
		return
	}
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(f.data))
}

func blob(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*31) ^ seed
	}
	copy(b, "GGUF")
	return b
}

func (h *fakeHub) opts(dir string) Options {
	return Options{Dir: dir, Endpoint: h.hub.URL, RetryWait: time.Millisecond}
}

func TestParseRef(t *testing.T) {
	for in, want := range map[string]Ref{
		"Qwen/Qwen3-8B-GGUF:Q4_K_M":      {Repo: "Qwen/Qwen3-8B-GGUF", Quant: "Q4_K_M"},
		"Qwen/Qwen3-8B-GGUF:q4_k_m":      {Repo: "Qwen/Qwen3-8B-GGUF", Quant: "q4_k_m"},
		"org/m":                          {Repo: "org/m"},
		"org/m/sub/model-Q8_0.gguf":      {Repo: "org/m", File: "sub/model-Q8_0.gguf"},
		"ggml-org/tiny-llamas/s.gguf":    {Repo: "ggml-org/tiny-llamas", File: "s.gguf"},
		" unsloth/Qwen3-0.6B-GGUF:Q8_0 ": {Repo: "unsloth/Qwen3-0.6B-GGUF", Quant: "Q8_0"},
	} {
		got, err := ParseRef(in)
		if err != nil || got != want {
			t.Errorf("ParseRef(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "model", "org/", "/m", "org/m:", "org/m/../x.gguf", "org/m/a.gguf:Q4", "org/m//x"} {
		if _, err := ParseRef(in); err == nil {
			t.Errorf("ParseRef(%q): no error", in)
		}
	}
}

// :QUANT picks the file by quantization name, case-insensitively, with
// every shard of a split file; the LFS files come through the CDN
// redirect, the token never goes to the CDN, and nothing temporary stays.
func TestPullQuantShardsThroughCDN(t *testing.T) {
	h := newFakeHub(t)
	files := map[string]*hubFile{
		"model-Q4_K_M.gguf":              {data: blob(3000, 1), lfs: true},
		"model-Q4_K.gguf":                {data: blob(2000, 2), lfs: true},
		"model-Q8_0-00001-of-00002.gguf": {data: blob(5000, 3), lfs: true},
		"model-Q8_0-00002-of-00002.gguf": {data: blob(4000, 4), lfs: true},
		"mmproj-model-Q8_0.gguf":         {data: blob(100, 5), lfs: true},
		"README.md":                      {data: []byte("# model\n")},
	}
	h.repos["org/model-GGUF"] = files
	dir := t.TempDir()
	o := h.opts(dir)
	o.Token = h.token
	var events []Event
	o.Progress = func(e Event) { events = append(events, e) }

	res, err := Pull(context.Background(), Ref{Repo: "org/model-GGUF", Quant: "q8_0"}, o)
	if err != nil {
		t.Fatal(err)
	}
	if res.ID != "model-Q8_0-00001-of-00002" || len(res.Files) != 2 {
		t.Fatalf("result %+v", res)
	}
	for _, name := range []string{"model-Q8_0-00001-of-00002.gguf", "model-Q8_0-00002-of-00002.gguf"} {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || !bytes.Equal(got, files[name].data) {
			t.Fatalf("%s: wrong contents (%v)", name, err)
		}
	}
	res, err = Pull(context.Background(), Ref{Repo: "org/model-GGUF", Quant: "Q4_K"}, o)
	if err != nil {
		t.Fatal(err)
	}
	if res.ID != "model-Q4_K" {
		t.Fatalf("Q4_K picked %+v", res)
	}
	ents, _ := os.ReadDir(dir)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if want := "model-Q4_K.gguf model-Q8_0-00001-of-00002.gguf model-Q8_0-00002-of-00002.gguf"; strings.Join(names, " ") != want {
		t.Fatalf("models folder holds %v, want %s", names, want)
	}
	for _, a := range h.cdnAuth {
		if a != "" {
			t.Fatalf("the token went to the CDN host: %q", a)
		}
	}
	if !strings.Contains(strings.Join(h.hubAuth, ","), "Bearer "+h.token) {
		t.Fatal("the token was not sent to the Hub")
	}
	var sawDone bool
	for _, e := range events {
		sawDone = sawDone || (e.Status == "done" && e.Count == 2)
	}
	if !sawDone {
		t.Fatalf("no done events: %+v", events)
	}
	// a second pull finds the files and downloads nothing
	before := len(h.ranges)
	if _, err := Pull(context.Background(), Ref{Repo: "org/model-GGUF", Quant: "Q4_K"}, o); err != nil {
		t.Fatal(err)
	}
	if len(h.ranges) != before {
		t.Fatal("a file already there was downloaded again")
	}
	// a quantization the repository lacks names those it has
	_, err = Pull(context.Background(), Ref{Repo: "org/model-GGUF", Quant: "Q5_K_M"}, o)
	if err == nil || !strings.Contains(err.Error(), "Q4_K_M") || !strings.Contains(err.Error(), "Q8_0") {
		t.Fatalf("missing quantization: %v", err)
	}
	// the whole repository holds several GGUF models: ask which
	if _, err := Pull(context.Background(), Ref{Repo: "org/model-GGUF"}, o); err == nil || !strings.Contains(err.Error(), ":QUANT") {
		t.Fatalf("ambiguous repository: %v", err)
	}
}

// /FILE names one file; naming the first shard brings the others.
func TestPullFileAndShards(t *testing.T) {
	h := newFakeHub(t)
	h.repos["org/m"] = map[string]*hubFile{
		"big/m-BF16-00001-of-00003.gguf": {data: blob(100, 1), lfs: true},
		"big/m-BF16-00002-of-00003.gguf": {data: blob(100, 2), lfs: true},
		"big/m-BF16-00003-of-00003.gguf": {data: blob(100, 3), lfs: true},
		"m-F16.gguf":                     {data: blob(100, 4), lfs: true},
	}
	dir := t.TempDir()
	res, err := Pull(context.Background(), Ref{Repo: "org/m", File: "big/m-BF16-00001-of-00003.gguf"}, h.opts(dir))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Files) != 3 || res.Path != filepath.Join(dir, "m-BF16-00001-of-00003.gguf") {
		t.Fatalf("result %+v", res)
	}
	// the first part, the one a neuron lists, is placed last
	if res.Files[2] != res.Path {
		t.Fatalf("first part placed before the others: %v", res.Files)
	}
	if _, err := Pull(context.Background(), Ref{Repo: "org/m", File: "nope.gguf"}, h.opts(dir)); err == nil {
		t.Fatal("a missing file was pulled")
	}
}

// A safetensors repository comes whole into a folder named after it: the
// config, the tokenizer files and every shard, nothing else; the small
// files are checked against their git blob ids.
func TestPullSafetensorsFolder(t *testing.T) {
	h := newFakeHub(t)
	files := map[string]*hubFile{
		"config.json":                       {data: []byte(`{"architectures":["LlamaForCausalLM"]}`)},
		"generation_config.json":            {data: []byte(`{}`)},
		"tokenizer.json":                    {data: []byte(`{"model":{}}`)},
		"tokenizer_config.json":             {data: []byte(`{}`)},
		"model.safetensors.index.json":      {data: []byte(`{"weight_map":{}}`)},
		"model-00001-of-00002.safetensors":  {data: blob(4000, 1), lfs: true},
		"model-00002-of-00002.safetensors":  {data: blob(3000, 2), lfs: true, dropOnce: true},
		"README.md":                         {data: []byte("readme")},
		".gitattributes":                    {data: []byte("*.safetensors filter=lfs")},
		"original/consolidated.safetensors": {data: blob(100, 3), lfs: true},
	}
	h.repos["org/Llama-HF"] = files
	h.pageSize = 3 // the listing comes in pages
	dir := t.TempDir()
	res, err := Pull(context.Background(), Ref{Repo: "org/Llama-HF"}, h.opts(dir))
	if err != nil {
		t.Fatal(err)
	}
	if res.ID != "Llama-HF" || res.Path != filepath.Join(dir, "Llama-HF") {
		t.Fatalf("result %+v", res)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 || ents[0].Name() != "Llama-HF" {
		t.Fatalf("models folder holds %v", ents)
	}
	got, _ := os.ReadDir(res.Path)
	var names []string
	for _, e := range got {
		names = append(names, e.Name())
	}
	want := "config.json generation_config.json model-00001-of-00002.safetensors model-00002-of-00002.safetensors model.safetensors.index.json tokenizer.json tokenizer_config.json"
	if strings.Join(names, " ") != want {
		t.Fatalf("folder holds %v, want %s", names, want)
	}
	for _, n := range names {
		b, _ := os.ReadFile(filepath.Join(res.Path, n))
		if !bytes.Equal(b, files[n].data) {
			t.Fatalf("%s differs", n)
		}
	}
}

// A gated repository answers 401 without a token; the error says to set
// HF_TOKEN; with it the pull works.
func TestPullGatedRepository(t *testing.T) {
	h := newFakeHub(t)
	h.repos["meta/gated-GGUF"] = map[string]*hubFile{"g-Q4_0.gguf": {data: blob(500, 9), lfs: true}}
	h.gated["meta/gated-GGUF"] = true
	dir := t.TempDir()
	_, err := Pull(context.Background(), Ref{Repo: "meta/gated-GGUF", Quant: "Q4_0"}, h.opts(dir))
	if err == nil || !strings.Contains(err.Error(), "HF_TOKEN") || !strings.Contains(err.Error(), "401") {
		t.Fatalf("gated without token: %v", err)
	}
	o := h.opts(dir)
	o.Token = "wrong"
	if _, err := Pull(context.Background(), Ref{Repo: "meta/gated-GGUF", Quant: "Q4_0"}, o); err == nil || !strings.Contains(err.Error(), "refused the token") {
		t.Fatalf("gated with a wrong token: %v", err)
	}
	t.Setenv("HF_TOKEN", h.token)
	t.Setenv("HF_ENDPOINT", h.hub.URL)
	o = Options{Dir: dir}
	o.FromEnv()
	if _, err := Pull(context.Background(), Ref{Repo: "meta/gated-GGUF", Quant: "Q4_0"}, o); err != nil {
		t.Fatalf("gated with HF_TOKEN and HF_ENDPOINT: %v", err)
	}
}

// A connection cut half-way is resumed with a Range request, within one
// pull (retries) and across two (the part file stays).
func TestPullResumesDroppedConnection(t *testing.T) {
	h := newFakeHub(t)
	data := blob(64<<10, 7)
	h.repos["org/r"] = map[string]*hubFile{"r-Q8_0.gguf": {data: data, lfs: true, dropOnce: true}}
	dir := t.TempDir()
	if _, err := Pull(context.Background(), Ref{Repo: "org/r", Quant: "Q8_0"}, h.opts(dir)); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(filepath.Join(dir, "r-Q8_0.gguf"))
	if !bytes.Equal(got, data) {
		t.Fatal("resumed file differs")
	}
	want := fmt.Sprintf("bytes=%d-", len(data)/2)
	if len(h.ranges) != 2 || h.ranges[0] != "" || h.ranges[1] != want {
		t.Fatalf("CDN saw ranges %q, want [\"\" %q]", h.ranges, want)
	}

	// no retries: the pull fails, leaves the part, and the next one resumes
	h2 := newFakeHub(t)
	h2.repos["org/r"] = map[string]*hubFile{"r-Q8_0.gguf": {data: data, lfs: true, dropOnce: true}}
	dir2 := t.TempDir()
	o := h2.opts(dir2)
	o.Retries = -1
	if _, err := Pull(context.Background(), Ref{Repo: "org/r", Quant: "Q8_0"}, o); err == nil {
		t.Fatal("a cut transfer without retries succeeded")
	}
	part := filepath.Join(dir2, ".r-Q8_0.gguf.part")
	if fi, err := os.Stat(part); err != nil || fi.Size() != int64(len(data)/2) {
		t.Fatalf("part file after the cut: %v %v", fi, err)
	}
	if _, err := os.Stat(filepath.Join(dir2, "r-Q8_0.gguf")); err == nil {
		t.Fatal("an incomplete file was put in place")
	}
	if _, err := Pull(context.Background(), Ref{Repo: "org/r", Quant: "Q8_0"}, o); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(dir2, "r-Q8_0.gguf")); !bytes.Equal(got, data) {
		t.Fatal("file resumed across pulls differs")
	}
	if h2.ranges[len(h2.ranges)-1] != want {
		t.Fatalf("second pull did not resume: ranges %q", h2.ranges)
	}
}

// A download whose SHA-256 is not the Hub's is discarded with a clear
// error; nothing is renamed into place.
func TestPullWrongChecksum(t *testing.T) {
	h := newFakeHub(t)
	h.repos["org/bad"] = map[string]*hubFile{"bad-Q4_0.gguf": {data: blob(1000, 3), lfs: true, badSum: true}}
	dir := t.TempDir()
	_, err := Pull(context.Background(), Ref{Repo: "org/bad", File: "bad-Q4_0.gguf"}, h.opts(dir))
	if err == nil || !strings.Contains(err.Error(), "checksum mismatch") {
		t.Fatalf("wrong checksum: %v", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("a bad download left %v", ents)
	}
	if len(h.ranges) != 1 {
		t.Fatalf("a checksum mismatch was retried %d times", len(h.ranges)-1)
	}
}

func TestPullNotFound(t *testing.T) {
	h := newFakeHub(t)
	_, err := Pull(context.Background(), Ref{Repo: "org/none"}, h.opts(t.TempDir()))
	if err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("missing repository: %v", err)
	}
}
