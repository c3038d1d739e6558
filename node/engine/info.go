package engine

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"helexa/node/ggml"
	"helexa/node/gguf"
	"helexa/node/safetensors"
)

// ErrUnsupported is wrapped by errors about models the engine cannot run
// (unknown architecture, tensor type, missing tensors, bad shapes).
var ErrUnsupported = errors.New("unsupported model")

// Info describes a model file without loading it.
type Info struct {
	Path, Format string // Format: "gguf" | "safetensors"
	Arch, Quant  string // Quant e.g. "Q4_K_M" (from general.file_type), "Q8_0", "F16", "BF16"
	SizeBytes    int64  // weights on disk
	// ContextLength is the context the model was trained for.
	ContextLength int

	NVocab, NLayer, NEmbd, NHead, NHeadKV, HeadDim, NFF int
	// ParamCount counts every weight; ActiveParamCount those one token
	// goes through (a mixture of experts uses NExpertUsed of NExpert
	// experts; dense models: ParamCount).
	ParamCount, ActiveParamCount int64
	NExpert, NExpertUsed         int // 0 for dense models
	// SlidingWindow is the window of the NLayerSWA sliding-window layers
	// (gemma3); both 0 when every layer reads the whole sequence.
	SlidingWindow, NLayerSWA int
	// ChatTemplate is GGUF's tokenizer.chat_template, or the HF folder's
	// tokenizer_config.json chat_template / chat_template.jinja; may be "".
	ChatTemplate string
}

// Inspect reads a model's header: a .gguf file or a Hugging Face folder
// (config.json + safetensors). It maps the file but reads no weights.
func Inspect(path string) (Info, error) {
	st, err := os.Stat(path)
	if err != nil {
		return Info{}, fmt.Errorf("inspecting %s: %w", path, err)
	}
	if st.IsDir() {
		sm, err := safetensors.Open(path)
		if err != nil {
			return Info{}, fmt.Errorf("inspecting %s: %w", path, err)
		}
		defer sm.Close()
		w, info, err := weightsFromHF(path, sm)
		if err != nil {
			return Info{}, err
		}
		_ = w
		return info, nil
	}
	f, err := gguf.Open(path)
	if err != nil {
		return Info{}, fmt.Errorf("inspecting %s: %w", path, err)
	}
	defer f.Close()
	_, info, err := weightsFromGGUF(path, f)
	return info, err
}

// LoadWeights maps a model (a .gguf file or a Hugging Face folder) and
// describes and validates its weights exactly as Load does, without a
// tokenizer or a runner: for checks and benchmarks that drive a Runner
// themselves. The tensors alias the mapping: call close when done with
// them. On error nothing stays open.
func LoadWeights(path string) (w *Weights, info Info, close func() error, err error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, Info{}, nil, fmt.Errorf("loading %s: %w", path, err)
	}
	if st.IsDir() {
		sm, err := safetensors.Open(path)
		if err != nil {
			return nil, Info{}, nil, fmt.Errorf("loading %s: %w", path, err)
		}
		w, info, err := weightsFromHF(path, sm)
		if err != nil {
			sm.Close()
			return nil, Info{}, nil, err
		}
		return w, info, sm.Close, nil
	}
	f, err := gguf.Open(path)
	if err != nil {
		return nil, Info{}, nil, fmt.Errorf("loading %s: %w", path, err)
	}
	w, info, err = weightsFromGGUF(path, f)
	if err != nil {
		f.Close()
		return nil, Info{}, nil, err
	}
	return w, info, f.Close, nil
}

// KVBytesPerToken is the KV cache one position takes: keys and values
// of every layer, in half precision; of every layer without a sliding
// window when the model has such layers: on the CPU they keep only
// their window, a few blocks per sequence whatever its length
// (WindowKVBytes).
func (i Info) KVBytesPerToken() int64 {
	return 2 * 2 * int64(i.NLayer-i.NLayerSWA) * int64(i.NHeadKV*i.HeadDim)
}

// WindowKVBytes is the sliding-window layers' cache of a load for
// sequences of contextLength positions and a pool of kvTokens positions
// on the CPU (Load sizes it alike); 0 for a model without such layers.
func (i Info) WindowKVBytes(contextLength, kvTokens int) int64 {
	if i.NLayerSWA == 0 {
		return 0
	}
	blocks := windowKVBlocks(i.SlidingWindow, contextLength, kvTokens, 1, kvBlock)
	return 2 * 2 * int64(i.NLayerSWA) * int64(i.NHeadKV*i.HeadDim) * int64(blocks*kvBlock)
}

