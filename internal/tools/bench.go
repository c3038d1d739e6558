package tools

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v3"

	"helexa/node/engine"
)

func benchCommand() *cli.Command {
	return &cli.Command{
		Name:  "bench",
		Usage: "time prompt processing and generation of a model, like llama-bench",
		Description: "Times a prefill of -p tokens (test ppN) and a decode of -n tokens one at a time\n" +
			"(test tgN) from an empty context, -r times each after one warm-up, and prints\n" +
			"tokens per second as median ± standard deviation, or with --json an array of\n" +
			"objects with llama-bench's field names. With --cold it times a cold start\n" +
			"instead: loading the model, then the first token of a -p token prompt, and\n" +
			"reports resident memory after each next to the file size and the runner's\n" +
			"own memory (KV cache and scratch). --parallel B adds batched decode tests\n" +
			"(tgN xB, like llama-batched-bench's -npl): B sequences, each after its own\n" +
			"-p token prompt (not timed), decode N tokens each in steps of one batched\n" +
			"forward pass; t/s counts every sequence's tokens. --compare PATH runs the\n" +
			"llama-bench binary at PATH (-o json) and helexa on the same model, -p, -n, -t\n" +
			"and -r in --rounds alternating rounds (who goes first alternates too) and\n" +
			"prints both rates and helexa/llama.cpp per round, then overall as the\n" +
			"geometric mean of the rounds' ratios with their range. Compare ratios, not\n" +
			"rates: a busy machine slows both sides of a round alike. On a machine shared with\n" +
			"other work, --cpu-time rates each side in tokens per user CPU-second instead (each\n" +
			"test run with -r 1 and -r R+1, the difference counted); with -t 1 that is\n" +
			"immune to time slices lost to other processes. -d D runs every test at a depth of\n" +
			"D positions (llama-bench's -d): the context first holds D tokens (not timed),\n" +
			"so decode pays attention over a long context as a chat's late turns do.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "model", Aliases: []string{"m"}, Required: true, Usage: "a .gguf file or a Hugging Face folder"},
			&cli.IntFlag{Name: "p", Value: 512, Usage: "prompt tokens (0 skips the prefill test)"},
			&cli.IntFlag{Name: "n", Value: 128, Usage: "generated tokens (0 skips the decode test)"},
			&cli.IntFlag{Name: "d", Aliases: []string{"n-depth"}, Usage: "tokens already in the context when each test starts (not timed)"},
			&cli.IntFlag{Name: "t", Usage: "threads (0: all cores)"},
			&cli.IntFlag{Name: "r", Value: 5, Usage: "repetitions of each test"},
			&cli.BoolFlag{Name: "json", Usage: "print JSON instead of a table"},
			&cli.BoolFlag{Name: "cold", Usage: "time a cold start instead: the load, the first token of a -p prompt right after it, and resident memory"},
			&cli.StringFlag{Name: "parallel", Aliases: []string{"npl"}, Usage: "comma-separated sequence counts for batched decode tests (e.g. 8,16)"},
			&cli.StringFlag{Name: "compare", Usage: "path of a llama-bench binary: run it and helexa on the same model, tokens and threads in alternating rounds and print the ratios (helexa/llama.cpp)"},
			&cli.IntFlag{Name: "rounds", Value: 3, Usage: "rounds of a --compare run"},
			&cli.BoolFlag{Name: "cpu-time", Usage: "with --compare: rates in tokens per CPU-second of each process (extra repetitions only), which other processes' load does not skew; use with -t 1"},
			&cli.StringFlag{Name: "cpuprofile", Usage: "write a CPU profile of the timed runs to this file (go tool pprof)"},
		},
		Action: func(ctx context.Context, c *cli.Command) error {
			var par []int
			if s := c.String("parallel"); s != "" {
				for _, f := range strings.Split(s, ",") {
					n, err := strconv.Atoi(strings.TrimSpace(f))
					if err != nil || n < 1 || n > 1024 {
						return fmt.Errorf("bench: --parallel wants counts from 1 to 1024, got %q", f)
					}
					par = append(par, n)
				}
			}
			o := benchOptions{
				Model: c.String("model"), Prompt: int(c.Int("p")), Gen: int(c.Int("n")), Depth: int(c.Int("d")),
				Threads: int(c.Int("t")), Reps: int(c.Int("r")), JSON: c.Bool("json"),
				Cold: c.Bool("cold"), Parallel: par, CPUProfile: c.String("cpuprofile"),
			}
			if lb := c.String("compare"); lb != "" {
				return compareBenchMode(ctx, os.Stdout, lb, int(c.Int("rounds")), c.Bool("cpu-time"), o)
			}
			return runBench(ctx, os.Stdout, o)
		},
	}
}

