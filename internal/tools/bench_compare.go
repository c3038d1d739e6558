package tools

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// compareTest is one test of a comparison: ppN or tgN.
type compareTest struct{ NPrompt, NGen int }

func (t compareTest) String() string {
	if t.NGen > 0 {
		return "tg" + strconv.Itoa(t.NGen)
	}
	return "pp" + strconv.Itoa(t.NPrompt)
}

// compareRound is one round: each side's mean tokens per second by test.
type compareRound struct {
	Ours, Theirs map[compareTest]float64
	TheirsFirst  bool
}

// benchSide runs one side of a comparison once and returns its results.
type benchSide func(ctx context.Context) ([]benchResult, error)

// runCompare runs ours and theirs rounds times, alternating which goes
// first, and writes each round's rates and ratios (ours/theirs) and the
// overall ratios to out.
func runCompare(ctx context.Context, out io.Writer, rounds int, ours, theirs benchSide) ([]compareRound, error) {
	return runCompareUnit(ctx, out, rounds, "t/s", ours, theirs)
}

// runCompareUnit is runCompare with the rates' unit named in the table.
func runCompareUnit(ctx context.Context, out io.Writer, rounds int, unit string, ours, theirs benchSide) ([]compareRound, error) {
	if rounds < 1 {
		return nil, fmt.Errorf("bench: --rounds must be at least 1, got %d", rounds)
	}
	var rs []compareRound
	var order []compareTest
	for i := range rounds {
		r := compareRound{TheirsFirst: i%2 == 1}
		sides := []struct {
			name string
			run  benchSide
			dst  *map[compareTest]float64
		}{{"helexa", ours, &r.Ours}, {"llama-bench", theirs, &r.Theirs}}
		if r.TheirsFirst {
			sides[0], sides[1] = sides[1], sides[0]
		}
		for _, s := range sides {
			if err := ctx.Err(); err != nil {
				return rs, err
			}
			res, err := s.run(ctx)
			if err != nil {
				return rs, fmt.Errorf("bench: round %d, %s: %w", i+1, s.name, err)
			}
			m := map[compareTest]float64{}
			for _, b := range res {
				if b.NParallel > 0 {
					continue
				}
				t := compareTest{b.NPrompt, b.NGen}
				m[t] = b.AvgTs
				if i == 0 && s.name == "helexa" {
					order = append(order, t)
				}
			}
			*s.dst = m
		}
		rs = append(rs, r)
	}
	return rs, writeCompare(out, rs, order, unit)
}

func writeCompare(out io.Writer, rs []compareRound, order []compareTest, unit string) error {
	tw := tabwriter.NewWriter(out, 0, 0, 1, ' ', tabwriter.AlignRight|tabwriter.Debug)
	fmt.Fprintf(tw, "\t round\t first\t test\t helexa %s\t llama.cpp %s\t ratio\t\n", unit, unit)
	for i, r := range rs {
		first := "helexa"
		if r.TheirsFirst {
			first = "llama.cpp"
		}
		for _, t := range order {
			o, th := r.Ours[t], r.Theirs[t]
			fmt.Fprintf(tw, "\t %d\t %s\t %s\t %.2f\t %s\t %s\t\n", i+1, first, t, o, rate(th), ratio(o, th))
		}
	}
	for _, t := range order {
		// The overall ratio is the geometric mean of the rounds' ratios:
		// each round compares the two under the same machine load.
		var logSum, lo, hi float64
		var so, st float64
		n := 0
		for _, r := range rs {
			o, th := r.Ours[t], r.Theirs[t]
			so += o
			st += th
			if o <= 0 || th <= 0 {
				continue
			}
			q := o / th
			if n == 0 || q < lo {
				lo = q
			}
			if n == 0 || q > hi {
				hi = q
			}
			logSum += math.Log(q)
			n++
		}
		overall := "n/a"
		if n > 0 {
			overall = fmt.Sprintf("%.2f× (%.2f–%.2f)", math.Exp(logSum/float64(n)), lo, hi)
		}
		fmt.Fprintf(tw, "\t all\t \t %s\t %.2f\t %s\t %s\t\n", t, so/float64(len(rs)), rate(st/float64(len(rs))), overall)
	}
	return tw.Flush()
}

