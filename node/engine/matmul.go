package engine

import (
	"helexa/node/cpu"
	"helexa/node/ggml"
)

// mmOp is one weight of a matmul: out[t*stride+r] = W[r] · in[t].
type mmOp struct {
	w      *Tensor
	out    []float32
	stride int
	rows   int
	rb     int       // bytes per weight row
	f32    []float32 // W's data when F32 and aligned (no activation copy)
	vdt    ggml.Type // activation type for the generic path
	direct bool      // F32 view or BF16: dot against float activations
	prep   prepKind  // activations prepared for this weight type
	packed packedWeight
}

// prepKind is how a matmul's activations are prepared beyond quantizing.
type prepKind uint8

const (
	prepNone prepKind = iota
	prepQ4_0          // ggml.PrepareQ4_0, every batch size
	prepQ8_0          // ggml.PrepareQ8_0, batches of several tokens
	prepR16           // weight repacked (packedWeight): ggml.QuantizeR16 for quantized types, F16/BF16 inputs in xr
)

// mmJob is a matmul of one input against up to maxOps weights that share
// it (q/k/v, gate/up, the gate/up pairs of a token's experts), run in as
// few pool dispatches as possible.
type mmJob struct {
	in      []float32 // (n, cols)
	n, cols int
	ops     [maxOps]mmOp
	nops    int
	// the ops of the current dispatch: ops[lo:hi], all with one vdt
	lo, hi int
	// rows: quantWorker does the runner's queued row steps (rowOps) on
	// each row before quantizing it
	rows bool
	vdt  ggml.Type
	prep prepKind
	// packed holds the weights repacked at load (NewRunner), read-only.
	packed map[*Tensor]packedWeight
}

// maxOps is the most weights one mmJob multiplies.
const maxOps = 16

func (j *mmJob) begin(in []float32, n, cols int) {
	j.in, j.n, j.cols, j.nops = in, n, cols, 0
}

func (j *mmJob) add(w *Tensor, out []float32, stride int) {
	rb, _ := ggml.RowBytes(w.Type, j.cols) // validated at load
	op := mmOp{w: w, out: out, stride: stride, rows: w.Rows(), rb: rb, vdt: ggml.VecDotType(w.Type)}
	if pw, ok := j.packed[w]; ok {
		op.packed, op.prep = pw, prepR16
		if w.Type == ggml.BF16 {
			op.vdt = ggml.F32 // BF16 × F32, as llama.cpp computes BF16 models converted to F32
		}
		j.ops[j.nops] = op
		j.nops++
		return
	}
	switch w.Type {
	case ggml.F32:
		op.f32 = f32View(w.Data)
		op.direct = op.f32 != nil
	case ggml.BF16:
		op.direct = true // BF16 × F32, as llama.cpp computes BF16 models converted to F32
	case ggml.Q4_0:
		if ggml.PreparedQ4_0(j.cols) {
			op.prep = prepQ4_0
		}
	case ggml.Q8_0:
		if j.n > 1 && ggml.PreparedQ8_0(j.cols) {
			op.prep = prepQ8_0
		}
	}
	j.ops[j.nops] = op
	j.nops++
}

// runMatmul runs the job: ops whose activations need the same
// quantization go out in one dispatch, after that quantization.
func (r *cpuRunner) runMatmul() {
	j := &r.mm
	// Queued row steps (norms, residual adds, activations) are done by
	// the first quantization's workers, each on the rows it quantizes:
	// those steps end in this matmul's input, row by row.
	if r.s.nRowOps > 0 {
		if j.nops > 0 && !j.ops[0].direct && r.s.rowN == j.n {
			j.rows = true
		} else {
			r.flushRows()
		}
	}
	done := 0
	for done < j.nops {
		first := &j.ops[done]
		hi := done + 1
		for hi < j.nops && j.ops[hi].direct == first.direct && (first.direct || j.ops[hi].vdt == first.vdt && j.ops[hi].prep == first.prep) {
			hi++
		}
		j.lo, j.hi, j.vdt, j.prep = done, hi, first.vdt, first.prep
		if !first.direct {
			if j.n == 1 {
				r.quantWorker(0, 1)
			} else {
				r.pool.Run(r.quantFn)
			}
			if j.rows {
				j.rows, r.s.nRowOps = false, 0
			}
		}
		r.pool.Run(r.dotFn)
		done = hi
	}
}

