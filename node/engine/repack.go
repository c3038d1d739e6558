package engine

import (
	"fmt"

	"helexa/node/cpu"
	"helexa/node/ggml"
	"helexa/node/mmapfile"
)

// packedWeight is a matmul weight repacked into ggml's R16 layout
// (sixteen rows per group) for the AVX-512 kernels.
type packedWeight struct {
	data []byte // groups of R16GroupBytes
	gb   int    // bytes per group
}

// useR16 switches repacking off for tests that compare both paths.
var useR16 = true

// matmulWeights lists the tensors the forward pass multiplies with.
func (w *Weights) matmulWeights() []*Tensor {
	ts := []*Tensor{w.Output}
	for i := range w.Layers {
		l := &w.Layers[i]
		ts = append(ts, l.Wq, l.Wk, l.Wv, l.Wo)
		if l.FFNGate != nil {
			ts = append(ts, l.FFNGate, l.FFNUp, l.FFNDown)
		}
		if l.FFNGateInp != nil {
			ts = append(ts, l.FFNGateInp)
		}
		for _, e := range l.Experts {
			ts = append(ts, e.Gate, e.Up, e.Down)
		}
	}
	return ts
}

// repack copies the Q8_0, Q4_0, Q4_K, Q5_K, Q6_K, F16 and BF16 matmul
// weights into the R16 layout when this CPU has its kernels, in one
// anonymous mapping (huge pages where the kernel gives them), the groups
// spread over the pool, and widens the activation buffers' rows for their
// inputs (qpStride, xrStride). The mapped file pages of a repacked tensor
// are released afterwards, so resident memory holds the weights once.
func (r *cpuRunner) repack() error {
	if !useR16 {
		return nil
	}
	type job struct {
		t      *Tensor
		off    int // in the mapping
		gb, rb int
	}
	var (
		jobs  []job
		total int
		seen  = map[*Tensor]bool{}
	)
	for _, t := range r.w.matmulWeights() {
		if t == nil || seen[t] || len(t.Dims) != 2 || !ggml.HaveR16(t.Type) || t.Dims[1]%ggml.R16Rows != 0 {
			continue
		}
		seen[t] = true
		gb, err := ggml.R16GroupBytes(t.Type, t.Dims[0])
		if err != nil {
			continue // columns that do not fit the layout keep the row kernels
		}
		rb, _ := ggml.RowBytes(t.Type, t.Dims[0]) // validated at load
		jobs = append(jobs, job{t: t, off: total, gb: gb, rb: rb})
		total += t.Dims[1] / ggml.R16Rows * gb
	}
	if len(jobs) == 0 {
		return nil
	}
	mem, err := mmapfile.NewAnon(total)
	if err != nil {
		return fmt.Errorf("repacking weights: %w", err)
	}
	buf := mem.Bytes()
	r.packMem = mem
	r.mm.packed = make(map[*Tensor]packedWeight, len(jobs))
	for _, j := range jobs {
		// One tensor at a time, its groups spread over the pool, and its
		// mapped pages released right after, so that resident memory never
		// holds much more than one copy of the weights.
		n := j.t.Dims[1] / ggml.R16Rows
		r.pool.Run(func(ith, nth int) {
			lo, hi := cpu.Split(n, ith, nth)
			for g := lo; g < hi; g++ {
				src := j.t.Data[g*ggml.R16Rows*j.rb : (g+1)*ggml.R16Rows*j.rb]
				ggml.RepackR16Group(j.t.Type, src, j.t.Dims[0], buf[j.off+g*j.gb:j.off+(g+1)*j.gb])
			}
		})
		r.mm.packed[j.t] = packedWeight{data: buf[j.off : j.off+n*j.gb], gb: j.gb}
		if t := j.t.Type; t == ggml.F16 || t == ggml.BF16 {
			r.xrStride = max(r.xrStride, j.t.Dims[0]) // float inputs go through xr
		} else {
			r.qpStride = max(r.qpStride, ggml.R16ActBytes(t, j.t.Dims[0]))
		}
		if j.t.Mapped {
			// A tied output matrix is also the token embeddings: lookups
			// fault back in only the rows they read.
			mmapfile.Release(j.t.Data)
		}
	}
	return nil
}

// dotR16 computes rows [a, b) (whole groups) of a repacked weight. A
// quantized group meets every token (in tiles of eight) while its weights
// are in L1; F16/BF16 kernels take up to eight tokens, and with more,
// four groups at a time go through every token tile.
func (r *cpuRunner) dotR16(op *mmOp, a, b int) {
	j := &r.mm
	gl, gh := a/ggml.R16Rows, b/ggml.R16Rows
	gb := op.packed.gb
	if t := op.w.Type; t != ggml.F16 && t != ggml.BF16 {
		// quantized: each group meets every token while it is in cache
		// Sizes were validated at load; an error cannot happen.
		_ = ggml.GemmR16(t, j.cols, gh-gl, op.packed.data[gl*gb:gh*gb], r.s.qp, r.qpStride, j.n, op.out[gl*ggml.R16Rows:], op.stride)
		return
	}
	block := gh - gl
	if j.n > 8 {
		block = 4
	}
	for g0 := gl; g0 < gh; g0 += block {
		ng := min(block, gh-g0)
		w := op.packed.data[g0*gb : (g0+ng)*gb]
		for t0 := 0; t0 < j.n; t0 += 8 {
			nt := min(8, j.n-t0)
			out := op.out[t0*op.stride+g0*ggml.R16Rows:]
			// Sizes were validated at load; an error cannot happen.
			if op.w.Type == ggml.BF16 && r.bf16Round {
				_ = ggml.GemmR16BF16Rounded(j.cols, ng, w, r.s.xr[t0*r.xrStride:], r.xrStride, nt, out, op.stride)
			} else {
				_ = ggml.GemmR16Float(op.w.Type, j.cols, ng, w, r.s.xr[t0*r.xrStride:], r.xrStride, nt, out, op.stride)
			}
		}
	}
}
