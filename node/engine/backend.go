// Package engine loads models (GGUF files and Hugging Face folders) and
// computes logits. It has no HTTP in it: the neuron (package node) wraps it.
//
// The backend seam: a model's weights are described once, backend-neutral,
// as Weights (hyperparameters, architecture hooks and memory-mapped tensors).
// A Backend turns Weights into a Runner that owns the KV cache and computes
// forward passes. The CPU backend lives in this package; the CUDA backend
// (package cuda) implements the same interfaces.
package engine

import (
	"fmt"

	"helexa/node/ggml"
)

// Tensor is one weight tensor, backend-neutral. Data is memory-mapped from
// the model file and must not be written or retained past the model's life.
type Tensor struct {
	Name string
	Type ggml.Type
	// Dims are ggml's ne: Dims[0] is the row length (contiguous), Dims[1]
	// the number of rows.
	Dims []int
	Data []byte
	// Mapped is set by the loaders when Data lies in a read-only file
	// mapping. Only then may a backend that copied the weights release
	// Data's pages (they read back unchanged from the page cache); on
	// other memory releasing would lose the contents.
	Mapped bool
}

// Rows returns the number of rows (product of Dims[1:]).
func (t *Tensor) Rows() int {
	n := 1
	for _, d := range t.Dims[1:] {
		n *= d
	}
	return n
}

// RopeStyle selects how RoPE pairs dimensions.
type RopeStyle int

const (
	// RopeNorm rotates adjacent pairs (2i, 2i+1): GGUF llama's layout,
	// whose converters permute Q/K rows to match.
	RopeNorm RopeStyle = iota
	// RopeNeoX rotates (i, i+d/2): Hugging Face's rotate-half layout, and
	// qwen2/qwen3 in GGUF.
	RopeNeoX
)

// Hparams are a model's shape and numeric constants.
type Hparams struct {
	Arch      string // "llama", "qwen2", "qwen3", ...
	NVocab    int
	NEmbd     int // model width
	NLayer    int
	NHead     int
	NHeadKV   int
	HeadDim   int // usually NEmbd/NHead
	NFF       int // FFN hidden size
	NCtxTrain int // context length the model was trained for
	NormEps   float32
	RopeTheta float32
	RopeStyle RopeStyle
	RopeDims  int // dims rotated per head (usually HeadDim)
	// RopeFreqs are per-pair frequency divisors (GGUF rope_freqs.weight,
	// or computed from Llama 3 scaling); nil means all 1.
	RopeFreqs []float32
	// RopeFreqScale multiplies positions (linear RoPE scaling); 0 means 1.
	RopeFreqScale float32
	// Llama 3 frequency scaling (rope_type "llama3"); Factor 0 disables.
	RopeScaling struct {
		Factor, LowFreqFactor, HighFreqFactor float32
		OrigCtx                               int
	}

	// Sliding-window attention (gemma3): layers with SWA[l] set attend
	// only to the last SlidingWindow positions (the token's own among
	// them) and rotate with RopeThetaSWA and RopeFreqScaleSWA (0: 1).
	// SWA nil means every layer attends to the whole sequence.
	SlidingWindow    int
	SWA              []bool
	RopeThetaSWA     float32
	RopeFreqScaleSWA float32

	// AttnScale multiplies attention scores; 0 means 1/√HeadDim.
	AttnScale float32
	// EmbedScale multiplies the token embeddings (gemma: √NEmbd); 0 means 1.
	EmbedScale float32
	// FinalSoftcap, when positive, caps the logits: c·tanh(logit/c).
	FinalSoftcap float32

	// Mixture of experts (qwen3moe): NExpert experts of NFFExp hidden
	// units, NExpertUsed chosen per token by a softmax router; with
	// ExpertNormTopK the chosen weights are renormalised to sum to 1.
	NExpert, NExpertUsed int
	NFFExp               int
	ExpertNormTopK       bool
}

// LayerSWA reports whether layer l uses sliding-window attention.
func (h *Hparams) LayerSWA(l int) bool {
	return h.SlidingWindow > 0 && l < len(h.SWA) && h.SWA[l]
}

// NLayerSWA is the number of sliding-window layers.
func (h *Hparams) NLayerSWA() int {
	n := 0
	for l := range h.NLayer {
		if h.LayerSWA(l) {
			n++
		}
	}
	return n
}

