package cpu

import "testing"

// BenchmarkPoolRun is the cost of one dispatch of a job that does nothing,
// on two workers: the synchronisation a forward pass pays per step of a
// layer.
func BenchmarkPoolRun(b *testing.B) {
	p := NewPool(2)
	defer p.Close()
	var sink [2]int
	fn := func(ith, nth int) { sink[ith]++ }
	for b.Loop() {
		p.Run(fn)
	}
}
