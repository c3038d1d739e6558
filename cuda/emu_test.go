package cuda

import (
	"fmt"
	"math"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
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
}

var (
	emuOnce sync.Once
	emuBin  string
	emuErr  error
)

// buildEmulator compiles testdata/hostemu with the first C++20 compiler
// found.
func buildEmulator(dir string) (string, error) {
	emuOnce.Do(func() {
		var cxx string
		for _, c := range []string{"clang++", "clang++-19", "clang++-18", "clang++-17", "clang++-16", "clang++-15", "clang++-14", "g++"} {
			if p, err := exec.LookPath(c); err == nil {
				cxx = p
				break
			}
		}
		if cxx == "" {
			emuErr = fmt.Errorf("no C++ compiler (clang++ or g++) to build the kernel emulator")
			return
		}
		emuBin = filepath.Join(dir, "hostemu")
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
	if testing.Short() {
		t.Skip("the kernel emulator starts a thread per CUDA thread: skipped in -short")
	}
	dir := t.TempDir()
	bin, err := buildEmulator(dir)
	if err != nil {
		t.Skip(err)
	}
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