// Layer holds one transformer block's weights. Optional tensors are nil
// when the architecture lacks them (data, not code, keeps archs apart).
type Layer struct {
	AttnNorm       *Tensor
	Wq, Wk, Wv, Wo *Tensor
	Bq, Bk, Bv     *Tensor // qwen2: QKV bias
	QNorm, KNorm   *Tensor // qwen3: per-head RMSNorm of Q and K
	FFNNorm        *Tensor
	FFNGate, FFNUp *Tensor
	FFNDown        *Tensor

	// gemma3: RMSNorms of the attention and FFN outputs, before each
	// residual add.
	PostAttnNorm, PostFFNNorm *Tensor

	// Mixture of experts: the router (NEmbd × NExpert) and the experts'
	// matrices, stored 3-D (columns, rows, expert). Experts holds each
	// expert's 2-D slice of them (a row range of the same data), so an
	// expert's matmul is an ordinary one.
	FFNGateInp                          *Tensor
	FFNGateExps, FFNUpExps, FFNDownExps *Tensor
	Experts                             []Expert
}

// Expert is one expert's FFN matrices: 2-D views of a layer's 3-D
// expert tensors.
type Expert struct {
	Gate, Up, Down *Tensor
}

// Weights is everything a backend needs to build a Runner.
type Weights struct {
	H       Hparams
	TokEmbd *Tensor // (NVocab rows of NEmbd)
	Layers  []Layer
	OutNorm *Tensor
	Output  *Tensor // == TokEmbd when embeddings are tied

	// Bert holds an encoder's tensors (arch "bert", arch_bert.go); nil
	// for decoders.
	Bert *BertWeights
}

// RunnerOptions size a Runner's state.
type RunnerOptions struct {
	// ContextLength is the most positions one sequence holds.
	ContextLength int
	// BlockSize is the number of positions in a block of the KV cache;
	// 0 means ContextLength (one block per sequence).
	BlockSize int
	// Blocks is the number of blocks in the KV cache; with BlockSize 0
	// it is the number of sequences (slots). 0 means 1.
	Blocks int
	// Slots is the old name of Blocks for one block per sequence; the
	// larger of the two counts.
	Slots int
	// WindowBlocks is the number of blocks (of BlockSize positions) in a
	// second cache for the sliding-window layers, addressed by
	// Item.WinBlocks; 0 means those layers keep their positions in the
	// main cache like the others. Only backends that are WindowKVBackends
	// make it; others ignore it.
	WindowBlocks int
	// Threads is the CPU worker count (CPU backend); 0 means all cores.
	Threads int
	// BF16Activations rounds the activations of repacked BF16 weights to
	// bfloat16, as llama.cpp computes a BF16 GGUF, where the CPU
	// multiplies bfloat16 natively (AVX512-BF16; CPU backend). Without it
	// they are float32, as the references made from F32 expect.
	BF16Activations bool
}

// kvLayout returns the block size and count o asks for.
func (o RunnerOptions) kvLayout() (bs, blocks int) {
	bs = o.BlockSize
	if bs <= 0 {
		bs = o.ContextLength
	}
	return bs, max(o.Blocks, o.Slots, 1)
}

// KVLayout returns the block size and count o asks for (for backends
// outside this package).
func (o RunnerOptions) KVLayout() (bs, blocks int) { return o.kvLayout() }

// Item is one sequence's share of a batched forward pass: Tokens at
// positions Pos, Pos+1, … of the sequence whose KV cache lives in
// Blocks (position p in block Blocks[p/BlockSize]). Positions before Pos
// must be in the cache already; K/V of the new tokens are written there.
type Item struct {
	Blocks []int32
	// WinBlocks is the sequence's table in the sliding-window layers'
	// cache (RunnerOptions.WindowBlocks), indexed like Blocks: position p
	// of those layers is in block WinBlocks[p/BlockSize]. Only the blocks
	// the item's window layers read, from that of position
	// Pos-window+1 on, must be valid; those before may be -1. Unused
	// without a window cache.
	WinBlocks []int32
	Tokens    []int32
	Pos       int
	// Logits, when non-nil, receives the last token's logits (NVocab
	// floats), or every token's when All (len(Tokens)*NVocab, row-major).
	Logits []float32
	All    bool
}

