package loadtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/urfave/cli/v3"
)

// Command is `helexa tools loadtest`.
func Command() *cli.Command {
	return &cli.Command{
		Name:  "loadtest",
		Usage: "measure an OpenAI-compatible server under concurrent streaming requests, like vLLM's benchmark_serving",
		Description: "Streams requests to --url (a helexa gateway or neuron, llama.cpp's server, vLLM, or any\n" +
			"OpenAI-compatible server) at each --concurrency level in turn: exactly that many in flight\n" +
			"until --requests have been sent (default max(16, 4×concurrency)). Every request asks for\n" +
			"--max-tokens with ignore_eos (servers that honour it, such as llama.cpp and vLLM, then\n" +
			"generate exactly that many) and stream_options.include_usage.\n" +
			"\n" +
			"Prompts are random common words, different for every request (--seed makes them\n" +
			"reproducible), counted as about one token a word. One warm-up request, not counted, goes\n" +
			"first; unless --no-calibrate is given, the prompt token counts the server reports for it\n" +
			"(and for one more, one-token request) set the word count so prompts come to about\n" +
			"--prompt-tokens tokens including the chat template.\n" +
			"\n" +
			"Per level: requests/s and output tokens/s over the level's wall time (output tokens from\n" +
			"the usage chunk, else one per content chunk); decode tokens/s, the streams' aggregate rate\n" +
			"while they decode (each request's tokens after its first over the time from its first\n" +
			"chunk to its last, times the concurrency: no prefill or queueing in it); time to first\n" +
			"token (TTFT) p50 and p99;\n" +
			"inter-token latency (ITL: time between content chunks, over all requests) p50 and p99;\n" +
			"end-to-end latency p50; errors, with the first message. --json prints one array of level\n" +
			"objects (latencies in ms, durations in s). Progress goes to stderr.\n" +
			"\n" +
			"With --request-rate R1,R2,... each level is an open loop instead, as vLLM's --request-rate:\n" +
			"requests arrive as a Poisson process of that many a second (exponential gaps from --seed),\n" +
			"whatever the earlier ones' progress, and --concurrency, one value, caps the requests in\n" +
			"flight (an arrival beyond it waits; no cap unless given). Such a level reports its mean\n" +
			"requests in flight instead of the decode rate; its default request count is 30 seconds of\n" +
			"arrivals (16 to 10,000).\n" +
			"\n" +
			"A failed warm-up stops the run (unreachable server, bad key, unknown model, no event\n" +
			"stream). The exit status is non-zero when any request failed or the run was interrupted;\n" +
			"Ctrl-C stops and prints what was measured.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "url", Value: "http://127.0.0.1:31313", Usage: "the server's API root (a trailing /v1 is fine)", Sources: cli.EnvVars("HELEXA_URL")},
			&cli.StringFlag{Name: "api-key", Usage: "sent as Authorization: Bearer KEY", Sources: cli.EnvVars("HELEXA_API_KEY")},
			&cli.StringFlag{Name: "model", Aliases: []string{"m"}, Required: true, Usage: "the model to ask for"},
			&cli.StringFlag{Name: "concurrency", Aliases: []string{"c"}, Value: "1,2,4,8,16", Usage: "comma-separated levels: requests in flight"},
			&cli.IntFlag{Name: "requests", Aliases: []string{"n"}, Usage: "requests per level (0: max(16, 4×concurrency), or 30 s of arrivals)"},
			&cli.StringFlag{Name: "request-rate", Usage: "comma-separated arrival rates a second: open-loop levels (Poisson), --concurrency caps the requests in flight"},
			&cli.IntFlag{Name: "prompt-tokens", Aliases: []string{"p"}, Value: DefaultPromptTokens, Usage: "prompt length in tokens, estimated as words"},
			&cli.IntFlag{Name: "max-tokens", Value: DefaultMaxTokens, Usage: "max_tokens of every request"},
			&cli.StringFlag{Name: "endpoint", Value: string(Chat), Usage: "chat (/v1/chat/completions) or completions (/v1/completions)"},
			&cli.BoolFlag{Name: "no-calibrate", Usage: "send exactly --prompt-tokens words, without adjusting to the server's token counts"},
			&cli.Uint64Flag{Name: "seed", Value: 1, Usage: "seed of the prompts' words"},
			&cli.DurationFlag{Name: "timeout", Value: 0, Usage: "limit on one request, from sending to the end of its stream (0: none)"},
			&cli.BoolFlag{Name: "json", Usage: "print one JSON array of level objects instead of a table"},
		},
		Action: func(ctx context.Context, c *cli.Command) error {
			var rates []float64
			if c.IsSet("request-rate") {
				var err error
				if rates, err = ParseRates(c.String("request-rate")); err != nil {
					return err
				}
			}
			var conc []int
			if len(rates) == 0 || c.IsSet("concurrency") {
				var err error
				if conc, err = ParseConcurrency(c.String("concurrency")); err != nil {
					return err
				}
			}
			cfg := Config{
				URL: c.String("url"), APIKey: c.String("api-key"), Model: c.String("model"),
				Endpoint: Endpoint(c.String("endpoint")), Concurrency: conc, RequestRates: rates,
				Requests: int(c.Int("requests")), PromptTokens: int(c.Int("prompt-tokens")), MaxTokens: int(c.Int("max-tokens")),
				NoCalibrate: c.Bool("no-calibrate"), Seed: c.Uint64("seed"), Timeout: c.Duration("timeout"),
			}
			if cfg.PromptTokens < 1 || cfg.MaxTokens < 1 {
				return fmt.Errorf("--prompt-tokens and --max-tokens must be at least 1 (got %d, %d)", cfg.PromptTokens, cfg.MaxTokens)
			}
			return run(ctx, cfg, stdout(c), stderr(c), c.Bool("json"))
		},
	}
}

// run is the command's action after flag parsing.
func run(ctx context.Context, cfg Config, out, progress io.Writer, asJSON bool) error {
	levels, runErr := Run(ctx, cfg, progress)
	if runErr != nil && !errors.Is(runErr, ErrInterrupted) {
		return fmt.Errorf("loadtest: %w", runErr)
	}
	var err error
	if asJSON {
		err = WriteJSON(out, levels)
	} else {
		err = WriteTable(out, levels)
	}
	if err != nil {
		return fmt.Errorf("loadtest: writing the results: %w", err)
	}
	if runErr != nil {
		return fmt.Errorf("loadtest: %w", runErr)
	}
	failed, sent := 0, 0
	first := ""
	for _, l := range levels {
		if l.Errors > 0 && first == "" {
			first = l.FirstError
		}
		failed += l.Errors
		sent += l.Requests
	}
	if failed > 0 {
		return fmt.Errorf("loadtest: %d of %d requests failed; the first: %s", failed, sent, first)
	}
	return nil
}

func stdout(c *cli.Command) io.Writer {
	if w := c.Root().Writer; w != nil {
		return w
	}
	return os.Stdout
}

func stderr(c *cli.Command) io.Writer {
	if w := c.Root().ErrWriter; w != nil {
		return w
	}
	return os.Stderr
}
