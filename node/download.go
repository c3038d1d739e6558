package node

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"helexa/internal/demo"
)

// pullHint tells an operator how to add models.
const pullHint = "put .gguf files or Hugging Face folders there, or fetch one with `helexa pull Qwen/Qwen3-0.6B-GGUF:Q8_0`"

// SetDemoModel replaces the demo model served when the models folders are
// empty (New uses the one built into the binary); nil data means none is
// built in, so the demo model is downloaded instead.
func (s *Server) SetDemoModel(data []byte) {
	s.demoModel = func() ([]byte, bool) { return data, len(data) > 0 }
}

// provideDemo puts a demo model into the empty first models folder: the
// built-in one when the binary has it (no network), else the download from
// demo_model_url. With demo_model = false it only says how to add models.
func (s *Server) provideDemo(ctx context.Context) {
	dir := s.cfg.ModelsDirs[0]
	if s.cfg.DemoModel == nil || !*s.cfg.DemoModel {
		s.log.Warn().Strs("models_dir", s.cfg.ModelsDirs).Str("hint", pullHint).Msg("no models to serve")
		return
	}
	var data []byte
	ok := false
	if s.demoModel != nil {
		data, ok = s.demoModel()
	}
	if ok {
		dst := filepath.Join(dir, demo.FileName)
		if err := writeFileAtomic(dst, data); err != nil {
			s.log.Error().Err(err).Msg("writing the built-in demo model; serving without it")
			return
		}
		s.log.Info().Str("model", demo.ID).Str("path", dst).Int("bytes", len(data)).Str("hint", pullHint).
			Msg("models folder was empty: serving the built-in demo model (delete it once you have your own)")
		s.rescanIfStale(0)
		return
	}
	s.log.Info().Msg("this binary has no built-in demo model (built without `make build`): downloading one")
	if err := s.downloadDemo(ctx); err != nil {
		s.log.Error().Err(err).Strs("models_dir", s.cfg.ModelsDirs).Str("hint", pullHint).Msg("demo model download failed; serving without it")
	}
	s.rescanIfStale(0)
}

// writeFileAtomic writes data to a temporary file beside path, then
// renames it into place.
func writeFileAtomic(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", filepath.Dir(path), err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".demo-*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// demoMaxBytes bounds the demo download (the demo model is about 1.2 MB).
const demoMaxBytes = 64 << 20

// downloadDemo fetches the demo model into the first models folder: to a
// temporary file, checked (size, GGUF magic), then renamed into place.
func (s *Server) downloadDemo(ctx context.Context) error {
	dir := s.cfg.ModelsDirs[0]
	name := demoFileName(s.cfg.DemoModelURL)
	if name == "" {
		return fmt.Errorf("demo model URL %q does not name a .gguf file", s.cfg.DemoModelURL)
	}
	dst := filepath.Join(dir, name)
	s.log.Info().Str("url", s.cfg.DemoModelURL).Str("to", dst).Msg("models folder is empty: downloading the demo model")
	start := time.Now()
	n, err := download(ctx, http.DefaultClient, s.cfg.DemoModelURL, dst, func(done, total int64) {
		ev := s.log.Info().Int64("bytes", done)
		if total > 0 {
			ev = ev.Int64("total", total).Int("percent", int(done*100/total))
		}
		ev.Msg("downloading demo model")
	})
	if err != nil {
		return err
	}
	s.log.Info().Str("path", dst).Int64("bytes", n).Dur("took", time.Since(start)).Msg("demo model downloaded")
	return nil
}

func demoFileName(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	name := path.Base(u.Path)
	if !strings.HasSuffix(strings.ToLower(name), ".gguf") || strings.ContainsAny(name, `/\`) || strings.HasPrefix(name, ".") {
		return ""
	}
	return name
}

// download writes url to dst through a temporary file in the same folder,
// calling progress about every tenth of the way (or every 4 MiB when the
// size is unknown). The file must start with the GGUF magic and match
// the announced size; otherwise nothing is left behind.
func download(ctx context.Context, client *http.Client, rawURL, dst string, progress func(done, total int64)) (int64, error) {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return 0, fmt.Errorf("creating models folder: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return 0, fmt.Errorf("downloading %s: %w", rawURL, err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("downloading %s: %w", rawURL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("downloading %s: HTTP %s", rawURL, resp.Status)
	}
	total := resp.ContentLength
	if total > demoMaxBytes {
		return 0, fmt.Errorf("downloading %s: %d bytes is over the %d-byte limit", rawURL, total, demoMaxBytes)
	}
	tmp, err := os.CreateTemp(filepath.Dir(dst), ".download-*")
	if err != nil {
		return 0, fmt.Errorf("downloading %s: %w", rawURL, err)
	}
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	var done, next int64
	step := int64(4 << 20)
	if total > 0 {
		step = max(1, total/10)
	}
	next = step
	buf := make([]byte, 64<<10)
	var head []byte
	for {
		n, rerr := resp.Body.Read(buf)
		if n > 0 {
			if len(head) < 4 {
				head = append(head, buf[:min(n, 4-len(head))]...)
			}
			if _, err := tmp.Write(buf[:n]); err != nil {
				return 0, fmt.Errorf("writing %s: %w", tmp.Name(), err)
			}
			done += int64(n)
			if done > demoMaxBytes {
				return 0, fmt.Errorf("downloading %s: over the %d-byte limit", rawURL, demoMaxBytes)
			}
			if done >= next && progress != nil {
				progress(done, total)
				for next <= done {
					next += step
				}
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return 0, fmt.Errorf("downloading %s: %w", rawURL, rerr)
		}
	}
	if total > 0 && done != total {
		return 0, fmt.Errorf("downloading %s: got %d bytes, expected %d", rawURL, done, total)
	}
	if !bytes.Equal(head, []byte("GGUF")) {
		return 0, fmt.Errorf("downloading %s: not a GGUF file (starts with %q)", rawURL, head)
	}
	if err := tmp.Sync(); err != nil {
		return 0, fmt.Errorf("writing %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return 0, fmt.Errorf("writing %s: %w", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return 0, fmt.Errorf("placing %s: %w", dst, err)
	}
	ok = true
	return done, nil
}
