package tools

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v3"

	"helexa/cuda"
	"helexa/node/engine"
)

func gpucheckCommand() *cli.Command {
	return &cli.Command{
		Name:  "gpucheck",
		Usage: "check the CUDA backend against the CPU: every kernel, the runner, reference parity, speed",
		Description: "On a host with an NVIDIA GPU: runs every kernel and backend operation on random inputs\n" +
			"and compares each with a CPU computation (one row per operation: max error, pass/fail),\n" +
			"then runs teacher-forced parity on the reference generations in --shared, then benchmarks\n" +
			"the models given with --bench. On a host without CUDA it exits non-zero with the reason.",
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "device", Usage: "CUDA device index"},
			&cli.StringFlag{Name: "shared", Value: "../shared", Usage: "folder with models/ and reference/ (parity is skipped when absent)"},
			&cli.Int64Flag{Name: "seed", Value: 1, Usage: "seed of the random inputs"},
			&cli.StringSliceFlag{Name: "bench", Usage: "GGUF models to benchmark (decode at batch 1, prefill)"},
			&cli.StringSliceFlag{Name: "bench-random", Usage: "benchmark Llama 3 8B-shaped random weights of this mix (Q4_0, Q4_K_M, Q4_K, Q6_K, Q8_0), made in memory"},
			&cli.IntFlag{Name: "prefill", Value: 512, Usage: "prompt tokens in the benchmark"},
			&cli.IntFlag{Name: "decode", Value: 128, Usage: "generated tokens in the benchmark"},
			&cli.BoolFlag{Name: "checks", Value: true, Usage: "run the kernel and runner checks"},
			&cli.BoolFlag{Name: "parity", Value: true, Usage: "run parity on the shared references"},
		},
		Action: func(ctx context.Context, c *cli.Command) error {
			return gpucheck(os.Stdout, gpucheckOptions{
				Device: int(c.Int("device")), Shared: c.String("shared"), Seed: c.Int64("seed"),
				Bench: c.StringSlice("bench"), BenchRandom: c.StringSlice("bench-random"), Prefill: int(c.Int("prefill")), Decode: int(c.Int("decode")),
				SkipChecks: !c.Bool("checks"), SkipParity: !c.Bool("parity"),
			})
		},
	}
}

type gpucheckOptions struct {
	Device          int
	Shared          string
	Seed            int64
	Bench           []string
	BenchRandom     []string
	Prefill, Decode int
	SkipChecks      bool
	SkipParity      bool
}

var errGPUCheckFailed = errors.New("gpucheck: some checks failed")

func gpucheck(out io.Writer, o gpucheckOptions) error {
	info, err := cuda.Discover()
	if err != nil {
		return fmt.Errorf("gpucheck: no usable CUDA: %w", err)
	}
	fmt.Fprintf(out, "driver %s, cuBLAS %s\n", info.DriverVersion, info.CUBLAS)
	var dev *cuda.DeviceInfo
	for i, d := range info.Devices {
		fmt.Fprintf(out, "device %d: %s, compute %s, %d MiB total, %d MiB free, %.0f GB/s\n",
			d.Index, d.Name, d.ComputeCapability, d.MemTotalMB, d.MemFreeMB, d.BandwidthGBs)
		if d.Index == o.Device {
			dev = &info.Devices[i]
		}
	}
	if dev == nil {
		return fmt.Errorf("gpucheck: no device %d", o.Device)
	}
	b, err := cuda.New(cuda.Options{Index: o.Device})
	if err != nil {
		return fmt.Errorf("gpucheck: starting device %d: %w", o.Device, err)
	}
	defer b.Close()
	failed := false

	if !o.SkipChecks {
		fmt.Fprintln(out, "\n== kernels against the CPU (random inputs)")
		rows, err := b.CheckKernels(o.Seed)
		if err != nil {
			return fmt.Errorf("gpucheck: %w", err)
		}
		failed = printChecks(out, rows) || failed

		fmt.Fprintln(out, "\n== runner against the float64 reference and the CPU engine (synthetic models)")
		failed = printChecks(out, b.CheckRunner(o.Seed)) || failed
	}
	if !o.SkipParity {
		fmt.Fprintln(out, "\n== parity on the shared references (teacher forcing)")
		pf, err := gpucheckParity(out, b, o.Shared, "*.json")
		if err != nil {
			fmt.Fprintln(out, "parity skipped:", err)
		}
		failed = pf || failed
	}

	if len(o.Bench)+len(o.BenchRandom) > 0 {
		fmt.Fprintf(out, "\n== speed on %s (prefill %d tokens in one call; decode at batch 1, logits to the host every token)\n",
			dev.Name, o.Prefill)
		tw := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "model\tweights MiB\tprefill tok/s\tdecode tok/s\tof bandwidth limit\tdecode with graphs\t")
		row := func(name string, r cuda.BenchResult, err error) {
			if err != nil {
				fmt.Fprintf(tw, "%s\terror: %v\t\t\t\t\t\n", name, err)
				failed = true
				return
			}
			graphs := fmt.Sprintf("%.1f tok/s, %.0f%%", r.DecodeGraphTokS, 100*r.BandwidthFracGraph)
			if r.GraphErr != nil {
				graphs = "error: " + r.GraphErr.Error()
			}
			fmt.Fprintf(tw, "%s\t%d\t%.0f\t%.1f\t%.0f%% of %.0f GB/s\t%s\t\n", name, r.WeightBytes>>20,
				r.PrefillTokS, r.DecodeTokS, 100*r.BandwidthFrac, dev.BandwidthGBs, graphs)
		}
		for _, path := range o.Bench {
			r, err := gpucheckBench(b, path, o.Prefill, o.Decode, dev.BandwidthGBs)
			row(filepath.Base(path), r, err)
		}
		for _, mix := range o.BenchRandom {
			w, err := cuda.RandomWeights(cuda.Llama3_8B, mix)
			var r cuda.BenchResult
			if err == nil {
				r, err = b.Bench(w, o.Prefill, o.Decode, dev.BandwidthGBs)
			}
			row("llama3-8b-shape random "+mix, r, err)
		}
		tw.Flush()
	}
	if failed {
		return errGPUCheckFailed
	}
	fmt.Fprintln(out, "\nall checks passed")
	return nil
}

