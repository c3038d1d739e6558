// Package sampler picks the next token from a model's logits.
//
// A Sampler is built once per request and sized for the model's
// vocabulary; Sample then allocates nothing per token. Randomness is passed
// in (a seeded math/rand/v2 generator), so the same seed and the same
// request give the same tokens.
//
// The order of operations is: logit_bias, penalties (repetition, presence,
// frequency over a window of recent tokens), then greedy argmax when the
// temperature is 0, else top_k, top_p, min_p, temperature, and a draw from
// the resulting distribution. Log-probabilities (Logprobs) are computed
// from the model's distribution before any of these steps. An output
// grammar's mask (ApplyMask) is applied to the logits before Sample and
// Logprobs, so both see the masked distribution.
package sampler

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"

	"helexa/node/cpu"
)

// Params are the sampling knobs of one request. The zero value of an
// optional knob disables it, except where noted.
type Params struct {
	// Temperature scales logits; 0 picks the most likely token (greedy).
	Temperature float32
	// TopK keeps the K most likely tokens; 0 keeps all.
	TopK int
	// TopP keeps the smallest set whose probability reaches P; 0 or 1
	// keeps all.
	TopP float32
	// MinP drops tokens less likely than MinP times the most likely one;
	// 0 disables.
	MinP float32
	// RepetitionPenalty divides positive (multiplies negative) logits of
	// tokens seen in the window; 0 or 1 disables.
	RepetitionPenalty float32
	// PresencePenalty is subtracted once from each token seen in the window.
	PresencePenalty float32
	// FrequencyPenalty is subtracted per occurrence in the window.
	FrequencyPenalty float32
	// PenaltyLastN is the window of recent tokens the penalties look at;
	// 0 means DefaultPenaltyLastN, negative means every token given.
	PenaltyLastN int
	// LogitBias is added to the logits of the given token ids.
	LogitBias map[int32]float32
}

// DefaultPenaltyLastN is the penalty window when none is given.
const DefaultPenaltyLastN = 64

// Greedy reports whether the parameters pick the argmax.
func (p Params) Greedy() bool { return p.Temperature <= 0 }

// Validate checks the ranges of the parameters.
func (p Params) Validate() error {
	switch {
	case p.Temperature < 0 || p.Temperature > 100 || isNaN(p.Temperature):
		return fmt.Errorf("temperature must be between 0 and 100, got %g", p.Temperature)
	case p.TopK < 0:
		return fmt.Errorf("top_k must not be negative, got %d", p.TopK)
	case p.TopP < 0 || p.TopP > 1 || isNaN(p.TopP):
		return fmt.Errorf("top_p must be between 0 and 1, got %g", p.TopP)
	case p.MinP < 0 || p.MinP > 1 || isNaN(p.MinP):
		return fmt.Errorf("min_p must be between 0 and 1, got %g", p.MinP)
	case p.RepetitionPenalty < 0 || isNaN(p.RepetitionPenalty):
		return fmt.Errorf("repetition_penalty must not be negative, got %g", p.RepetitionPenalty)
	case p.PresencePenalty < -2 || p.PresencePenalty > 2 || isNaN(p.PresencePenalty):
		return fmt.Errorf("presence_penalty must be between -2 and 2, got %g", p.PresencePenalty)
	case p.FrequencyPenalty < -2 || p.FrequencyPenalty > 2 || isNaN(p.FrequencyPenalty):
		return fmt.Errorf("frequency_penalty must be between -2 and 2, got %g", p.FrequencyPenalty)
	}
	for id, b := range p.LogitBias {
		if isNaN(b) {
			return fmt.Errorf("logit_bias for token %d is not a number", id)
		}
	}
	return nil
}

func isNaN(f float32) bool { return f != f }

// ErrVocab reports logits of the wrong size.
var ErrVocab = errors.New("sampler: logits size does not match the vocabulary")

// Sampler samples tokens for one request. Not safe for concurrent use.
type Sampler struct {
	p      Params
	nVocab int

	// vals is a working copy of the logits (nVocab).
	vals []float32
	// idx holds candidate token ids, best first after selection (nVocab).
	idx []int32
	// probs are the candidates' probabilities, parallel to idx.
	probs []float32
	// counts are occurrences of each token in the penalty window (nVocab);
	// touched lists the ids whose count is non-zero, to reset them.
	counts  []int32
	touched []int32
	sorter  byVal
}