// quantWorker quantizes worker ith's share of the input rows to j.vdt.
func (r *cpuRunner) quantWorker(ith, nth int) {
	j := &r.mm
	lo, hi := cpu.Split(j.n, ith, nth)
	if j.rows {
		r.runRows(lo, hi)
	}
	for t := lo; t < hi; t++ {
		in := j.in[t*j.cols : (t+1)*j.cols]
		if j.vdt == ggml.F32 {
			// repacked BF16 weights: the activations as they are, on the
			// padded rows of xr, or rounded to bfloat16 pairs
			if r.bf16Round {
				_ = ggml.PrepareR16BF16(r.s.xr[t*r.xrStride:t*r.xrStride+j.cols], in)
			} else {
				copy(r.s.xr[t*r.xrStride:t*r.xrStride+j.cols], in)
			}
			continue
		}
		if j.vdt == ggml.F16 && r.s.xr != nil {
			// F16 weights are dotted with the activations rounded to half
			// precision (as llama.cpp converts them), kept as floats.
			ggml.RoundHalf(r.s.xr[t*r.xrStride:t*r.xrStride+j.cols], in)
			continue
		}
		// As llama.cpp's SIMD path does; sizes were validated at load, so
		// no error can happen here.
		if j.prep == prepR16 {
			// straight into the repacked kernels' layout
			_ = ggml.QuantizeR16(j.ops[j.lo].w.Type, in, r.s.qp[t*r.qpStride:(t+1)*r.qpStride])
			continue
		}
		qa := r.s.qa[t*r.qaStride : (t+1)*r.qaStride]
		_ = ggml.QuantizeActivations(j.vdt, in, qa)
		switch j.prep {
		case prepQ4_0:
			_ = ggml.PrepareQ4_0(qa, j.cols, r.s.qp[t*r.qpStride:(t+1)*r.qpStride])
		case prepQ8_0:
			_ = ggml.PrepareQ8_0(qa, j.cols, r.s.qp[t*r.qpStride:(t+1)*r.qpStride])
		}
	}
}

// rowBlock is how many weight rows are dotted against every token before
// moving on, so they stay in cache across the batch.
const rowBlock = 16

// dotWorker computes worker ith's share of the rows of ops[lo:hi].
func (r *cpuRunner) dotWorker(ith, nth int) {
	j := &r.mm
	total := 0
	for i := j.lo; i < j.hi; i++ {
		total += j.ops[i].rows
	}
	var lo, hi int
	if j.prep == prepR16 {
		// repacked weights split on whole groups of rows
		lo, hi = cpu.Split(total/ggml.R16Rows, ith, nth)
		lo, hi = lo*ggml.R16Rows, hi*ggml.R16Rows
	} else {
		lo, hi = cpu.Split(total, ith, nth)
	}
	base := 0
	for i := j.lo; i < j.hi; i++ {
		op := &j.ops[i]
		a, b := max(lo-base, 0), min(hi-base, op.rows)
		base += op.rows
		if a >= b {
			continue
		}
		switch {
		case op.direct:
			r.dotFloat(op, a, b)
		default:
			r.dotQuant(op, a, b)
		}
	}
}

