package sampler

import (
	"cmp"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

func logitsOf(v ...float32) []float32 { return v }

func mustNew(t *testing.T, p Params, n int) *Sampler {
	t.Helper()
	s, err := New(p, n)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestGreedy(t *testing.T) {
	f := func(p Params, logits []float32, recent []int32, want int32) {
		t.Helper()
		s := mustNew(t, p, len(logits))
		got, err := s.Sample(logits, recent, rand.New(rand.NewPCG(1, 2)))
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Fatalf("Sample(%v, %v) = %d, want %d", p, logits, got, want)
		}
	}
	f(Params{}, logitsOf(0, 3, 1, 2), nil, 1)
	// ties go to the lower id
	f(Params{}, logitsOf(5, 1, 5), nil, 0)
	// logit_bias can push a token over the top, or ban it
	f(Params{LogitBias: map[int32]float32{2: 10}}, logitsOf(0, 3, 1, 2), nil, 2)
	f(Params{LogitBias: map[int32]float32{1: float32(math.Inf(-1))}}, logitsOf(0, 3, 1, 2), nil, 3)
	// repetition penalty divides positive logits of seen tokens
	f(Params{RepetitionPenalty: 2}, logitsOf(0, 3, 1, 2), []int32{1}, 3)
	// ... and multiplies negative ones
	f(Params{RepetitionPenalty: 2}, logitsOf(-1, -3, -1.5, -2), []int32{0}, 2)
	// presence and frequency
	f(Params{PresencePenalty: 1.5}, logitsOf(0, 3, 1, 2), []int32{1}, 3)
	f(Params{FrequencyPenalty: 0.4}, logitsOf(0, 3, 1, 2), []int32{1, 1, 1}, 3)
	f(Params{FrequencyPenalty: 0.4}, logitsOf(0, 3, 1, 2), []int32{1, 1}, 1)
	// the window only looks at the last N tokens
	f(Params{PresencePenalty: 1.5, PenaltyLastN: 1}, logitsOf(0, 3, 1, 2), []int32{1, 0}, 1)
}

func TestSampleDoesNotModifyLogits(t *testing.T) {
	l := logitsOf(1, 2, 3)
	s := mustNew(t, Params{Temperature: 1, PresencePenalty: 1, LogitBias: map[int32]float32{0: 1}}, 3)
	if _, err := s.Sample(l, []int32{2}, rand.New(rand.NewPCG(1, 1))); err != nil {
		t.Fatal(err)
	}
	if l[0] != 1 || l[1] != 2 || l[2] != 3 {
		t.Fatalf("logits modified: %v", l)
	}
}

func TestSeedDeterminism(t *testing.T) {
	logits := make([]float32, 1000)
	r := rand.New(rand.NewPCG(7, 7))
	for i := range logits {
		logits[i] = float32(r.NormFloat64() * 2)
	}
	run := func(seed uint64) []int32 {
		s := mustNew(t, Params{Temperature: 1, TopK: 50, TopP: 0.9, MinP: 0.01}, len(logits))
		rng := rand.New(rand.NewPCG(seed, 0))
		var out []int32
		for range 50 {
			id, err := s.Sample(logits, out, rng)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, id)
		}
		return out
	}
	a, b, c := run(42), run(42), run(43)
	same := func(x, y []int32) bool {
		for i := range x {
			if x[i] != y[i] {
				return false
			}
		}
		return true
	}
	if !same(a, b) {
		t.Fatalf("same seed, different tokens:\n%v\n%v", a, b)
	}
	if same(a, c) {
		t.Fatalf("different seeds gave the same 50 tokens: %v", a)
	}
}

// TestDistribution checks the frequencies of drawn tokens against the
// filtered, tempered distribution.
func TestDistribution(t *testing.T) {
	// probabilities at temperature 1: .5 .25 .125 .0625 .0625
	logits := []float32{
		float32(math.Log(0.5)), float32(math.Log(0.25)), float32(math.Log(0.125)),
		float32(math.Log(0.0625)), float32(math.Log(0.0625)),
	}
	f := func(p Params, want []float64) {
		t.Helper()
		s := mustNew(t, p, len(logits))
		rng := rand.New(rand.NewPCG(3, 4))
		const n = 40000
		counts := make([]float64, len(logits))
		for range n {
			id, err := s.Sample(logits, nil, rng)
			if err != nil {
				t.Fatal(err)
			}
			counts[id]++
		}
		for i := range counts {
			if got := counts[i] / n; math.Abs(got-want[i]) > 0.01 {
				t.Fatalf("%+v: token %d frequency %.4f, want %.4f (all %v)", p, i, got, want[i], counts)
			}
		}
	}
	f(Params{Temperature: 1}, []float64{0.5, 0.25, 0.125, 0.0625, 0.0625})
	f(Params{Temperature: 1, TopK: 2}, []float64{2. / 3, 1. / 3, 0, 0, 0})
	// top_p 0.8: .5+.25 = .75 < .8, so three tokens are kept
	f(Params{Temperature: 1, TopP: 0.8}, []float64{4. / 7, 2. / 7, 1. / 7, 0, 0})
	// min_p 0.3: keep p ≥ 0.15
	f(Params{Temperature: 1, MinP: 0.3}, []float64{2. / 3, 1. / 3, 0, 0, 0})
	// temperature 0.5 squares the probabilities: .25 .0625 ... normalised
	sq := []float64{0.25, 0.0625, 0.015625, 0.00390625, 0.00390625}
	var tot float64
	for _, v := range sq {
		tot += v
	}
	for i := range sq {
		sq[i] /= tot
	}
	f(Params{Temperature: 0.5}, sq)
}

