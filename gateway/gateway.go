// Package gateway is the fleet's front door: one OpenAI + Anthropic API over
// every neuron. It authenticates, translates the Anthropic and Responses
// dialects to chat completions, routes each request to a neuron that has
// the model loaded (loading it first when none has), streams the answer
// back, and keeps the fleet's state with a poller and an evictor.
//
// The decisions (which node serves, where a cold model goes, what is
// evicted) are pure functions in decide.go; the loops around them are thin.
package gateway

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/rs/zerolog"
	"golang.org/x/sync/singleflight"

	"helexa/roles/config"
)

// Gateway serves the OpenAI + Anthropic API over a fleet of neurons. Its
// methods are safe for concurrent use.
type Gateway struct {
	cfg     config.Config
	log     zerolog.Logger
	maxBody int64

	// liveP is what a reload replaces: catalogue and keys.
	liveP     atomic.Pointer[live]
	keysMu    sync.Mutex
	keyStates map[string]*keyState // by name; outlive reloads
	reloadMu  sync.Mutex
	store     *usageStore
	rings     rings
	// idleTimeout ends an answer whose neuron goes silent this long.
	idleTimeout time.Duration

	client    *http.Client    // control calls to neurons: polls, loads, unloads
	transport *http.Transport // inference requests to neurons
	fleet     *fleet
	met       *gwMetrics
	loads     singleflight.Group
	echo      *echo.Echo

	inFlight atomic.Int64 // proxied requests in flight
	active   atomic.Int64 // API requests being served
	closing  atomic.Bool
	polled   chan struct{} // closed after the first poll round
	pollOnce sync.Once

	now func() time.Time
}

// New builds a gateway from the configuration and catalogue. cfg.Neurons
// lists the nodes it fronts.
func New(cfg config.Config, cat config.Catalogue, log zerolog.Logger) (*Gateway, error) {
	def := config.Default()
	if cfg.Gateway.PollInterval <= 0 {
		cfg.Gateway.PollInterval = def.Gateway.PollInterval
	}
	if cfg.Gateway.MaxBodyMB <= 0 {
		cfg.Gateway.MaxBodyMB = def.Gateway.MaxBodyMB
	}
	if cfg.Gateway.ConnectTimeout <= 0 {
		cfg.Gateway.ConnectTimeout = def.Gateway.ConnectTimeout
	}
	if cfg.Gateway.LoadTimeout <= 0 {
		cfg.Gateway.LoadTimeout = def.Gateway.LoadTimeout
	}
	if cfg.Gateway.FirstByteTimeout <= 0 {
		cfg.Gateway.FirstByteTimeout = def.Gateway.FirstByteTimeout
	}
	if cfg.Gateway.StreamIdleTimeout <= 0 {
		cfg.Gateway.StreamIdleTimeout = def.Gateway.StreamIdleTimeout
	}
	switch cfg.Eviction.Strategy {
	case "":
		cfg.Eviction.Strategy = strategyLRU
	case strategyLRU, strategyPriority:
	default:
		return nil, fmt.Errorf("eviction.strategy must be %q or %q, got %q", strategyLRU, strategyPriority, cfg.Eviction.Strategy)
	}
	if err := checkNeurons(cfg.Neurons); err != nil {
		return nil, err
	}
	g := &Gateway{
		cfg:         cfg,
		keyStates:   map[string]*keyState{},
		log:         log,
		maxBody:     int64(cfg.Gateway.MaxBodyMB) << 20,
		idleTimeout: cfg.Gateway.StreamIdleTimeout.D(),
		fleet:       newFleet(cfg.Neurons),
		polled:      make(chan struct{}),
		now:         time.Now,
	}
	g.met = newMetrics(func() float64 { return float64(g.inFlight.Load()) })
	l, err := g.buildLive(cfg, cat)
	if err != nil {
		return nil, err
	}
	g.liveP.Store(l)
	g.transport = &http.Transport{
		Proxy: nil,
		DialContext: (&net.Dialer{
			Timeout:   cfg.Gateway.ConnectTimeout.D(),
			KeepAlive: 30 * time.Second,
		}).DialContext,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   256,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: cfg.Gateway.FirstByteTimeout.D(),
		DisableCompression:    true,
		ForceAttemptHTTP2:     false,
		WriteBufferSize:       32 << 10,
		ReadBufferSize:        32 << 10,
	}
	// Control calls (polls, loads, unloads) are bounded by their own
	// contexts (load_timeout for a load), not by first_byte_timeout.
	ct := g.transport.Clone()
	ct.ResponseHeaderTimeout = 0
	ct.MaxIdleConnsPerHost = 8
	g.client = &http.Client{Transport: ct}
	// The store opens last: nothing after it can fail and leave it open.
	if g.store, err = openUsage(cfg.Gateway.StateDir, cfg.Gateway.UsageRetention.D(), log); err != nil {
		return nil, err
	}
	g.echo = g.routes()
	return g, nil
}

