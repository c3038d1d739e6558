package cuda

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"helexa/node/device"
	"helexa/node/engine"
	"helexa/node/ggml"
)

// emuBase is where emulated device addresses start.
const emuBase = 0x100000000

// emuDevice is a kernelDevice that runs the kernels' CUDA C source,
// compiled for the host, on an emulator of CUDA threads (see
// testdata/hostemu). Memory is one growing byte slice.
type emuDevice struct {
	bin string
	dir string
	mem []byte

	// For the load tests: the free memory reported (0: plenty), how many
	// allocations succeed (-1: all), and the allocations still live.
	freeBytes  int64
	allocsLeft int
	live       map[devPtr]bool
	// withGEMM computes gemm in Go (float64 sums) following
	// gemmRowMajor's contract, so the runner's prefill path runs.
	withGEMM bool
	// withGraphs makes graphs() nil: capture records launches (rec) into
	// recorded, launchGraph replays them (counted in replays).
	withGraphs bool
	rec        *[]emuLaunch
	recorded   [][]emuLaunch
	replays    int
}

var (
	emuOnce sync.Once
	emuDir  string // removed by TestMain
	emuBin  string
	emuErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if emuDir != "" {
		os.RemoveAll(emuDir)
	}
	os.Exit(code)
}

// cxxCandidates are the C++20 compilers the emulator is built with, in
// order of preference, after $CXX when that is set.
var cxxCandidates = []string{"clang++", "clang++-19", "clang++-18", "clang++-17", "clang++-16", "clang++-15", "clang++-14", "g++"}

// findCXX returns the path of the first compiler lookPath finds: cxxEnv
// (the CXX environment variable) if set, then cxxCandidates; "" if none.
func findCXX(cxxEnv string, lookPath func(string) (string, error)) string {
	cands := cxxCandidates
	if cxxEnv != "" {
		cands = append([]string{cxxEnv}, cands...)
	}
	for _, c := range cands {
		if p, err := lookPath(c); err == nil {
			return p
		}
	}
	return ""
}

// emulatorRequired reports whether a missing emulator fails the tests
// instead of skipping them: in CI (CI=true, as .ci/run sets, which also
// installs g++), so the kernel checks never silently vanish there.
func emulatorRequired(getenv func(string) string) bool {
	ci, _ := strconv.ParseBool(getenv("CI"))
	return ci
}

// needSlowEmulator is needEmulator for the tests that run whole passes
// (a thread per CUDA thread): they skip in -short.
func needSlowEmulator(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("the kernel emulator is slow: skipped in -short")
	}
	return needEmulator(t)
}

// needEmulator returns the emulator's path. Without one (no C++ compiler,
// or it fails to build the emulator) the test skips, or fails in CI.
func needEmulator(t *testing.T) string {
	t.Helper()
	bin, err := buildEmulator()
	if err != nil {
		if emulatorRequired(os.Getenv) {
			t.Fatalf("CI=true: the kernel emulator is required: %v", err)
		}
		t.Skip(err)
	}
	return bin
}

// buildEmulator compiles testdata/hostemu with the compiler findCXX picks,
// once per test binary.
func buildEmulator() (string, error) {
	emuOnce.Do(func() {
		cxx := findCXX(os.Getenv("CXX"), exec.LookPath)
		if cxx == "" {
			emuErr = fmt.Errorf("no C++ compiler ($CXX, clang++ or g++) to build the kernel emulator")
			return
		}
		if emuDir, emuErr = os.MkdirTemp("", "hostemu"); emuErr != nil {
			return
		}
		emuBin = filepath.Join(emuDir, "hostemu")
		cmd := exec.Command(cxx, "-std=c++20", "-O2", "-DHOST_EMULATION", "-Itestdata/hostemu", "-Ikernels",
			"-x", "c++", "testdata/hostemu/main.cpp", "-o", emuBin, "-lpthread")
		if out, err := cmd.CombinedOutput(); err != nil {
			emuErr = fmt.Errorf("building the kernel emulator with %s: %v\n%s", cxx, err, out)
		}
	})
	return emuBin, emuErr
}

func (d *emuDevice) upload(v []byte) (devPtr, error) {
	off := (len(d.mem) + 255) &^ 255
	d.mem = append(d.mem, make([]byte, off-len(d.mem)+max(len(v), 4))...)
	copy(d.mem[off:], v)
	return devPtr(emuBase + off), nil
}

func (d *emuDevice) download(dst []byte, p devPtr) error {
	off := int(p - emuBase)
	if off < 0 || off+len(dst) > len(d.mem) {
		return fmt.Errorf("download of %d bytes at %#x outside memory", len(dst), p)
	}
	copy(dst, d.mem[off:])
	return nil
}