// printChecks prints one row per check and reports whether any failed.
func printChecks(out io.Writer, rows []cuda.CheckResult) bool {
	tw := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "op\tmax err\ttol\tresult\t")
	failed := false
	for _, r := range rows {
		switch {
		case r.Err != nil:
			failed = true
			fmt.Fprintf(tw, "%s\t-\t-\tERROR %v\t\n", r.Op, r.Err)
		case r.Pass:
			fmt.Fprintf(tw, "%s\t%.3g\t%.0e\tpass\t\n", r.Op, r.MaxErr, r.Tol)
		default:
			failed = true
			fmt.Fprintf(tw, "%s\t%.3g\t%.0e\tFAIL\t\n", r.Op, r.MaxErr, r.Tol)
		}
	}
	tw.Flush()
	return failed
}

// gpucheckParity runs the references in shared/reference (those whose
// names match pattern) on backend b. It reports whether any failed.
func gpucheckParity(out io.Writer, b engine.Backend, shared, pattern string) (bool, error) {
	refs, err := filepath.Glob(filepath.Join(shared, "reference", pattern))
	if err != nil || len(refs) == 0 {
		return false, fmt.Errorf("no reference files under %s", filepath.Join(shared, "reference"))
	}
	sort.Strings(refs)
	tw := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "reference\tclass\tsteps\tmean |Δ|\tmax |Δ|\ttop-1\tresult\t")
	failed := false
	for _, path := range refs {
		name := strings.TrimSuffix(filepath.Base(path), ".json")
		res, class, tol, err := parityOne(b, shared, path)
		switch {
		case errors.Is(err, errNoModel):
			fmt.Fprintf(tw, "%s\t-\t-\t-\t-\t-\tskipped: %v\t\n", name, err)
		case err != nil:
			failed = true
			fmt.Fprintf(tw, "%s\t-\t-\t-\t-\t-\tERROR %v\t\n", name, err)
		default:
			verdict := "pass"
			if err := res.Check(tol); err != nil {
				verdict, failed = "FAIL: "+err.Error(), true
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%.5f\t%.4f\t%.3f (%d misses above gap)\t%s\t\n", name, class, res.Steps, res.MeanAbs, res.MaxAbs,
				res.Top1Agree, res.GapDisagree, verdict)
		}
	}
	tw.Flush()
	return failed, nil
}

var errNoModel = errors.New("model file missing")

// parityOne loads a reference's model through the engine's loader (GGUF
// or Hugging Face folder) onto the CUDA backend and runs parity.
func parityOne(b engine.Backend, shared, refPath string) (engine.EvalSummary, string, engine.Tolerance, error) {
	ref, err := engine.LoadReference(refPath)
	if err != nil {
		return engine.EvalSummary{}, "", engine.Tolerance{}, err
	}
	model := filepath.Join(shared, "models", ref.ModelFile)
	if _, err := os.Stat(model); err != nil {
		// A GGUF twin of a Hugging Face folder: try the folder.
		hf := strings.TrimSuffix(strings.TrimSuffix(model, ".gguf"), "-F32")
		if _, err2 := os.Stat(hf); err2 != nil {
			return engine.EvalSummary{}, "", engine.Tolerance{}, fmt.Errorf("%w: %s", errNoModel, ref.ModelFile)
		}
		model = hf
	}
	n := 0
	for _, c := range ref.Cases {
		n = max(n, len(c.PromptTokens)+len(c.CompletionTokens))
	}
	m, err := engine.Load(model, engine.Options{Backend: b, ContextLength: n, Slots: 1})
	if err != nil {
		return engine.EvalSummary{}, "", engine.Tolerance{}, err
	}
	defer m.Close()
	class, tol := cuda.WeightClass(m.Weights()), cuda.ToleranceOf(m.Weights())
	res, err := cuda.Parity(func(toks []int32, logits []float32) error { return m.ForwardAll(0, toks, 0, logits) },
		m.NVocab(), ref, tol)
	return res, class, tol, err
}

func gpucheckBench(b *cuda.Backend, path string, prefill, decode int, bw float64) (cuda.BenchResult, error) {
	w, _, closeW, err := engine.LoadWeights(path)
	if err != nil {
		return cuda.BenchResult{}, err
	}
	defer closeW()
	return b.Bench(w, prefill, decode, bw)
}