// SplitPasses cuts a batch into passes of at most maxRows rows, in
// order, and calls pass with each pass's parts and row count: an item
// that does not fit the rest of a pass continues in the next one (its
// first tokens' K/V then stored before the rest is computed). A part of
// an item with Logits gets its own rows' share when All (vocab floats a
// row), else the item's buffer only on its last part. parts is reused
// scratch; SplitPasses returns it, emptied, for the next call.
func SplitPasses(items []Item, maxRows, vocab int, parts []Item, pass func(parts []Item, rows int) error) ([]Item, error) {
	parts = parts[:0]
	rows := 0
	for _, it := range items {
		for start := 0; start < len(it.Tokens); {
			n := min(len(it.Tokens)-start, maxRows-rows)
			part := Item{Blocks: it.Blocks, WinBlocks: it.WinBlocks, Tokens: it.Tokens[start : start+n], Pos: it.Pos + start}
			if it.Logits != nil {
				switch {
				case it.All:
					part.Logits, part.All = it.Logits[start*vocab:(start+n)*vocab], true
				case start+n == len(it.Tokens):
					part.Logits = it.Logits[:vocab]
				}
			}
			parts = append(parts, part)
			rows += n
			start += n
			if rows == maxRows {
				if err := pass(parts, rows); err != nil {
					return parts[:0], err
				}
				parts, rows = parts[:0], 0
			}
		}
	}
	if rows > 0 {
		if err := pass(parts, rows); err != nil {
			return parts[:0], err
		}
	}
	return parts[:0], nil
}

// Backend turns Weights into a Runner.
type Backend interface {
	// Name is "cpu" or "cuda:N".
	Name() string
	// BlockSize is the KV block size the backend wants for sequences of
	// up to nCtx positions: nCtx when it keeps each sequence's cache in
	// one piece.
	BlockSize(nCtx int) int
	// NewRunner allocates the KV cache and whatever the backend needs
	// (device copies of weights, scratch). It fails cleanly (no partial
	// state left behind) when memory is short.
	NewRunner(w *Weights, o RunnerOptions) (Runner, error)
}

// WindowKVBackend is a Backend whose runners can keep the keys and
// values of sliding-window layers in a cache of their own
// (RunnerOptions.WindowBlocks), which the KV pool then manages as a
// second block space. Such runners are WindowKVRunners.
type WindowKVBackend interface {
	Backend
	// WindowKV reports whether the backend's runners do.
	WindowKV() bool
}

// WindowKVRunner is a Runner with a sliding-window layers' cache.
type WindowKVRunner interface {
	Runner
	// CopyWindowKV is CopyKV in the sliding-window layers' cache.
	CopyWindowKV(dst, src int32, n int) error
}

// Runner computes forward passes for one loaded model. Calls are made from
// one goroutine at a time (the device's worker); a Runner need not be safe
// for concurrent use.
type Runner interface {
	// ForwardBatch runs one forward pass over the items of a batch:
	// matrix products over all their tokens at once, attention of each
	// item against its own sequence's cache. Items must not share a
	// block they write.
	ForwardBatch(items []Item) error
	// CopyKV copies the keys and values of the first n positions of
	// block src to block dst.
	CopyKV(dst, src int32, n int) error
	// MemBytes is the memory the runner holds beyond the mapped weights.
	MemBytes() int64
	// Close frees everything the runner holds.
	Close() error
}

// CheckCopyKV validates a CopyKV call against a cache of blocks blocks
// of bs positions.
func CheckCopyKV(dst, src int32, n, blocks, bs int) error {
	if dst < 0 || int(dst) >= blocks || src < 0 || int(src) >= blocks || n < 0 || n > bs {
		return fmt.Errorf("copying %d positions from KV block %d to %d: out of range (%d blocks of %d)", n, src, dst, blocks, bs)
	}
	return nil
}

// ForwardSlots runs a batch on a runner that keeps one block per
// sequence (its slot, Blocks[0]), item by item through forward.
func ForwardSlots(items []Item, forward func(slot int, tokens []int32, pos int, logits []float32, all bool) error) error {
	for i, it := range items {
		if len(it.Blocks) == 0 {
			return fmt.Errorf("batch item %d: no KV block", i)
		}
		if err := forward(int(it.Blocks[0]), it.Tokens, it.Pos, it.Logits, it.All); err != nil {
			return fmt.Errorf("batch item %d: %w", i, err)
		}
	}
	return nil
}

// ForwardSlot runs tokens at positions pos, … of the sequence in block
// slot of a runner made with one block per sequence (BlockSize 0). If all
// is false, logits receives the last token's logits; if true, every
// token's (len(tokens)*NVocab floats, row-major).
func ForwardSlot(r Runner, slot int, tokens []int32, pos int, logits []float32, all bool) error {
	blk := [1]int32{int32(slot)}
	items := [1]Item{{Blocks: blk[:], Tokens: tokens, Pos: pos, Logits: logits, All: all}}
	return r.ForwardBatch(items[:])
}