// KVTokensWithin is the largest KV pool, in positions, for sequences of
// up to contextLength positions whose caches (the sliding-window layers'
// one too, as Load sizes it on the CPU) take at most bytes.
func (i Info) KVTokensWithin(contextLength int, bytes int64) int {
	per := i.KVBytesPerToken()
	if per <= 0 || bytes <= 0 || contextLength <= 0 {
		return 0
	}
	if i.NLayerSWA == 0 {
		return int(bytes / per)
	}
	// the window layers' cache grows with the whole contexts the pool
	// holds (windowKVBlocks)
	best := 0
	for n := 1; ; n++ {
		rest := bytes - i.WindowKVBytes(contextLength, n*contextLength)
		t := min(int64(n*contextLength), rest/per)
		if t <= int64((n-1)*contextLength) {
			return best
		}
		best = int(t)
	}
}

// MemEstimate returns the bytes a loaded model needs: the weights, a KV
// cache of kvTokens positions, and scratch buffers for sequences of up to
// contextLength positions. contextLength 0 means the default context (see
// Options); kvTokens 0 means one sequence of it.
func (i Info) MemEstimate(contextLength, kvTokens int) int64 {
	if contextLength <= 0 {
		contextLength = defaultContext(i.ContextLength)
	}
	if kvTokens <= 0 {
		kvTokens = contextLength
	}
	kvDim := int64(i.NHeadKV * i.HeadDim)
	kv := i.KVBytesPerToken()*int64(kvTokens) + i.WindowKVBytes(contextLength, kvTokens)
	qDim := int64(i.NHead * i.HeadDim)
	b := int64(maxBatch)
	scratch := 4 * b * (3*int64(i.NEmbd) + 2*qDim + 2*kvDim + 2*int64(i.NFF))
	// attention weights and key scratch per worker (attnWorkerLen), for up
	// to 16 workers
	scratch += 4 * 16 * (attnRows*int64(contextLength) + 40*int64(i.HeadDim))
	scratch += 4 * b * int64(i.NVocab) // logits of a pass's rows
	// a matmul's input quantized (≤ 1.2 bytes a value), prepared for the
	// repacked kernels (≤ 1.5) and rounded for F16 weights (4)
	scratch += 8 * b * max(int64(i.NEmbd), qDim, int64(i.NFF))
	// a mixture of experts: router probabilities, gathered rows, outputs
	// per choice
	scratch += 4 * b * (int64(i.NExpert) + int64(i.NExpertUsed+2)*int64(i.NEmbd))
	return i.SizeBytes + kv + scratch
}

// defaultContext is the context used when Options.ContextLength is 0: the
// trained context. (The KV cache is a pool the sequences share, sized
// apart from it, so a long context no longer claims its worst case.)
func defaultContext(trained int) int {
	if trained <= 0 {
		return 2048
	}
	return trained
}

// fileTypeNames maps llama.cpp's general.file_type to names.
var fileTypeNames = map[uint64]string{
	0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1",
	10: "Q2_K", 11: "Q3_K_S", 12: "Q3_K_M", 13: "Q3_K_L", 14: "Q4_K_S", 15: "Q4_K_M",
	16: "Q5_K_S", 17: "Q5_K_M", 18: "Q6_K", 19: "IQ2_XXS", 20: "IQ2_XS", 21: "Q2_K_S",
	22: "IQ3_XS", 23: "IQ3_XXS", 24: "IQ1_S", 25: "IQ4_NL", 26: "IQ3_S", 27: "IQ3_M",
	28: "IQ2_S", 29: "IQ2_M", 30: "IQ4_XS", 31: "IQ1_M", 32: "BF16", 36: "TQ1_0", 37: "TQ2_0",
}

// dominantType names the type holding most weight bytes, for files that
// do not say their quantization.
func dominantType(ts []*Tensor) string {
	bytes := map[ggml.Type]int{}
	best, bestN := ggml.F32, -1
	for _, t := range ts {
		if t == nil {
			continue
		}
		bytes[t.Type] += len(t.Data)
		if bytes[t.Type] > bestN {
			best, bestN = t.Type, bytes[t.Type]
		}
	}
	return strings.ToUpper(best.String())
}

// hfChatTemplate reads a HF folder's chat template: chat_template.jinja,
// else tokenizer_config.json's chat_template (a string, or a list of
// named templates of which "default" is taken).
func hfChatTemplate(dir string) string {
	if b, err := os.ReadFile(filepath.Join(dir, "chat_template.jinja")); err == nil {
		return string(b)
	}
	b, err := os.ReadFile(filepath.Join(dir, "tokenizer_config.json"))
	if err != nil {
		return ""
	}
	var cfg struct {
		ChatTemplate json.RawMessage `json:"chat_template"`
	}
	if json.Unmarshal(b, &cfg) != nil || len(cfg.ChatTemplate) == 0 {
		return ""
	}
	var s string
	if json.Unmarshal(cfg.ChatTemplate, &s) == nil {
		return s
	}
	var named []struct{ Name, Template string }
	if json.Unmarshal(cfg.ChatTemplate, &named) == nil {
		for _, n := range named {
			if n.Name == "default" {
				return n.Template
			}
		}
		if len(named) > 0 {
			return named[0].Template
		}
	}
	return ""
}
