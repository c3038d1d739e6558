package node

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"

	"helexa/node/device"
)

// deviceHandle is one device the neuron computes on: the CPU, and later
// each CUDA GPU. Every job for it goes through its worker.
type deviceHandle struct {
	index int
	kind  string // cpu or cuda
	name  string
	w     *device.Worker
	// memTotal is the device's memory in bytes (0 when unknown).
	memTotal int64
	// memFree reads the free memory in bytes; it runs on the worker.
	memFree func() (int64, error)
	// reserved is the memory estimates of the models loaded on it;
	// guarded by Server.mu.
	reserved int64
}

// free returns the memory a new load may use: what the device reports
// free, less what loaded models are expected to grow into.
func (d *deviceHandle) free(ctx context.Context, reserved int64) (int64, error) {
	var f int64
	err := d.w.Do(ctx, func() error {
		var err error
		f, err = d.memFree()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("reading free memory of %s: %w", d.w.Name(), err)
	}
	if d.memTotal > 0 {
		f = min(f, d.memTotal-reserved)
	}
	return max(f, 0), nil
}

// newCPUDevice is the CPU as a device.
func newCPUDevice(index int) *deviceHandle {
	total, _ := meminfo("MemTotal")
	return &deviceHandle{
		index:    index,
		kind:     "cpu",
		name:     cpuName(),
		w:        device.Start(device.Options{Name: "cpu"}),
		memTotal: total,
		memFree:  func() (int64, error) { return meminfo("MemAvailable") },
	}
}

// meminfo reads one /proc/meminfo field in bytes.
func meminfo(field string) (int64, error) {
	if runtime.GOOS != "linux" {
		return 0, fmt.Errorf("memory size unknown on %s", runtime.GOOS)
	}
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0, fmt.Errorf("reading memory size: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || k != field {
			continue
		}
		fs := strings.Fields(v)
		if len(fs) == 0 {
			break
		}
		n, err := strconv.ParseInt(fs[0], 10, 64)
		if err != nil {
			break
		}
		if len(fs) > 1 && strings.EqualFold(fs[1], "kB") {
			n *= 1024
		}
		return n, nil
	}
	return 0, fmt.Errorf("/proc/meminfo has no %s", field)
}

func cpuName() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				return fmt.Sprintf("%s (%d threads)", strings.TrimSpace(v), runtime.NumCPU())
			}
		}
	}
	return fmt.Sprintf("%s CPU (%d threads)", runtime.GOARCH, runtime.NumCPU())
}

func kernelRelease() string {
	b, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}
