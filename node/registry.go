package node

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"
)

// Model statuses, as /models reports them.
const (
	statusAvailable = "available"
	statusLoading   = "loading"
	statusLoaded    = "loaded"
	statusUnloading = "unloading"
	statusFailed    = "failed"
)

// entry is one model the node can serve. Its fields are guarded by
// Server.mu.
type entry struct {
	id     string
	path   string
	format string // gguf, safetensors
	// stamp identifies the file version inspected (size and mtime).
	stamp   string
	info    modelInfo
	infoErr error // the file cannot be read: listed as failed

	status  string
	loadErr error         // last load failure of a readable file
	loading chan struct{} // closed when the load in progress ends
	inst    *instance
}

// splitGGUF matches the second and later parts of a split GGUF model.
var splitGGUF = regexp.MustCompile(`-000(0[2-9]|[1-9]\d)-of-\d{5}$`)

// firstSplit matches the first part of a split GGUF model: the prefix,
// the part count and the extension.
var firstSplit = regexp.MustCompile(`^(.*)-00001-of-(\d{5})(\.(?i:gguf))$`)

// found is one model seen in a models folder.
type found struct {
	id, path, format, stamp string
}

// scanDirs lists the models in dirs: every *.gguf file and every folder
// holding config.json and weights. The id is the file or folder name
// without extension; the first folder wins a duplicate id. Unless
// followLinks, a model reached through a symbolic link that leads out of
// its models folder is skipped (listed in skipped).
func scanDirs(dirs []string, followLinks bool) (out []found, skipped []string, _ error) {
	seen := map[string]bool{}
	var errs []string
	for _, dir := range dirs {
		ents, err := os.ReadDir(dir)
		if err != nil {
			if os.IsNotExist(err) {
				continue
			}
			errs = append(errs, fmt.Sprintf("reading models folder %s: %v", dir, err))
			continue
		}
		for _, de := range ents {
			name := de.Name()
			if strings.HasPrefix(name, ".") {
				continue
			}
			p := filepath.Join(dir, name)
			fi, err := os.Stat(p) // follows links
			if err != nil {
				continue
			}
			if !followLinks && !staysInside(dir, p) {
				skipped = append(skipped, p)
				continue
			}
			var f found
			switch {
			case fi.Mode().IsRegular() && strings.HasSuffix(strings.ToLower(name), ".gguf"):
				id := name[:len(name)-len(".gguf")]
				if splitGGUF.MatchString(id) {
					continue
				}
				f = found{id: id, path: p, format: "gguf", stamp: stampOf(fi)}
			case fi.IsDir() && isHFFolder(p):
				f = found{id: name, path: p, format: "safetensors", stamp: hfStamp(p)}
			default:
				continue
			}
			if seen[f.id] {
				continue
			}
			seen[f.id] = true
			out = append(out, f)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	if len(errs) > 0 {
		return out, skipped, fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return out, skipped, nil
}

// staysInside reports whether p, an entry of the models folder dir, and
// everything a load reads through it (the files of a Hugging Face folder,
// the parts of a split GGUF) resolve to places inside dir once symbolic
// links are followed. A link from one model to another in the same
// folder is fine; a link out of it is not.
func staysInside(dir, p string) bool {
	root, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return false
	}
	inside := func(q string) bool {
		real, err := filepath.EvalSymlinks(q)
		if err != nil {
			return false
		}
		rel, err := filepath.Rel(root, real)
		return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && !filepath.IsAbs(rel)
	}
	if !inside(p) {
		return false
	}
	fi, err := os.Stat(p)
	if err != nil || !fi.IsDir() {
		if m := firstSplit.FindStringSubmatch(p); m != nil {
			parts, _ := filepath.Glob(m[1] + "-*-of-" + m[2] + m[3])
			for _, q := range parts {
				if !inside(q) {
					return false
				}
			}
		}
		return true
	}
	ents, err := os.ReadDir(p)
	if err != nil {
		return false
	}
	for _, de := range ents {
		if !inside(filepath.Join(p, de.Name())) {
			return false
		}
	}
	return true
}

func stampOf(fi os.FileInfo) string {
	return fmt.Sprintf("%d/%d", fi.Size(), fi.ModTime().UnixNano())
}

func isHFFolder(dir string) bool {
	if _, err := os.Stat(filepath.Join(dir, "config.json")); err != nil {
		return false
	}
	m, _ := filepath.Glob(filepath.Join(dir, "*.safetensors"))
	return len(m) > 0
}

func hfStamp(dir string) string {
	var b strings.Builder
	m, _ := filepath.Glob(filepath.Join(dir, "*.safetensors"))
	m = append(m, filepath.Join(dir, "config.json"))
	for _, p := range m {
		if fi, err := os.Stat(p); err == nil {
			b.WriteString(stampOf(fi))
			b.WriteByte(';')
		}
	}
	return b.String()
}

// rescan refreshes the registry from the models folders: new models are
// inspected, changed files re-inspected, vanished ones dropped unless
// loaded. Inspection runs without the lock.
func (s *Server) rescan() {
	list, skipped, err := scanDirs(s.cfg.ModelsDirs, s.cfg.FollowSymlinks)
	if err != nil {
		s.log.Warn().Err(err).Msg("scanning models folders")
	}
	if k := strings.Join(skipped, "\n"); k != s.lastSkipped {
		s.lastSkipped = k
		for _, p := range skipped {
			s.log.Warn().Str("path", p).Msg("skipping a model behind a symbolic link out of its models folder (set follow_symlinks = true to follow it)")
		}
	}
	type todo struct {
		f    found
		info modelInfo
		err  error
	}
	var work []todo
	s.mu.Lock()
	present := map[string]bool{}
	for _, f := range list {
		present[f.id] = true
		e := s.models[f.id]
		if e != nil && (e.stamp == f.stamp || e.status != statusAvailable && e.status != statusFailed) {
			continue
		}
		work = append(work, todo{f: f})
	}
	for id, e := range s.models {
		if !present[id] && (e.status == statusAvailable || e.status == statusFailed) {
			delete(s.models, id)
		}
	}
	s.mu.Unlock()

	for i := range work {
		w := &work[i]
		w.info, w.err = s.hooks.Inspect(w.f.path)
		if w.err != nil {
			s.log.Warn().Str("model", w.f.id).Str("path", w.f.path).Err(w.err).Msg("model file cannot be read")
			w.err = s.redact(w.err, w.f.id, w.f.path) // answers name the id, not the path
		}
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	for _, w := range work {
		e := s.models[w.f.id]
		if e != nil && e.status != statusAvailable && e.status != statusFailed {
			continue // a load started meanwhile
		}
		e = &entry{id: w.f.id, path: w.f.path, format: w.f.format, stamp: w.f.stamp, info: w.info, infoErr: w.err, status: statusAvailable}
		if w.err != nil {
			e.status = statusFailed
		}
		s.models[w.f.id] = e
	}
}

// rescanIfStale rescans at most once per interval.
func (s *Server) rescanIfStale(interval time.Duration) {
	s.scanMu.Lock()
	defer s.scanMu.Unlock()
	if time.Since(s.lastScan) < interval {
		return
	}
	s.rescan()
	s.lastScan = time.Now()
}