func TestTopKOrder(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 9))
	logits := make([]float32, 500)
	for i := range logits {
		logits[i] = float32(r.IntN(50)) // many ties
	}
	s := mustNew(t, Params{Temperature: 1, TopK: 37}, len(logits))
	copy(s.vals, logits)
	s.selectTopK(37)
	for i := 1; i < 37; i++ {
		a, b := s.idx[i-1], s.idx[i]
		if logits[a] < logits[b] || (logits[a] == logits[b] && a > b) {
			t.Fatalf("top-k not ordered at %d: %d(%g) before %d(%g)", i, a, logits[a], b, logits[b])
		}
	}
	// the 37th value must be ≥ every value left out
	kept := map[int32]bool{}
	for _, id := range s.idx[:37] {
		kept[id] = true
	}
	for i, v := range logits {
		if !kept[int32(i)] && v > logits[s.idx[36]] {
			t.Fatalf("token %d (%g) left out but beats the last kept %g", i, v, logits[s.idx[36]])
		}
	}
}

func TestLogprobs(t *testing.T) {
	logits := []float32{1, 3, 2, 0}
	var lse float64
	for _, v := range logits {
		lse += math.Exp(float64(v))
	}
	lse = math.Log(lse)
	top := make([]TokenLogprob, 2)
	lp, _ := Logprobs(logits, 2, top)
	if math.Abs(float64(lp)-(2-lse)) > 1e-5 {
		t.Fatalf("logprob %g, want %g", lp, 2-lse)
	}
	if top[0].ID != 1 || top[1].ID != 2 || math.Abs(float64(top[0].Logprob)-(3-lse)) > 1e-5 {
		t.Fatalf("top %+v", top)
	}
	// more requested than the vocabulary holds
	top = make([]TokenLogprob, 6)
	Logprobs(logits, 0, top)
	if top[3].ID != 3 || top[4] != (TokenLogprob{}) {
		t.Fatalf("top %+v", top)
	}
}

func TestBadInput(t *testing.T) {
	bad := []Params{
		{Temperature: -1}, {TopK: -1}, {TopP: 1.5}, {MinP: -0.1},
		{PresencePenalty: 3}, {FrequencyPenalty: -3}, {Temperature: float32(math.NaN())},
	}
	for _, p := range bad {
		if _, err := New(p, 10); err == nil {
			t.Errorf("New(%+v) accepted", p)
		}
	}
	if _, err := New(Params{LogitBias: map[int32]float32{10: 1}}, 10); err == nil {
		t.Error("logit_bias outside the vocabulary accepted")
	}
	s := mustNew(t, Params{}, 10)
	if _, err := s.Sample(make([]float32, 9), nil, nil); err == nil {
		t.Error("short logits accepted")
	}
}

func TestResolve(t *testing.T) {
	temp := float32(0.3)
	p := Resolve(Request{Temperature: &temp}, map[string]any{"temperature": 0.6, "top_k": 20.0, "top_p": 0.8})
	if p.Temperature != 0.3 || p.TopK != 20 || p.TopP != 0.8 || p.MinP != DefaultMinP {
		t.Fatalf("Resolve = %+v", p)
	}
	p = Resolve(Request{}, nil)
	if p.Temperature != DefaultTemperature || p.TopK != DefaultTopK {
		t.Fatalf("Resolve defaults = %+v", p)
	}
	p = Resolve(Request{}, map[string]any{"do_sample": false, "temperature": 0.7})
	if !p.Greedy() {
		t.Fatalf("do_sample=false not greedy: %+v", p)
	}
}

func TestSampleAllocs(t *testing.T) {
	logits := make([]float32, 4096)
	for i := range logits {
		logits[i] = float32(i % 97)
	}
	recent := []int32{1, 2, 3, 5, 8}
	s := mustNew(t, Params{Temperature: 0.7, TopK: 40, TopP: 0.9, MinP: 0.05, RepetitionPenalty: 1.1, PresencePenalty: 0.2}, len(logits))
	rng := rand.New(rand.NewPCG(1, 1))
	top := make([]TokenLogprob, 5)
	allocs := testing.AllocsPerRun(50, func() {
		id, _ := s.Sample(logits, recent, rng)
		Logprobs(logits, id, top)
	})
	if allocs != 0 {
		t.Fatalf("Sample allocates %v times per token", allocs)
	}
}

