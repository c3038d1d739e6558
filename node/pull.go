package node

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"helexa/internal/pull"
)

// POST /models/pull downloads a model from the Hugging Face Hub (HF_TOKEN
// and HF_ENDPOINT from the neuron's environment) into the first models
// folder. The answer streams one JSON object per line
// (application/x-ndjson): progress events as pull.Event, then a last line
// {"status":"success","model":ID,"files":[...],"bytes":N} or
// {"status":"error","error":"..."}. With "stream": false it answers once,
// when done: the success object, or an error envelope (502 pull_failed).

type pullRequest struct {
	// Model is REPO[:QUANT|/FILE].
	Model    string `json:"model"`
	Revision string `json:"revision"`
	Stream   *bool  `json:"stream"`
}

type pullResult struct {
	Status string   `json:"status"`
	Model  string   `json:"model,omitempty"`
	Files  []string `json:"files,omitempty"`
	Bytes  int64    `json:"bytes,omitempty"`
	Error  string   `json:"error,omitempty"`
}

func (s *Server) handlePull(c echo.Context) error {
	var req pullRequest
	if err := decodeBody(c, &req); err != nil {
		return writeError(c, err)
	}
	ref, err := pull.ParseRef(req.Model)
	if err != nil {
		return writeError(c, badRequest("model", "%v", err))
	}
	key := ref.String()
	if _, busy := s.pulling.LoadOrStore(key, true); busy {
		return writeError(c, &apiError{Status: http.StatusConflict, Code: "pull_in_progress", Message: fmt.Sprintf("%s is being pulled already", key)})
	}
	defer s.pulling.Delete(key)

	stream := req.Stream == nil || *req.Stream
	w := c.Response()
	enc := json.NewEncoder(w)
	var mu sync.Mutex // events come from the pull's goroutine only, but keep writes whole
	last := time.Time{}
	opts := pull.Options{Dir: s.cfg.ModelsDirs[0], Revision: req.Revision, Progress: func(e pull.Event) {
		ev := s.log.Debug()
		if e.Status != "downloading" || time.Since(last) > 10*time.Second {
			ev = s.log.Info()
			last = time.Now()
		}
		ev.Str("pull", key).Str("status", e.Status).Str("file", e.File).Int64("completed", e.Completed).Int64("total", e.Total).Str("error", e.Error).Msg("pull")
		if !stream {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		_ = enc.Encode(e)
		w.Flush()
	}}
	opts.FromEnv()
	if stream {
		w.Header().Set("Content-Type", "application/x-ndjson")
		w.Header().Set("Cache-Control", "no-cache")
		w.WriteHeader(http.StatusOK)
		w.Flush()
	}
	s.log.Info().Str("pull", key).Str("endpoint", opts.Endpoint).Bool("token", opts.Token != "").Msg("pull started")
	res, err := pull.Pull(c.Request().Context(), ref, opts)
	if err == nil {
		s.rescanIfStale(0)
	}
	out := pullResult{Status: "success", Model: res.ID, Bytes: res.Bytes}
	for _, f := range res.Files {
		out.Files = append(out.Files, filepath.Base(f))
	}
	if err != nil {
		s.log.Error().Str("pull", key).Err(err).Msg("pull failed")
		out = pullResult{Status: "error", Error: err.Error()}
	} else {
		s.log.Info().Str("pull", key).Str("model", res.ID).Int64("bytes", res.Bytes).Msg("pull done")
	}
	if !stream {
		if err != nil {
			if errors.Is(err, c.Request().Context().Err()) && c.Request().Context().Err() != nil {
				return nil
			}
			return writeError(c, &apiError{Status: http.StatusBadGateway, Code: "pull_failed", Message: err.Error()})
		}
		return c.JSON(http.StatusOK, out)
	}
	mu.Lock()
	defer mu.Unlock()
	_ = enc.Encode(out)
	w.Flush()
	return nil
}