func rate(ts float64) string {
	if ts <= 0 {
		return "missing"
	}
	return fmt.Sprintf("%.2f", ts)
}

func ratio(o, th float64) string {
	if o <= 0 || th <= 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.2f×", o/th)
}

// llamaBench returns a side that runs the llama-bench binary at path on
// the same model, tokens, threads and repetitions, and parses its JSON.
// When the binary's folder holds its shared libraries, that folder is put
// first on LD_LIBRARY_PATH so a build tree works without setup.
func llamaBench(path string, o benchOptions) benchSide {
	return func(ctx context.Context) ([]benchResult, error) {
		args := []string{"-m", o.Model, "-p", strconv.Itoa(o.Prompt), "-n", strconv.Itoa(o.Gen),
			"-r", strconv.Itoa(o.Reps), "-o", "json"}
		if o.Depth > 0 {
			args = append(args, "-d", strconv.Itoa(o.Depth))
		}
		if o.Threads > 0 {
			args = append(args, "-t", strconv.Itoa(o.Threads))
		}
		cmd := exec.CommandContext(ctx, path, args...)
		cmd.Env = llamaEnv(path)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			return nil, fmt.Errorf("running %s: %w: %s", path, err, lastLines(stderr.String(), 5))
		}
		return parseLlamaBench(stdout.Bytes())
	}
}

// llamaEnv is the environment for the llama.cpp binary at path: ours,
// with the binary's folder first on LD_LIBRARY_PATH when it holds the
// shared libraries.
func llamaEnv(path string) []string {
	env := os.Environ()
	if dir := filepath.Dir(path); hasSharedLibs(dir) {
		lp := dir
		if old := os.Getenv("LD_LIBRARY_PATH"); old != "" {
			lp += string(os.PathListSeparator) + old
		}
		env = append(env, "LD_LIBRARY_PATH="+lp)
	}
	return env
}

