// Package pull downloads models from the Hugging Face Hub (or a mirror of
// it) into a models folder: one GGUF file, a quantization picked by name,
// every shard of a split GGUF, or a whole safetensors repository.
//
// Each file is written to a temporary name beside its destination, resumed
// with a Range request after an interruption, checked against the Hub's
// SHA-256 (the X-Linked-Etag of an LFS file) and renamed into place only
// once it checks out. A safetensors repository is gathered in a hidden
// folder and renamed into place when every file is there, so that a
// neuron scanning the models folder never sees half a model.
package pull

import (
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// DefaultEndpoint is the Hub; HF_ENDPOINT overrides it.
const DefaultEndpoint = "https://huggingface.co"

// Ref names what to pull: Repo ("owner/name") with at most one of Quant (a
// quantization name such as Q4_K_M, matched case-insensitively against the
// GGUF file names) and File (a path inside the repository).
type Ref struct {
	Repo, Quant, File string
}

func (r Ref) String() string {
	switch {
	case r.File != "":
		return r.Repo + "/" + r.File
	case r.Quant != "":
		return r.Repo + ":" + r.Quant
	}
	return r.Repo
}

var repoPart = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// ParseRef reads REPO[:QUANT|/FILE].
func ParseRef(s string) (Ref, error) {
	s = strings.TrimSpace(s)
	bad := func(why string) (Ref, error) {
		return Ref{}, fmt.Errorf("model %q: %s (want OWNER/NAME, OWNER/NAME:QUANT or OWNER/NAME/FILE)", s, why)
	}
	var r Ref
	if i := strings.LastIndexByte(s, ':'); i >= 0 {
		r.Quant = s[i+1:]
		s = s[:i]
		if r.Quant == "" || strings.ContainsAny(r.Quant, "/\\ ") {
			return bad("the quantization after ':' is empty or not a name")
		}
	}
	parts := strings.SplitN(s, "/", 3)
	if len(parts) < 2 || !repoPart.MatchString(parts[0]) || !repoPart.MatchString(parts[1]) {
		return bad("not a repository name")
	}
	r.Repo = parts[0] + "/" + parts[1]
	if len(parts) == 3 {
		if r.Quant != "" {
			return bad("give a quantization or a file, not both")
		}
		r.File = parts[2]
		for _, seg := range strings.Split(r.File, "/") {
			if seg == "" || seg == "." || seg == ".." {
				return bad("the file path is not a plain path")
			}
		}
	}
	return r, nil
}

// Event is one step of a pull, for progress display.
type Event struct {
	// Status is "resolving", "downloading", "verifying", "done" (one file
	// checked and in place), "exists" (already there) or "retrying".
	Status    string `json:"status"`
	File      string `json:"file,omitempty"`
	Completed int64  `json:"completed,omitempty"`
	Total     int64  `json:"total,omitempty"`
	// Index and Count number the files of this pull (from 1).
	Index int    `json:"index,omitempty"`
	Count int    `json:"count,omitempty"`
	Error string `json:"error,omitempty"`
}

// Options configure a pull.
type Options struct {
	// Dir is the models folder.
	Dir string
	// Endpoint is the Hub's address (DefaultEndpoint when empty).
	Endpoint string
	// Token is sent as a bearer token to the endpoint's host only.
	Token string
	// Revision is the branch, tag or commit (default "main").
	Revision string
	// Client does the HTTP requests (http.DefaultClient's transport when
	// nil). Its redirects are followed here, not by the client.
	Client *http.Client
	// Progress sees every event; it may be nil.
	Progress func(Event)
	// Retries is how many times an interrupted download is resumed before
	// the pull fails (default 5; negative: none).
	Retries int
	// RetryWait is the pause before the first retry, doubled each time
	// (default 1s).
	RetryWait time.Duration
}

// FromEnv fills Endpoint and Token from HF_ENDPOINT and HF_TOKEN (or
// HUGGING_FACE_HUB_TOKEN) where they are empty.
func (o *Options) FromEnv() {
	if o.Endpoint == "" {
		o.Endpoint = os.Getenv("HF_ENDPOINT")
	}
	if o.Token == "" {
		o.Token = os.Getenv("HF_TOKEN")
	}
	if o.Token == "" {
		o.Token = os.Getenv("HUGGING_FACE_HUB_TOKEN")
	}
}

// Result says what a pull put where.
type Result struct {
	// ID is the model id a neuron serves it under.
	ID string `json:"model"`
	// Path is the GGUF file (the first shard) or the folder.
	Path  string   `json:"path"`
	Files []string `json:"files"`
	Bytes int64    `json:"bytes"`
}

// remoteFile is one file of the repository listing.
type remoteFile struct {
	Path   string
	Size   int64
	SHA256 string // LFS files only
}

// Pull downloads ref into o.Dir.
func Pull(ctx context.Context, ref Ref, o Options) (Result, error) {
	p, err := newPuller(o)
	if err != nil {
		return Result{}, err
	}
	p.emit(Event{Status: "resolving", File: ref.String()})
	files, err := p.list(ctx, ref.Repo)
	if err != nil {
		return Result{}, err
	}
	plan, err := choose(ref, files)
	if err != nil {
		return Result{}, err
	}
	return p.fetch(ctx, ref, plan)
}

type puller struct {
	o        Options
	endpoint *url.URL
	client   *http.Client
}

func newPuller(o Options) (*puller, error) {
	if o.Dir == "" {
		return nil, errors.New("pull: no models folder")
	}
	if o.Endpoint == "" {
		o.Endpoint = DefaultEndpoint
	}
	u, err := url.Parse(strings.TrimRight(o.Endpoint, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("pull: endpoint %q is not an http(s) URL", o.Endpoint)
	}
	if o.Revision == "" {
		o.Revision = "main"
	}
	if o.Retries == 0 {
		o.Retries = 5
	}
	if o.RetryWait <= 0 {
		o.RetryWait = time.Second
	}
	c := &http.Client{}
	if o.Client != nil {
		*c = *o.Client
	}
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &puller{o: o, endpoint: u, client: c}, nil
}

func (p *puller) emit(e Event) {
	if p.o.Progress != nil {
		p.o.Progress(e)
	}
}

// get does one GET, following redirects itself: the token goes to the
// endpoint's host only (never to a CDN it redirects to), and the
// X-Linked-Etag and X-Linked-Size headers of any hop are kept.
func (p *puller) get(ctx context.Context, rawURL string, header http.Header) (*http.Response, http.Header, error) {
	linked := http.Header{}
	u := rawURL
	for hop := 0; hop < 10; hop++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return nil, nil, fmt.Errorf("GET %s: %w", u, err)
		}
		for k, v := range header {
			req.Header[k] = v
		}
		req.Header.Set("User-Agent", "helexa-pull")
		if p.o.Token != "" && req.URL.Host == p.endpoint.Host {
			req.Header.Set("Authorization", "Bearer "+p.o.Token)
		}
		resp, err := p.client.Do(req)
		if err != nil {
			return nil, nil, fmt.Errorf("GET %s: %w", u, err)
		}
		for _, k := range []string{"X-Linked-Etag", "X-Linked-Size"} {
			if v := resp.Header.Get(k); v != "" && linked.Get(k) == "" {
				linked.Set(k, v)
			}
		}
		switch resp.StatusCode {
		case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther, http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
			loc, err := resp.Location()
			drain(resp)
			if err != nil {
				return nil, nil, fmt.Errorf("GET %s: redirect without a usable Location: %w", u, err)
			}
			u = loc.String()
			continue
		}
		return resp, linked, nil
	}
	return nil, nil, fmt.Errorf("GET %s: too many redirects", rawURL)
}

