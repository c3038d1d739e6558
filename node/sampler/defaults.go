package sampler

// Built-in defaults, used when neither the request nor the model's
// generation_config.json sets a knob.
const (
	DefaultTemperature = 0.8
	DefaultTopK        = 40
	DefaultTopP        = 0.95
	DefaultMinP        = 0.05
)

// Request holds the knobs a request set explicitly; nil means unset.
type Request struct {
	Temperature       *float32
	TopK              *int
	TopP              *float32
	MinP              *float32
	RepetitionPenalty *float32
	PresencePenalty   *float32
	FrequencyPenalty  *float32
	PenaltyLastN      *int
	LogitBias         map[int32]float32
}

// Resolve fills the parameters: the request first, then the model's
// generation config (the parsed generation_config.json: temperature,
// top_k, top_p, min_p, repetition_penalty; nil when absent), then the
// built-in defaults.
func Resolve(r Request, gen map[string]any) Params {
	p := Params{
		Temperature:       DefaultTemperature,
		TopK:              DefaultTopK,
		TopP:              DefaultTopP,
		MinP:              DefaultMinP,
		RepetitionPenalty: 1,
		LogitBias:         r.LogitBias,
	}
	if v, ok := num(gen, "temperature"); ok {
		p.Temperature = float32(v)
	}
	if v, ok := num(gen, "top_k"); ok {
		p.TopK = int(v)
	}
	if v, ok := num(gen, "top_p"); ok {
		p.TopP = float32(v)
	}
	if v, ok := num(gen, "min_p"); ok {
		p.MinP = float32(v)
	}
	if v, ok := num(gen, "repetition_penalty"); ok {
		p.RepetitionPenalty = float32(v)
	}
	if gen != nil {
		if ds, ok := gen["do_sample"].(bool); ok && !ds {
			p.Temperature = 0
		}
	}
	set(&p.Temperature, r.Temperature)
	set(&p.TopK, r.TopK)
	set(&p.TopP, r.TopP)
	set(&p.MinP, r.MinP)
	set(&p.RepetitionPenalty, r.RepetitionPenalty)
	set(&p.PresencePenalty, r.PresencePenalty)
	set(&p.FrequencyPenalty, r.FrequencyPenalty)
	set(&p.PenaltyLastN, r.PenaltyLastN)
	return p
}

func set[T any](dst *T, v *T) {
	if v != nil {
		*dst = *v
	}
}

func num(m map[string]any, key string) (float64, bool) {
	if m == nil {
		return 0, false
	}
	switch v := m[key].(type) {
	case float64:
		return v, true
	case float32:
		return float64(v), true
	case int:
		return float64(v), true
	case int64:
		return float64(v), true
	}
	return 0, false
}
