package cuda

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand"
	"sort"

	"helexa/node/engine"
	"helexa/node/ggml"
)

// CheckResult is one row of the kernel check: an operation run on the
// device and on the CPU on the same random inputs.
type CheckResult struct {
	Op     string
	MaxErr float64 // max |device - cpu| / max(1, max |cpu|)
	Tol    float64
	Pass   bool
	Err    error // the operation failed to run
}

// checkBufs tracks device buffers of one check and its first error.
type checkBufs struct {
	kd    kernelDevice
	ptrs  []devPtr
	first error
}

func (c *checkBufs) floats(v []float32) devPtr {
	return c.bytes(f32Bytes(v))
}

func (c *checkBufs) bytes(v []byte) devPtr {
	if c.first != nil {
		return 0
	}
	p, err := c.kd.upload(v)
	if err != nil {
		c.first = err
		return 0
	}
	c.ptrs = append(c.ptrs, p)
	return p
}

// int32s uploads int32 values (positions, ids).
func (c *checkBufs) int32s(v ...int32) devPtr {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], uint32(x))
	}
	return c.bytes(b)
}

func (c *checkBufs) zeros(n int) devPtr { return c.floats(make([]float32, n)) }

// launch records the launch's error, if it is the first.
func (c *checkBufs) launch(name string, gx, gy, threads int, args ...arg) {
	if c.first == nil {
		c.first = c.kd.launch(name, gx, gy, threads, args...)
	}
}

func (c *checkBufs) launch1D(name string, n int64, args ...arg) {
	if c.first == nil {
		c.first = launch1D(c.kd, name, n, args...)
	}
}

func (c *checkBufs) read(p devPtr, n int) []float32 {
	out := make([]float32, n)
	if c.first != nil {
		return out
	}
	if err := c.kd.download(f32Bytes(out), p); err != nil {
		c.first = err
	}
	return out
}

func (c *checkBufs) release() {
	for _, p := range c.ptrs {
		c.kd.release(p)
	}
	c.ptrs = nil
}

func randVec(r *rand.Rand, n int, scale float64) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(r.NormFloat64() * scale)
	}
	return v
}

func compare(op string, got []float32, want []float64, tol float64) CheckResult {
	var scale, maxd float64
	for _, w := range want {
		scale = math.Max(scale, math.Abs(w))
	}
	for i, w := range want {
		d := math.Abs(float64(got[i]) - w)
		if math.IsNaN(d) {
			d = math.Inf(1)
		}
		maxd = math.Max(maxd, d)
	}
	e := maxd / math.Max(1, scale)
	return CheckResult{Op: op, MaxErr: e, Tol: tol, Pass: e <= tol}
}

// CheckKernels runs every kernel (and the cuBLAS GEMMs) on random inputs
// and compares each with a float64 CPU computation of the same operation;
// quantized weights are made by ggml.QuantizeRow and decoded on the CPU by
// ggml.Dequantize. It returns one row per operation.
func (b *Backend) CheckKernels(seed int64) ([]CheckResult, error) {
	var res []CheckResult
	err := b.exec(func() error {
		r := rand.New(rand.NewSource(seed))
		res = kernelChecks(backendDevice{b}, r, false)
		res = append(res, b.checkGEMM(r), b.checkGEMMBatched(r))
		return nil
	})
	return res, err
}

// kernelChecks runs the checks of every PTX kernel on kd; small shrinks
// the attention problems (for the slow host emulator).
func kernelChecks(kd kernelDevice, r *rand.Rand, small bool) []CheckResult {
	var res []CheckResult
	var types []ggml.Type
	for t := range quantKernelSuffix {
		types = append(types, t)
	}
	sort.Slice(types, func(i, j int) bool { return types[i] < types[j] })
	for _, t := range types {
		res = append(res, checkQuant(kd, r, t)...)
	}
	for _, f := range []func(kernelDevice, *rand.Rand) CheckResult{
		checkRMSNorm, checkRMSNormRows, checkRopeNorm, checkRopeNeoX, checkSwiGLU, checkAddBias, checkKVWrite, checkSoftmax, checkArgmax,
	} {
		res = append(res, f(kd, r))
	}
	res = append(res, checkAttentionBatch(kd, r, small))
	if small {
		return append(res,
			checkAttention(kd, r, "attention_decode", 1, 4, 2, 128, 41),
			checkAttention(kd, r, "attention_prefill", 9, 4, 2, 8, 3))
	}
	return append(res,
		checkAttention(kd, r, "attention_decode", 1, 8, 2, 128, 300),
		checkAttention(kd, r, "attention_prefill", 37, 6, 3, 8, 4))
}

