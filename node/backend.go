package node

import (
	"context"
	"encoding/json"
	"sync"

	"helexa/node/engine"
	"helexa/node/grammar"
)

// modelInfo is what inspecting a model file (without loading it) tells.
type modelInfo struct {
	Format        string // gguf or safetensors
	Arch          string
	Quant         string
	SizeBytes     int64
	ContextLength int // trained context
	ChatTemplate  string
	// MemEstimate is the memory a load would take: weights, a KV cache
	// of kvTokens positions, and scratch for sequences of ctx.
	MemEstimate func(ctx, kvTokens int) int64
	// KVBytesPerToken is the KV cache one position takes.
	KVBytesPerToken int64
	// KVTokensWithin, when set, is the largest KV pool (in positions)
	// whose caches fit in bytes, for sequences of ctx: what
	// KVBytesPerToken tells, less a sliding-window layers' cache that
	// grows with the sequences rather than their positions.
	KVTokensWithin func(ctx int, bytes int64) int
	// ParamCount is the number of weights; ActiveParamCount the number
	// one token reads (below ParamCount for mixture-of-experts models;
	// equal to it until the engine reports the active count).
	ParamCount, ActiveParamCount int64
	// EmbeddingOnly: the architecture computes embeddings and cannot
	// generate (an encoder such as BERT).
	EmbeddingOnly bool
}

// memEstimate is MemEstimate, or nothing when unknown.
func (i modelInfo) memEstimate(ctx, kvTokens int) int64 {
	if i.MemEstimate == nil {
		return 0
	}
	return i.MemEstimate(ctx, kvTokens)
}

// loadOptions size a load.
type loadOptions struct {
	ContextLength int
	KVTokens      int // the KV cache pool, in positions
	MaxCached     int // finished sequences kept for prefix reuse
	Threads       int
	Backend       engine.Backend // nil: the CPU
}

// decoder turns token ids into text incrementally, holding back bytes of
// an unfinished UTF-8 character.
type decoder interface {
	Add(id int32) string
	Flush() string
}

// renderInput is what a chat template renders.
type renderInput struct {
	Messages            json.RawMessage
	Tools               json.RawMessage
	AddGenerationPrompt bool
	Extra               map[string]any
}

// loadedModel is a model in memory as the neuron uses it: the engine's
// model for the numbers, the tokenizer and chat template for the text.
type loadedModel struct {
	NCtx   int
	NVocab int
	// Engine computes the forward passes (ForwardBatch and Close run on
	// the device worker) and holds the KV pool (the model's scheduler
	// owns it).
	Engine *engine.Model

	Encode     func(text string, addSpecial, parseSpecial bool) []int32
	NewDecoder func() decoder
	IsEOG      func(id int32) bool
	EOG        []int32 // every end-of-generation token
	TokenText  func(id int32) string
	// TokenBytes gives the bytes a token adds to the output (marker
	// control tokens keep their text); grammars are matched against it.
	TokenBytes func(id int32) []byte
	// HasToken reports whether text is one special token of the vocabulary.
	HasToken func(text string) bool
	// EmbeddingOnly is set for models that compute embeddings but cannot
	// generate (encoders such as BERT): chat and completions refuse them.
	EmbeddingOnly bool
	// CanEmbed: the engine model's runner computes embeddings (read once
	// at load).
	CanEmbed bool
	// Render applies the chat template; nil when the model cannot chat.
	Render           func(in renderInput) (string, error)
	Template         string // template source, for format detection
	BOSText          string // the BOS token's text ("" when none)
	GenerationConfig map[string]any

	// vocab is the token trie for grammar masks, built on first use.
	vocabOnce sync.Once
	vocab     *grammar.Vocab
}

// engineHooks are how the neuron reaches the engine. engine.go provides
// the real ones; they run on the device worker where noted.
type engineHooks struct {
	// Inspect reads a model's metadata without loading it.
	Inspect func(path string) (modelInfo, error)
	// Load loads a model (called on the device worker).
	Load func(ctx context.Context, path string, o loadOptions) (*loadedModel, error)
}