func (d *emuDevice) release(devPtr) {}

func (d *emuDevice) launch(name string, gx, gy, threads int, args ...arg) error {
	if d.rec != nil {
		*d.rec = append(*d.rec, emuLaunch{name, gx, gy, threads, append([]arg(nil), args...)})
		return nil
	}
	if gx <= 0 || gy <= 0 {
		return nil
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %d %d %d", name, gx, gy, threads)
	for _, a := range args {
		switch x := a.(type) {
		case uint64:
			fmt.Fprintf(&b, " p:%d", x)
		case int:
			fmt.Fprintf(&b, " i:%d", uint32(int32(x)))
		case int32:
			fmt.Fprintf(&b, " i:%d", uint32(x))
		case uint32:
			fmt.Fprintf(&b, " u:%d", x)
		case int64:
			fmt.Fprintf(&b, " l:%d", uint64(x))
		case float32:
			fmt.Fprintf(&b, " f:%d", math.Float32bits(x))
		default:
			return fmt.Errorf("argument of type %T", a)
		}
	}
	memPath, launchPath := filepath.Join(d.dir, "mem.bin"), filepath.Join(d.dir, "launch.txt")
	if err := os.WriteFile(memPath, d.mem, 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(launchPath, []byte(b.String()), 0o644); err != nil {
		return err
	}
	if out, err := exec.Command(d.bin, memPath, launchPath).CombinedOutput(); err != nil {
		return fmt.Errorf("emulating %s: %v: %s", name, err, out)
	}
	mem, err := os.ReadFile(memPath)
	if err != nil {
		return err
	}
	d.mem = mem
	return nil
}

// TestKernelsEmulated runs gpucheck's kernel checks (the same inputs,
// CPU references and tolerances) on the kernels' CUDA C compiled for the
// host: the kernels' arithmetic, indexing and reductions are checked
// without a GPU. What it cannot check is PTX code generation and the
// device's own arithmetic (ex2.approx, FMA contraction).
func TestKernelsEmulated(t *testing.T) {
	dir := t.TempDir()
	bin := needSlowEmulator(t)
	rows := kernelChecks(&emuDevice{bin: bin, dir: dir}, rand.New(rand.NewSource(1)), true)
	if len(rows) < len(kernelNames())-2 {
		t.Errorf("%d check rows for %d kernels", len(rows), len(kernelNames()))
	}
	for _, r := range rows {
		switch {
		case r.Err != nil:
			t.Errorf("%s: %v", r.Op, r.Err)
		case !r.Pass:
			t.Errorf("%s: max error %.3g > %.0e", r.Op, r.MaxErr, r.Tol)
		default:
			t.Logf("%-20s max err %.3g", r.Op, r.MaxErr)
		}
	}
}

func (d *emuDevice) exec(fn func() error) error { return fn() }

func (d *emuDevice) freeMemory() (int64, error) {
	if d.freeBytes == 0 {
		return 1 << 40, nil
	}
	return d.freeBytes, nil
}

func (d *emuDevice) alloc(n int64) (devPtr, error) {
	if d.allocsLeft == 0 {
		return 0, &Error{Call: "cuMemAlloc_v2", Code: cudaErrorOutOfMemory, Name: "CUDA_ERROR_OUT_OF_MEMORY"}
	}
	d.allocsLeft--
	p, err := d.upload(make([]byte, n))
	if d.live == nil {
		d.live = map[devPtr]bool{}
	}
	d.live[p] = true
	return p, err
}

func (d *emuDevice) free(p devPtr) error {
	delete(d.live, p)
	return nil
}

func (d *emuDevice) write(p devPtr, v []byte) error {
	off := int(p - emuBase)
	if off < 0 || off+len(v) > len(d.mem) {
		return fmt.Errorf("write of %d bytes at %#x outside memory", len(v), p)
	}
	copy(d.mem[off:], v)
	return nil
}

func (d *emuDevice) zero(p devPtr, n int64) error { return d.write(p, make([]byte, n)) }

func (d *emuDevice) copy(dst, src devPtr, n int64) error {
	off := int(src - emuBase)
	if off < 0 || off+int(n) > len(d.mem) {
		return fmt.Errorf("copy of %d bytes from %#x outside memory", n, src)
	}
	return d.write(dst, append([]byte(nil), d.mem[off:off+int(n)]...))
}

func (d *emuDevice) hostBuffer(n int) ([]byte, error) { return make([]byte, n), nil }

func (d *emuDevice) freeHost([]byte) error { return nil }

func (d *emuDevice) sync() error { return nil }

func (d *emuDevice) hasGEMM() bool { return d.withGEMM }

// emuLaunch is one launch recorded into an emulated graph.
type emuLaunch struct {
	name            string
	gx, gy, threads int
	args            []arg
}

func (d *emuDevice) graphs() error {
	if d.withGraphs {
		return nil
	}
	return fmt.Errorf("no graphs on the emulator")
}

// capture records the launches fn makes, as a stream capture does (none
// runs); the graph replays them with the same grids and arguments, so it
// is only right when everything that varies is read from device memory.
func (d *emuDevice) capture(fn func() error) (uintptr, error) {
	if err := d.graphs(); err != nil {
		return 0, err
	}
	d.rec = &[]emuLaunch{}
	err := fn()
	g := *d.rec
	d.rec = nil
	if err != nil {
		return 0, err
	}
	d.recorded = append(d.recorded, g)
	return uintptr(len(d.recorded)), nil
}

func (d *emuDevice) launchGraph(g uintptr) error {
	if err := d.graphs(); err != nil {
		return err
	}
	if g == 0 || int(g) > len(d.recorded) || d.recorded[g-1] == nil {
		return fmt.Errorf("launching graph %d: no such graph", g)
	}
	d.replays++
	for _, l := range d.recorded[g-1] {
		if err := d.launch(l.name, l.gx, l.gy, l.threads, l.args...); err != nil {
			return err
		}
	}
	return nil
}

func (d *emuDevice) destroyGraph(g uintptr) {
	if g > 0 && int(g) <= len(d.recorded) {
		d.recorded[g-1] = nil
	}
}

// gemm is C = A · Bᵀ + beta·C on row-major float32 matrices: A m×k (row
// stride lda), B n×k (ldb), C m×n (ldc).
func (d *emuDevice) gemm(m, n, k int, a devPtr, lda int, b devPtr, ldb int, c devPtr, ldc int, beta float32, _ bool) error {
	if d.rec != nil {
		return errors.New("gemm while capturing a graph")
	}
	f := func(p devPtr, i int) []byte {
		off := int(p-emuBase) + 4*i
		return d.mem[off : off+4]
	}
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var sum float64
			for l := 0; l < k; l++ {
				x := math.Float32frombits(binary.LittleEndian.Uint32(f(a, i*lda+l)))
				y := math.Float32frombits(binary.LittleEndian.Uint32(f(b, j*ldb+l)))
				sum += float64(x) * float64(y)
			}
			cp := f(c, i*ldc+j)
			old := math.Float32frombits(binary.LittleEndian.Uint32(cp))
			binary.LittleEndian.PutUint32(cp, math.Float32bits(float32(sum+float64(beta)*float64(old))))
		}
	}
	return nil
}