func runCheck(kd kernelDevice, op string, f func(c *checkBufs) CheckResult) CheckResult {
	c := &checkBufs{kd: kd}
	defer c.release()
	res := f(c)
	if c.first != nil {
		return CheckResult{Op: op, Err: c.first}
	}
	res.Op = op
	return res
}

// checkQuant checks dequant (whole matrix and a row gather) and the
// matrix-vector product of one weight type.
func checkQuant(kd kernelDevice, r *rand.Rand, t ggml.Type) []CheckResult {
	s := quantKernelSuffix[t]
	cols, rows, ntok := 768, 37, 3
	if blockShape[t][0] == 1 {
		cols = 172 // float formats take any row length
	}
	x := randVec(r, cols*rows, 1)
	rb, _ := rowBytes(t, cols)
	w := make([]byte, rb*rows)
	ref := make([]float32, cols*rows)
	for i := 0; i < rows; i++ {
		if err := ggml.QuantizeRow(t, x[i*cols:(i+1)*cols], w[i*rb:(i+1)*rb]); err != nil {
			return []CheckResult{{Op: "quantize " + s, Err: err}}
		}
	}
	if err := ggml.Dequantize(t, w, ref); err != nil {
		return []CheckResult{{Op: "dequantize " + s, Err: err}}
	}
	work := int64(rows * cols)
	if blockShape[t][0] != 1 {
		work /= 32
	}
	var out []CheckResult
	out = append(out, runCheck(kd, "dequant_"+s, func(c *checkBufs) CheckResult {
		dw, dst := c.bytes(w), c.zeros(rows*cols)
		c.launch1D("dequant_"+s, work, dw, uint64(0), dst, cols, rows, int64(rb), 0)
		return compare("", c.read(dst, rows*cols), f64(ref), 1e-6)
	}))
	out = append(out, runCheck(kd, "gather_"+s, func(c *checkBufs) CheckResult {
		ids := []int32{5, 0, 36, 5}
		idb := make([]byte, 4*len(ids))
		want := make([]float64, 0, len(ids)*cols)
		for i, id := range ids {
			idb[4*i], idb[4*i+1], idb[4*i+2], idb[4*i+3] = byte(id), byte(id>>8), byte(id>>16), byte(id>>24)
			want = append(want, f64(ref[int(id)*cols:(int(id)+1)*cols])...)
		}
		dw, did, dst := c.bytes(w), c.bytes(idb), c.zeros(len(ids)*cols)
		n := int64(len(ids) * cols)
		if blockShape[t][0] != 1 {
			n /= 32
		}
		c.launch1D("dequant_"+s, n, dw, did, dst, cols, len(ids), int64(rb), 0)
		return compare("", c.read(dst, len(ids)*cols), want, 1e-6)
	}))
	out = append(out, runCheck(kd, "mmv_"+s, func(c *checkBufs) CheckResult {
		xs := randVec(r, ntok*cols, 1)
		y0 := randVec(r, ntok*rows, 1)
		want := make([]float64, ntok*rows)
		for tk := 0; tk < ntok; tk++ {
			for i := 0; i < rows; i++ {
				var sum float64
				for j := 0; j < cols; j++ {
					sum += float64(ref[i*cols+j]) * float64(xs[tk*cols+j])
				}
				want[tk*rows+i] = float64(y0[tk*rows+i]) + sum
			}
		}
		dw, dx, dy := c.bytes(w), c.floats(xs), c.floats(y0)
		c.launch("mmv_"+s, mmvBlocks(rows), ntok, mmvThreads, dw, dx, dy, cols, rows, int64(rb), 1)
		return compare("", c.read(dy, ntok*rows), want, 1e-4)
	}))
	out = append(out, runCheck(kd, "mmv_glu_"+s, func(c *checkBufs) CheckResult {
		// The up weights: the gate's rows in reverse order.
		up := make([]byte, len(w))
		upRef := make([]float32, len(ref))
		for i := 0; i < rows; i++ {
			copy(up[i*rb:(i+1)*rb], w[(rows-1-i)*rb:(rows-i)*rb])
			copy(upRef[i*cols:(i+1)*cols], ref[(rows-1-i)*cols:(rows-i)*cols])
		}
		xs := randVec(r, ntok*cols, 0.1)
		want := make([]float64, ntok*rows)
		for tk := 0; tk < ntok; tk++ {
			for i := 0; i < rows; i++ {
				var g, u float64
				for j := 0; j < cols; j++ {
					g += float64(ref[i*cols+j]) * float64(xs[tk*cols+j])
					u += float64(upRef[i*cols+j]) * float64(xs[tk*cols+j])
				}
				want[tk*rows+i] = g / (1 + math.Exp(-g)) * u
			}
		}
		dg, du, dx, dy := c.bytes(w), c.bytes(up), c.floats(xs), c.zeros(ntok*rows)
		c.launch("mmv_glu_"+s, mmvBlocks(rows), ntok, mmvThreads, dg, du, dx, dy, cols, rows, int64(rb))
		return compare("", c.read(dy, ntok*rows), want, 1e-4)
	}))
	return out
}

