package node

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"helexa/cuda"
	"helexa/node/device"
	"helexa/node/engine"
)

// deviceHandle is one device the neuron computes on: the CPU or a CUDA
// GPU. Every job for it goes through its worker.
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
	// lastFree is the last memory reading (bytes) and when it was made.
	lastFree, lastFreeAt atomic.Int64
	// backend computes on the device; nil means the engine's CPU backend.
	backend engine.Backend
	// computeCapability is a GPU's ("9.0"); "" for the CPU.
	computeCapability string
	// close releases the device after its worker's last job.
	close func()
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
	d.lastFree.Store(f)
	d.lastFreeAt.Store(time.Now().UnixNano())
	return d.adjust(f, reserved), nil
}

// cachedFree is free without a job when a reading newer than maxAge
// exists (health checks must not wait behind a long prefill).
func (d *deviceHandle) cachedFree(ctx context.Context, reserved int64, maxAge time.Duration) (int64, error) {
	if at := d.lastFreeAt.Load(); at != 0 && time.Since(time.Unix(0, at)) < maxAge {
		return d.adjust(d.lastFree.Load(), reserved), nil
	}
	return d.free(ctx, reserved)
}

func (d *deviceHandle) adjust(f, reserved int64) int64 {
	if d.memTotal > 0 {
		f = min(f, d.memTotal-reserved)
	}
	return max(f, 0)
}

// newCPUDevice is the CPU as a device.
func newCPUDevice(index int) *deviceHandle {
	total, _ := meminfo("MemTotal")
	w := device.Start(device.Options{Name: "cpu"})
	return &deviceHandle{
		index:    index,
		kind:     "cpu",
		name:     cpuName(),
		w:        w,
		memTotal: total,
		memFree:  func() (int64, error) { return meminfo("MemAvailable") },
		close:    w.Close,
	}
}

// discoverDevices finds the host's devices: every usable CUDA GPU (index
// 0..n-1), then the CPU. It returns what CUDA discovery said, for
// /discovery.
func discoverDevices(log zerolog.Logger) ([]*deviceHandle, cudaInfo) {
	info, err := cuda.Discover()
	ci := cudaInfo{Available: info.Available, DriverVersion: info.DriverVersion, Reason: info.Reason}
	var devs []*deviceHandle
	if err == nil && info.Available {
		for _, d := range info.Devices {
			b, err := cuda.New(cuda.Options{Index: d.Index})
			if err != nil {
				log.Warn().Int("device", d.Index).Err(err).Msg("CUDA device unusable; skipping it")
				continue
			}
			devs = append(devs, &deviceHandle{
				index:             len(devs),
				kind:              "cuda",
				name:              d.Name,
				w:                 b.Worker(),
				memTotal:          d.MemTotalMB << 20,
				memFree:           func() (int64, error) { f, _, err := b.MemInfo(); return f - cuda.DefaultReserve, err },
				backend:           b,
				computeCapability: d.ComputeCapability,
				close:             b.Close,
			})
		}
		if len(devs) == 0 {
			ci.Available = false
			ci.Reason = "CUDA driver found but no device could be opened (see the log)"
		}
	}
	if !ci.Available && ci.Reason == "" {
		ci.Reason = "CUDA is not available"
	}
	devs = append(devs, newCPUDevice(len(devs)))
	return devs, ci
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
