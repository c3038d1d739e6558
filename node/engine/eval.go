package engine

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"sort"
)

// Reference is a file of reference generations: greedy continuations of
// prompts with the top log-probabilities at every step.
type Reference struct {
	ModelFile string    `json:"model_file"`
	AddBOS    bool      `json:"add_bos"`
	Cases     []RefCase `json:"cases"`
}

// RefCase is one prompt and its reference continuation.
type RefCase struct {
	Prompt           string    `json:"prompt"`
	PromptTokens     []int32   `json:"prompt_tokens"`
	CompletionTokens []int32   `json:"completion_tokens"`
	TopLogprobs      [][]TokLP `json:"top_logprobs"` // one list per completion token
}

// TokLP is a token id with its log-probability.
type TokLP struct {
	ID      int32   `json:"id"`
	Logprob float64 `json:"logprob"`
}

// LoadReference reads a reference file.
func LoadReference(path string) (*Reference, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading reference: %w", err)
	}
	var ref Reference
	if err := json.Unmarshal(b, &ref); err != nil {
		return nil, fmt.Errorf("reading reference %s: %w", path, err)
	}
	for i, c := range ref.Cases {
		if len(c.PromptTokens) == 0 || len(c.TopLogprobs) != len(c.CompletionTokens) {
			return nil, fmt.Errorf("reading reference %s: case %d: %d prompt tokens, %d completion tokens, %d top lists",
				path, i, len(c.PromptTokens), len(c.CompletionTokens), len(c.TopLogprobs))
		}
	}
	return &ref, nil
}

// EvalStep is the model's view of one reference step.
type EvalStep struct {
	Top []TokLP   `json:"top"` // the model's own top tokens
	Ref []float64 `json:"ref"` // the model's logprob of each reference top id, same order
}

// EvalCase runs one reference case teacher-forced (prompt + completion in
// one pass on slot 0) and returns the model's log-softmax view of every
// step. top is how many of its own top tokens to report.
func (m *Model) EvalCase(c RefCase, top int) ([]EvalStep, error) {
	tokens := append(append([]int32(nil), c.PromptTokens...), c.CompletionTokens...)
	tokens = tokens[:len(tokens)-1] // the last completion token predicts nothing we check
	if len(tokens) > m.NCtx() {
		return nil, fmt.Errorf("case of %d tokens exceeds the context of %d", len(tokens), m.NCtx())
	}
	nv := m.NVocab()
	// The prompt up to its last token needs no logits but the last row.
	np := len(c.PromptTokens) - 1
	logits := make([]float32, (len(tokens)-np)*nv)
	if np > 0 {
		if err := m.Forward(0, tokens[:np], 0, logits); err != nil {
			return nil, err
		}
	}
	if err := m.ForwardAll(0, tokens[np:], np, logits); err != nil {
		return nil, err
	}
	return EvalLogits(c, logits, nv, top)
}

// EvalLogits turns teacher-forced logits into the log-softmax view of every
// step of case c. logits holds nv floats per position, starting at the
// position of the prompt's last token (the row that predicts the first
// completion token); any backend that computes logits can be checked this
// way. top is how many of the model's own top tokens to report.
func EvalLogits(c RefCase, logits []float32, nv, top int) ([]EvalStep, error) {
	if len(logits) < len(c.CompletionTokens)*nv {
		return nil, fmt.Errorf("%d logits for %d completion steps of %d", len(logits), len(c.CompletionTokens), nv)
	}
	lp := make([]float64, nv)
	steps := make([]EvalStep, len(c.CompletionTokens))
	for j := range steps {
		logSoftmax(lp, logits[j*nv:(j+1)*nv])
		st := EvalStep{Top: topK(lp, top), Ref: make([]float64, len(c.TopLogprobs[j]))}
		for i, r := range c.TopLogprobs[j] {
			if r.ID < 0 || int(r.ID) >= nv {
				return nil, fmt.Errorf("reference id %d outside the vocabulary of %d", r.ID, nv)
			}
			st.Ref[i] = lp[r.ID]
		}
		steps[j] = st
	}
	return steps, nil
}

