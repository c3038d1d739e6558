// Package node is the neuron: HTTP API, model registry and device workers.
// (placeholder until the neuron lands: the real implementation replaces
// this file.)
package node

import (
	"context"
	"errors"
	"net/http"

	"github.com/rs/zerolog"

	"helexa/roles/config"
)

// Server is a neuron.
type Server struct{}

// New builds a neuron from its configuration.
func New(cfg config.Neuron, log zerolog.Logger) (*Server, error) {
	return nil, errors.New("neuron: not built yet")
}

// Handler is the neuron API.
func (s *Server) Handler() http.Handler { return http.NotFoundHandler() }

// Start runs start-up work (demo model download, preloads) and background
// loops until ctx ends.
func (s *Server) Start(ctx context.Context) error { <-ctx.Done(); return nil }

// Shutdown finishes in-flight requests (bounded by ctx) and unloads models.
func (s *Server) Shutdown(ctx context.Context) error { return nil }
