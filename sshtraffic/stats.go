package sshtraffic

import (
	"math/rand/v2"
	"slices"
	"time"
)

// maxRTTSamples bounds the samples kept for percentiles; beyond it a uniform
// reservoir sample is kept (count, min, max and mean stay exact).
const maxRTTSamples = 1 << 18

// RTTSummary summarises the round-trip times of one echo stream.
type RTTSummary struct {
	Count                         int64
	Min, Mean, P50, P95, P99, Max time.Duration
}

type rttRecorder struct {
	samples  []time.Duration
	count    int64
	sum      time.Duration
	min, max time.Duration
	rng      *rand.Rand
}

func (r *rttRecorder) add(d time.Duration) {
	r.count++
	r.sum += d
	if r.count == 1 || d < r.min {
		r.min = d
	}
	if d > r.max {
		r.max = d
	}
	if len(r.samples) < maxRTTSamples {
		r.samples = append(r.samples, d)
		return
	}
	if r.rng == nil {
		r.rng = rand.New(rand.NewPCG(uint64(r.count), uint64(r.sum)))
	}
	if j := r.rng.Int64N(r.count); j < maxRTTSamples {
		r.samples[j] = d
	}
}

func (r *rttRecorder) summary() RTTSummary {
	if r.count == 0 {
		return RTTSummary{}
	}
	s := slices.Clone(r.samples)
	slices.Sort(s)
	q := func(p float64) time.Duration {
		// Nearest-rank percentile.
		i := int(p*float64(len(s))+0.999999999) - 1
		return s[max(0, min(i, len(s)-1))]
	}
	return RTTSummary{
		Count: r.count, Min: r.min, Max: r.max,
		Mean: r.sum / time.Duration(r.count),
		P50:  q(0.50), P95: q(0.95), P99: q(0.99),
	}
}