func BenchmarkSample(b *testing.B) {
	logits := make([]float32, 128256)
	r := rand.New(rand.NewPCG(1, 1))
	for i := range logits {
		logits[i] = float32(r.NormFloat64() * 3)
	}
	s, _ := New(Params{Temperature: 0.7, TopK: 40, TopP: 0.9, MinP: 0.05}, len(logits))
	for b.Loop() {
		_, _ = s.Sample(logits, nil, r)
	}
}

func TestApplyMask(t *testing.T) {
	logits := make([]float32, 130)
	for i := range logits {
		logits[i] = float32(i)
	}
	allowed := make([]uint64, 3)
	for _, id := range []int{3, 64, 129} {
		allowed[id/64] |= 1 << (id % 64)
	}
	if n := ApplyMask(logits, allowed); n != 3 {
		t.Fatalf("allowed %d, want 3", n)
	}
	for i, v := range logits {
		want := i == 3 || i == 64 || i == 129
		if want != !math.IsInf(float64(v), -1) {
			t.Errorf("token %d: logit %g", i, v)
		}
	}
	s, err := New(Params{Temperature: 1}, len(logits))
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 100 {
		id, err := s.Sample(logits, nil, rng)
		if err != nil {
			t.Fatal(err)
		}
		if id != 3 && id != 64 && id != 129 {
			t.Fatalf("sampled masked token %d", id)
		}
	}
	var top [5]TokenLogprob
	lp, n := Logprobs(logits, 129, top[:])
	if n != 3 || top[0].ID != 129 || top[1].ID != 64 || top[2].ID != 3 || lp != top[0].Logprob {
		t.Errorf("logprobs over the mask: %v (%d), %g", top, n, lp)
	}
	var sum float64
	for _, e := range top[:n] {
		sum += math.Exp(float64(e.Logprob))
	}
	if math.Abs(sum-1) > 1e-5 {
		t.Errorf("the allowed tokens' probabilities sum to %g", sum)
	}
}

// BenchmarkApplyMask masks a 151,936-token vocabulary (Qwen3's) where
// most tokens are allowed (inside a JSON string) and where few are (a
// number's digits).
func BenchmarkApplyMask(b *testing.B) {
	const n = 151936
	logits := make([]float32, n)
	for _, c := range []struct {
		name  string
		every int
	}{{"most", 1}, {"few", 1000}} {
		mask := make([]uint64, (n+63)/64)
		for id := 0; id < n; id += c.every {
			mask[id/64] |= 1 << (id % 64)
		}
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				ApplyMask(logits, mask)
			}
		})
	}
}

// TestTopKAndArgmaxMatchPlainScans: the run-skipping top-k selection and
// argmax give exactly what a plain sort and a plain scan give, ties
// (towards the lower id) and NaNs included, at vocabulary sizes around
// the scan runs.
func TestTopKAndArgmaxMatchPlainScans(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for _, n := range []int{1, 5, 255, 256, 257, 1000, 32000} {
		for trial := range 20 {
			v := make([]float32, n)
			for i := range v {
				v[i] = float32(r.IntN(50)) / 4 // many ties
				if trial%2 == 1 {
					v[i] = float32(r.NormFloat64())
				}
			}
			if trial%5 == 4 && n > 3 {
				v[r.IntN(n)] = float32(math.NaN())
			}
			// argmax: the first index of the largest value, NaN never wins
			want := 0
			for i := 1; i < n; i++ {
				if v[i] > v[want] {
					want = i
				}
			}
			if got := argmax(v); int(got) != want {
				t.Fatalf("n=%d trial %d: argmax %d, want %d", n, trial, got, want)
			}
			if n < 2 {
				continue
			}
			k := min(40, n-1)
			s, err := New(Params{Temperature: 1, TopK: k}, n)
			if err != nil {
				t.Fatal(err)
			}
			copy(s.vals, v)
			s.selectTopK(k)
			// the plain heap scan: every id tested with less
			ref, _ := New(Params{Temperature: 1, TopK: k}, n)
			copy(ref.vals, v)
			h := ref.idx[:k]
			for i := range h {
				h[i] = int32(i)
			}
			for i := k/2 - 1; i >= 0; i-- {
				ref.siftDown(h, i)
			}
			for i := k; i < n; i++ {
				if ref.less(h[0], int32(i)) {
					h[0] = int32(i)
					ref.siftDown(h, 0)
				}
			}
			for end := k - 1; end > 0; end-- {
				h[0], h[end] = h[end], h[0]
				ref.siftDown(h[:end], 0)
			}
			for i := range k {
				if s.idx[i] != h[i] {
					t.Fatalf("n=%d trial %d: top-%d[%d] = %d (%g), want %d (%g)", n, trial, k, i, s.idx[i], v[s.idx[i]], h[i], v[h[i]])
				}
			}
			if trial%5 != 4 {
				// without NaN the kept values are the k largest
				sorted := append([]float32(nil), v...)
				slices.SortFunc(sorted, func(a, b float32) int { return cmp.Compare(b, a) })
				for i := range k {
					if v[s.idx[i]] != sorted[i] {
						t.Fatalf("n=%d trial %d: top-%d[%d] has %g, the %d-th largest is %g", n, trial, k, i, v[s.idx[i]], i, sorted[i])
					}
				}
			}
		}
	}
}
