// Package roles assembles a running role (gateway, neuron or all) from the
// configuration: servers, background loops, signal handling and a graceful
// drain.
package roles

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"helexa/gateway"
	"helexa/node"
	"helexa/roles/config"
)

// Version and Commit are stamped by main from the build.
var (
	Version = "dev"
	Commit  = "none"
)

// Options select what Run starts.
type Options struct {
	Role       string // gateway, neuron or all
	ConfigPath string // empty: defaults
	Log        zerolog.Logger
	// Ready, when set, receives the bound addresses once every server
	// listens (tests use it with ":0" listen addresses).
	Ready func(Addrs)
}

// Addrs are the addresses the servers bound.
type Addrs struct {
	Gateway, Metrics, Neuron string
}

// NewLogger builds the process logger.
func NewLogger(level, format string, w io.Writer) (zerolog.Logger, error) {
	lvl, err := zerolog.ParseLevel(strings.ToLower(level))
	if err != nil || level == "" {
		return zerolog.Logger{}, fmt.Errorf("--log-level must be trace, debug, info, warn or error, got %q", level)
	}
	switch format {
	case "json":
	case "console":
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: time.DateTime}
	default:
		return zerolog.Logger{}, fmt.Errorf("--log-format must be json or console, got %q", format)
	}
	return zerolog.New(w).Level(lvl).With().Timestamp().Logger(), nil
}

// ShutdownGrace bounds the drain on SIGTERM.
var ShutdownGrace = 30 * time.Second

// Run loads the configuration and serves the role until ctx ends, then
// drains gracefully.
func Run(ctx context.Context, o Options) error {
	cfg, err := config.Load(o.ConfigPath)
	if err != nil {
		return err
	}
	return RunConfig(ctx, o, cfg)
}

