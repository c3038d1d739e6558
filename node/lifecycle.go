package node

import (
	"context"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"helexa/node/toolcall"
)

// instance is a loaded model.
type instance struct {
	srv   *Server
	id    string
	m     *loadedModel
	dev   *deviceHandle
	gate  *gate
	sched *scheduler
	// maxOutput caps each completion (0: none but the context).
	maxOutput int
	// ctx ends when the model is unloaded; running generations stop then.
	ctx      context.Context
	cancel   context.CancelFunc
	est      int64 // memory estimate reserved on dev
	nctx     int
	tools    toolcall.Config
	stats    instStats
	loadedAt time.Time
}

// instStats keeps the last measured speeds. Safe for concurrent use.
type instStats struct {
	mu                    sync.Mutex
	prefillTPS, decodeTPS float64
}

func (s *instStats) prefill(n int, ms float64) {
	if n <= 0 || ms <= 0 {
		return
	}
	s.mu.Lock()
	s.prefillTPS = float64(n) / ms * 1000
	s.mu.Unlock()
}

func (s *instStats) decode(n int, ms float64) {
	if n <= 1 || ms <= 0 {
		return
	}
	s.mu.Lock()
	s.decodeTPS = float64(n) / ms * 1000
	s.mu.Unlock()
}

func (s *instStats) get() (prefill, decode float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.prefillTPS, s.decodeTPS
}

// loadRequest is POST /models/load's body.
type loadRequest struct {
	Model         string `json:"model"`
	Devices       []int  `json:"devices"`
	ContextLength int    `json:"context_length"`
	// MaxOutputTokens caps this model's completions (0: the node's
	// max_output_tokens).
	MaxOutputTokens int `json:"max_output_tokens"`
}

// load loads a model, or joins the load of it already running, or does
// nothing when it is loaded. Bad requests change nothing.
func (s *Server) load(ctx context.Context, req loadRequest) error {
	if req.Model == "" {
		return badRequest("model", "model is required")
	}
	if req.ContextLength < 0 || req.ContextLength > maxCount {
		return badRequest("context_length", "context_length must be between 0 (the default) and %d, got %d", maxCount, req.ContextLength)
	}
	if req.MaxOutputTokens < 0 {
		return badRequest("max_output_tokens", "max_output_tokens must not be negative, got %d", req.MaxOutputTokens)
	}
	if len(req.Devices) > 1 {
		return badRequest("devices", "a model runs on one device; got %d", len(req.Devices))
	}
	// Without a choice, the first device the model fits on: the GPUs
	// first, then the CPU.
	devs := s.devices
	if len(req.Devices) == 1 {
		i := req.Devices[0]
		if i < 0 || i >= len(s.devices) {
			return badRequest("devices", "no device %d on this node (it has %d)", i, len(s.devices))
		}
		devs = s.devices[i : i+1]
	}
	s.rescanIfStale(time.Second)

	for {
		s.mu.Lock()
		if s.closing {
			s.mu.Unlock()
			return errShuttingDown
		}
		e := s.models[req.Model]
		if e == nil {
			s.mu.Unlock()
			return fmt.Errorf("%w: no model %q in the models folders", errModelNotFound, req.Model)
		}
		if e.infoErr != nil {
			s.mu.Unlock()
			return fmt.Errorf("%w: %s: %v", errUnsupported, req.Model, e.infoErr)
		}
		switch e.status {
		case statusLoaded:
			s.mu.Unlock()
			return nil
		case statusLoading, statusUnloading:
			ch := e.loading
			s.mu.Unlock()
			select {
			case <-ch:
			case <-ctx.Done():
				return ctx.Err()
			}
			s.mu.Lock()
			err := e.loadErr
			st := e.status
			s.mu.Unlock()
			if st == statusLoaded {
				return nil
			}
			if err != nil {
				return err // the load we joined failed
			}
			continue // it was an unload: load now
		}
		// available, or failed earlier: this call loads.
		ch := make(chan struct{})
		e.status, e.loading, e.loadErr = statusLoading, ch, nil
		info, path := e.info, e.path
		s.mu.Unlock()

		var inst *instance
		var err error
		if !s.cfg.FollowSymlinks && !staysInside(filepath.Dir(path), path) {
			// The link changed since the scan.
			err = fmt.Errorf("%w: %s leads out of its models folder through a symbolic link (follow_symlinks is off)", errUnsupported, req.Model)
		} else {
			inst, err = s.doLoad(req.Model, path, info, devs, req)
		}

		s.mu.Lock()
		if err != nil {
			e.loadErr = err
			e.status = statusAvailable
			if errors.Is(err, errUnsupported) {
				e.status = statusFailed
			}
		} else {
			e.inst = inst
			e.status = statusLoaded
		}
		close(ch)
		s.mu.Unlock()
		return err
	}
}