type benchOptions struct {
	Model         string
	Prompt, Gen   int
	Depth         int // tokens in the context before each test
	Threads, Reps int
	JSON, Cold    bool
	Parallel      []int  // batched decode tests: sequences at once
	CPUProfile    string // where to write a CPU profile of the timed runs
}

// benchResult is one test, with llama-bench's JSON field names.
type benchResult struct {
	ModelFilename string    `json:"model_filename"`
	ModelType     string    `json:"model_type"`
	ModelSize     int64     `json:"model_size"`
	ModelNParams  int64     `json:"model_n_params"`
	Backends      string    `json:"backends"`
	NThreads      int       `json:"n_threads"`
	NPrompt       int       `json:"n_prompt"`
	NGen          int       `json:"n_gen"`
	AvgNs         int64     `json:"avg_ns"`
	StddevNs      int64     `json:"stddev_ns"`
	AvgTs         float64   `json:"avg_ts"`
	StddevTs      float64   `json:"stddev_ts"`
	SamplesNs     []int64   `json:"samples_ns"`
	SamplesTs     []float64 `json:"samples_ts"`
	// NParallel is the sequences a batched decode test runs at once
	// (helexa's own field; absent for the single-sequence tests).
	NParallel int `json:"n_parallel,omitempty"`
	// NDepth is the context already held when the test starts (llama-bench's n_depth).
	NDepth int `json:"n_depth"`
}