func f64(v []float32) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}

func checkRMSNorm(kd kernelDevice, r *rand.Rand) CheckResult {
	return runCheck(kd, "rmsnorm", func(c *checkBufs) CheckResult {
		rows, n := 5, 1000
		x, w := randVec(r, rows*n, 2), randVec(r, n, 1)
		dx, dw, do := c.floats(x), c.floats(w), c.zeros(rows*n)
		c.launch("rmsnorm", rows, 1, normThreads(n), dx, dw, do, n, float32(1e-5), uint64(0))
		return compare("", c.read(do, rows*n), rmsnormRef(x, w, nil, rows, n), 1e-5)
	})
}

// checkRMSNormRows: the output norm's form, row i of out normalising row
// idx[i] of x (the rows whose logits a batch wants, in any order).
func checkRMSNormRows(kd kernelDevice, r *rand.Rand) CheckResult {
	return runCheck(kd, "rmsnorm_rows", func(c *checkBufs) CheckResult {
		rows, n := 7, 600
		idx := []int32{6, 0, 3, 4}
		x, w := randVec(r, rows*n, 2), randVec(r, n, 1)
		dx, dw, do := c.floats(x), c.floats(w), c.zeros(len(idx)*n)
		c.launch("rmsnorm", len(idx), 1, normThreads(n), dx, dw, do, n, float32(1e-5), c.int32s(idx...))
		return compare("", c.read(do, len(idx)*n), rmsnormRef(x, w, idx, len(idx), n), 1e-5)
	})
}

// rmsnormRef normalises rows of x in float64: row i of the result is row
// idx[i] of x (row i when idx is nil).
func rmsnormRef(x, w []float32, idx []int32, rows, n int) []float64 {
	want := make([]float64, rows*n)
	for i := 0; i < rows; i++ {
		src := i
		if idx != nil {
			src = int(idx[i])
		}
		xr := x[src*n : (src+1)*n]
		var ss float64
		for _, v := range xr {
			ss += float64(v) * float64(v)
		}
		sc := 1 / math.Sqrt(ss/float64(n)+1e-5)
		for j, v := range xr {
			want[i*n+j] = float64(v) * sc * float64(w[j])
		}
	}
	return want
}

