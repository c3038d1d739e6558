// Package node is the neuron: the HTTP API of one host, its model
// registry (discovery in the models folders, load/unload lifecycle,
// admission) and its device workers.
//
// Each device (the CPU and each CUDA GPU) is owned by one device.Worker;
// every load, forward pass, memory query and unload is a job on it.
// Requests to one model interleave token by token on its device, each in
// its own KV slot. The HTTP contract is design/neuron-api.md.
package node

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/rs/zerolog"

	"helexa/internal/demo"
	"helexa/roles/config"
)

// Version information reported by GET /version; roles sets it.
var (
	Version = "dev"
	Commit  = "none"
)

// Server is a neuron. Its methods are safe for concurrent use.
type Server struct {
	cfg     config.Neuron
	log     zerolog.Logger
	hooks   engineHooks
	devices []*deviceHandle
	cuda    cudaInfo
	metrics *metricSet
	echo    *echo.Echo
	started time.Time

	// ctx is the server's life; it ends at Shutdown.
	ctx    context.Context
	cancel context.CancelFunc

	scanMu      sync.Mutex
	lastScan    time.Time
	lastSkipped string // the symbolic links the last scan skipped, logged once

	mu      sync.Mutex
	models  map[string]*entry
	closing bool

	// panicHook, when set (tests), sees every panic a handler recovers.
	panicHook func(v any, stack []byte)

	// demoModel returns the built-in demo model (New sets it to the
	// embedded one; SetDemoModel replaces it).
	demoModel func() ([]byte, bool)

	// pulling holds the model references POST /models/pull is fetching
	// now.
	pulling sync.Map
}

// New builds a neuron from its configuration. It starts the device
// workers and reads the models folders; loading and downloading wait for
// Start.
func New(cfg config.Neuron, log zerolog.Logger) (*Server, error) {
	s, err := newServer(cfg, log, realEngine())
	if err != nil {
		return nil, err
	}
	s.demoModel = demo.Model
	return s, nil
}

func newServer(cfg config.Neuron, log zerolog.Logger, hooks engineHooks) (*Server, error) {
	if len(cfg.ModelsDirs) == 0 {
		cfg.ModelsDirs = []string{config.DefaultModelsDir()}
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = 1
	}
	if cfg.MaxQueueDepth < 0 {
		return nil, fmt.Errorf("max_queue_depth must not be negative, got %d", cfg.MaxQueueDepth)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		cfg:     cfg,
		log:     log,
		hooks:   hooks,
		models:  map[string]*entry{},
		started: time.Now(),
		ctx:     ctx,
		cancel:  cancel,
	}
	s.metrics = newMetricSet(s)
	s.devices, s.cuda = discoverDevices(log)
	for _, d := range s.devices {
		log.Info().Int("index", d.index).Str("kind", d.kind).Str("name", d.name).Int64("mem_total_mb", d.memTotal>>20).Msg("device")
	}
	if !s.cuda.Available {
		log.Info().Str("reason", s.cuda.Reason).Msg("no CUDA: serving on the CPU")
	}
	s.rescanIfStale(0)
	s.echo = s.routes()
	return s, nil
}

// Handler is the neuron API.
func (s *Server) Handler() http.Handler { return s.echo }

// routes registers every route.
func (s *Server) routes() *echo.Echo {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = httpErrorHandler
	e.Use(s.recoverPanics)
	e.Use(s.auth)
	e.GET("/health", s.handleHealth)
	e.GET("/version", s.handleVersion)
	e.GET("/discovery", s.handleDiscovery)
	e.GET("/metrics", s.handleMetrics)
	e.GET("/models", s.handleModels)
	e.POST("/models/load", s.handleLoad)
	e.POST("/models/unload", s.handleUnload)
	e.POST("/models/pull", s.handlePull)
	e.POST("/v1/chat/completions", s.handleChat)
	e.POST("/v1/completions", s.handleCompletions)
	e.POST("/tokenize", s.handleTokenize)
	e.POST("/v1/embeddings", s.handleEmbeddings)
	e.GET("/v1/models", s.handleModels)
	return e
}

