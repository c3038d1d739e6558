package cpu

import (
	"math"
	"sync/atomic"
	"testing"
	"time"
)

func TestPoolRunsEveryWorker(t *testing.T) {
	for _, n := range []int{1, 2, 3, 5} {
		p := NewPool(n)
		for rep := 0; rep < 200; rep++ {
			var hits [8]atomic.Int32
			var total atomic.Int32
			p.Run(func(ith, nth int) {
				if nth != n {
					t.Errorf("nth = %d, want %d", nth, n)
				}
				hits[ith].Add(1)
				total.Add(1)
			})
			if got := total.Load(); got != int32(n) {
				t.Fatalf("n=%d rep %d: %d calls, want %d", n, rep, got, n)
			}
			for i := 0; i < n; i++ {
				if hits[i].Load() != 1 {
					t.Fatalf("n=%d rep %d: worker %d ran %d times", n, rep, i, hits[i].Load())
				}
			}
		}
		p.Close()
	}
}

// Workers park after spinning; jobs issued after a pause must still run.
func TestPoolWakesParkedWorkers(t *testing.T) {
	p := NewPool(3)
	defer p.Close()
	for rep := 0; rep < 3; rep++ {
		// Let the workers exhaust their spin budget and park.
		for i := 0; i < 3; i++ {
			waitParked(p)
		}
		var total atomic.Int32
		p.Run(func(ith, nth int) { total.Add(1) })
		if total.Load() != 3 {
			t.Fatalf("rep %d: %d calls, want 3", rep, total.Load())
		}
	}
}

func waitParked(p *Pool) {
	for i := 1; i < p.n; i++ {
		for !p.workers[i].sleeping.Load() {
			// busy wait; workers park after spinIters polls
		}
	}
}

func TestSplitCoversAll(t *testing.T) {
	for _, n := range []int{0, 1, 7, 100} {
		for _, nth := range []int{1, 2, 3, 8} {
			next := 0
			for ith := 0; ith < nth; ith++ {
				lo, hi := Split(n, ith, nth)
				if lo != next || hi < lo {
					t.Fatalf("Split(%d,%d,%d) = %d,%d; want lo %d", n, ith, nth, lo, hi, next)
				}
				next = hi
			}
			if next != n {
				t.Fatalf("Split(%d, *, %d) ends at %d", n, nth, next)
			}
		}
	}
}

func TestDot(t *testing.T) {
	for _, n := range []int{0, 1, 7, 8, 9, 64, 100} {
		a := make([]float32, n)
		b := make([]float32, n)
		var want float64
		for i := range a {
			a[i] = float32(i%5) - 2
			b[i] = float32(i%3) * 0.5
			want += float64(a[i]) * float64(b[i])
		}
		if got := Dot(a, b); float64(got) != want {
			t.Errorf("Dot n=%d = %v, want %v", n, got, want)
		}
	}
}

// A slow worker makes Run park; it must still wake when the worker ends.
func TestPoolRunParksOnSlowWorker(t *testing.T) {
	p := NewPool(2)
	defer p.Close()
	for rep := 0; rep < 5; rep++ {
		var done atomic.Int32
		p.Run(func(ith, nth int) {
			if ith == 1 {
				time.Sleep(5 * time.Millisecond)
			}
			done.Add(1)
		})
		if done.Load() != 2 {
			t.Fatalf("rep %d: Run returned with %d of 2 workers done", rep, done.Load())
		}
	}
}

// The SIMD kernels agree with the portable ones at every length.
func TestSIMDMatchesGo(t *testing.T) {
	for n := 0; n < 100; n++ {
		a := make([]float32, n)
		b := make([]float32, n)
		for i := range a {
			a[i] = float32((i*7)%11) - 5
			b[i] = float32((i*3)%13)*0.25 - 1
		}
		if got, want := Dot(a, b), dotGo(a, b); got != want {
			t.Errorf("Dot n=%d = %v, portable %v", n, got, want)
		}
		y := make([]float32, n+1)
		want := make([]float32, n+1)
		for i := range y {
			y[i] = float32(i)
			want[i] = float32(i)
		}
		y[n], want[n] = 42, 42
		Axpy(0.5, a, y)
		for i := range a {
			want[i] += 0.5 * a[i]
		}
		for i := range want {
			if y[i] != want[i] {
				t.Fatalf("Axpy n=%d: y[%d] = %v, want %v", n, i, y[i], want[i])
			}
		}
	}
}