func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
}

// statusError turns a Hub's error answer into a message that says what to
// do about it.
func (p *puller) statusError(what string, resp *http.Response) error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	msg := strings.TrimSpace(string(body))
	var env struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(body, &env) == nil && env.Error != "" {
		msg = env.Error
	}
	if len(msg) > 300 {
		msg = msg[:300] + "…"
	}
	switch resp.StatusCode {
	case http.StatusUnauthorized:
		if p.o.Token == "" {
			return fmt.Errorf("%s: the Hub wants a token (HTTP 401): the repository is gated or private, or does not exist; set HF_TOKEN to a token of an account that may read it", what)
		}
		return fmt.Errorf("%s: the Hub refused the token in HF_TOKEN (HTTP 401): %s", what, msg)
	case http.StatusForbidden:
		return fmt.Errorf("%s: access denied (HTTP 403; for a gated repository, accept its terms on the Hub with the account of HF_TOKEN): %s", what, msg)
	case http.StatusNotFound:
		return fmt.Errorf("%s: not found (HTTP 404): %s", what, msg)
	}
	return fmt.Errorf("%s: HTTP %s: %s", what, resp.Status, msg)
}

// list reads the repository's files from /api/models/{repo}/tree/{rev},
// following the Link rel="next" pages of a long listing.
func (p *puller) list(ctx context.Context, repo string) ([]remoteFile, error) {
	u := p.endpoint.String() + "/api/models/" + repo + "/tree/" + url.PathEscape(p.o.Revision) + "?recursive=true"
	var out []remoteFile
	for page := 0; u != ""; page++ {
		if page >= 1000 {
			return nil, fmt.Errorf("listing %s: more than 1000 pages", repo)
		}
		files, next, err := p.listPage(ctx, repo, u)
		if err != nil {
			return nil, err
		}
		out = append(out, files...)
		u = next
	}
	return out, nil
}