func checkRope(kd kernelDevice, r *rand.Rand, neox bool) CheckResult {
	name := "rope_norm"
	if neox {
		name = "rope_neox"
	}
	return runCheck(kd, name, func(c *checkBufs) CheckResult {
		nhead, hd, rdims, ctx := 3, 64, 48, 128
		// Each row at its own position, as in a batch of several
		// sequences: a run of consecutive ones (a prompt chunk), then
		// decode rows anywhere.
		pos := []int32{100, 101, 102, 103, 0, 127, 57}
		ntok := len(pos)
		h := hparamsForRope(rdims)
		tab := ropeTable(h, ctx)
		inv := ropeInvFreq(h)
		half := rdims / 2
		rotate := func(x []float32, nh int) []float64 {
			want := f64(x)
			for t := 0; t < ntok; t++ {
				for hh := 0; hh < nh; hh++ {
					base := (t*nh + hh) * hd
					for i := 0; i < half; i++ {
						a, bb := base+2*i, base+2*i+1
						if neox {
							a, bb = base+i, base+i+half
						}
						s, co := math.Sincos(float64(pos[t]) * inv[i])
						x0, x1 := float64(x[a]), float64(x[bb])
						want[a] = x0*co - x1*s
						want[bb] = x0*s + x1*co
					}
				}
			}
			return want
		}
		nx := 0
		if neox {
			nx = 1
		}
		// The second tensor (K: one head fewer) gets the same rotation.
		nk := nhead - 1
		x, k := randVec(r, ntok*nhead*hd, 1), randVec(r, ntok*nk*hd, 1)
		want := append(rotate(x, nhead), rotate(k, nk)...)
		dx, dk, dt := c.floats(x), c.floats(k), c.floats(tab)
		c.launch1D("rope", int64(ntok*(nhead+nk)*half), dx, dk, dt, ntok, nhead, nk, hd, rdims, c.int32s(pos...), nx)
		got := append(c.read(dx, len(x)), c.read(dk, len(k))...)
		return compare("", got, want, 1e-5)
	})
}

func checkRopeNorm(kd kernelDevice, r *rand.Rand) CheckResult { return checkRope(kd, r, false) }
func checkRopeNeoX(kd kernelDevice, r *rand.Rand) CheckResult { return checkRope(kd, r, true) }

func checkSwiGLU(kd kernelDevice, r *rand.Rand) CheckResult {
	return runCheck(kd, "swiglu", func(c *checkBufs) CheckResult {
		n := 3000
		g, u := randVec(r, n, 3), randVec(r, n, 1)
		want := make([]float64, n)
		for i := range want {
			x := float64(g[i])
			want[i] = x / (1 + math.Exp(-x)) * float64(u[i])
		}
		dg, du := c.floats(g), c.floats(u)
		c.launch1D("swiglu", int64(n), dg, du, dg, int64(n))
		return compare("", c.read(dg, n), want, 1e-5)
	})
}

func checkAddBias(kd kernelDevice, r *rand.Rand) CheckResult {
	return runCheck(kd, "add_bias+add", func(c *checkBufs) CheckResult {
		rows, w := 7, 300
		x, bias, y := randVec(r, rows*w, 1), randVec(r, w, 1), randVec(r, rows*w, 1)
		want := make([]float64, rows*w)
		for i := range want {
			want[i] = float64(x[i]) + float64(bias[i%w]) + float64(y[i])
		}
		dx, db, dy := c.floats(x), c.floats(bias), c.floats(y)
		c.launch1D("add_bias", int64(rows*w), dx, db, int64(rows*w), w)
		c.launch1D("add", int64(rows*w), dx, dy, int64(rows*w))
		return compare("", c.read(dx, rows*w), want, 1e-6)
	})
}

func checkKVWrite(kd kernelDevice, r *rand.Rand) CheckResult {
	return runCheck(kd, "kv_write", func(c *checkBufs) CheckResult {
		// Three slots of one layer each; rows of a prompt chunk in slot 2,
		// decode rows in slots 0 and 1.
		slots, ctx, width := 3, 16, 40
		pos := []int32{9, 10, 11, 12, 13, 0, 15}
		slot := []int32{2, 2, 2, 2, 2, 0, 1}
		ntok := len(pos)
		kc, vc := randVec(r, slots*ctx*width, 1), randVec(r, slots*ctx*width, 1)
		k, v := randVec(r, ntok*width, 1), randVec(r, ntok*width, 1)
		wantK, wantV := f64(kc), f64(vc)
		for t := range ntok {
			d := (int(slot[t])*ctx + int(pos[t])) * width
			for j := 0; j < width; j++ {
				wantK[d+j] = float64(k[t*width+j])
				wantV[d+j] = float64(v[t*width+j])
			}
		}
		dkc, dvc, dk, dv := c.floats(kc), c.floats(vc), c.floats(k), c.floats(v)
		c.launch1D("kv_write", int64(ntok*width), dk, dv, dkc, dvc, ntok, width, c.int32s(pos...), c.int32s(slot...), int64(ctx*width))
		got := append(c.read(dkc, len(kc)), c.read(dvc, len(vc))...)
		return compare("", got, append(wantK, wantV...), 0)
	})
}

