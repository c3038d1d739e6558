package tools

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/urfave/cli/v3"

	"helexa/node/engine"
)

func evalCommand() *cli.Command {
	return &cli.Command{
		Name:  "eval",
		Usage: "teacher-forced evaluation of a model against reference generations",
		Description: "Feeds every reference case's prompt and completion to the model in one pass and\n" +
			"prints one JSON line per case: the model's own top tokens at each step and its\n" +
			"log-probability of each of the reference's top ids, then a summary line with the\n" +
			"mean and max absolute difference from the reference's log-probabilities and the\n" +
			"top-1 agreement. Exits non-zero when the model misses the project's tolerance.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "model", Required: true, Usage: "a .gguf file or a Hugging Face folder"},
			&cli.StringFlag{Name: "reference", Required: true, Usage: "reference JSON (prompt_tokens, completion_tokens, top_logprobs)"},
			&cli.IntFlag{Name: "top", Value: 5, Usage: "how many of the model's own top tokens to print per step"},
			&cli.IntFlag{Name: "threads", Aliases: []string{"t"}, Usage: "CPU threads (0: all cores)"},
		},
		Action: func(ctx context.Context, c *cli.Command) error {
			return runEval(ctx, os.Stdout, c.String("model"), c.String("reference"), int(c.Int("top")), int(c.Int("threads")))
		},
	}
}

type evalCaseLine struct {
	Case  int               `json:"case"`
	Steps []engine.EvalStep `json:"steps"`
}

type evalSummaryLine struct {
	Summary *engine.EvalSummary `json:"summary"`
}

func runEval(ctx context.Context, out io.Writer, modelPath, refPath string, top, threads int) error {
	if top < 1 {
		return fmt.Errorf("--top must be at least 1, got %d", top)
	}
	ref, err := engine.LoadReference(refPath)
	if err != nil {
		return err
	}
	longest := 0
	for _, c := range ref.Cases {
		longest = max(longest, len(c.PromptTokens)+len(c.CompletionTokens))
	}
	m, err := engine.Load(modelPath, engine.Options{ContextLength: max(longest, 16), Threads: threads})
	if err != nil {
		return err
	}
	defer m.Close()
	tol := engine.ToleranceFor(m.Info.Quant)
	sum := &engine.EvalSummary{Gap: tol.Gap}
	enc := json.NewEncoder(out)
	for i, c := range ref.Cases {
		if err := ctx.Err(); err != nil {
			return err
		}
		steps, err := m.EvalCase(c, top)
		if err != nil {
			return fmt.Errorf("case %d: %w", i, err)
		}
		if err := enc.Encode(evalCaseLine{Case: i, Steps: steps}); err != nil {
			return err
		}
		sum.Add(c, steps)
	}
	if err := enc.Encode(evalSummaryLine{Summary: sum}); err != nil {
		return err
	}
	if err := sum.Check(tol); err != nil {
		return fmt.Errorf("eval: %s weights miss tolerance: %w", m.Info.Quant, err)
	}
	return nil
}