func hasSharedLibs(dir string) bool {
	m, _ := filepath.Glob(filepath.Join(dir, "libllama*.so*"))
	return len(m) > 0
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// parseLlamaBench reads llama-bench's JSON output (-o json): an array of
// tests with n_prompt, n_gen and avg_ts among their fields.
func parseLlamaBench(b []byte) ([]benchResult, error) {
	var rs []benchResult
	if err := json.Unmarshal(b, &rs); err != nil {
		return nil, fmt.Errorf("parsing llama-bench's JSON output: %w", err)
	}
	if len(rs) == 0 {
		return nil, fmt.Errorf("llama-bench reported no tests")
	}
	for _, r := range rs {
		if r.NPrompt < 0 || r.NGen < 0 || r.AvgTs < 0 || math.IsNaN(r.AvgTs) {
			return nil, fmt.Errorf("llama-bench reported an invalid test (n_prompt %d, n_gen %d, avg_ts %g)", r.NPrompt, r.NGen, r.AvgTs)
		}
	}
	return rs, nil
}

// compareBench runs helexa's bench and the llama-bench binary at lb in
// alternating rounds and prints the comparison.
func compareBench(ctx context.Context, out io.Writer, lb string, rounds int, o benchOptions) error {
	return compareBenchMode(ctx, out, lb, rounds, false, o)
}

// compareBenchMode is compareBench; with cpuTime the rates are tokens per
// CPU-second of each side's process (cpuTimeSide), both run as programs.
func compareBenchMode(ctx context.Context, out io.Writer, lb string, rounds int, cpuTime bool, o benchOptions) error {
	if o.Cold || len(o.Parallel) > 0 || o.JSON {
		return fmt.Errorf("bench: --compare takes neither --cold, --parallel nor --json")
	}
	if o.Prompt < 0 || o.Gen < 0 || o.Prompt+o.Gen == 0 || o.Reps < 1 || o.Threads < 0 {
		return fmt.Errorf("bench: -p and -n must be non-negative and not both 0, -r positive, -t non-negative")
	}
	if _, err := os.Stat(lb); err != nil {
		return fmt.Errorf("bench: llama-bench binary: %w", err)
	}
	if o.Threads == 0 { // both sides on the same count
		o.Threads = runtime.GOMAXPROCS(0)
	}
	ours := func(ctx context.Context) ([]benchResult, error) {
		var buf bytes.Buffer
		oo := o
		oo.JSON = true
		if err := runBench(ctx, &buf, oo); err != nil {
			return nil, err
		}
		var rs []benchResult
		if err := json.Unmarshal(buf.Bytes(), &rs); err != nil {
			return nil, fmt.Errorf("reading our own results: %w", err)
		}
		return rs, nil
	}
	fmt.Fprintf(out, "%s, %d threads, -p %d -n %d -d %d -r %d, %d rounds against %s\n",
		filepath.Base(o.Model), o.Threads, o.Prompt, o.Gen, o.Depth, o.Reps, rounds, lb)
	if !cpuTime {
		_, err := runCompare(ctx, out, rounds, ours, llamaBench(lb, o))
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("bench: finding this program: %w", err)
	}
	common := func(p, n, r int) []string {
		a := []string{"-m", o.Model, "-p", strconv.Itoa(p), "-n", strconv.Itoa(n), "-t", strconv.Itoa(o.Threads), "-r", strconv.Itoa(r)}
		if o.Depth > 0 {
			a = append(a, "-d", strconv.Itoa(o.Depth))
		}
		return a
	}
	oursCPU := cpuTimeSide(self, os.Environ(), func(p, n, r int) []string {
		return append([]string{"tools", "bench"}, common(p, n, r)...)
	}, o)
	theirsCPU := cpuTimeSide(lb, llamaEnv(lb), common, o)
	fmt.Fprintln(out, "rates in tokens per CPU-second (user time of each process, repetitions 2.. only)")
	_, err = runCompareUnit(ctx, out, rounds, "t/CPU-s", oursCPU, theirsCPU)
	return err
}

// cpuTimeSide returns a side whose rates are tokens per CPU-second, which
// time slices taken by other processes do not change: for each test it
// runs bin with args(p, n, r) twice, with one repetition and with reps+1,
// and divides the extra tokens by the extra user CPU time of the
// process, which cancels loading and warm-up. (System time is left out:
// it is mostly page faults of the model file, which vary from run to run
// by more than a test takes.) Every busy thread counts, spin-waiting
// included, so it compares work, not latency; with one thread the two
// agree.
func cpuTimeSide(bin string, env []string, args func(p, n, r int) []string, o benchOptions) benchSide {
	return func(ctx context.Context) ([]benchResult, error) {
		var rs []benchResult
		for _, t := range []compareTest{{o.Prompt, 0}, {0, o.Gen}} {
			if t.NPrompt+t.NGen == 0 {
				continue
			}
			var cpu [2]time.Duration
			for i, r := range []int{1, o.Reps + 1} {
				cmd := exec.CommandContext(ctx, bin, args(t.NPrompt, t.NGen, r)...)
				cmd.Env = env
				var stderr bytes.Buffer
				cmd.Stderr = &stderr
				if err := cmd.Run(); err != nil {
					return nil, fmt.Errorf("running %s: %w: %s", bin, err, lastLines(stderr.String(), 5))
				}
				cpu[i] = cmd.ProcessState.UserTime()
			}
			d := cpu[1] - cpu[0]
			if d <= 0 {
				return nil, fmt.Errorf("%s: %s took no more CPU time with %d repetitions than with 1: raise -r", bin, t, o.Reps+1)
			}
			rs = append(rs, benchResult{NPrompt: t.NPrompt, NGen: t.NGen, AvgTs: float64((t.NPrompt+t.NGen)*o.Reps) / d.Seconds()})
		}
		return rs, nil
	}
}