// TestRunnerEmulated runs the CUDA runner's forward pass (its buffers,
// offsets, launch arguments and the kernels' CUDA C) on the host emulator
// and compares the logits with the float64 oracle: a prefill with every
// position's logits on slot 0, decode steps after it, and slot 1 left
// independent.
func TestRunnerEmulated(t *testing.T) {
	dir := t.TempDir()
	bin := needSlowEmulator(t)
	// qwen3: per-head Q/K norms and NeoX RoPE; qwen2: QKV biases. (The
	// adjacent-pair RoPE layout is in TestKernelsEmulated.)
	for i, c := range []struct {
		typ  ggml.Type
		arch string
	}{{ggml.Q8_0, "qwen3"}, {ggml.F16, "qwen2"}} {
		if raceEnabled && i > 0 {
			continue // one model is enough under the race detector's load
		}
		w, err := engine.SyntheticWeights(engine.SyntheticSpec{Arch: c.arch, Seed: 3, Type: c.typ.String(),
			Vocab: 40, Dim: 64, Layers: 1, Heads: 4, KVHeads: 2, FFN: 96})
		if err != nil {
			t.Fatal(err)
		}
		o := engine.RunnerOptions{ContextLength: 8, Slots: 2}
		plan, err := Estimate(w, o)
		if err != nil {
			t.Fatal(err)
		}
		run, err := newRunner(&emuDevice{bin: bin, dir: dir, allocsLeft: -1}, w, o, plan)
		if err != nil {
			t.Fatal(err)
		}
		ref, err := engine.NewOracle(w, o)
		if err != nil {
			t.Fatal(err)
		}
		nv := w.H.NVocab
		step := func(name string, slot int, toks []int32, pos int, all bool) {
			t.Helper()
			n := 1
			if all {
				n = len(toks)
			}
			got, want := make([]float32, n*nv), make([]float32, n*nv)
			if err := run.Forward(slot, toks, pos, got, all); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if err := engine.ForwardSlot(ref, slot, toks, pos, want, all); err != nil {
				t.Fatalf("%s: reference: %v", name, err)
			}
			res := compare(name, got, f64(want), 1e-5)
			if !res.Pass {
				t.Errorf("%v %s %s: max error %.3g", c.typ, c.arch, name, res.MaxErr)
			}
		}
		step("prefill", 0, []int32{1, 7, 39, 0, 12}, 0, true)
		step("slot1", 1, []int32{5}, 0, false)
		step("decode", 0, []int32{22}, 5, false)
		if err := run.Close(); err != nil {
			t.Error(err)
		}
		// The prefill path: 9 tokens through the GEMM, with the
		// dequantization tile cut to 5 rows so that weights take several.
		o = engine.RunnerOptions{ContextLength: 12, Slots: 2}
		if plan, err = Estimate(w, o); err != nil {
			t.Fatal(err)
		}
		plan.DequantElems = int64(5 * 96)
		run, err = newRunner(&emuDevice{bin: bin, dir: dir, allocsLeft: -1, withGEMM: true}, w, o, plan)
		if err != nil {
			t.Fatal(err)
		}
		ref, err = engine.NewOracle(w, o)
		if err != nil {
			t.Fatal(err)
		}
		step("prefill_gemm", 1, []int32{3, 1, 4, 1, 5, 9, 2, 6, 5}, 0, true)
		step("decode_after_gemm", 1, []int32{35}, 9, false)
		if err := run.Close(); err != nil {
			t.Error(err)
		}
	}
}

