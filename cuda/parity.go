package cuda

import (
	"encoding/json"
	"fmt"
	"math"
	"os"

	"helexa/node/engine"
)

// Reference is one file of reference generations (greedy tokens and top-5
// log-probabilities, from llama.cpp).
type Reference struct {
	ModelFile string          `json:"model_file"`
	AddBOS    bool            `json:"add_bos"`
	Cases     []ReferenceCase `json:"cases"`
}

// ReferenceCase is one prompt and its greedy continuation.
type ReferenceCase struct {
	Prompt           string `json:"prompt"`
	PromptTokens     []int32
	CompletionTokens []int32
	TopLogprobs      [][]struct {
		ID      int32   `json:"id"`
		Logprob float64 `json:"logprob"`
	} `json:"top_logprobs"`
}

// UnmarshalJSON reads the snake_case token fields.
func (c *ReferenceCase) UnmarshalJSON(b []byte) error {
	type plain ReferenceCase
	var raw struct {
		plain
		P []int32 `json:"prompt_tokens"`
		C []int32 `json:"completion_tokens"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	*c = ReferenceCase(raw.plain)
	c.PromptTokens, c.CompletionTokens = raw.P, raw.C
	return nil
}

// ReadReference parses a reference file.
func ReadReference(path string) (*Reference, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r Reference
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("parsing %s: %w", path, err)
	}
	return &r, nil
}

// Tolerance is the parity bar for one weight class.
type Tolerance struct {
	Mean, Max float64
	// Gap: steps whose reference top-1/top-2 gap is at least this must
	// agree on the top-1 token.
	Gap float64
}

// Tolerances by WeightClass.
var Tolerances = map[string]Tolerance{
	"f32":   {Mean: 0.004, Max: 0.03, Gap: 0.05},
	"f16":   {Mean: 0.006, Max: 0.05, Gap: 0.1},
	"quant": {Mean: 0.08, Max: 0.4, Gap: 0.5},
}

// ParityResult summarises one reference file.
type ParityResult struct {
	Steps, Compared int
	MeanAbs, MaxAbs float64
	Top1Checked     int
	Top1Missed      int
	Pass            bool
}

// Parity runs every case by teacher forcing: forwardAll gets prompt +
// completion from position 0 of a fresh sequence and fills every
// position's logits. It compares the log-probabilities of the reference's
// top-5 ids at each completion step.
func Parity(forwardAll func(tokens []int32, logits []float32) error, nvocab int, ref *Reference, tol Tolerance) (ParityResult, error) {
	var res ParityResult
	var sum float64
	for ci, c := range ref.Cases {
		toks := append(append([]int32{}, c.PromptTokens...), c.CompletionTokens...)
		logits := make([]float32, len(toks)*nvocab)
		if err := forwardAll(toks, logits); err != nil {
			return res, fmt.Errorf("case %d: %w", ci, err)
		}
		for j, top := range c.TopLogprobs {
			at := len(c.PromptTokens) - 1 + j
			row := logits[at*nvocab : (at+1)*nvocab]
			lse := logSumExp(row)
			res.Steps++
			for _, e := range top {
				d := math.Abs(float64(row[e.ID]) - lse - e.Logprob)
				sum += d
				res.Compared++
				res.MaxAbs = math.Max(res.MaxAbs, d)
			}
			if len(top) >= 2 && top[0].Logprob-top[1].Logprob >= tol.Gap {
				res.Top1Checked++
				if argmax(row) != int(top[0].ID) {
					res.Top1Missed++
				}
			}
		}
	}
	if res.Compared > 0 {
		res.MeanAbs = sum / float64(res.Compared)
	}
	res.Pass = res.Compared > 0 && res.MeanAbs <= tol.Mean && res.MaxAbs <= tol.Max && res.Top1Missed == 0
	return res, nil
}

func logSumExp(v []float32) float64 {
	m := math.Inf(-1)
	for _, x := range v {
		m = math.Max(m, float64(x))
	}
	var s float64
	for _, x := range v {
		s += math.Exp(float64(x) - m)
	}
	return m + math.Log(s)
}

func argmax(v []float32) int {
	best := 0
	for i, x := range v {
		if x > v[best] {
			best = i
		}
	}
	return best
}

// RunnerForwardAll adapts a runner to Parity (slot 0).
func RunnerForwardAll(r engine.Runner) func([]int32, []float32) error {
	return func(toks []int32, logits []float32) error { return r.Forward(0, toks, 0, logits, true) }
}