func runBench(ctx context.Context, out io.Writer, o benchOptions) error {
	if o.Prompt < 0 || o.Gen < 0 || o.Prompt+o.Gen == 0 {
		return fmt.Errorf("bench: -p and -n must be non-negative and not both 0 (got %d, %d)", o.Prompt, o.Gen)
	}
	if o.Reps < 1 || o.Threads < 0 || o.Depth < 0 {
		return fmt.Errorf("bench: -r must be at least 1, -t and -d non-negative (got %d, %d, %d)", o.Reps, o.Threads, o.Depth)
	}
	if o.Cold {
		return runCold(out, o)
	}
	if len(o.Parallel) > 0 && o.Gen == 0 {
		return fmt.Errorf("bench: --parallel times decoding: -n must be positive")
	}
	ctxLen := o.Depth + max(o.Prompt, o.Gen, 16)
	if len(o.Parallel) > 0 {
		ctxLen = max(ctxLen, o.Depth+o.Prompt+o.Gen+1)
	}
	// The pool holds every batched test's sequences next to the slot the
	// single-sequence tests keep, each rounded up to whole blocks.
	m, err := engine.Load(o.Model, engine.Options{ContextLength: ctxLen, KVTokens: (ctxLen + 64) * (slices.Max(append([]int{0}, o.Parallel...)) + 1), Threads: o.Threads})
	if err != nil {
		return err
	}
	defer m.Close()
	threads := o.Threads
	if threads == 0 {
		threads = runtime.GOMAXPROCS(0)
	}
	logits := make([]float32, m.NVocab())
	// Deterministic, in-vocabulary tokens.
	tokens := make([]int32, max(o.Prompt, 1))
	for i := range tokens {
		tokens[i] = int32((i*7919 + 1) % m.NVocab())
	}
	// The depth: tokens every test finds in the context (Forward cuts the
	// sequence back to them before each run).
	if o.Depth > 0 {
		ctxTokens := make([]int32, o.Depth)
		for i := range ctxTokens {
			ctxTokens[i] = int32((i*104729 + 3) % m.NVocab())
		}
		if err := m.Forward(0, ctxTokens, 0, logits); err != nil {
			return fmt.Errorf("bench: filling the context to depth %d: %w", o.Depth, err)
		}
	}
	prefill := func() error { return m.Forward(0, tokens[:o.Prompt], o.Depth, logits) }
	decode := func() error {
		for i := 0; i < o.Gen; i++ {
			if err := m.Forward(0, tokens[i%len(tokens):i%len(tokens)+1], o.Depth+i, logits); err != nil {
				return err
			}
		}
		return nil
	}
	base := benchResult{
		ModelFilename: filepath.Base(o.Model), ModelType: m.Info.Arch + " " + m.Info.Quant,
		ModelSize: m.Info.SizeBytes, ModelNParams: m.Info.ParamCount, Backends: "CPU", NThreads: threads,
	}
	// A test's run returns the time that counts.
	type test struct {
		np, ng, par int
		run         func() (time.Duration, error)
	}
	timed := func(f func() error) func() (time.Duration, error) {
		return func() (time.Duration, error) {
			start := time.Now()
			err := f()
			return time.Since(start), err
		}
	}
	tests := []test{{o.Prompt, 0, 0, timed(prefill)}, {0, o.Gen, 0, timed(decode)}}
	for _, b := range o.Parallel {
		tests = append(tests, test{0, o.Gen, b, func() (time.Duration, error) { return batchedDecode(m, b, o.Depth+o.Prompt, o.Gen, tokens) }})
	}
	if o.CPUProfile != "" {
		f, err := os.Create(o.CPUProfile)
		if err != nil {
			return fmt.Errorf("bench: creating the CPU profile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("bench: starting the CPU profile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	var results []benchResult
	for _, test := range tests {
		n := test.np + test.ng
		if n == 0 {
			continue
		}
		if test.par > 0 {
			n *= test.par
		}
		r := base
		r.NPrompt, r.NGen, r.NParallel, r.NDepth = test.np, test.ng, test.par, o.Depth
		if _, err := test.run(); err != nil { // warm-up
			return err
		}
		for i := 0; i < o.Reps; i++ {
			if err := ctx.Err(); err != nil {
				return err
			}
			d, err := test.run()
			if err != nil {
				return err
			}
			ns := d.Nanoseconds()
			r.SamplesNs = append(r.SamplesNs, ns)
			r.SamplesTs = append(r.SamplesTs, float64(n)/(float64(ns)/1e9))
		}
		avg, sd := meanStddev(r.SamplesTs)
		r.AvgTs, r.StddevTs = avg, sd
		ansAvg, ansSd := meanStddevInt(r.SamplesNs)
		r.AvgNs, r.StddevNs = ansAvg, ansSd
		results = append(results, r)
	}
	if o.JSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(results)
	}
	tw := tabwriter.NewWriter(out, 0, 0, 1, ' ', tabwriter.AlignRight|tabwriter.Debug)
	fmt.Fprintln(tw, "\t model\t size\t params\t type\t backend\t threads\t test\t t/s\t")
	for _, r := range results {
		test := fmt.Sprintf("pp%d", r.NPrompt)
		if r.NGen > 0 {
			test = fmt.Sprintf("tg%d", r.NGen)
		}
		if r.NParallel > 0 {
			test += fmt.Sprintf(" x%d", r.NParallel)
		}
		if r.NDepth > 0 {
			test += fmt.Sprintf(" @ d%d", r.NDepth)
		}
		_, sd := meanStddev(r.SamplesTs)
		fmt.Fprintf(tw, "\t %s\t %.2f MiB\t %.2f M\t %s\t %s\t %d\t %s\t %.2f ± %.2f\t\n",
			r.ModelFilename, float64(r.ModelSize)/(1<<20), float64(r.ModelNParams)/1e6, m.Info.Quant,
			r.Backends, r.NThreads, test, median(r.SamplesTs), sd)
	}
	return tw.Flush()
}

// batchedDecode starts b sequences, each with its own prompt of np
// tokens (a prefill not timed), then decodes ng tokens for all of them in
// b-wide steps, and returns the time of the decode.
func batchedDecode(m *engine.Model, b, np, ng int, tokens []int32) (time.Duration, error) {
	pool := m.Pool()
	items := make([]engine.SeqItem, b)
	logits := make([]float32, b*m.NVocab())
	next := make([]int32, b)
	for i := range items {
		p := make([]int32, max(np, 1))
		for k := range p {
			p[k] = int32((k*7919 + i*104729 + 1) % m.NVocab())
		}
		s, _, err := pool.Start(p, nil)
		if err != nil {
			return 0, err
		}
		defer pool.Finish(s, false)
		if err := m.ForwardBatch([]engine.SeqItem{{Seq: s, Tokens: p}}); err != nil {
			return 0, err
		}
		items[i] = engine.SeqItem{Seq: s, Tokens: next[i : i+1], Logits: logits[i*m.NVocab() : (i+1)*m.NVocab()]}
	}
	start := time.Now()
	for step := range ng {
		for i := range next {
			next[i] = tokens[(step+i)%len(tokens)]
		}
		if err := m.ForwardBatch(items); err != nil {
			return 0, err
		}
	}
	return time.Since(start), nil
}

func meanStddev(xs []float64) (mean, sd float64) {
	for _, x := range xs {
		mean += x
	}
	mean /= float64(len(xs))
	if len(xs) < 2 {
		return mean, 0
	}
	for _, x := range xs {
		sd += (x - mean) * (x - mean)
	}
	return mean, math.Sqrt(sd / float64(len(xs)-1))
}

func meanStddevInt(xs []int64) (mean, sd int64) {
	fs := make([]float64, len(xs))
	for i, x := range xs {
		fs[i] = float64(x)
	}
	m, s := meanStddev(fs)
	return int64(m), int64(s)
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// coldResult is a cold start: a load, then one prompt's first token.
type coldResult struct {
	ModelFilename string  `json:"model_filename"`
	NThreads      int     `json:"n_threads"`
	NPrompt       int     `json:"n_prompt"`
	LoadMs        float64 `json:"load_ms"`
	TTFTMs        float64 `json:"ttft_ms"` // from the end of the load to the first token's logits
	FileMiB       float64 `json:"file_mib"`
	RunnerMiB     float64 `json:"runner_mib"` // KV cache and scratch
	RSSLoadMiB    float64 `json:"rss_load_mib"`
	RSSFirstMiB   float64 `json:"rss_first_token_mib"`
}

func runCold(out io.Writer, o benchOptions) error {
	np := max(o.Prompt, 1)
	start := time.Now()
	m, err := engine.Load(o.Model, engine.Options{ContextLength: np + 16, Threads: o.Threads})
	if err != nil {
		return err
	}
	defer m.Close()
	loaded := time.Now()
	rssLoad := residentMiB()
	tokens := make([]int32, np)
	for i := range tokens {
		tokens[i] = int32((i*7919 + 1) % m.NVocab())
	}
	logits := make([]float32, m.NVocab())
	if err := m.Forward(0, tokens, 0, logits); err != nil {
		return err
	}
	first := time.Now()
	threads := o.Threads
	if threads == 0 {
		threads = runtime.GOMAXPROCS(0)
	}
	r := coldResult{
		ModelFilename: filepath.Base(o.Model), NThreads: threads, NPrompt: np,
		LoadMs: ms(loaded.Sub(start)), TTFTMs: ms(first.Sub(loaded)),
		FileMiB: float64(m.Info.SizeBytes) / (1 << 20), RunnerMiB: float64(m.MemBytes()) / (1 << 20),
		RSSLoadMiB: rssLoad, RSSFirstMiB: residentMiB(),
	}
	if o.JSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode([]coldResult{r})
	}
	_, err = fmt.Fprintf(out, "%s, %d threads: load %.1f ms, first token of %d after load %.1f ms; "+
		"resident %.1f MiB after load, %.1f MiB after the first token (file %.1f MiB, KV cache and scratch %.1f MiB)\n",
		r.ModelFilename, r.NThreads, r.LoadMs, np, r.TTFTMs, r.RSSLoadMiB, r.RSSFirstMiB, r.FileMiB, r.RunnerMiB)
	return err
}

func ms(d time.Duration) float64 { return math.Round(float64(d.Microseconds())/10) / 100 }

// residentMiB is this process's resident memory (VmRSS), or 0 where
// /proc is not available.
func residentMiB() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			var kb float64
			if _, err := fmt.Sscanf(strings.TrimSpace(v), "%f kB", &kb); err == nil {
				return kb / 1024
			}
		}
	}
	return 0
}