// recoverPanics turns a panic in a handler into a 500 in the route's
// envelope (an error event when a stream has started) and logs its
// stack. The handlers release what they hold (gate places, KV slots) in
// deferred calls, so nothing leaks; the process and the other requests
// carry on.
func (s *Server) recoverPanics(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) (err error) {
		defer func() {
			r := recover()
			if r == nil {
				return
			}
			if r == http.ErrAbortHandler {
				panic(r) // net/http's way to abort a response on purpose
			}
			req := c.Request()
			stack := debug.Stack()
			s.log.Error().Str("method", req.Method).Str("path", req.URL.Path).Str("panic", fmt.Sprint(r)).
				Str("stack", string(stack)).Msg("request handler panicked")
			if s.panicHook != nil {
				s.panicHook(r, stack)
			}
			perr := &apiError{Status: http.StatusInternalServerError, Code: "internal_error",
				Message: "the neuron failed while handling this request (an internal error, logged with its stack)"}
			resp := c.Response()
			switch {
			case !resp.Committed:
				err = writeError(c, perr)
			case strings.HasPrefix(resp.Header().Get("Content-Type"), "text/event-stream"):
				err = (&sseWriter{c: c, started: true}).fail(perr)
			default:
				err = nil // a body is half written: nothing sane to add
			}
		}()
		return next(c)
	}
}

// auth requires the configured bearer token on every route but /health.
func (s *Server) auth(next echo.HandlerFunc) echo.HandlerFunc {
	want := []byte("Bearer " + s.cfg.Token)
	return func(c echo.Context) error {
		if s.cfg.Token == "" || c.Request().URL.Path == "/health" {
			return next(c)
		}
		got := []byte(c.Request().Header.Get("Authorization"))
		if subtle.ConstantTimeCompare(got, want) != 1 {
			c.Response().Header().Set("WWW-Authenticate", "Bearer")
			return writeError(c, &apiError{Status: http.StatusUnauthorized, Code: "invalid_api_key",
				Message: "a valid bearer token is required (Authorization: Bearer <token>)"})
		}
		return next(c)
	}
}

// Start runs start-up work and background loops until ctx ends: the demo
// model (the built-in one, else a download) when the models folders are
// empty, the preloads, and a periodic rescan of the models folders.
func (s *Server) Start(ctx context.Context) error {
	if s.noModels() {
		s.provideDemo(ctx)
	}
	for _, id := range s.cfg.Preload {
		if err := s.load(ctx, loadRequest{Model: id}); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			s.log.Error().Str("model", id).Err(err).Msg("preload failed")
		}
	}
	t := time.NewTicker(10 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			func() {
				defer func() {
					if r := recover(); r != nil {
						s.log.Error().Any("panic", r).Msg("models folder rescan")
					}
				}()
				s.rescanIfStale(5 * time.Second)
				s.refreshMemory(ctx)
			}()
		}
	}
}

// refreshMemory reads every device's free memory (a job on each worker),
// for the health checks' cache.
func (s *Server) refreshMemory(ctx context.Context) {
	for _, d := range s.devices {
		if d.w.Err() != nil {
			continue
		}
		qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		if _, err := d.free(qctx, 0); err != nil && ctx.Err() == nil {
			s.log.Debug().Str("device", d.w.Name()).Err(err).Msg("memory query")
		}
		cancel()
	}
}

func (s *Server) noModels() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.models) == 0
}

// Shutdown stops accepting work, lets in-flight requests finish (bounded
// by ctx), unloads every model and stops the device workers.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	var ids []string
	for id, e := range s.models {
		if e.status == statusLoaded {
			ids = append(ids, id)
		}
	}
	s.mu.Unlock()
	var wg sync.WaitGroup
	errc := make(chan error, len(ids))
	for _, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.unload(ctx, id); err != nil && !errors.Is(err, errModelNotLoaded) {
				errc <- err
			}
		}()
	}
	wg.Wait()
	close(errc)
	s.cancel()
	for _, d := range s.devices {
		d.close()
	}
	var errs []error
	for err := range errc {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