func TestF16Kernels(t *testing.T) {
	for n := 0; n < 70; n++ {
		a := make([]float32, n)
		x := make([]float32, n)
		h := make([]uint16, n)
		var want float32
		for i := range a {
			a[i] = float32((i*5)%9) - 4
			x[i] = float32((i*3)%7)*0.5 - 1.5 // exact in half precision
			want += a[i] * x[i]
		}
		ToF16(h, x)
		if got := DotF16(a, h); got != want {
			t.Errorf("DotF16 n=%d = %v, want %v", n, got, want)
		}
		y := make([]float32, n)
		AxpyF16(2, h, y)
		for i := range y {
			if y[i] != 2*x[i] {
				t.Fatalf("AxpyF16 n=%d: y[%d] = %v, want %v", n, i, y[i], 2*x[i])
			}
		}
	}
	t.Logf("AVX2 %v, F16C %v", useAVX2, useF16C)
}

func TestDotBF16(t *testing.T) {
	for n := 0; n < 70; n++ {
		a := make([]float32, n)
		w := make([]byte, 2*n)
		var want float32
		for i := range a {
			a[i] = float32((i*5)%9) - 4
			x := float32((i*3)%7)*0.5 - 1.5 // exact in bfloat16
			b := math.Float32bits(x) >> 16
			w[2*i], w[2*i+1] = byte(b), byte(b>>8)
			want += a[i] * x
		}
		if got := DotBF16(w, a); got != want {
			t.Errorf("DotBF16 n=%d = %v, want %v", n, got, want)
		}
	}
}

// The one-call attention kernels give exactly what the per-row ones do.
func TestScoresAndMixF16(t *testing.T) {
	for _, hd := range []int{8, 16, 40, 64, 72, 128, 6} {
		const npos, stride = 13, 200
		q := make([]float32, hd)
		cache := make([]uint16, npos*stride)
		vals := make([]float32, npos*stride)
		for i := range vals {
			vals[i] = float32(math.Sin(float64(i) * 0.37))
		}
		ToF16(cache, vals)
		for i := range q {
			q[i] = float32(math.Cos(float64(i) * 0.11))
		}
		got := make([]float32, npos)
		ScoresF16(got, q, cache, stride, 0.125)
		for p := range got {
			if want := DotF16(q, cache[p*stride:p*stride+hd]) * 0.125; got[p] != want {
				t.Fatalf("hd %d: score %d = %v, want %v", hd, p, got[p], want)
			}
		}
		out := make([]float32, hd)
		want := make([]float32, hd)
		for i := range out {
			out[i], want[i] = float32(i), float32(i)
		}
		MixF16(out, got, cache, stride)
		for p, a := range got {
			AxpyF16(a, cache[p*stride:p*stride+hd], want)
		}
		for i := range out {
			if out[i] != want[i] {
				t.Fatalf("hd %d: mix[%d] = %v, want %v", hd, i, out[i], want[i])
			}
		}
	}
}

// A panicking job surfaces in Run's caller, and the pool keeps working.
func TestPoolPanics(t *testing.T) {
	p := NewPool(3)
	defer p.Close()
	for _, bad := range []int{0, 2} {
		func() {
			defer func() {
				r := recover()
				if r == nil {
					t.Fatalf("worker %d's panic was lost", bad)
				}
				if bad != 0 {
					if _, ok := r.(*WorkerPanic); !ok {
						t.Fatalf("recovered %T, want *WorkerPanic", r)
					}
				}
			}()
			p.Run(func(ith, nth int) {
				if ith == bad {
					panic("boom")
				}
			})
		}()
		var total atomic.Int32
		p.Run(func(ith, nth int) { total.Add(1) })
		if total.Load() != 3 {
			t.Fatalf("after a panic: %d calls, want 3", total.Load())
		}
	}
}

func TestExp(t *testing.T) {
	var xs []float32
	for v := -87.0; v < 88; v += 0.0137 {
		xs = append(xs, float32(v))
	}
	xs = append(xs, 0, -0.5, 0.5, 1, -1, 1e-8, -1e-8)
	got := append([]float32(nil), xs...)
	Exp(got)
	for i, v := range xs {
		want := math.Exp(float64(v))
		if rel := math.Abs(float64(got[i])-want) / want; rel > 2.5e-7 {
			t.Fatalf("Exp(%v) = %v, want %v (rel err %.2g)", v, got[i], want, rel)
		}
	}
	// Clamped ends stay finite and ordered.
	ends := []float32{-1000, -100, 100, 1000, 0, 0, 0, 0, 0}
	Exp(ends)
	if !(ends[0] >= 0 && ends[0] < 1e-37 && ends[1] < 1e-37 && ends[2] > 1e38 && !math.IsInf(float64(ends[3]), 0)) {
		t.Errorf("clamped: %v", ends[:4])
	}
}