func (p *puller) listPage(ctx context.Context, repo, u string) ([]remoteFile, string, error) {
	resp, _, err := p.get(ctx, u, nil)
	if err != nil {
		return nil, "", fmt.Errorf("listing %s: %w", repo, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, "", p.statusError("listing "+repo, resp)
	}
	var entries []struct {
		Type string `json:"type"`
		Path string `json:"path"`
		Size int64  `json:"size"`
		LFS  *struct {
			Oid  string `json:"oid"`
			Size int64  `json:"size"`
		} `json:"lfs"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(&entries); err != nil {
		return nil, "", fmt.Errorf("listing %s: reading the Hub's answer: %w", repo, err)
	}
	var out []remoteFile
	for _, e := range entries {
		if e.Type != "file" {
			continue
		}
		f := remoteFile{Path: e.Path, Size: e.Size}
		if e.LFS != nil {
			f.SHA256 = strings.ToLower(e.LFS.Oid)
			if e.LFS.Size > 0 {
				f.Size = e.LFS.Size
			}
		}
		out = append(out, f)
	}
	next := ""
	if m := linkNext.FindStringSubmatch(resp.Header.Get("Link")); m != nil {
		ref, err := url.Parse(m[1])
		if err == nil {
			next = resp.Request.URL.ResolveReference(ref).String()
		}
	}
	return out, next, nil
}

var linkNext = regexp.MustCompile(`<([^>]+)>\s*;\s*rel="?next"?`)

// shardRe matches a split GGUF's part: name-00001-of-00003.gguf.
var shardRe = regexp.MustCompile(`(?i)^(.*)-(\d{5})-of-(\d{5})\.gguf$`)

// plan is what to download and where.
type plan struct {
	files []remoteFile
	// folder is the folder name for a safetensors repository; empty for
	// GGUF files, which go straight into the models folder.
	folder string
}

// hfFiles are the non-weight files a safetensors model folder needs.
var hfFiles = map[string]bool{
	"config.json": true, "generation_config.json": true, "tokenizer.json": true, "tokenizer_config.json": true,
	"tokenizer.model": true, "special_tokens_map.json": true, "added_tokens.json": true, "vocab.json": true,
	"merges.txt": true, "chat_template.jinja": true, "chat_template.json": true, "preprocessor_config.json": true,
}

func isGGUF(p string) bool { return strings.HasSuffix(strings.ToLower(p), ".gguf") }

// isProjector tells a multimodal projector file (not a model of its own).
func isProjector(p string) bool { return strings.Contains(strings.ToLower(path.Base(p)), "mmproj") }

// choose picks the files of ref from the listing.
func choose(ref Ref, files []remoteFile) (plan, error) {
	byPath := map[string]remoteFile{}
	for _, f := range files {
		byPath[f.Path] = f
	}
	switch {
	case ref.File != "":
		f, ok := byPath[ref.File]
		if !ok {
			return plan{}, fmt.Errorf("%s has no file %q", ref.Repo, ref.File)
		}
		if !isGGUF(f.Path) {
			return plan{}, fmt.Errorf("%s: %q is not a .gguf file (pull %s alone for a whole safetensors repository)", ref.Repo, ref.File, ref.Repo)
		}
		return plan{files: withShards(f, files)}, nil
	case ref.Quant != "":
		// Q4_K must not pick Q4_K_M: no underscore after the name
		q := regexp.MustCompile(`(?i)(^|[-_./])` + regexp.QuoteMeta(ref.Quant) + `($|[-./])`)
		var match []remoteFile
		for _, f := range files {
			if !isGGUF(f.Path) || isProjector(f.Path) {
				continue
			}
			if q.MatchString(strings.TrimSuffix(f.Path, path.Ext(f.Path))) {
				match = append(match, f)
			}
		}
		if len(match) == 0 {
			return plan{}, fmt.Errorf("%s has no GGUF file of quantization %q; it has: %s", ref.Repo, ref.Quant, strings.Join(quants(files), ", "))
		}
		// one model: a single file, or the shards of one split file
		first := match[0]
		for _, f := range match {
			if m := shardRe.FindStringSubmatch(path.Base(f.Path)); m != nil && m[2] == "00001" {
				first = f
				break
			}
		}
		set := withShards(first, files)
		if len(set) < len(match) {
			var names []string
			for _, f := range match {
				names = append(names, f.Path)
			}
			return plan{}, fmt.Errorf("%s: quantization %q matches several models (%s); name the file with %s/FILE", ref.Repo, ref.Quant, strings.Join(names, ", "), ref.Repo)
		}
		return plan{files: set}, nil
	}
	// the whole repository: safetensors weights, else its only GGUF model
	var st []remoteFile
	hasConfig := false
	for _, f := range files {
		base := path.Base(f.Path)
		switch {
		case f.Path == "config.json":
			hasConfig = true
			st = append(st, f)
		case !strings.Contains(f.Path, "/") && (hfFiles[base] || strings.HasSuffix(base, ".safetensors") || base == "model.safetensors.index.json"):
			st = append(st, f)
		}
	}
	weights := false
	for _, f := range st {
		weights = weights || strings.HasSuffix(f.Path, ".safetensors")
	}
	if hasConfig && weights {
		return plan{files: st, folder: path.Base(ref.Repo)}, nil
	}
	var models []remoteFile
	for _, f := range files {
		if !isGGUF(f.Path) || isProjector(f.Path) {
			continue
		}
		if m := shardRe.FindStringSubmatch(path.Base(f.Path)); m != nil && m[2] != "00001" {
			continue
		}
		models = append(models, f)
	}
	switch len(models) {
	case 0:
		return plan{}, fmt.Errorf("%s has neither safetensors weights with a config.json nor GGUF files", ref.Repo)
	case 1:
		return plan{files: withShards(models[0], files)}, nil
	}
	return plan{}, fmt.Errorf("%s holds several GGUF models: pick one with %s:QUANT (%s) or %s/FILE", ref.Repo, ref.Repo, strings.Join(quants(files), ", "), ref.Repo)
}

// withShards returns f, or every part of the split GGUF f belongs to (an
// error later if some are missing from the listing is the Hub's to give:
// the listed parts are what there is).
func withShards(f remoteFile, files []remoteFile) []remoteFile {
	m := shardRe.FindStringSubmatch(path.Base(f.Path))
	if m == nil {
		return []remoteFile{f}
	}
	dir := path.Dir(f.Path)
	var out []remoteFile
	for _, g := range files {
		n := shardRe.FindStringSubmatch(path.Base(g.Path))
		if n != nil && path.Dir(g.Path) == dir && strings.EqualFold(n[1], m[1]) && n[3] == m[3] {
			out = append(out, g)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

var quantRe = regexp.MustCompile(`(?i)(?:^|[-_.])((?:IQ|Q|TQ)\d[A-Z0-9_]*?|F16|BF16|F32)(?:$|[-.])`)

// quants lists the quantization names the GGUF files carry, for messages.
func quants(files []remoteFile) []string {
	seen := map[string]bool{}
	var out []string
	for _, f := range files {
		if !isGGUF(f.Path) || isProjector(f.Path) {
			continue
		}
		name := strings.TrimSuffix(path.Base(f.Path), path.Ext(f.Path))
		if m := shardRe.FindStringSubmatch(path.Base(f.Path)); m != nil {
			name = m[1]
		}
		q := name
		if m := quantRe.FindAllStringSubmatch(name, -1); m != nil {
			q = strings.ToUpper(m[len(m)-1][1])
		}
		if !seen[q] {
			seen[q] = true
			out = append(out, q)
		}
	}
	sort.Strings(out)
	return out
}

// fetch downloads the plan's files.
func (p *puller) fetch(ctx context.Context, ref Ref, pl plan) (Result, error) {
	if err := os.MkdirAll(p.o.Dir, 0o755); err != nil {
		return Result{}, fmt.Errorf("creating models folder %s: %w", p.o.Dir, err)
	}
	var res Result
	dir := p.o.Dir
	final := ""
	if pl.folder != "" {
		final = filepath.Join(p.o.Dir, pl.folder)
		dir = final
		if _, err := os.Stat(final); errors.Is(err, os.ErrNotExist) {
			// gathered out of sight, renamed into place when whole
			dir = filepath.Join(p.o.Dir, "."+pl.folder+".partial")
		}
		res.ID, res.Path = pl.folder, final
	}
	files := pl.files
	if pl.folder == "" && len(files) > 1 {
		// the first part of a split GGUF is what a neuron lists: it comes
		// last, so that the model appears only when every part is there
		files = append(append([]remoteFile(nil), files[1:]...), files[0])
	}
	for i, f := range files {
		dst := filepath.Join(dir, filepath.FromSlash(f.Path))
		if pl.folder == "" {
			dst = filepath.Join(dir, path.Base(f.Path))
		}
		n, err := p.file(ctx, ref.Repo, f, dst, i+1, len(files))
		if err != nil {
			return Result{}, err
		}
		res.Files = append(res.Files, dst)
		res.Bytes += n
	}
	if pl.folder != "" && dir != final {
		if err := os.Rename(dir, final); err != nil {
			return Result{}, fmt.Errorf("placing %s: %w", final, err)
		}
		for i, f := range res.Files {
			res.Files[i] = filepath.Join(final, strings.TrimPrefix(f, dir+string(filepath.Separator)))
		}
	}
	if pl.folder == "" {
		res.Path = filepath.Join(dir, path.Base(pl.files[0].Path))
		base := filepath.Base(res.Path)
		res.ID = base[:len(base)-len(filepath.Ext(base))]
	}
	return res, nil
}

// file downloads one file to dst unless it is already there, retrying an
// interrupted transfer from where it stopped.
func (p *puller) file(ctx context.Context, repo string, f remoteFile, dst string, idx, count int) (int64, error) {
	if fi, err := os.Stat(dst); err == nil && fi.Mode().IsRegular() && (f.Size <= 0 || fi.Size() == f.Size) {
		p.emit(Event{Status: "exists", File: f.Path, Completed: fi.Size(), Total: fi.Size(), Index: idx, Count: count})
		return fi.Size(), nil
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return 0, fmt.Errorf("creating %s: %w", filepath.Dir(dst), err)
	}
	tmp := filepath.Join(filepath.Dir(dst), "."+filepath.Base(dst)+".part")
	wait := p.o.RetryWait
	for try := 0; ; try++ {
		n, err := p.transfer(ctx, repo, f, dst, tmp, idx, count)
		if err == nil {
			return n, nil
		}
		var perm *permanentError
		if errors.As(err, &perm) || ctx.Err() != nil || try >= p.o.Retries {
			if errors.As(err, &perm) {
				return 0, perm.err
			}
			return 0, err
		}
		p.emit(Event{Status: "retrying", File: f.Path, Index: idx, Count: count, Error: err.Error()})
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, 30*time.Second)
	}
}

// permanentError is a failure a retry would not cure.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }

var hex64 = regexp.MustCompile(`^[0-9a-f]{64}$`)
var hex40 = regexp.MustCompile(`^[0-9a-f]{40}$`)

func etagValue(s string) string {
	s = strings.TrimPrefix(strings.TrimSpace(s), "W/")
	return strings.ToLower(strings.Trim(s, `"`))
}

// transfer does one attempt: resume tmp (or start it), stream the rest,
// check size and checksum, rename to dst.
func (p *puller) transfer(ctx context.Context, repo string, f remoteFile, dst, tmp string, idx, count int) (int64, error) {
	u := p.endpoint.String() + "/" + repo + "/resolve/" + url.PathEscape(p.o.Revision) + "/" + escapePath(f.Path)
	have := int64(0)
	if fi, err := os.Stat(tmp); err == nil {
		have = fi.Size()
	}
	if f.Size > 0 && have > f.Size {
		have = 0 // not ours: start over
	}
	hdr := http.Header{}
	if have > 0 {
		hdr.Set("Range", "bytes="+strconv.FormatInt(have, 10)+"-")
	}
	resp, linked, err := p.get(ctx, u, hdr)
	if err != nil {
		return 0, fmt.Errorf("downloading %s: %w", f.Path, err)
	}
	defer resp.Body.Close()
	what := "downloading " + repo + "/" + f.Path
	switch resp.StatusCode {
	case http.StatusOK:
		have = 0 // the whole file: start over
	case http.StatusPartialContent:
		start, ok := contentRangeStart(resp.Header.Get("Content-Range"))
		if !ok || start != have {
			return 0, fmt.Errorf("%s: the server resumed at %q, not at byte %d", what, resp.Header.Get("Content-Range"), have)
		}
	case http.StatusRequestedRangeNotSatisfiable:
		// the part file is as long as the file or longer: check it whole
		os.Remove(tmp)
		return 0, fmt.Errorf("%s: the server refused to resume at byte %d; starting over", what, have)
	default:
		err := p.statusError(what, resp)
		if resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests {
			return 0, err
		}
		return 0, &permanentError{err}
	}

	// What the file must be: the LFS SHA-256 from X-Linked-Etag (else an
	// ETag that is one, else the listing's), or for a small file kept in
	// git its blob SHA-1.
	wantSHA, wantGit := "", ""
	for _, v := range []string{linked.Get("X-Linked-Etag"), resp.Header.Get("ETag")} {
		if e := etagValue(v); hex64.MatchString(e) && wantSHA == "" {
			wantSHA = e
		}
	}
	if wantSHA == "" && hex64.MatchString(f.SHA256) {
		wantSHA = f.SHA256
	}
	if e := etagValue(resp.Header.Get("ETag")); wantSHA == "" && hex40.MatchString(e) {
		wantGit = e
	}
	total := f.Size
	if s, err := strconv.ParseInt(linked.Get("X-Linked-Size"), 10, 64); err == nil && s > 0 {
		total = s
	} else if resp.ContentLength >= 0 && total <= 0 {
		total = have + resp.ContentLength
	}

	flags := os.O_CREATE | os.O_WRONLY
	if have == 0 {
		flags |= os.O_TRUNC
	}
	out, err := os.OpenFile(tmp, flags, 0o644)
	if err != nil {
		return 0, &permanentError{fmt.Errorf("%s: %w", what, err)}
	}
	defer out.Close()
	sum := sha256.New()
	if have > 0 {
		// hash what is already there, then append
		in, err := os.Open(tmp)
		if err != nil {
			return 0, &permanentError{fmt.Errorf("%s: %w", what, err)}
		}
		n, err := io.Copy(sum, io.LimitReader(in, have))
		in.Close()
		if err != nil || n != have {
			os.Remove(tmp)
			return 0, fmt.Errorf("%s: reading the part already downloaded: %v", what, err)
		}
		if _, err := out.Seek(have, io.SeekStart); err != nil {
			return 0, &permanentError{fmt.Errorf("%s: %w", what, err)}
		}
		if err := out.Truncate(have); err != nil {
			return 0, &permanentError{fmt.Errorf("%s: %w", what, err)}
		}
	}
	p.emit(Event{Status: "downloading", File: f.Path, Completed: have, Total: total, Index: idx, Count: count})
	done := have
	last := time.Now()
	buf := make([]byte, 256<<10)
	for {
		n, rerr := resp.Body.Read(buf)
		if n > 0 {
			if _, err := out.Write(buf[:n]); err != nil {
				return 0, &permanentError{fmt.Errorf("%s: writing %s: %w", what, tmp, err)}
			}
			sum.Write(buf[:n])
			done += int64(n)
			if time.Since(last) >= 200*time.Millisecond {
				last = time.Now()
				p.emit(Event{Status: "downloading", File: f.Path, Completed: done, Total: total, Index: idx, Count: count})
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return 0, fmt.Errorf("%s: connection lost at byte %d: %w", what, done, rerr)
		}
	}
	if err := out.Sync(); err != nil {
		return 0, &permanentError{fmt.Errorf("%s: %w", what, err)}
	}
	if err := out.Close(); err != nil {
		return 0, &permanentError{fmt.Errorf("%s: %w", what, err)}
	}
	if total > 0 && done != total {
		if done < total {
			return 0, fmt.Errorf("%s: the transfer ended at byte %d of %d", what, done, total)
		}
		os.Remove(tmp)
		return 0, &permanentError{fmt.Errorf("%s: got %d bytes, the Hub lists %d", what, done, total)}
	}
	p.emit(Event{Status: "verifying", File: f.Path, Completed: done, Total: total, Index: idx, Count: count})
	switch {
	case wantSHA != "":
		if got := hex.EncodeToString(sum.Sum(nil)); got != wantSHA {
			os.Remove(tmp)
			return 0, &permanentError{fmt.Errorf("%s: checksum mismatch: SHA-256 %s, the Hub says %s; the download was discarded and %s not written", what, got, wantSHA, dst)}
		}
	case wantGit != "":
		if got, err := gitBlobSHA1(tmp); err != nil || got != wantGit {
			os.Remove(tmp)
			return 0, &permanentError{fmt.Errorf("%s: checksum mismatch: git blob %s, the Hub says %s (%v); the download was discarded", what, got, wantGit, err)}
		}
	}
	if err := os.Rename(tmp, dst); err != nil {
		return 0, &permanentError{fmt.Errorf("placing %s: %w", dst, err)}
	}
	p.emit(Event{Status: "done", File: f.Path, Completed: done, Total: total, Index: idx, Count: count})
	return done, nil
}

// gitBlobSHA1 is the id git gives the file's contents.
func gitBlobSHA1(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", err
	}
	var h hash.Hash = sha1.New()
	fmt.Fprintf(h, "blob %d\x00", fi.Size())
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func contentRangeStart(s string) (int64, bool) {
	// bytes START-END/TOTAL
	s, ok := strings.CutPrefix(s, "bytes ")
	if !ok {
		return 0, false
	}
	a, _, ok := strings.Cut(s, "-")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(a, 10, 64)
	return n, err == nil
}

func escapePath(p string) string {
	segs := strings.Split(p, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.Join(segs, "/")
}
