package cpu

import (
	"runtime"
	"testing"
)

// TestPoolEveryWorkerRunsEveryJob runs many short jobs back to back, with
// yields so that workers get descheduled and Run parks. Each worker counts
// its own jobs: a Run that returned before a worker finished (as a late
// worker once woke the next job's parked Run) shows up as a missing count,
// and the race detector flags the overlap.
func TestPoolEveryWorkerRunsEveryJob(t *testing.T) {
	jobs := 20000
	if testing.Short() {
		jobs = 2000
	}
	for _, n := range []int{2, 3, 4} {
		p := NewPool(n)
		hits := make([]int, n)
		for i := range jobs {
			p.Run(func(ith, nth int) {
				hits[ith]++
				if i%97 == ith {
					runtime.Gosched()
				}
			})
		}
		p.Close()
		for w, h := range hits {
			if h != jobs {
				t.Errorf("pool of %d: worker %d ran %d of %d jobs", n, w, h, jobs)
			}
		}
	}
}