// attentionRef is causal grouped-query attention in float64.
func attentionRef(q, kc, vc []float32, ntok, nhead, nkv, hd, pos0 int) []float64 {
	out := make([]float64, ntok*nhead*hd)
	scale := 1 / math.Sqrt(float64(hd))
	g := nhead / nkv
	for t := 0; t < ntok; t++ {
		for h := 0; h < nhead; h++ {
			qr := q[(t*nhead+h)*hd:]
			n := pos0 + t + 1
			s := make([]float64, n)
			m := math.Inf(-1)
			for k := 0; k < n; k++ {
				kr := kc[(k*nkv+h/g)*hd:]
				var d float64
				for i := 0; i < hd; i++ {
					d += float64(qr[i]) * float64(kr[i])
				}
				s[k] = d * scale
				m = math.Max(m, s[k])
			}
			var l float64
			for k := range s {
				s[k] = math.Exp(s[k] - m)
				l += s[k]
			}
			o := out[(t*nhead+h)*hd:]
			for k := 0; k < n; k++ {
				vr := vc[(k*nkv+h/g)*hd:]
				for i := 0; i < hd; i++ {
					o[i] += s[k] / l * float64(vr[i])
				}
			}
		}
	}
	return out
}

func checkAttention(kd kernelDevice, r *rand.Rand, name string, ntok, nhead, nkv, hd, pos0 int) CheckResult {
	pos, slot := make([]int32, ntok), make([]int32, ntok)
	for t := range pos {
		pos[t] = int32(pos0 + t)
	}
	return checkAttentionRows(kd, r, name, nhead, nkv, hd, pos, slot)
}

// checkAttentionRows runs attention on rows at positions pos of slots slot
// (a cache of max(slot)+1 slots) and compares each row with attentionRef
// on its own slot.
func checkAttentionRows(kd kernelDevice, r *rand.Rand, name string, nhead, nkv, hd int, pos, slot []int32) CheckResult {
	return runCheck(kd, name, func(c *checkBufs) CheckResult {
		ntok, ctx, nslot := len(pos), 0, 0
		for t := range pos {
			ctx, nslot = max(ctx, int(pos[t])+4), max(nslot, int(slot[t])+1)
		}
		stride := ctx * nkv * hd
		q := randVec(r, ntok*nhead*hd, 1)
		kc, vc := randVec(r, nslot*stride, 1), randVec(r, nslot*stride, 1)
		var want []float64
		row := nhead * hd
		for t := range pos {
			s := int(slot[t]) * stride
			want = append(want, attentionRef(q[t*row:(t+1)*row], kc[s:s+stride], vc[s:s+stride], 1, nhead, nkv, hd, int(pos[t]))...)
		}
		dq, dk, dv, do := c.floats(q), c.floats(kc), c.floats(vc), c.zeros(len(q))
		c.launch("attention", nhead, ntok, 256, dq, dk, dv, do, nhead, nkv, hd, c.int32s(pos...), c.int32s(slot...), int64(stride),
			float32(1/math.Sqrt(float64(hd))))
		return compare("", c.read(do, len(q)), want, 1e-5)
	})
}

// checkAttentionBatch: one launch over the rows of a batch of several
// sequences, each at its own position in its own slot: decode rows, and a
// prompt chunk whose rows see one more key each.
func checkAttentionBatch(kd kernelDevice, r *rand.Rand, small bool) CheckResult {
	pos := []int32{40, 3, 0, 9, 10, 11, 77}
	slot := []int32{0, 3, 1, 2, 2, 2, 4}
	if small {
		pos = []int32{20, 3, 0, 9, 10, 11}
		slot = []int32{0, 3, 1, 2, 2, 2}
	}
	return checkAttentionRows(kd, r, "attention_batch", 4, 2, 32, pos, slot)
}

