package translate

import "math"

// maxTokenCount is the largest token count a request may ask for: counts
// are 32-bit on every engine, and anything near it is a mistake, not a
// budget.
const maxTokenCount = math.MaxInt32

// sampling holds the numeric fields of a dialect's request, checked before
// translation so that a bad value is refused under the name the client
// wrote.
type sampling struct {
	maxName        string // "max_tokens" or "max_output_tokens"
	max            *int
	temperature    *float64
	maxTemperature float64 // 1 for Anthropic, 2 for OpenAI
	topP           *float64
	topK           *int
}

// checkSampling refuses a negative or absurd token budget, a temperature or
// top_p out of its range and a negative or absurd top_k with a 400 naming
// the field. Non-integers never get here: decoding into an int refuses them.
func checkSampling(s sampling) *Error {
	if s.max != nil && (*s.max < 0 || *s.max > maxTokenCount) {
		return badRequest(s.maxName, "must be an integer from 0 to %d, got %d", maxTokenCount, *s.max)
	}
	if s.temperature != nil && !(*s.temperature >= 0 && *s.temperature <= s.maxTemperature) {
		return badRequest("temperature", "must be a number from 0 to %g, got %g", s.maxTemperature, *s.temperature)
	}
	if s.topP != nil && !(*s.topP >= 0 && *s.topP <= 1) {
		return badRequest("top_p", "must be a number from 0 to 1, got %g", *s.topP)
	}
	if s.topK != nil && (*s.topK < 0 || *s.topK > maxTokenCount) {
		return badRequest("top_k", "must be an integer from 0 to %d, got %d", maxTokenCount, *s.topK)
	}
	return nil
}
