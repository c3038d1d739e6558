package tools

import (
	"bytes"
	"context"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"helexa/internal/testshared"
)

// fakeLlamaBench copies the stand-in llama-bench into a fresh folder with
// a libllama.so beside it, and returns its path and the log it writes.
func fakeLlamaBench(t *testing.T) (bin, log string) {
	t.Helper()
	if runtime.GOOS == "windows" {
		t.Skip("the stand-in llama-bench is a shell script")
	}
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Skipf("no /bin/sh: %v", err)
	}
	dir := t.TempDir()
	src, err := os.ReadFile(filepath.Join("testdata", "fake-llama-bench.sh"))
	if err != nil {
		t.Fatal(err)
	}
	bin = filepath.Join(dir, "llama-bench")
	if err := os.WriteFile(bin, src, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "libllama.so"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	log = filepath.Join(dir, "calls.log")
	t.Setenv("FAKE_LLAMA_BENCH_LOG", log)
	return bin, log
}

// The rounds alternate who goes first, llama-bench gets the same model,
// tokens, threads and repetitions with -o json, its JSON is parsed, and
// each round's and the overall ratios are ours over theirs.
func TestCompareAlternatesAndParses(t *testing.T) {
	bin, log := fakeLlamaBench(t)
	o := benchOptions{Model: "m.gguf", Prompt: 16, Gen: 4, Threads: 2, Reps: 2}
	ourRates := [][2]float64{{150, 22}, {120, 30}, {200, 10}}
	call := 0
	ours := func(ctx context.Context) ([]benchResult, error) {
		f, err := os.OpenFile(log, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		if _, err := f.WriteString("ours\n"); err != nil {
			return nil, err
		}
		r := ourRates[call]
		call++
		return []benchResult{{NPrompt: 16, AvgTs: r[0]}, {NGen: 4, AvgTs: r[1]}}, nil
	}
	var out bytes.Buffer
	rs, err := runCompare(context.Background(), &out, 3, ours, llamaBench(bin, o))
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	var who []string
	for _, l := range lines {
		who = append(who, strings.Fields(l)[0])
	}
	if got := strings.Join(who, ","); got != "ours,theirs,theirs,ours,ours,theirs" {
		t.Errorf("order %s, want the first side to alternate", got)
	}
	dir := filepath.Dir(bin)
	for _, l := range lines {
		if strings.HasPrefix(l, "theirs") {
			if !strings.Contains(l, "-m m.gguf -p 16 -n 4 -r 2 -o json -t 2") {
				t.Errorf("llama-bench called with %q", l)
			}
			if !strings.Contains(l, "lib="+dir) {
				t.Errorf("llama-bench's folder not on LD_LIBRARY_PATH: %q", l)
			}
		}
	}
	if len(rs) != 3 || rs[1].Theirs[compareTest{16, 0}] != 100 || rs[2].Theirs[compareTest{0, 4}] != 20 ||
		rs[0].Ours[compareTest{16, 0}] != 150 || !rs[1].TheirsFirst || rs[0].TheirsFirst {
		t.Fatalf("rounds %+v", rs)
	}
	s := out.String()
	// pp: 1.5, 1.2, 2.0 → geometric mean 1.53; tg: 1.1, 1.5, 0.5 → 0.94
	for _, want := range []string{"1.50×", "1.20×", "2.00×", "1.10×", "0.50×", "1.53× (1.20–2.00)", "0.94× (0.50–1.50)", "llama.cpp"} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q:\n%s", want, s)
		}
	}
}

func TestCompareErrors(t *testing.T) {
	bin, _ := fakeLlamaBench(t)
	o := benchOptions{Model: "m.gguf", Prompt: 16, Gen: 4, Threads: 2, Reps: 1}
	ours := func(context.Context) ([]benchResult, error) { return []benchResult{{NPrompt: 16, AvgTs: 1}}, nil }
	t.Setenv("FAKE_LLAMA_BENCH_FAIL", "model not found")
	_, err := runCompare(context.Background(), &bytes.Buffer{}, 1, ours, llamaBench(bin, o))
	if err == nil || !strings.Contains(err.Error(), "model not found") {
		t.Errorf("a failing llama-bench gave %v", err)
	}
	if _, err := runCompare(context.Background(), &bytes.Buffer{}, 0, ours, ours); err == nil {
		t.Error("0 rounds accepted")
	}
	for _, bad := range []string{"", "{}", "[]", `[{"n_prompt": 8, "avg_ts": -1}]`} {
		if _, err := parseLlamaBench([]byte(bad)); err == nil {
			t.Errorf("parsed %q", bad)
		}
	}
	if err := compareBench(context.Background(), &bytes.Buffer{}, filepath.Join(t.TempDir(), "none"), 1, o); err == nil {
		t.Error("a missing llama-bench binary accepted")
	}
	if err := compareBench(context.Background(), &bytes.Buffer{}, bin, 1, benchOptions{Model: "m", Prompt: 1, Reps: 1, Cold: true}); err == nil {
		t.Error("--cold accepted with --compare")
	}
}

// With a real model, our side runs the bench in process and the table
// carries both tests.
func TestCompareBenchModel(t *testing.T) {
	model := filepath.Join(testshared.Dir(t), "models", "stories260K.gguf")
	if _, err := os.Stat(model); err != nil {
		t.Skipf("shared test data not found at ../shared: %v", err)
	}
	bin, _ := fakeLlamaBench(t)
	var out bytes.Buffer
	if err := compareBench(context.Background(), &out, bin, 2, benchOptions{Model: model, Prompt: 8, Gen: 2, Threads: 1, Reps: 1}); err != nil {
		t.Fatal(err)
	}
	s := out.String()
	if !strings.Contains(s, "pp8") || !strings.Contains(s, "tg2") || strings.Count(s, "×") < 6 {
		t.Errorf("output:\n%s", s)
	}
}

// A --cpu-time side runs each test with one repetition and with -r + 1
// and rates the extra tokens by the extra CPU time of the process.
func TestCompareCPUTime(t *testing.T) {
	bin, log := fakeLlamaBench(t)
	t.Setenv("FAKE_LLAMA_BENCH_BURN", "30000")
	o := benchOptions{Model: "m.gguf", Prompt: 16, Gen: 4, Threads: 1, Reps: 2}
	args := func(p, n, r int) []string {
		return []string{"-p", strconv.Itoa(p), "-n", strconv.Itoa(n), "-r", strconv.Itoa(r)}
	}
	rs, err := cpuTimeSide(bin, os.Environ(), args, o)(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 2 || rs[0].NPrompt != 16 || rs[0].NGen != 0 || rs[1].NPrompt != 0 || rs[1].NGen != 4 ||
		!(rs[0].AvgTs > 0) || !(rs[1].AvgTs > 0) || math.IsInf(rs[0].AvgTs, 0) {
		t.Fatalf("results %+v", rs)
	}
	b, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	var calls []string
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		calls = append(calls, strings.Join(strings.Fields(l)[1:7], " "))
	}
	want := []string{"-p 16 -n 0 -r 1", "-p 16 -n 0 -r 3", "-p 0 -n 4 -r 1", "-p 0 -n 4 -r 3"}
	if strings.Join(calls, ",") != strings.Join(want, ",") {
		t.Errorf("calls %q, want %q", calls, want)
	}
	t.Setenv("FAKE_LLAMA_BENCH_FAIL", "out of memory")
	if _, err := cpuTimeSide(bin, os.Environ(), args, o)(context.Background()); err == nil || !strings.Contains(err.Error(), "out of memory") {
		t.Errorf("a failing run gave %v", err)
	}
}