// logSoftmax writes the log-softmax of x to out, in float64.
func logSoftmax(out []float64, x []float32) {
	maxv := math.Inf(-1)
	for _, v := range x {
		maxv = math.Max(maxv, float64(v))
	}
	var sum float64
	for _, v := range x {
		sum += math.Exp(float64(v) - maxv)
	}
	lse := maxv + math.Log(sum)
	for i, v := range x {
		out[i] = float64(v) - lse
	}
}

// topK returns the k largest entries of lp, largest first.
func topK(lp []float64, k int) []TokLP {
	k = min(k, len(lp))
	best := make([]TokLP, 0, k+1)
	for i, v := range lp {
		if len(best) == k && v <= best[k-1].Logprob {
			continue
		}
		pos := sort.Search(len(best), func(j int) bool { return best[j].Logprob < v })
		best = append(best, TokLP{})
		copy(best[pos+1:], best[pos:])
		best[pos] = TokLP{ID: int32(i), Logprob: v}
		if len(best) > k {
			best = best[:k]
		}
	}
	return best
}

// Tolerance is how close a model must track a reference.
type Tolerance struct {
	MeanAbs, MaxAbs float64
	// Gap: steps whose reference top-1/top-2 gap is at least Gap must
	// agree on the top-1 token.
	Gap float64
}

// ToleranceFor returns the project's tolerance for a model's weight type
// (Info.Quant).
func ToleranceFor(quant string) Tolerance {
	switch quant {
	case "F32", "BF16":
		return Tolerance{MeanAbs: 0.004, MaxAbs: 0.03, Gap: 0.05}
	case "F16":
		return Tolerance{MeanAbs: 0.006, MaxAbs: 0.05, Gap: 0.1}
	}
	return Tolerance{MeanAbs: 0.08, MaxAbs: 0.4, Gap: 0.5}
}

// EvalSummary aggregates steps against their reference.
type EvalSummary struct {
	Steps     int     `json:"steps"`
	MeanAbs   float64 `json:"mean_abs"`
	MaxAbs    float64 `json:"max_abs"`
	Top1Agree float64 `json:"top1_agree"`
	// GapDisagree counts steps whose reference top-1/top-2 gap is at
	// least Gap but whose top-1 differs.
	GapDisagree int     `json:"gap_disagree"`
	Gap         float64 `json:"gap"`
	n           int
	sum         float64
	agree       int
}

// Add folds one case's steps into the summary.
func (s *EvalSummary) Add(ref RefCase, steps []EvalStep) {
	for j, st := range steps {
		r := ref.TopLogprobs[j]
		for i := range r {
			d := math.Abs(st.Ref[i] - r[i].Logprob)
			s.sum += d
			s.n++
			s.MaxAbs = math.Max(s.MaxAbs, d)
		}
		s.Steps++
		if len(st.Top) > 0 && len(r) > 0 && st.Top[0].ID == r[0].ID {
			s.agree++
		} else if len(r) > 1 && r[0].Logprob-r[1].Logprob >= s.Gap {
			s.GapDisagree++
		}
	}
	if s.n > 0 {
		s.MeanAbs = s.sum / float64(s.n)
	}
	if s.Steps > 0 {
		s.Top1Agree = float64(s.agree) / float64(s.Steps)
	}
}

// Check returns an error when the summary misses tolerance t.
func (s *EvalSummary) Check(t Tolerance) error {
	if s.MeanAbs > t.MeanAbs || s.MaxAbs > t.MaxAbs || s.GapDisagree > 0 {
		return fmt.Errorf("mean |Δ| %.5f (limit %.3f), max |Δ| %.5f (limit %.2f), %d top-1 disagreements above gap %.2f",
			s.MeanAbs, t.MeanAbs, s.MaxAbs, t.MaxAbs, s.GapDisagree, t.Gap)
	}
	return nil
}
