package webdashboard

import (
	"math"
	"slices"
)

// histGrowth is the ratio between consecutive histogram bins: a quantile
// read from the histogram is within 1% of the exact one.
const histGrowth = 1.02

var logGrowth = math.Log(histGrowth)

// hist is a sparse log-scale histogram of positive values (zero and
// negative values share one bin). Its size grows with the spread of the
// values, not their count.
type hist struct {
	bins  map[int32]uint64
	count uint64
}

func binOf(v float64) int32 {
	if v <= 0 || math.IsNaN(v) {
		return math.MinInt32
	}
	return int32(math.Floor(math.Log(v) / logGrowth))
}

// add counts v.
func (h *hist) add(v float64) {
	if h.bins == nil {
		h.bins = map[int32]uint64{}
	}
	h.bins[binOf(v)]++
	h.count++
}

// merge adds o's counts to h.
func (h *hist) merge(o *hist) {
	if o == nil || o.count == 0 {
		return
	}
	if h.bins == nil {
		h.bins = make(map[int32]uint64, len(o.bins))
	}
	for b, n := range o.bins {
		h.bins[b] += n
	}
	h.count += o.count
}

// quantiles returns the values at each q in qs (0..1), from the middle of
// their bins; ok is false for an empty histogram.
func (h *hist) quantiles(qs ...float64) (out []float64, ok bool) {
	if h == nil || h.count == 0 {
		return nil, false
	}
	keys := make([]int32, 0, len(h.bins))
	for b := range h.bins {
		keys = append(keys, b)
	}
	slices.Sort(keys)
	out = make([]float64, len(qs))
	for i, q := range qs {
		rank := uint64(math.Ceil(q * float64(h.count)))
		if rank < 1 {
			rank = 1
		}
		var seen uint64
		for _, b := range keys {
			seen += h.bins[b]
			if seen >= rank {
				out[i] = binValue(b)
				break
			}
		}
	}
	return out, true
}

func binValue(b int32) float64 {
	if b == math.MinInt32 {
		return 0
	}
	return math.Exp((float64(b) + 0.5) * logGrowth)
}
