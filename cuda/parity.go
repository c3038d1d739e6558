package cuda

import (
	"fmt"

	"helexa/node/engine"
)

// Parity runs every case of ref by teacher forcing through forwardAll
// (prompt + completion from position 0 of a fresh sequence, every
// position's logits) and folds the log-probabilities of the reference's
// top ids into the engine's evaluation summary, so a GPU runner is judged
// exactly as `helexa tools eval` judges the CPU engine. tol.Gap sets which
// top-1 disagreements count; the caller checks the summary with
// Summary.Check(tol).
func Parity(forwardAll func(tokens []int32, logits []float32) error, nvocab int, ref *engine.Reference, tol engine.Tolerance) (engine.EvalSummary, error) {
	sum := engine.EvalSummary{Gap: tol.Gap}
	for ci, c := range ref.Cases {
		toks := append(append([]int32{}, c.PromptTokens...), c.CompletionTokens...)
		logits := make([]float32, len(toks)*nvocab)
		if err := forwardAll(toks, logits); err != nil {
			return sum, fmt.Errorf("case %d: %w", ci, err)
		}
		steps, err := engine.EvalLogits(c, logits[(len(c.PromptTokens)-1)*nvocab:], nvocab, 1)
		if err != nil {
			return sum, fmt.Errorf("case %d: %w", ci, err)
		}
		sum.Add(c, steps)
	}
	return sum, nil
}

// ToleranceOf is the project's parity tolerance for a model's weights.
func ToleranceOf(w *engine.Weights) engine.Tolerance {
	switch WeightClass(w) {
	case "f32":
		return engine.ToleranceFor("F32")
	case "f16":
		return engine.ToleranceFor("F16")
	}
	return engine.ToleranceFor("Q8_0")
}

// RunnerForwardAll adapts a runner to Parity (slot 0).
func RunnerForwardAll(r engine.Runner) func([]int32, []float32) error {
	return func(toks []int32, logits []float32) error { return engine.ForwardSlot(r, 0, toks, 0, logits, true) }
}
