package node

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"

	"helexa/node/sampler"
)

// samplingFields are the request fields chat and legacy completions share.
type samplingFields struct {
	Model               string             `json:"model"`
	Stream              bool               `json:"stream"`
	StreamOptions       *streamOptions     `json:"stream_options"`
	Temperature         *float32           `json:"temperature"`
	TopP                *float32           `json:"top_p"`
	TopK                *int               `json:"top_k"`
	MinP                *float32           `json:"min_p"`
	Seed                *int64             `json:"seed"`
	Stop                json.RawMessage    `json:"stop"`
	MaxTokens           *int               `json:"max_tokens"`
	MaxCompletionTokens *int               `json:"max_completion_tokens"`
	PresencePenalty     *float32           `json:"presence_penalty"`
	FrequencyPenalty    *float32           `json:"frequency_penalty"`
	RepetitionPenalty   *float32           `json:"repetition_penalty"`
	RepeatPenalty       *float32           `json:"repeat_penalty"`
	RepeatLastN         *int               `json:"repeat_last_n"`
	LogitBias           map[string]float32 `json:"logit_bias"`
	N                   *int               `json:"n"`
	// IgnoreEOS (llama.cpp, vLLM) generates past end-of-generation
	// tokens, up to max_tokens: load generators use it for fixed lengths.
	IgnoreEOS bool `json:"ignore_eos"`
	// Output constraints: a GBNF grammar (llama.cpp), an OpenAI
	// response_format, or a JSON Schema (llama.cpp's json_schema). At
	// most one.
	Grammar        string          `json:"grammar"`
	ResponseFormat json.RawMessage `json:"response_format"`
	JSONSchema     json.RawMessage `json:"json_schema"`
}

type streamOptions struct {
	IncludeUsage bool `json:"include_usage"`
}

// genSettings are the resolved sampling settings of a request.
type genSettings struct {
	params    sampler.Params
	seed      uint64
	stops     []string
	maxTokens int
	ignoreEOS bool
}

// resolve validates the fields and fills defaults from the model's
// generation config.
func (f *samplingFields) resolve(m *loadedModel) (genSettings, error) {
	var g genSettings
	if err := f.validate(); err != nil {
		return g, err
	}
	r := sampler.Request{
		Temperature: f.Temperature, TopK: f.TopK, TopP: f.TopP, MinP: f.MinP,
		PresencePenalty: f.PresencePenalty, FrequencyPenalty: f.FrequencyPenalty,
		RepetitionPenalty: f.RepetitionPenalty, PenaltyLastN: f.RepeatLastN,
	}
	if r.RepetitionPenalty == nil {
		r.RepetitionPenalty = f.RepeatPenalty
	}
	if len(f.LogitBias) > 0 {
		r.LogitBias = make(map[int32]float32, len(f.LogitBias))
		for k, v := range f.LogitBias {
			id, err := strconv.ParseInt(strings.TrimSpace(k), 10, 32)
			if err != nil || id < 0 || int(id) >= m.NVocab {
				return g, badRequest("logit_bias", "logit_bias key %q is not a token id of this model (0..%d)", k, m.NVocab-1)
			}
			r.LogitBias[int32(id)] = v
		}
	}
	g.params = sampler.Resolve(r, m.GenerationConfig)
	if err := g.params.Validate(); err != nil {
		return g, badRequest("", "%v", err)
	}
	if f.Seed != nil {
		g.seed = uint64(*f.Seed)
	} else {
		g.seed = rand.Uint64()
	}
	stops, err := parseStop(f.Stop)
	if err != nil {
		return g, err
	}
	g.stops = stops
	g.ignoreEOS = f.IgnoreEOS
	// A count above the context is allowed: the generation ends with
	// "length" when the context is full (validate bounded it).
	switch {
	case f.MaxCompletionTokens != nil:
		g.maxTokens = *f.MaxCompletionTokens
	case f.MaxTokens != nil:
		g.maxTokens = *f.MaxTokens
	}
	return g, nil
}

// maxCount bounds every count a request gives (tokens, top_k, windows):
// larger values are a client bug, not a wish.
const maxCount = math.MaxInt32

// validate checks every numeric field against its range, naming the field
// as the API spells it. It runs before any work on the request.
func (f *samplingFields) validate() error {
	if f.N != nil && *f.N != 1 {
		return badRequest("n", "only n=1 is supported, got %d", *f.N)
	}
	counts := []struct {
		name string
		v    *int
		min  int
	}{
		{"max_tokens", f.MaxTokens, 0},
		{"max_completion_tokens", f.MaxCompletionTokens, 0},
		{"top_k", f.TopK, -1}, // -1 is "all" (vLLM's spelling of 0)
		{"repeat_last_n", f.RepeatLastN, -1},
	}
	for _, c := range counts {
		if c.v == nil {
			continue
		}
		if *c.v < c.min || *c.v > maxCount {
			return badRequest(c.name, "%s must be between %d and %d, got %d", c.name, c.min, maxCount, *c.v)
		}
	}
	if f.TopK != nil && *f.TopK < 0 {
		zero := 0
		f.TopK = &zero
	}
	floats := []struct {
		name     string
		v        *float32
		min, max float32
	}{
		{"temperature", f.Temperature, 0, 100},
		{"top_p", f.TopP, 0, 1},
		{"min_p", f.MinP, 0, 1},
		{"presence_penalty", f.PresencePenalty, -2, 2},
		{"frequency_penalty", f.FrequencyPenalty, -2, 2},
		{"repetition_penalty", f.RepetitionPenalty, 0, 100},
		{"repeat_penalty", f.RepeatPenalty, 0, 100},
	}
	for _, c := range floats {
		if c.v == nil {
			continue
		}
		if x := *c.v; !(x >= c.min && x <= c.max) { // NaN fails too
			return badRequest(c.name, "%s must be between %g and %g, got %g", c.name, c.min, c.max, x)
		}
	}
	for k, b := range f.LogitBias {
		if !(b >= -100 && b <= 100) {
			return badRequest("logit_bias", "logit_bias values must be between -100 and 100, got %g for %q", b, k)
		}
	}
	return nil
}

// parseStop reads stop as a string or a list of up to 16 strings.
func parseStop(raw json.RawMessage) ([]string, error) {
	t := strings.TrimSpace(string(raw))
	if t == "" || t == "null" {
		return nil, nil
	}
	var one string
	if err := json.Unmarshal(raw, &one); err == nil {
		return []string{one}, nil
	}
	var many []string
	if err := json.Unmarshal(raw, &many); err != nil {
		return nil, badRequest("stop", "stop must be a string or a list of strings")
	}
	if len(many) > 16 {
		return nil, badRequest("stop", "at most 16 stop strings, got %d", len(many))
	}
	return many, nil
}
