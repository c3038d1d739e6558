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
	// ContextLength is the most positions one sequence holds; 0 means
	// the trained context.
	ContextLength int
	// KVTokens is the size of the KV cache pool in positions, shared by
	// every sequence; 0 means Slots sequences of ContextLength. The
	// backend's block size rounds it up.
	KVTokens int
	// Slots is the number of sequences Forward addresses by index (and
	// the default pool size); 0 means 1.
	Slots int
	// MaxCached is the most finished sequences the pool keeps for prefix
	// reuse; 0 means Slots.
	MaxCached int
	// Threads is the CPU worker count; 0 means all cores.
	Threads int
	// Backend computes the forward passes; nil means the CPU.
	Backend Backend
}

// Model is a loaded model: weights mapped, tokenizer built, KV cache pool
// allocated. Forward calls must come from one goroutine at a time.
type Model struct {
	Info Info
	Tok  *tokenizer.Tokenizer
	// GenerationConfig is a HF folder's generation_config.json, if any.
	GenerationConfig map[string]any

	w      *Weights
	runner Runner
	nCtx   int
	pool   *KVPool
	slots  []*Seq // the sequences Forward addresses by index
	items  []Item // ForwardBatch's runner items, reused
	one    []SeqItem
	exec   Executor // where Embed runs (embed.go); nil: the caller's goroutine
	closer func() error
}

// SeqItem is one sequence's share of a batched forward pass: Tokens
// appended to Seq, whose cache holds its Len() positions before them.
type SeqItem struct {
	Seq    *Seq
	Tokens []int32
	// Logits, when non-nil, receives the last token's logits (NVocab
	// floats), or every token's when All (len(Tokens)*NVocab).
	Logits []float32
	All    bool
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
	if err := m.start(path, o); err != nil {
		m.closer()
		return nil, err
	}
	return m, nil
}

// start makes the runner and the KV pool of a model whose weights are
// loaded from path.
func (m *Model) start(path string, o Options) (err error) {
	if o.ContextLength < 0 || o.Slots < 0 || o.Threads < 0 {
		return fmt.Errorf("loading %s: negative option (context %d, slots %d, threads %d)", path, o.ContextLength, o.Slots, o.Threads)
	}
	if o.KVTokens < 0 || o.MaxCached < 0 {
		return fmt.Errorf("loading %s: negative option (KV tokens %d, cached %d)", path, o.KVTokens, o.MaxCached)
	}
	m.nCtx = o.ContextLength
	if m.nCtx == 0 {
		m.nCtx = defaultContext(m.Info.ContextLength)
	}
	slots := max(o.Slots, 1)
	be := o.Backend
	if be == nil {
		be = CPU{}
	}
	if m.w.Bert != nil {
		// encoders run on the CPU, within the positions they have
		// embeddings for (arch_bert.go)
		be, m.nCtx = bertBackend{}, min(m.nCtx, m.w.H.NCtxTrain)
	}
	kvTokens := o.KVTokens
	if kvTokens == 0 {
		kvTokens = slots * m.nCtx
	}
	bs := be.BlockSize(m.nCtx)
	blocks := max((kvTokens+bs-1)/bs, 1)
	winBlocks := 0
	if wb, ok := be.(WindowKVBackend); ok && wb.WindowKV() && m.w.H.NLayerSWA() > 0 {
		// the sliding-window layers keep only their window, in a
		// block space of their own
		winBlocks = windowKVBlocks(m.w.H.SlidingWindow, m.nCtx, kvTokens, slots, bs)
	}
	m.runner, err = be.NewRunner(m.w, RunnerOptions{ContextLength: m.nCtx, BlockSize: bs, Blocks: blocks, WindowBlocks: winBlocks,
		Threads: o.Threads, BF16Activations: m.Info.Format == "gguf"}) // a BF16 GGUF as llama.cpp runs it
	if err != nil {
		return fmt.Errorf("loading %s on %s: %w", path, be.Name(), err)
	}
	maxCached := o.MaxCached
	if maxCached == 0 {
		maxCached = slots
	}
	pool := NewKVPool(blocks, bs, maxCached)
	if winBlocks > 0 {
		pool = NewWindowKVPool(blocks, winBlocks, bs, m.w.H.SlidingWindow, m.nCtx, maxCached)
	}
	m.initSeqs(pool, slots)
	return nil
}

// windowKVBlocks sizes the sliding-window layers' block space of a pool
// of kvTokens positions for sequences of up to nCtx: the window blocks
// of slots sequences addressed by index, of as many started sequences as
// kvTokens holds whole contexts (at least one), and of as many cached.
func windowKVBlocks(window, nCtx, kvTokens, slots, bs int) int {
	seqs := max(1, (kvTokens+nCtx-1)/nCtx)
	return (slots + 2*seqs) * WindowBlocksPerSeq(window, bs, nCtx)
}

// NewModel wraps a runner made elsewhere (a test double, a backend
// under test) as a Model over a pool of blocks of blockSize positions,
// for sequences of up to nCtx positions and nVocab logits. Close closes
// the runner.
func NewModel(r Runner, nVocab, nCtx, blocks, blockSize, maxCached int) *Model {
	m := &Model{w: &Weights{H: Hparams{NVocab: nVocab}}, runner: r, nCtx: nCtx, closer: func() error { return nil }}
	m.initSeqs(NewKVPool(blocks, blockSize, maxCached), 1)
	return m
}

