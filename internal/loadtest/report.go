package loadtest

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
)

// WriteJSON writes the levels as one JSON array.
func WriteJSON(w io.Writer, levels []LevelResult) error {
	if levels == nil {
		levels = []LevelResult{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(levels)
}

// WriteTable writes the levels as an aligned table, one row per level,
// then a note for each level with errors or an interruption.
func WriteTable(w io.Writer, levels []LevelResult) error {
	if len(levels) == 0 {
		_, err := fmt.Fprintln(w, "no level was measured")
		return err
	}
	l0 := levels[0]
	prompt := fmt.Sprintf("%d-word prompts", l0.PromptWords)
	if l0.PromptTokensMean > 0 {
		prompt += fmt.Sprintf(" (%.0f prompt tokens on average)", l0.PromptTokensMean)
	}
	fmt.Fprintf(w, "%s, %s endpoint, %s, max_tokens %d\n", l0.Model, l0.Endpoint, prompt, l0.MaxTokens)
	open := l0.RequestRate > 0
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	if open {
		fmt.Fprintln(tw, "rate/s\tmax in flight\tcompleted\terrors\treq/s\toutput tok/s\tmean in flight\tttft p50 ms\tttft p99 ms\titl p50 ms\titl p99 ms\te2e p50 ms\t")
	} else {
		fmt.Fprintln(tw, "concurrency\tcompleted\terrors\treq/s\toutput tok/s\tdecode tok/s\tttft p50 ms\tttft p99 ms\titl p50 ms\titl p99 ms\te2e p50 ms\t")
	}
	for _, l := range levels {
		done := fmt.Sprintf("%d/%d", l.Completed, l.Requests)
		if l.Interrupted {
			done += "*"
		}
		ttft50, ttft99, e2e := "-", "-", "-"
		if l.Completed > 0 {
			ttft50, ttft99, e2e = num(l.TTFTMsP50), num(l.TTFTMsP99), num(l.E2EMsP50)
		}
		itl50, itl99 := "-", "-"
		if l.ITLSamples > 0 {
			itl50, itl99 = num(l.ITLMsP50), num(l.ITLMsP99)
		}
		if open {
			limit := "-"
			if l.Concurrency > 0 {
				limit = strconv.Itoa(l.Concurrency)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%.2f\t%.1f\t%.2f\t%s\t%s\t%s\t%s\t%s\t\n", strconv.FormatFloat(l.RequestRate, 'g', -1, 64), limit,
				done, l.Errors, l.RequestsPerS, l.OutputTokPerS, l.MeanInFlight, ttft50, ttft99, itl50, itl99, e2e)
			continue
		}
		fmt.Fprintf(tw, "%d\t%s\t%d\t%.2f\t%.1f\t%.1f\t%s\t%s\t%s\t%s\t%s\t\n", l.Concurrency, done, l.Errors,
			l.RequestsPerS, l.OutputTokPerS, l.DecodeTokPerS, ttft50, ttft99, itl50, itl99, e2e)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, l := range levels {
		name := levelSpec{conc: l.Concurrency, rate: l.RequestRate}.name()
		if l.Interrupted {
			fmt.Fprintf(w, "* %s was interrupted after %d of %d requests\n", name, l.Completed+l.Errors, l.Requests)
		}
		if l.Errors > 0 {
			fmt.Fprintf(w, "%s: %d errors, the first: %s\n", name, l.Errors, l.FirstError)
		}
		if l.Completed > 0 && l.OutputTokensMean < float64(l.MaxTokens) {
			fmt.Fprintf(w, "%s: %.1f output tokens per request on average, below max_tokens %d: the server stopped some early (it may not honour ignore_eos)\n",
				name, l.OutputTokensMean, l.MaxTokens)
		}
		if l.OutputTokensFrom == "chunks" || l.OutputTokensFrom == "mixed" {
			fmt.Fprintf(w, "%s: output tokens counted as stream chunks where the server sent no usage\n", name)
		}
	}
	return nil
}

// num prints a latency with three significant digits or more.
func num(ms float64) string {
	switch {
	case ms >= 100:
		return strconv.FormatFloat(ms, 'f', 0, 64)
	case ms >= 10:
		return strconv.FormatFloat(ms, 'f', 1, 64)
	default:
		return strconv.FormatFloat(ms, 'f', 2, 64)
	}
}