// doLoad checks memory, loads on the device worker and builds the
// instance. The load runs under the server's context, not the caller's,
// since other callers may be waiting on it.
func (s *Server) doLoad(id, path string, info modelInfo, devs []*deviceHandle, req loadRequest) (*instance, error) {
	start := time.Now()
	if info.EmbeddingOnly {
		// encoders run on the CPU whatever the device (engine/arch_bert.go):
		// their memory is the CPU's
		var cpus []*deviceHandle
		for _, d := range s.devices {
			if d.kind == "cpu" {
				cpus = append(cpus, d)
			}
		}
		devs = cpus
	}
	ctxLen := s.loadContext(info, req.ContextLength)
	var est int64
	var kvTokens int
	var dev *deviceHandle
	var short []string
	for _, d := range devs {
		s.mu.Lock()
		reserved := d.reserved
		s.mu.Unlock()
		free, err := d.free(s.ctx, reserved)
		if err == nil {
			kvTokens = s.kvPoolTokens(info, ctxLen, free)
			est = info.memEstimate(ctxLen, kvTokens)
		}
		if err == nil && est <= free {
			s.mu.Lock()
			d.reserved += est // hold it while loading
			s.mu.Unlock()
			dev = d
			break
		}
		if err != nil {
			short = append(short, err.Error())
		} else {
			short = append(short, fmt.Sprintf("%s has %d MiB free", d.w.Name(), mib(free)))
		}
	}
	if dev == nil {
		err := fmt.Errorf("%w: %s needs %d MiB (weights, a KV cache of %d positions, scratch) but %s",
			errNoMemory, id, mib(est), kvTokens, strings.Join(short, ", "))
		s.log.Warn().Str("model", id).Err(err).Msg("load refused")
		return nil, err
	}
	fail := func(err error) (*instance, error) {
		s.mu.Lock()
		dev.reserved -= est
		s.mu.Unlock()
		s.log.Warn().Str("model", id).Err(err).Msg("load failed")
		return nil, err
	}
	var m *loadedModel
	err := dev.w.Do(s.ctx, func() error {
		var err error
		m, err = s.hooks.Load(s.ctx, path, loadOptions{ContextLength: ctxLen, KVTokens: kvTokens, MaxCached: max(1, s.cfg.MaxInFlight),
			Threads: s.cfg.Threads, Backend: dev.backend})
		return err
	})
	if err != nil {
		err = s.redact(err, id, path)
		if errors.Is(err, errNoMemory) || errors.Is(err, errUnsupported) {
			return fail(err)
		}
		return fail(fmt.Errorf("%w: loading %s: %v", errUnsupported, id, err))
	}
	if m.Engine != nil {
		// embeddings run where the scheduler's forward passes do
		m.Engine.SetExecutor(embedExecutor(dev.w))
		m.CanEmbed = m.Engine.CanEmbed()
	}
	ictx, cancel := context.WithCancel(s.ctx)
	inst := &instance{
		srv: s, id: id, m: m, dev: dev,
		gate:     newGate(s.cfg.MaxInFlight, s.cfg.MaxQueueDepth, s.cfg.MaxWait.D()),
		ctx:      ictx,
		cancel:   cancel,
		est:      est,
		nctx:     m.NCtx,
		tools:    toolcall.Detect(m.Template, m.HasToken),
		loadedAt: time.Now(),
	}
	inst.maxOutput = s.cfg.MaxOutputTokens
	if req.MaxOutputTokens > 0 {
		inst.maxOutput = req.MaxOutputTokens
	}
	inst.sched = newScheduler(inst, m.Engine, s.cfg.BatchTokens)
	secs := time.Since(start).Seconds()
	s.metrics.loaded(id, secs)
	s.log.Info().Str("model", id).Str("device", dev.w.Name()).Int("context", m.NCtx).Int("kv_pool_tokens", kvTokens).
		Int64("mem_estimate_mib", mib(est)).Float64("seconds", math.Round(secs*1000)/1000).Msg("model loaded")
	return inst, nil
}

// loadContext is the context a load gets: the request's, else the
// node's context_length, else the model's trained context.
func (s *Server) loadContext(info modelInfo, asked int) int {
	switch {
	case asked > 0:
		return asked
	case s.cfg.ContextLength > 0:
		return s.cfg.ContextLength
	case info.ContextLength > 0:
		return info.ContextLength
	}
	return 2048
}

// kvPoolTokens sizes a model's KV cache pool: enough for max_in_flight
// sequences of the full context, within kv_cache_share of the device's
// free memory (less the weights; with a sliding-window layers' cache,
// less that too), and never less than one full context.
func (s *Server) kvPoolTokens(info modelInfo, ctxLen int, free int64) int {
	want := max(1, s.cfg.MaxInFlight) * ctxLen
	if info.KVBytesPerToken <= 0 {
		return want
	}
	share := s.cfg.KVCacheShare
	if share <= 0 {
		share = 0.5
	}
	budget := float64(free-info.SizeBytes) * share
	room := int64(budget / float64(info.KVBytesPerToken))
	if info.KVTokensWithin != nil {
		room = int64(info.KVTokensWithin(ctxLen, int64(budget)))
	}
	return int(max(min(int64(want), room), int64(ctxLen)))
}