// dotQuant computes rows [a, b) of a quantized (or F16) weight against
// the quantized activations. With several tokens each row goes to
// ggml.VecDotN, which decodes a weight block once for a group of tokens
// (results are bit for bit VecDot's).
func (r *cpuRunner) dotQuant(op *mmOp, a, b int) {
	j := &r.mm
	if op.prep == prepR16 {
		r.dotR16(op, a, b)
		return
	}
	if op.w.Type == ggml.F16 && r.s.xr != nil {
		r.dotF16Rows(op, a, b)
		return
	}
	if op.prep != prepNone {
		// Against the prepared activations: the same results as VecDot,
		// with the per-token work done once in quantWorker.
		var dots [maxBatch]float32
		qp := r.s.qp[:j.n*r.qpStride]
		for row := a; row < b; row++ {
			w := op.w.Data[row*op.rb : (row+1)*op.rb]
			// Sizes were validated at load; an error cannot happen.
			if op.prep == prepQ4_0 {
				_ = ggml.DotQ4_0PreparedN(j.cols, w, qp, r.qpStride, dots[:j.n])
			} else {
				_ = ggml.DotQ8_0PreparedN(j.cols, w, qp, r.qpStride, dots[:j.n])
			}
			for t, d := range dots[:j.n] {
				op.out[t*op.stride+row] = d
			}
		}
		return
	}
	if j.n > 1 {
		var dots [maxBatch]float32 // one row against every token
		qa := r.s.qa[:j.n*r.qaStride]
		for row := a; row < b; row++ {
			// Sizes were validated at load; an error cannot happen.
			_ = ggml.VecDotN(op.w.Type, j.cols, op.w.Data[row*op.rb:(row+1)*op.rb], qa, r.qaStride, dots[:j.n])
			for t, d := range dots[:j.n] {
				op.out[t*op.stride+row] = d
			}
		}
		return
	}
	for r0 := a; r0 < b; r0 += rowBlock {
		r1 := min(r0+rowBlock, b)
		for t := 0; t < j.n; t++ {
			out := op.out[t*op.stride : t*op.stride+op.rows]
			qa := r.s.qa[t*r.qaStride : (t+1)*r.qaStride]
			for row := r0; row < r1; row++ {
				out[row] = ggml.VecDot(op.w.Type, j.cols, op.w.Data[row*op.rb:(row+1)*op.rb], qa)
			}
		}
	}
}

// dotFloat computes rows [a, b) of an F32 (mapped in place) or BF16
// weight against the float activations, rowBlock rows at a time.
func (r *cpuRunner) dotFloat(op *mmOp, a, b int) {
	j := &r.mm
	for r0 := a; r0 < b; r0 += rowBlock {
		r1 := min(r0+rowBlock, b)
		for t := 0; t < j.n; t++ {
			out := op.out[t*op.stride : t*op.stride+op.rows]
			x := j.in[t*j.cols : (t+1)*j.cols]
			if op.f32 != nil {
				for row := r0; row < r1; row++ {
					out[row] = cpu.Dot(x, op.f32[row*j.cols:(row+1)*j.cols])
				}
				continue
			}
			for row := r0; row < r1; row++ {
				out[row] = cpu.DotBF16(op.w.Data[row*op.rb:(row+1)*op.rb], x)
			}
		}
	}
}

// dotF16Rows computes rows [a, b) of an F16 weight against the tokens'
// half-rounded activations in float32 (the same products VecDot forms,
// summed in another order). Several tokens go through tiles of three rows
// by four tokens, so each converted weight and each activation load
// serves several products.
func (r *cpuRunner) dotF16Rows(op *mmOp, a, b int) {
	j := &r.mm
	if j.n < 4 || !cpu.HaveF16Tile(j.cols) {
		var dots [maxBatch]float32
		for row := a; row < b; row++ {
			// Sizes were validated at load; an error cannot happen.
			_ = cpu.DotF16N(op.w.Data[row*op.rb:(row+1)*op.rb], r.s.xr, r.xrStride, j.cols, dots[:j.n])
			for t, d := range dots[:j.n] {
				op.out[t*op.stride+row] = d
			}
		}
		return
	}
	var tile [12]float32
	var dots [4]float32
	for t0 := 0; t0 < j.n; t0 += 4 {
		t0 = min(t0, j.n-4) // the last tile overlaps the one before
		x := r.s.xr[t0*r.xrStride:]
		row := a
		for ; row+3 <= b; row += 3 {
			_ = cpu.DotF16Tile(op.w.Data[row*op.rb:], op.rb, x, r.xrStride, j.cols, &tile)
			for t := range 4 {
				o := op.out[(t0+t)*op.stride+row:]
				o[0], o[1], o[2] = tile[3*t], tile[3*t+1], tile[3*t+2]
			}
		}
		for ; row < b; row++ {
			_ = cpu.DotF16N(op.w.Data[row*op.rb:(row+1)*op.rb], x, r.xrStride, j.cols, dots[:])
			for t, d := range dots {
				op.out[(t0+t)*op.stride+row] = d
			}
		}
	}
}
