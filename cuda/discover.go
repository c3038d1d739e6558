// Package cuda is the CUDA backend: purego bindings of the driver API and
// cuBLAS (opened at run time, no cgo), kernels shipped as PTX text, and an
// engine.Backend whose runners keep weights, KV cache and scratch on one
// GPU, driven by that GPU's device worker.
package cuda

import (
	"errors"
	"fmt"
	"runtime"
)

// Info is what the driver reports about this host's GPUs.
type Info struct {
	// Available is false when the driver cannot be used; Reason then says
	// exactly why (which library, the dlopen error, or the driver's error
	// name).
	Available     bool
	Reason        string
	DriverVersion string // "12.4"
	// CUBLAS is the cuBLAS library found ("libcublas.so.12"), or why
	// none was (prefill then runs on the matrix-vector kernels).
	CUBLAS  string
	Devices []DeviceInfo
}

// DeviceInfo describes one GPU.
type DeviceInfo struct {
	Index             int
	Name              string
	MemTotalMB        int64
	MemFreeMB         int64  // from cuMemGetInfo in the device's primary context
	ComputeCapability string // "9.0"
	// BandwidthGBs is the theoretical memory bandwidth from the memory
	// clock and bus width (0 when the driver does not report them).
	BandwidthGBs float64
}

// Discover asks the driver about this host's GPUs. It never fails hard:
// when the library is missing or the driver refuses, Info.Available is
// false and Info.Reason says why; the error is then ErrUnavailable
// wrapped with the same reason. It is safe for concurrent use.
func Discover() (Info, error) {
	d, err := loadDriver()
	if err != nil {
		return Info{Reason: err.Error()}, err
	}
	return discover(d)
}

func discover(d *driver) (Info, error) {
	var info Info
	fail := func(err error) (Info, error) {
		info.Available = false
		info.Reason = err.Error()
		return info, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	v, err := d.version()
	if err != nil {
		return fail(err)
	}
	info.DriverVersion = v
	n, err := d.deviceCount()
	if err != nil {
		return fail(err)
	}
	if n == 0 {
		return fail(errors.New("the driver reports no CUDA devices"))
	}
	for i := 0; i < n; i++ {
		di, err := describe(d, i)
		if err != nil {
			return fail(fmt.Errorf("device %d: %w", i, err))
		}
		info.Devices = append(info.Devices, di)
	}
	if b, err := loadBLAS(); err != nil {
		info.CUBLAS = err.Error()
	} else {
		info.CUBLAS = b.lib
	}
	info.Available = true
	return info, nil
}

func describe(d *driver, i int) (DeviceInfo, error) {
	di := DeviceInfo{Index: i}
	dev, err := d.device(i)
	if err != nil {
		return di, err
	}
	if di.Name, err = d.deviceName(dev); err != nil {
		return di, err
	}
	total, err := d.totalMem(dev)
	if err != nil {
		return di, err
	}
	di.MemTotalMB = int64(total >> 20)
	major, err := d.attr(dev, attrComputeCapabilityMajor)
	if err != nil {
		return di, err
	}
	minor, err := d.attr(dev, attrComputeCapabilityMinor)
	if err != nil {
		return di, err
	}
	di.ComputeCapability = fmt.Sprintf("%d.%d", major, minor)
	if clk, err := d.attr(dev, attrMemoryClockRate); err == nil {
		if bus, err := d.attr(dev, attrGlobalMemoryBusWidth); err == nil {
			// Double data rate: two transfers per clock.
			di.BandwidthGBs = 2 * float64(clk) * 1e3 * float64(bus) / 8 / 1e9
		}
	}
	// Free memory needs a current context; the primary context is shared
	// with the device's worker, so retaining it here is cheap and safe.
	free, err := freeMemory(d, dev)
	if err != nil {
		return di, err
	}
	di.MemFreeMB = int64(free >> 20)
	return di, nil
}

// freeMemory makes dev's primary context current on this thread just long
// enough for cuMemGetInfo.
func freeMemory(d *driver, dev int32) (uint64, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var ctx cuCtx
	if err := d.check("cuDevicePrimaryCtxRetain", d.cuDevicePrimaryCtxRetain(&ctx, dev)); err != nil {
		return 0, err
	}
	defer d.cuDevicePrimaryCtxRelease(dev)
	if err := d.check("cuCtxSetCurrent", d.cuCtxSetCurrent(ctx)); err != nil {
		return 0, err
	}
	defer d.cuCtxSetCurrent(0)
	free, _, err := d.memInfo()
	return free, err
}