func mib(b int64) int64 { return (b + 1<<20 - 1) >> 20 }

// redactedError is an error whose text names a model by its id instead of
// the file's path (what the neuron answers must not tell its file
// system); errors.Is still sees the original.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// redact rewrites err's text: the model's path becomes its id, and the
// models folders become "the models folder".
func (s *Server) redact(err error, id, path string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	out := msg
	if path != "" {
		out = strings.ReplaceAll(out, path, id)
		if abs, aerr := filepath.Abs(path); aerr == nil {
			out = strings.ReplaceAll(out, abs, id)
		}
	}
	for _, d := range s.cfg.ModelsDirs {
		for _, p := range []string{d, absOr(d)} {
			if p = filepath.Clean(p); p != "." && p != string(filepath.Separator) {
				out = strings.ReplaceAll(out, p+string(filepath.Separator), "")
				out = strings.ReplaceAll(out, p, "the models folder")
			}
		}
	}
	if out == msg {
		return err
	}
	return &redactedError{msg: out, err: err}
}

func absOr(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

// unloadWait bounds how long an unload waits for in-flight requests
// before cancelling them.
var unloadWait = 30 * time.Second

// failModel unloads a loaded model that cannot serve any more and marks
// it failed with the reason. A later load (once the file is fixed) may
// try again.
func (s *Server) failModel(id string, cause error) {
	reason := fmt.Errorf("%w: %s failed while serving and was unloaded (was its file changed on disk?): %v", errUnsupported, id, cause)
	ctx, cancel := context.WithTimeout(s.ctx, unloadWait+time.Minute)
	defer cancel()
	if err := s.unloadAs(ctx, id, reason); err != nil && !errors.Is(err, errModelNotLoaded) {
		s.log.Warn().Str("model", id).Err(err).Msg("unloading a failed model")
	}
}

// unload drains a loaded model (new requests refused, running ones
// finish within the bounded wait, then are cancelled) and frees it.
func (s *Server) unload(ctx context.Context, id string) error {
	return s.unloadAs(ctx, id, nil)
}

// unloadAs unloads like unload; a non-nil failure leaves the model
// failed with that reason instead of available.
func (s *Server) unloadAs(ctx context.Context, id string, failure error) error {
	s.mu.Lock()
	e := s.models[id]
	if e == nil || e.status != statusLoaded {
		s.mu.Unlock()
		if e == nil {
			return fmt.Errorf("%w: no model %q", errModelNotLoaded, id)
		}
		return fmt.Errorf("%w: %s is %s", errModelNotLoaded, id, e.status)
	}
	inst := e.inst
	ch := make(chan struct{})
	e.status, e.loading = statusUnloading, ch
	s.mu.Unlock()

	idle := inst.gate.close()
	wait := time.NewTimer(unloadWait)
	select {
	case <-idle:
	case <-ctx.Done():
	case <-wait.C:
	}
	wait.Stop()
	inst.cancel() // stops whatever still runs, within one decode step
	<-idle
	<-inst.sched.stopped
	var err error
	if perr := inst.dev.w.Err(); perr != nil {
		// A failed device takes no more jobs; its memory goes with it.
		s.log.Warn().Str("model", id).Err(perr).Msg("unloading from a failed device without freeing")
	} else {
		err = inst.dev.w.Do(context.Background(), inst.m.Engine.Close)
	}

	s.mu.Lock()
	inst.dev.reserved -= inst.est
	e.inst = nil
	e.status = statusAvailable
	e.loadErr = nil
	if failure != nil {
		e.status, e.loadErr = statusFailed, failure
	}
	close(ch)
	s.mu.Unlock()
	if err != nil {
		s.log.Warn().Str("model", id).Err(err).Msg("unload")
		return fmt.Errorf("unloading %s: %w", id, err)
	}
	s.log.Info().Str("model", id).Msg("model unloaded")
	return nil
}

// instanceFor returns the loaded instance of a model.
func (s *Server) instanceFor(id string) (*instance, error) {
	if id == "" {
		return nil, badRequest("model", "model is required")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.models[id]
	if e == nil {
		return nil, fmt.Errorf("%w: no model %q on this node", errModelNotFound, id)
	}
	switch e.status {
	case statusLoaded:
		if err := e.inst.dev.w.Err(); err != nil {
			return nil, &apiError{Status: 503, Code: "device_failed", RetryAfter: 30 * time.Second,
				Message: fmt.Sprintf("the device serving %s failed: %v", id, err)}
		}
		return e.inst, nil
	case statusUnloading:
		return nil, fmt.Errorf("%w: %s", errDraining, id)
	}
	return nil, fmt.Errorf("%w: %s is %s; load it with POST /models/load", errModelNotLoaded, id, e.status)
}
