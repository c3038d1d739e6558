package engine

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"helexa/node/gguf"
	"helexa/node/safetensors"
	"helexa/node/tokenizer"
)

// ErrForwardPanic is wrapped by the error of a forward pass that
// panicked; the model's KV state is then undefined.
var ErrForwardPanic = errors.New("forward pass panicked")

// Options size a loaded model.
type Options struct {
	// ContextLength is the KV cache length per slot; 0 means the trained
	// context, capped at 8192.
	ContextLength int
	// Slots is the number of independent sequences; 0 means 1.
	Slots int
	// Threads is the CPU worker count; 0 means all cores.
	Threads int
	// Backend computes the forward passes; nil means the CPU.
	Backend Backend
}

// Model is a loaded model: weights mapped, tokenizer built, KV caches
// allocated. Forward calls must come from one goroutine at a time.
type Model struct {
	Info Info
	Tok  *tokenizer.Tokenizer
	// GenerationConfig is a HF folder's generation_config.json, if any.
	GenerationConfig map[string]any

	w      *Weights
	runner Runner
	nCtx   int
	slots  int
	closer func() error
}

// Load maps a model (a .gguf file or a HF folder), builds its tokenizer
// and a runner on o.Backend. On error nothing stays open.
func Load(path string, o Options) (*Model, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("loading %s: %w", path, err)
	}
	m := &Model{}
	if st.IsDir() {
		err = m.loadHF(path)
	} else {
		err = m.loadGGUF(path)
	}
	if err != nil {
		return nil, err
	}
	if o.ContextLength < 0 || o.Slots < 0 || o.Threads < 0 {
		m.closer()
		return nil, fmt.Errorf("loading %s: negative option (context %d, slots %d, threads %d)", path, o.ContextLength, o.Slots, o.Threads)
	}
	m.nCtx = o.ContextLength
	if m.nCtx == 0 {
		m.nCtx = defaultContext(m.Info.ContextLength)
	}
	m.slots = max(o.Slots, 1)
	be := o.Backend
	if be == nil {
		be = CPU{}
	}
	m.runner, err = be.NewRunner(m.w, RunnerOptions{ContextLength: m.nCtx, Slots: m.slots, Threads: o.Threads})
	if err != nil {
		m.closer()
		return nil, fmt.Errorf("loading %s on %s: %w", path, be.Name(), err)
	}
	return m, nil
}

func (m *Model) loadGGUF(path string) error {
	f, err := gguf.Open(path)
	if err != nil {
		return fmt.Errorf("loading %s: %w", path, err)
	}
	w, info, err := weightsFromGGUF(path, f)
	if err != nil {
		f.Close()
		return err
	}
	tok, err := tokenizer.FromGGUF(f)
	if err != nil {
		f.Close()
		return fmt.Errorf("loading %s: %w", path, err)
	}
	m.Info, m.Tok, m.w, m.closer = info, tok, w, f.Close
	return nil
}

func (m *Model) loadHF(dir string) error {
	sm, err := safetensors.Open(dir)
	if err != nil {
		return fmt.Errorf("loading %s: %w", dir, err)
	}
	w, info, err := weightsFromHF(dir, sm)
	if err != nil {
		sm.Close()
		return err
	}
	tok, err := tokenizer.FromHF(dir)
	if err != nil {
		sm.Close()
		return fmt.Errorf("loading %s: %w", dir, err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "generation_config.json")); err == nil {
		var gc map[string]any
		if err := json.Unmarshal(b, &gc); err != nil {
			sm.Close()
			return fmt.Errorf("loading %s: generation_config.json: %w", dir, err)
		}
		m.GenerationConfig = gc
	}
	if info.ChatTemplate == "" {
		info.ChatTemplate = tok.ChatTemplate()
	}
	m.Info, m.Tok, m.w, m.closer = info, tok, w, sm.Close
	return nil
}

// NCtx is the KV cache length of each slot.
func (m *Model) NCtx() int { return m.nCtx }

// NVocab is the number of logits per token.
func (m *Model) NVocab() int { return m.w.H.NVocab }

// Slots is the number of independent sequences.
func (m *Model) Slots() int { return m.slots }

// Weights returns the model's backend-neutral description.
func (m *Model) Weights() *Weights { return m.w }

// Forward evaluates tokens at positions pos, pos+1, … of slot's sequence
// and writes the last token's logits (NVocab floats) to logits. Positions
// from pos on that were evaluated before are overwritten.
func (m *Model) Forward(slot int, tokens []int32, pos int, logits []float32) error {
	return m.forward(slot, tokens, pos, logits, false)
}

// ForwardAll is Forward that writes every token's logits to logits
// (len(tokens)*NVocab floats, row-major).
func (m *Model) ForwardAll(slot int, tokens []int32, pos int, logits []float32) error {
	return m.forward(slot, tokens, pos, logits, true)
}

func (m *Model) forward(slot int, tokens []int32, pos int, logits []float32, all bool) (err error) {
	// A bug in a backend must fail this call, not the process.
	defer func() {
		if r := recover(); r != nil {
			// Keep an error value in the chain: a memory fault on the
			// mapped weights (a runtime.Error with Addr) tells the caller
			// the model's file changed under it.
			if e, ok := r.(error); ok {
				err = fmt.Errorf("%w: %w", ErrForwardPanic, e)
			} else {
				err = fmt.Errorf("%w: %v", ErrForwardPanic, r)
			}
		}
	}()
	if m.runner == nil {
		return errors.New("forward on a closed model")
	}
	if err := checkForward(m.slots, m.nCtx, m.w.H.NVocab, slot, tokens, pos, logits, all); err != nil {
		return err
	}
	return m.runner.Forward(slot, tokens, pos, logits, all)
}

// MemBytes is the memory the model holds beyond its mapped weights.
func (m *Model) MemBytes() int64 {
	if m.runner == nil {
		return 0
	}
	return m.runner.MemBytes()
}

// Close frees the runner and unmaps the weights. The model must not be
// used afterwards.
func (m *Model) Close() error {
	if m.runner == nil {
		return nil
	}
	err := m.runner.Close()
	m.runner = nil
	if cerr := m.closer(); err == nil {
		err = cerr
	}
	return err
}