// initSeqs sets the KV pool and makes the sequences Forward addresses by
// index.
func (m *Model) initSeqs(pool *KVPool, slots int) {
	m.pool = pool
	m.slots = make([]*Seq, slots)
	for i := range m.slots {
		m.slots[i] = &Seq{}
	}
	m.items = make([]Item, 0, maxBatch)
	m.one = make([]SeqItem, 1)
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

// NCtx is the most positions one sequence holds.
func (m *Model) NCtx() int { return m.nCtx }

// NVocab is the number of logits per token.
func (m *Model) NVocab() int { return m.w.H.NVocab }

// Slots is the number of sequences Forward addresses by index.
func (m *Model) Slots() int { return len(m.slots) }

// Pool is the model's KV cache pool. Like Forward, it is for one
// goroutine at a time.
func (m *Model) Pool() *KVPool { return m.pool }

// Weights returns the model's backend-neutral description.
func (m *Model) Weights() *Weights { return m.w }

// Forward evaluates tokens at positions pos, pos+1, … of the sequence
// numbered slot and writes the last token's logits (NVocab floats) to
// logits. Positions from pos on that were evaluated before are
// overwritten.
func (m *Model) Forward(slot int, tokens []int32, pos int, logits []float32) error {
	return m.forwardSlot(slot, tokens, pos, logits, false)
}

// ForwardAll is Forward that writes every token's logits to logits
// (len(tokens)*NVocab floats, row-major).
func (m *Model) ForwardAll(slot int, tokens []int32, pos int, logits []float32) error {
	return m.forwardSlot(slot, tokens, pos, logits, true)
}

func (m *Model) forwardSlot(slot int, tokens []int32, pos int, logits []float32, all bool) error {
	if m.runner == nil {
		return errors.New("forward on a closed model")
	}
	if slot < 0 || slot >= len(m.slots) {
		return fmt.Errorf("slot %d out of range [0, %d)", slot, len(m.slots))
	}
	if logits == nil {
		return errors.New("no logits buffer")
	}
	s := m.slots[slot]
	if pos < 0 || pos > s.Len() {
		return fmt.Errorf("position %d is past the %d positions of slot %d", pos, s.Len(), slot)
	}
	if err := m.pool.Truncate(s, pos); err != nil {
		return err
	}
	m.one[0] = SeqItem{Seq: s, Tokens: tokens, Logits: logits, All: all}
	return m.ForwardBatch(m.one)
}

// ForwardBatch runs one batched forward pass: each item's tokens are
// appended to its sequence, which grows in the pool as needed (failing
// with ErrKVFull when the pool cannot give it blocks). On success every
// sequence holds its new tokens; on failure none does.
func (m *Model) ForwardBatch(items []SeqItem) (err error) {
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
	for i, it := range items {
		if it.Seq == nil || it.Seq.done {
			return fmt.Errorf("batch item %d: no live sequence", i)
		}
		if len(it.Tokens) == 0 {
			return fmt.Errorf("batch item %d: no tokens to evaluate", i)
		}
		end := it.Seq.Len() + len(it.Tokens)
		if end > m.nCtx {
			return fmt.Errorf("batch item %d: positions %d..%d exceed the context of %d tokens", i, it.Seq.Len(), end, m.nCtx)
		}
	}
	// With a window space, a sequence computes at most windowPass
	// positions a pass, so that it holds a bounded number of window
	// blocks: longer items run in several passes, and the window blocks
	// behind each pass are returned before the next. (Should a later pass
	// fail, the sequence keeps its old length, but its window layers may
	// have moved past it: it can then only be truncated to 0 or ended.)
	pass := m.nCtx
	if m.pool.window > 0 {
		pass = windowPass
	}
	for off := 0; ; off += pass {
		m.items = m.items[:0]
		for i, it := range items {
			if off >= len(it.Tokens) {
				continue
			}
			k := min(len(it.Tokens)-off, pass)
			from := it.Seq.Len() + off
			if err := m.pool.grow(it.Seq, from, from+k); err != nil {
				return fmt.Errorf("batch item %d: %w", i, err)
			}
			ri := Item{Blocks: it.Seq.Blocks, WinBlocks: it.Seq.WinBlocks, Tokens: it.Tokens[off : off+k], Pos: from}
			switch {
			case it.Logits == nil:
			case it.All:
				v := m.w.H.NVocab
				ri.Logits, ri.All = it.Logits[off*v:(off+k)*v], true
			case off+k == len(it.Tokens):
				ri.Logits = it.Logits
			}
			m.items = append(m.items, ri)
		}
		if len(m.items) == 0 {
			break
		}
		if err := m.doCopies(); err != nil {
			return err
		}
		if err := m.runner.ForwardBatch(m.items); err != nil {
			return err
		}
	}
	for _, it := range items {
		it.Seq.Tokens = append(it.Seq.Tokens, it.Tokens...)
	}
	return nil
}

// doCopies does the pool's pending prefix copies.
func (m *Model) doCopies() error {
	copies := m.pool.takeCopies()
	if len(copies) == 0 {
		return nil
	}
	defer m.pool.copied(copies)
	for _, c := range copies {
		var err error
		if c.win {
			wr, ok := m.runner.(WindowKVRunner)
			if !ok {
				return errors.New("copying a shared prefix: the runner has no sliding-window layers' cache")
			}
			err = wr.CopyWindowKV(c.dst, c.src, c.n)
		} else {
			err = m.runner.CopyKV(c.dst, c.src, c.n)
		}
		if err != nil {
			return fmt.Errorf("copying a shared prefix: %w", err)
		}
	}
	return nil
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
