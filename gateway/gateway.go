// Package gateway is the fleet's front door. (placeholder until the gateway
// lands: the real implementation replaces this file.)
package gateway

import (
	"context"
	"errors"
	"net/http"

	"github.com/rs/zerolog"

	"helexa/roles/config"
)

// Gateway serves the OpenAI + Anthropic API over a fleet of neurons.
type Gateway struct{}

// New builds a gateway from the configuration and catalogue.
func New(cfg config.Config, cat config.Catalogue, log zerolog.Logger) (*Gateway, error) {
	return nil, errors.New("gateway: not built yet")
}

// Handler is the API handler.
func (g *Gateway) Handler() http.Handler { return http.NotFoundHandler() }

// MetricsHandler serves GET /metrics.
func (g *Gateway) MetricsHandler() http.Handler { return http.NotFoundHandler() }

// Run runs the background loops (poller, evictor) until ctx ends.
func (g *Gateway) Run(ctx context.Context) { <-ctx.Done() }

// Shutdown stops taking requests and waits for in-flight ones.
func (g *Gateway) Shutdown(ctx context.Context) error { return nil }
