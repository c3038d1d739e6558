package engine

import (
	"context"
	"errors"
	"fmt"
)

// EmbedRunner is a Runner that also computes sentence embeddings: one
// forward pass over tokens in a fresh context (no KV cache is read or
// written), the final hidden states pooled as the model defines (mean for
// decoders, the model's own pooling for encoders) and L2-normalised. Like
// ForwardBatch, Embed is called from one goroutine at a time (the
// device's worker), never concurrently with the runner's other calls.
type EmbedRunner interface {
	Embed(tokens []int32) ([]float32, error) // fresh context; pooled, L2-normalised
}

// ErrNoEmbeddings is returned by Model.Embed when the model's runner does
// not compute embeddings.
var ErrNoEmbeddings = errors.New("the model's runner does not compute embeddings")

// ErrNoGeneration is returned by the runners of embedding-only models
// (encoders such as BERT) for a forward pass that asks for logits.
var ErrNoGeneration = errors.New("an embedding-only model cannot generate text")

// Executor runs fn where the model's device work runs and returns its
// error (the neuron's device worker: device.Worker.Do). If ctx ends before
// fn starts, it returns ctx.Err() and fn never runs.
type Executor func(ctx context.Context, fn func() error) error

// SetExecutor makes Embed run its work through e, the same place the
// caller runs ForwardBatch, so an embedding never overlaps a forward pass
// of the same runner. Without one, Embed runs on the caller's goroutine,
// which then must not overlap the model's other calls (as for Forward).
// Call it before the model is shared.
func (m *Model) SetExecutor(e Executor) { m.exec = e }

// CanEmbed reports whether Embed can work: the runner computes embeddings.
// Like Close, call it where the model's work runs (or before the model is
// shared).
func (m *Model) CanEmbed() bool {
	_, ok := m.runner.(EmbedRunner)
	return ok
}

// EmbeddingOnly reports whether the model computes embeddings but cannot
// generate (an encoder).
func (m *Model) EmbeddingOnly() bool { return m.w != nil && EmbeddingOnlyArch(m.w.H.Arch) }

// EmbedDim is the length of an embedding: the model's width.
func (m *Model) EmbedDim() int { return m.w.H.NEmbd }

// Embed returns the pooled, L2-normalised embedding of tokens, computed in
// a fresh context on the model's executor. It fails with ErrNoEmbeddings
// when the runner does not compute embeddings, and with a clear error for
// an empty or over-long input or an id outside the vocabulary, before any
// work is queued.
func (m *Model) Embed(ctx context.Context, tokens []int32) ([]float32, error) {
	if len(tokens) == 0 {
		return nil, errors.New("embedding an empty input: at least one token is required")
	}
	if len(tokens) > m.nCtx {
		return nil, fmt.Errorf("embedding %d tokens: the context holds %d", len(tokens), m.nCtx)
	}
	for i, id := range tokens {
		if id < 0 || int(id) >= m.w.H.NVocab {
			return nil, fmt.Errorf("embedding: token %d (position %d) is outside the vocabulary of %d", id, i, m.w.H.NVocab)
		}
	}
	var out []float32
	run := func() (err error) {
		// A bug in a runner must fail this call, not the process.
		defer func() {
			if r := recover(); r != nil {
				if e, ok := r.(error); ok {
					err = fmt.Errorf("%w: %w", ErrForwardPanic, e)
				} else {
					err = fmt.Errorf("%w: %v", ErrForwardPanic, r)
				}
			}
		}()
		// the runner is read here, where Close runs too
		if m.runner == nil {
			return errors.New("embedding on a closed model")
		}
		er, ok := m.runner.(EmbedRunner)
		if !ok {
			return ErrNoEmbeddings
		}
		v, err := er.Embed(tokens)
		if err != nil {
			return err
		}
		if len(v) != m.w.H.NEmbd {
			return fmt.Errorf("embedding: the runner returned %d values, want %d", len(v), m.w.H.NEmbd)
		}
		out = v
		return nil
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if m.exec == nil {
		if err := run(); err != nil {
			return nil, err
		}
		return out, nil
	}
	if err := m.exec(ctx, run); err != nil {
		return nil, err
	}
	return out, nil
}
