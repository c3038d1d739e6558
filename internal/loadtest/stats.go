package loadtest

import (
	"math"
	"slices"
	"time"
)

// summarize turns a level's request results into its figures. wall is the
// level's time from its first request sent to its last one finished;
// conc, the streams always in flight, scales the decode rate (0: none).
func summarize(results []reqResult, conc int, wall time.Duration) LevelResult {
	var (
		decTokens          int
		decSpan            time.Duration
		lr                 LevelResult
		ttft, itl, e2e     []float64
		fromUsage, counts  int
		promptSum, promptN int
	)
	for _, res := range results {
		if res.err != nil {
			if lr.Errors == 0 {
				lr.FirstError = res.err.Error()
			}
			lr.Errors++
			continue
		}
		lr.Completed++
		ttft = append(ttft, msOf(res.chunks[0].Sub(res.start)))
		for i := 1; i < len(res.chunks); i++ {
			itl = append(itl, msOf(res.chunks[i].Sub(res.chunks[i-1])))
		}
		e2e = append(e2e, msOf(res.end.Sub(res.start)))
		n := len(res.chunks)
		if res.usageOut >= 0 {
			n = res.usageOut
			fromUsage++
		} else {
			counts++
		}
		lr.OutputTokens += n
		if span := res.chunks[len(res.chunks)-1].Sub(res.chunks[0]); n > 1 && span > 0 {
			decTokens += n - 1
			decSpan += span
		}
		if res.usagePrompt > 0 {
			promptSum += res.usagePrompt
			promptN++
		}
	}
	switch {
	case counts == 0 && fromUsage > 0:
		lr.OutputTokensFrom = "usage"
	case fromUsage == 0 && counts > 0:
		lr.OutputTokensFrom = "chunks"
	case counts > 0:
		lr.OutputTokensFrom = "mixed"
	}
	lr.DurationS = round(wall.Seconds(), 3)
	if wall > 0 {
		lr.RequestsPerS = round(float64(lr.Completed)/wall.Seconds(), 3)
		lr.OutputTokPerS = round(float64(lr.OutputTokens)/wall.Seconds(), 2)
	}
	if decSpan > 0 && conc > 0 {
		lr.DecodeTokPerS = round(float64(conc)*float64(decTokens)/decSpan.Seconds(), 2)
	}
	if lr.Completed > 0 {
		lr.OutputTokensMean = round(float64(lr.OutputTokens)/float64(lr.Completed), 2)
	}
	if promptN > 0 {
		lr.PromptTokensMean = round(float64(promptSum)/float64(promptN), 2)
	}
	lr.TTFTMsP50, lr.TTFTMsP99, lr.TTFTMsMean = percentile(ttft, 50), percentile(ttft, 99), mean(ttft)
	lr.ITLMsP50, lr.ITLMsP99, lr.ITLMsMean = percentile(itl, 50), percentile(itl, 99), mean(itl)
	lr.ITLSamples = len(itl)
	lr.E2EMsP50, lr.E2EMsP99 = percentile(e2e, 50), percentile(e2e, 99)
	return lr
}

// percentile is the p-th percentile of xs, interpolating linearly between
// the two closest ranks (numpy's default), rounded to 0.001; 0 for no
// samples. It sorts xs.
func percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	slices.Sort(xs)
	rank := p / 100 * float64(len(xs)-1)
	lo := int(math.Floor(rank))
	hi := min(lo+1, len(xs)-1)
	return round(xs[lo]+(xs[hi]-xs[lo])*(rank-float64(lo)), 3)
}

func mean(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	var s float64
	for _, x := range xs {
		s += x
	}
	return round(s/float64(len(xs)), 3)
}

func msOf(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func round(x float64, places int) float64 {
	f := math.Pow(10, float64(places))
	return math.Round(x*f) / f
}