// New builds a Sampler for a vocabulary of nVocab tokens.
func New(p Params, nVocab int) (*Sampler, error) {
	if nVocab <= 0 {
		return nil, fmt.Errorf("sampler: vocabulary size must be positive, got %d", nVocab)
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	for id := range p.LogitBias {
		if id < 0 || int(id) >= nVocab {
			return nil, fmt.Errorf("logit_bias names token %d, outside the vocabulary of %d", id, nVocab)
		}
	}
	s := &Sampler{
		p:      p,
		nVocab: nVocab,
		vals:   make([]float32, nVocab),
		idx:    make([]int32, nVocab),
		probs:  make([]float32, nVocab),
	}
	if p.penalised() {
		s.counts = make([]int32, nVocab)
		s.touched = make([]int32, 0, 256)
	}
	s.sorter.vals = s.vals
	return s, nil
}

// Params returns the sampler's parameters.
func (s *Sampler) Params() Params { return s.p }

func (p Params) penalised() bool {
	return (p.RepetitionPenalty != 0 && p.RepetitionPenalty != 1) || p.PresencePenalty != 0 || p.FrequencyPenalty != 0
}

// Sample picks the next token. logits (NVocab) is not modified; recent is
// the sequence so far (prompt and generated tokens), of which the last
// PenaltyLastN feed the penalties; rng may be nil for greedy sampling.
func (s *Sampler) Sample(logits []float32, recent []int32, rng *rand.Rand) (int32, error) {
	if len(logits) != s.nVocab {
		return 0, fmt.Errorf("%w: got %d, want %d", ErrVocab, len(logits), s.nVocab)
	}
	copy(s.vals, logits)
	for id, b := range s.p.LogitBias {
		s.vals[id] += b
	}
	if s.p.penalised() {
		s.penalise(recent)
	}
	if s.p.Greedy() || rng == nil {
		return argmax(s.vals), nil
	}

	// Candidates: top_k by partial selection, else every token.
	n := s.nVocab
	k := s.p.TopK
	if k > 0 && k < n {
		s.selectTopK(k)
		n = k
	} else {
		for i := range s.idx {
			s.idx[i] = int32(i)
		}
		if s.p.TopP > 0 && s.p.TopP < 1 {
			s.sorter.idx = s.idx
			sort.Sort(&s.sorter)
		}
	}
	cand := s.idx[:n]

	// Softmax at temperature 1 for top_p and min_p (as llama.cpp does),
	// then at the request's temperature for the draw.
	if (s.p.TopP > 0 && s.p.TopP < 1) || s.p.MinP > 0 {
		s.softmax(cand, 1)
		if s.p.TopP > 0 && s.p.TopP < 1 {
			// cand is sorted best first here.
			var cum float32
			for i := range cand {
				cum += s.probs[i]
				if cum >= s.p.TopP {
					cand = cand[:i+1]
					break
				}
			}
		}
		if s.p.MinP > 0 {
			var pmax float32
			for i := range cand {
				pmax = max(pmax, s.probs[i])
			}
			lim := pmax * s.p.MinP
			j := 0
			for i := range cand {
				if s.probs[i] >= lim {
					cand[j] = cand[i]
					j++
				}
			}
			cand = cand[:j]
		}
	}
	if len(cand) == 1 {
		return cand[0], nil
	}
	total := s.softmax(cand, s.p.Temperature)
	r := float32(rng.Float64()) * total
	var cum float32
	for i := range cand {
		cum += s.probs[i]
		if r < cum {
			return cand[i], nil
		}
	}
	return cand[len(cand)-1], nil
}

// softmax writes exp((v-max)/temp) of the candidates into probs (parallel
// to cand), normalised, and returns their sum (1 up to rounding).
func (s *Sampler) softmax(cand []int32, temp float32) float32 {
	m := float32(math.Inf(-1))
	for _, id := range cand {
		m = max(m, s.vals[id])
	}
	var sum float32
	for i, id := range cand {
		e := float32(math.Exp(float64((s.vals[id] - m) / temp)))
		s.probs[i] = e
		sum += e
	}
	if sum == 0 || isNaN(sum) {
		// Every candidate is -Inf (logit_bias can do that): uniform.
		for i := range cand {
			s.probs[i] = 1 / float32(len(cand))
		}
		return 1
	}
	for i := range cand {
		s.probs[i] /= sum
	}
	var tot float32
	for i := range cand {
		tot += s.probs[i]
	}
	return tot
}

func (s *Sampler) penalise(recent []int32) {
	win := s.p.PenaltyLastN
	if win == 0 {
		win = DefaultPenaltyLastN
	}
	if win > 0 && len(recent) > win {
		recent = recent[len(recent)-win:]
	}
	for _, id := range recent {
		if id < 0 || int(id) >= s.nVocab {
			continue
		}
		if s.counts[id] == 0 {
			s.touched = append(s.touched, id)
		}
		s.counts[id]++
	}
	rp := s.p.RepetitionPenalty
	for _, id := range s.touched {
		v := s.vals[id]
		if rp != 0 && rp != 1 {
			if v > 0 {
				v /= rp
			} else {
				v *= rp
			}
		}
		v -= float32(s.counts[id])*s.p.FrequencyPenalty + s.p.PresencePenalty
		s.vals[id] = v
		s.counts[id] = 0
	}
	s.touched = s.touched[:0]
}

// selectTopK puts the k largest values' ids in idx[:k], best first.
func (s *Sampler) selectTopK(k int) {
	// A min-heap of size k over idx[:k]: the root is the smallest kept.
	h := s.idx[:k]
	for i := range h {
		h[i] = int32(i)
	}
	for i := k/2 - 1; i >= 0; i-- {
		s.siftDown(h, i)
	}
	// Every id from k on is larger than every id in the heap, so it
	// displaces the root exactly when its value is larger (ties keep the
	// lower id): runs with no value above the root's are skipped whole.
	thr := s.vals[h[0]]
	for c0 := k; c0 < s.nVocab; c0 += scanRun {
		c1 := min(c0+scanRun, s.nVocab)
		if !cpu.AnyAbove(s.vals[c0:c1], thr) {
			continue
		}
		for i := c0; i < c1; i++ {
			if s.vals[i] > thr {
				h[0] = int32(i)
				s.siftDown(h, 0)
				thr = s.vals[h[0]]
			}
		}
	}
	// Heap sort descending: repeatedly move the smallest to the end.
	for end := k - 1; end > 0; end-- {
		h[0], h[end] = h[end], h[0]
		s.siftDown(h[:end], 0)
	}
}

// less orders ids by value, ties broken towards the higher id so that the
// lower id wins a tie (as argmax does).
func (s *Sampler) less(a, b int32) bool {
	va, vb := s.vals[a], s.vals[b]
	if va != vb {
		return va < vb
	}
	return a > b
}

func (s *Sampler) siftDown(h []int32, i int) {
	for {
		l := 2*i + 1
		if l >= len(h) {
			return
		}
		m := l
		if r := l + 1; r < len(h) && s.less(h[r], h[l]) {
			m = r
		}
		if !s.less(h[m], h[i]) {
			return
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
}

// byVal sorts ids by value, best first.
type byVal struct {
	vals []float32
	idx  []int32
}

func (b *byVal) Len() int { return len(b.idx) }
func (b *byVal) Less(i, j int) bool {
	va, vb := b.vals[b.idx[i]], b.vals[b.idx[j]]
	if va != vb {
		return va > vb
	}
	return b.idx[i] < b.idx[j]
}
func (b *byVal) Swap(i, j int) { b.idx[i], b.idx[j] = b.idx[j], b.idx[i] }

func argmax(v []float32) int32 {
	best := 0
	for c0 := 1; c0 < len(v); c0 += scanRun {
		c1 := min(c0+scanRun, len(v))
		if !cpu.AnyAbove(v[c0:c1], v[best]) {
			continue
		}
		for i := c0; i < c1; i++ {
			if v[i] > v[best] {
				best = i
			}
		}
	}
	return int32(best)
}

// scanRun is how many values top-k selection and argmax test at once
// (cpu.AnyAbove) before looking at them one by one.
const scanRun = 256

// TokenLogprob is one token's log-probability.
type TokenLogprob struct {
	ID      int32
	Logprob float32
}

// Logprobs computes the log-softmax of logits (the model's distribution,
// before any sampling step, after a grammar's mask if any): the chosen
// token's log-probability, and the top len(top) tokens, best first,
// written into top; n is how many were written (tokens of probability 0,
// masked ones, are never listed). It allocates nothing.
func Logprobs(logits []float32, chosen int32, top []TokenLogprob) (lp float32, n int) {
	m := float32(math.Inf(-1))
	for _, v := range logits {
		m = max(m, v)
	}
	var sum float64
	for _, v := range logits {
		sum += math.Exp(float64(v - m))
	}
	lse := m + float32(math.Log(sum))
	// Insertion into a small sorted list: top is short (≤ 20).
	ninf := float32(math.Inf(-1))
	for i, v := range logits {
		if v == ninf || (n == len(top) && (n == 0 || v <= top[n-1].Logprob)) {
			continue
		}
		j := n
		if n < len(top) {
			n++
		} else {
			j = n - 1
		}
		for j > 0 && top[j-1].Logprob < v {
			top[j] = top[j-1]
			j--
		}
		top[j] = TokenLogprob{ID: int32(i), Logprob: v}
	}
	for i := range top[:n] {
		top[i].Logprob -= lse
	}
	if chosen < 0 || int(chosen) >= len(logits) {
		return ninf, n
	}
	return logits[chosen] - lse, n
}