func checkSoftmax(kd kernelDevice, r *rand.Rand) CheckResult {
	return runCheck(kd, "softmax", func(c *checkBufs) CheckResult {
		rows, n, temp := 3, 5000, float32(0.7)
		x := randVec(r, rows*n, 4)
		want := make([]float64, rows*n)
		for i := 0; i < rows; i++ {
			m := math.Inf(-1)
			for j := 0; j < n; j++ {
				m = math.Max(m, float64(x[i*n+j])/float64(temp))
			}
			var s float64
			for j := 0; j < n; j++ {
				want[i*n+j] = math.Exp(float64(x[i*n+j])/float64(temp) - m)
				s += want[i*n+j]
			}
			for j := 0; j < n; j++ {
				want[i*n+j] /= s
			}
		}
		dx := c.floats(x)
		c.launch("softmax", rows, 1, 256, dx, n, temp)
		got := c.read(dx, rows*n)
		// Relative to the largest probability of each row.
		return compare("", got, want, 1e-5)
	})
}

func checkArgmax(kd kernelDevice, r *rand.Rand) CheckResult {
	return runCheck(kd, "argmax", func(c *checkBufs) CheckResult {
		rows, n := 4, 128256
		x := randVec(r, rows*n, 1)
		x[2*n+77], x[2*n+90000] = 50, 50 // a tie: the lower index wins
		want := make([]float64, rows)
		for i := 0; i < rows; i++ {
			best := 0
			for j := 1; j < n; j++ {
				if x[i*n+j] > x[i*n+best] {
					best = j
				}
			}
			want[i] = float64(best)
		}
		dx, do := c.floats(x), c.zeros(rows)
		c.launch("argmax", rows, 1, 1024, dx, n, do)
		raw := c.read(do, rows)
		got := make([]float32, rows)
		for i, v := range raw {
			got[i] = float32(int32(math.Float32bits(v)))
		}
		return compare("", got, want, 0)
	})
}

// gemmRef is C (m×n) = A (m×k) · Bᵀ (B n×k) + beta·C0.
func gemmRef(a, bm, c0 []float32, m, n, k int, beta float64) []float64 {
	out := make([]float64, m*n)
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var s float64
			for l := 0; l < k; l++ {
				s += float64(a[i*k+l]) * float64(bm[j*k+l])
			}
			out[i*n+j] = s + beta*float64(c0[i*n+j])
		}
	}
	return out
}

func (b *Backend) checkGEMM(r *rand.Rand) CheckResult {
	if b.blh == nil {
		return CheckResult{Op: "gemm", Err: fmt.Errorf("cuBLAS not loaded")}
	}
	return runCheck(backendDevice{b}, "gemm", func(c *checkBufs) CheckResult {
		m, n, k := 19, 130, 96
		a, bm, c0 := randVec(r, m*k, 1), randVec(r, n*k, 1), randVec(r, m*n, 1)
		want := gemmRef(a, bm, c0, m, n, k, 1)
		da, db, dc := c.floats(a), c.floats(bm), c.floats(c0)
		if c.first == nil {
			c.first = b.blh.gemmRowMajor(b.args, m, n, k, da, k, db, k, dc, n, 1, false)
		}
		return compare("", c.read(dc, m*n), want, 1e-5)
	})
}

func (b *Backend) checkGEMMBatched(r *rand.Rand) CheckResult {
	if b.blh == nil {
		return CheckResult{Op: "gemm_strided_batched", Err: fmt.Errorf("cuBLAS not loaded")}
	}
	return runCheck(backendDevice{b}, "gemm_strided_batched", func(c *checkBufs) CheckResult {
		m, n, k, batch := 9, 33, 64, 4
		a, bm := randVec(r, batch*m*k, 1), randVec(r, batch*n*k, 1)
		var want []float64
		for i := 0; i < batch; i++ {
			want = append(want, gemmRef(a[i*m*k:], bm[i*n*k:], make([]float32, m*n), m, n, k, 0)...)
		}
		da, db, dc := c.floats(a), c.floats(bm), c.zeros(batch*m*n)
		if c.first == nil {
			c.first = b.blh.gemmStridedBatched(b.args, m, n, k, da, int64(m*k), db, int64(n*k), dc, int64(m*n), batch, 0)
		}
		return compare("", c.read(dc, batch*m*n), want, 1e-5)
	})
}

func hparamsForRope(rdims int) engine.Hparams {
	return engine.Hparams{RopeTheta: 10000, RopeDims: rdims}
}