// RunConfig is Run with an already-loaded configuration.
func RunConfig(ctx context.Context, o Options, cfg config.Config) error {
	log := o.Log
	var addrs Addrs
	var servers []*http.Server
	var listeners []net.Listener
	var shutdowns []func(context.Context) error
	cleanup := func() {
		for _, l := range listeners {
			_ = l.Close()
		}
	}

	listen := func(addr string, maxPerClient int) (net.Listener, error) {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			cleanup()
			return nil, fmt.Errorf("listening on %s: %w", addr, err)
		}
		l = capConns(l, maxPerClient, log)
		listeners = append(listeners, l)
		return l, nil
	}

	var nsrv *node.Server
	if o.Role == "neuron" || o.Role == "all" {
		ncfg := cfg.Neuron
		if o.Role == "all" && ncfg.Listen == config.DefaultNeuronListen {
			ncfg.Listen = config.DefaultNeuronListenAll
		}
		ncfg.Listen = secureListen(log, "the neuron", "token", ncfg.Listen, ncfg.Token != "", ncfg.AllowUnauthenticated)
		l, err := listen(ncfg.Listen, ncfg.MaxConnsPerClient)
		if err != nil {
			return err
		}
		addrs.Neuron = l.Addr().String()
		node.Version, node.Commit = Version, Commit
		nsrv, err = node.New(ncfg, log.With().Str("role", "neuron").Logger())
		if err != nil {
			cleanup()
			return fmt.Errorf("starting neuron: %w", err)
		}
		servers = append(servers, newServer(nsrv.Handler(), ncfg.Server))
		shutdowns = append(shutdowns, nsrv.Shutdown)
		if o.Role == "all" {
			cfg.Neurons = append([]config.NeuronRef{{Name: ncfg.Name, Endpoint: "http://" + loopback(addrs.Neuron), Token: ncfg.Token}}, cfg.Neurons...)
		}
	}

	var gw *gateway.Gateway
	var local []config.NeuronRef // the --role=all neuron, kept on reload
	if o.Role == "all" {
		local = cfg.Neurons[:1:1]
	}
	if o.Role == "gateway" || o.Role == "all" {
		if cfg.Gateway.StateDir == "" {
			cfg.Gateway.StateDir = config.DefaultStateDir()
		}
		cat, err := config.LoadCatalogue(cfg.Gateway.Models)
		if err != nil {
			cleanup()
			return err
		}
		gw, err = gateway.New(cfg, cat, log.With().Str("role", "gateway").Logger())
		if err != nil {
			cleanup()
			return fmt.Errorf("starting gateway: %w", err)
		}
		gl := secureListen(log, "the gateway", "api_keys", cfg.Gateway.Listen, len(cfg.Gateway.APIKeys)+len(cfg.Keys)+len(cfg.Gateway.AdminKeys) > 0, cfg.Gateway.AllowUnauthenticated)
		l, err := listen(gl, cfg.Gateway.MaxConnsPerClient)
		if err != nil {
			return err
		}
		addrs.Gateway = l.Addr().String()
		servers = append(servers, newServer(gw.Handler(), cfg.Gateway.Server))
		if cfg.Gateway.MetricsListen != "" {
			ml, err := listen(cfg.Gateway.MetricsListen, cfg.Gateway.MaxConnsPerClient)
			if err != nil {
				return err
			}
			addrs.Metrics = ml.Addr().String()
			servers = append(servers, newServer(bearerOnly(gw.MetricsHandler(), cfg.Gateway.MetricsToken), cfg.Gateway.Server))
		}
		shutdowns = append([]func(context.Context) error{gw.Shutdown}, shutdowns...)
	}

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errc := make(chan error, len(servers)+2)
	for i, s := range servers {
		l := listeners[i]
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("serving %s: %w", l.Addr(), err)
			}
		}()
	}
	if nsrv != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := nsrv.Start(runCtx); err != nil {
				errc <- fmt.Errorf("neuron: %w", err)
			}
		}()
	}
	if gw != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			gw.Run(runCtx)
		}()
		// SIGHUP reloads the neuron list, the catalogue and the keys.
		hup := make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		defer signal.Stop(hup)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-runCtx.Done():
					return
				case <-hup:
					if o.ConfigPath == "" {
						log.Warn().Msg("SIGHUP: started without --config, nothing to reload")
						continue
					}
					if err := ReloadGateway(gw, o.ConfigPath, local); err != nil {
						log.Error().Err(err).Str("config", o.ConfigPath).Msg("reload refused; the running configuration stays")
					}
				}
			}
		}()
	}
	log.Info().Str("role", o.Role).Str("version", Version).Str("gateway", addrs.Gateway).
		Str("metrics", addrs.Metrics).Str("neuron", addrs.Neuron).Msg("helexa serving")
	if o.Ready != nil {
		o.Ready(addrs)
	}

	var runErr error
	select {
	case <-ctx.Done():
		log.Info().Msg("shutting down: draining in-flight requests")
	case runErr = <-errc:
		log.Error().Err(runErr).Msg("shutting down after error")
	}
	cancel()
	sctx, scancel := context.WithTimeout(context.Background(), ShutdownGrace)
	defer scancel()
	for _, s := range servers {
		s.SetKeepAlivesEnabled(false)
	}
	var swg sync.WaitGroup
	for _, s := range servers {
		swg.Add(1)
		go func() { defer swg.Done(); _ = s.Shutdown(sctx) }()
	}
	swg.Wait()
	for _, f := range shutdowns {
		if err := f(sctx); err != nil {
			log.Warn().Err(err).Msg("shutdown")
		}
	}
	wg.Wait()
	return runErr
}

// ReloadGateway reads the configuration file and its catalogue again and
// gives the gateway its new neuron list, catalogue and keys (SIGHUP). local
// is the --role=all neuron, which stays first. A file that does not load
// changes nothing.
func ReloadGateway(gw *gateway.Gateway, path string, local []config.NeuronRef) error {
	cfg, err := config.Load(path)
	if err != nil {
		return err
	}
	cat, err := config.LoadCatalogue(cfg.Gateway.Models)
	if err != nil {
		return err
	}
	cfg.Neurons = append(append([]config.NeuronRef(nil), local...), cfg.Neurons...)
	return gw.Reload(cfg, cat)
}

// loopback turns a wildcard listen address into one a local client can dial.
func loopback(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}