// Handler is the API: OpenAI and Anthropic routes, /health, /fleet.
func (g *Gateway) Handler() http.Handler { return g.echo }

// MetricsHandler serves GET /metrics in the Prometheus text format.
func (g *Gateway) MetricsHandler() http.Handler { return g.metricsHandler() }

// Run polls the neurons and runs the evictor until ctx ends.
func (g *Gateway) Run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); g.pollLoop(ctx) }()
	go func() { defer wg.Done(); g.evictLoop(ctx) }()
	wg.Wait()
}

// Shutdown stops taking requests and waits for those in flight, or for ctx;
// then it writes the usage still pending and closes the store.
func (g *Gateway) Shutdown(ctx context.Context) error {
	g.closing.Store(true)
	defer func() {
		if err := g.store.close(); err != nil {
			g.log.Error().Err(err).Msg("closing the usage store")
		}
	}()
	defer g.transport.CloseIdleConnections()
	defer g.client.CloseIdleConnections()
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for g.active.Load() > 0 {
		select {
		case <-ctx.Done():
			return fmt.Errorf("gateway drain: %d requests still in flight: %w", g.active.Load(), ctx.Err())
		case <-t.C:
		}
	}
	return nil
}

// routes registers every route in one place.
func (g *Gateway) routes() *echo.Echo {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = func(err error, c echo.Context) {
		if c.Response().Committed {
			return
		}
		d := dialectOf(c.Request().URL.Path)
		if he, ok := err.(*echo.HTTPError); ok {
			msg := http.StatusText(he.Code)
			if he.Code == http.StatusNotFound {
				msg = fmt.Sprintf("no route %s %s", c.Request().Method, c.Request().URL.Path)
			}
			writeError(c.Response(), d, &apiError{Status: he.Code, Code: strings.ToLower(strings.ReplaceAll(http.StatusText(he.Code), " ", "_")), Message: msg})
			return
		}
		writeError(c.Response(), d, asAPIError(err))
	}
	e.GET("/health", g.handleHealth)
	g.consoleRoutes(e)
	api := e.Group("", g.auth)
	api.GET("/fleet", g.handleFleet)
	api.GET("/v1/models", g.handleModels)
	api.GET("/v1/models/*", g.handleModel)
	api.POST("/v1/chat/completions", g.serve(chatRoute))
	api.POST("/v1/completions", g.serve(completionsRoute))
	api.POST("/v1/messages", g.serve(messagesRoute))
	api.POST("/v1/messages/count_tokens", g.serve(countTokensRoute))
	api.POST("/v1/responses", g.serve(responsesRoute))
	api.POST("/nodes/:node/models/pull", g.handlePull)
	api.POST("/v1/embeddings", g.serve(embeddingsRoute))
	return e
}

// dialectOf picks the error envelope for a path.
func dialectOf(path string) dialect {
	if strings.HasPrefix(path, "/v1/messages") {
		return dialectAnthropic
	}
	return dialectOpenAI
}

// auth checks the API key when keys are configured: Authorization: Bearer
// or x-api-key.
func (g *Gateway) auth(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if g.closing.Load() {
			writeError(c.Response(), dialectOf(c.Request().URL.Path), &apiError{Status: http.StatusServiceUnavailable, Code: "shutting_down", Message: "the gateway is shutting down"})
			return nil
		}
		g.active.Add(1)
		defer g.active.Add(-1)
		if d := g.cfg.Gateway.RequestTimeout.D(); d > 0 {
			ctx, cancel := context.WithTimeout(c.Request().Context(), d)
			defer cancel()
			c.SetRequest(c.Request().WithContext(ctx))
		}
		k, _, offered, ok := g.live().authenticate(c.Request().Header)
		if ok {
			c.Set(keyCtx, k)
			return next(c)
		}
		msg := "missing API key: send Authorization: Bearer <key> or x-api-key"
		if offered {
			msg = "invalid API key"
		}
		writeError(c.Response(), dialectOf(c.Request().URL.Path), &apiError{Status: http.StatusUnauthorized, Code: "invalid_api_key", Message: msg})
		return nil
	}
}

func checkNeurons(refs []config.NeuronRef) error {
	seen := map[string]bool{}
	for _, n := range refs {
		if n.Name == "" || seen[n.Name] {
			return fmt.Errorf("neurons: every node needs a unique name, got %q", n.Name)
		}
		if !strings.HasPrefix(n.Endpoint, "http://") && !strings.HasPrefix(n.Endpoint, "https://") {
			return fmt.Errorf("neurons: node %s: endpoint must be an http:// or https:// URL, got %q", n.Name, n.Endpoint)
		}
		seen[n.Name] = true
	}
	return nil
}