// TestLoadFailsCleanly: a model larger than the free memory is refused
// before anything is allocated, and an allocation failing halfway through
// a load frees everything allocated before it.
func TestLoadFailsCleanly(t *testing.T) {
	w, err := engine.SyntheticWeights(engine.SyntheticSpec{Seed: 1, Type: "Q8_0", Vocab: 40, Dim: 64, Layers: 2, Heads: 4, KVHeads: 2, FFN: 96})
	if err != nil {
		t.Fatal(err)
	}
	o := engine.RunnerOptions{ContextLength: 16, Slots: 1}
	plan, err := Estimate(w, o)
	if err != nil {
		t.Fatal(err)
	}
	small := &emuDevice{freeBytes: plan.Total() + 1000 - 1, allocsLeft: -1}
	if _, err := loadRunner(small, w, o, plan, 1000); !errors.Is(err, ErrInsufficientMemory) {
		t.Fatalf("err = %v, want ErrInsufficientMemory", err)
	}
	if len(small.live) != 0 || len(small.mem) != 0 {
		t.Errorf("refused load allocated %d buffers", len(small.live))
	}
	exact := &emuDevice{freeBytes: plan.Total() + 1000, allocsLeft: -1}
	r, err := loadRunner(exact, w, o, plan, 1000)
	if err != nil {
		t.Fatalf("load that fits exactly: %v", err)
	}
	if r.MemBytes() != plan.Total() {
		t.Errorf("MemBytes %d, plan %d", r.MemBytes(), plan.Total())
	}
	n := len(exact.live)
	if err := r.Close(); err != nil || len(exact.live) != 0 {
		t.Errorf("Close: %v, %d buffers left", err, len(exact.live))
	}
	for _, k := range []int{0, 1, n / 2, n - 1} {
		d := &emuDevice{allocsLeft: k}
		_, err := loadRunner(d, w, o, plan, 0)
		if !errors.Is(err, ErrInsufficientMemory) || errors.Is(err, device.ErrPoisoned) {
			t.Errorf("allocation %d failing: err = %v, want out-of-memory, not poisoning", k, err)
		}
		if len(d.live) != 0 {
			t.Errorf("allocation %d failing: %d buffers left allocated", k, len(d.live))
		}
	}
}

func TestFindCXX(t *testing.T) {
	f := func(cxxEnv string, have []string, want string) {
		t.Helper()
		look := func(name string) (string, error) {
			if slices.Contains(have, name) {
				return "/bin/" + name, nil
			}
			return "", exec.ErrNotFound
		}
		if got := findCXX(cxxEnv, look); got != want {
			t.Errorf("findCXX(%q) with %v = %q, want %q", cxxEnv, have, got, want)
		}
	}
	f("", nil, "")
	f("", []string{"g++"}, "/bin/g++")
	f("", []string{"g++", "clang++-17"}, "/bin/clang++-17")
	f("my-c++", []string{"g++", "my-c++"}, "/bin/my-c++")
	f("missing-c++", []string{"g++"}, "/bin/g++")
}

func TestEmulatorRequiredInCI(t *testing.T) {
	f := func(ci string, want bool) {
		t.Helper()
		env := func(k string) string {
			if k == "CI" {
				return ci
			}
			return ""
		}
		if got := emulatorRequired(env); got != want {
			t.Errorf("CI=%q: required = %v, want %v", ci, got, want)
		}
	}
	f("", false)
	f("false", false)
	f("true", true)
	f("1", true)
}
