package prometheusrw

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// statKind is one trend statistic.
type statKind int

const (
	statCount statKind = iota
	statSum
	statMin
	statMax
	statAvg
	statMed
	statPercentile
)

// trendStat is a parsed trend statistic such as "p(95)".
type trendStat struct {
	kind statKind
	// p is the percentile in 0..100 (statPercentile and statMed).
	p float64
	// suffix is the series name suffix: "p95", "p999", "avg", ...
	suffix string
}

// parseStat parses count, sum, min, max, avg, med or p(N) with 0 <= N <= 100.
func parseStat(s string) (trendStat, error) {
	switch s {
	case "count":
		return trendStat{kind: statCount, suffix: s}, nil
	case "sum":
		return trendStat{kind: statSum, suffix: s}, nil
	case "min":
		return trendStat{kind: statMin, suffix: s}, nil
	case "max":
		return trendStat{kind: statMax, suffix: s}, nil
	case "avg":
		return trendStat{kind: statAvg, suffix: s}, nil
	case "med":
		return trendStat{kind: statMed, p: 50, suffix: s}, nil
	}
	if !strings.HasPrefix(s, "p(") || !strings.HasSuffix(s, ")") {
		return trendStat{}, errors.New("want one of count, sum, min, max, avg, med, p(N)")
	}
	num := s[2 : len(s)-1]
	p, err := strconv.ParseFloat(num, 64)
	if err != nil || math.IsNaN(p) || p < 0 || p > 100 {
		return trendStat{}, fmt.Errorf("percentile %q must be a number from 0 to 100", num)
	}
	suffix := "p" + strings.ReplaceAll(num, ".", "")
	return trendStat{kind: statPercentile, p: p, suffix: suffix}, nil
}

// needsValues reports whether computing the stat needs every value.
func (s trendStat) needsValues() bool { return s.kind == statMed || s.kind == statPercentile }

// exactLimit is how many values a trend series keeps exactly (8 bytes
// each); past it the series switches to a log-linear histogram of bounded
// size whose percentiles are within 0.2% of the exact ones.
const exactLimit = 1 << 16

// trendAgg aggregates trend values since the start of the run. Values are
// kept only when a percentile is asked for; they are sorted on demand by
// sorting the new tail and merging it into the sorted head.
type trendAgg struct {
	count    uint64
	sum      float64
	min, max float64
	keep     bool
	values   []float64
	sorted   int      // values[:sorted] is sorted
	hist     *logHist // replaces values past exactLimit
}

func (t *trendAgg) add(v float64) {
	if t.count == 0 || v < t.min {
		t.min = v
	}
	if t.count == 0 || v > t.max {
		t.max = v
	}
	t.count++
	t.sum += v
	if !t.keep {
		return
	}
	if t.hist != nil {
		t.hist.add(v)
		return
	}
	t.values = append(t.values, v)
	if len(t.values) > exactLimit {
		t.hist = newLogHist()
		for _, x := range t.values {
			t.hist.add(x)
		}
		t.values, t.sorted = nil, 0
	}
}

// sort makes values fully sorted; scratch is a reusable merge buffer.
func (t *trendAgg) sort(scratch *[]float64) {
	if t.hist != nil {
		t.hist.prepare()
		return
	}
	n := len(t.values)
	if t.sorted == n {
		return
	}
	tail := t.values[t.sorted:]
	slices.Sort(tail)
	if t.sorted > 0 && t.values[t.sorted-1] > tail[0] {
		head := append((*scratch)[:0], t.values[:t.sorted]...)
		i, j, k := 0, 0, 0
		for i < len(head) && j < len(tail) {
			if tail[j] < head[i] {
				t.values[k] = tail[j]
				j++
			} else {
				t.values[k] = head[i]
				i++
			}
			k++
		}
		// Remaining tail values are already in place; copy the head rest.
		for i < len(head) {
			t.values[k] = head[i]
			i++
			k++
		}
		*scratch = head[:0]
	}
	t.sorted = n
}

// stat returns the statistic; values must be sorted for percentiles.
func (t *trendAgg) stat(s trendStat) float64 {
	switch s.kind {
	case statCount:
		return float64(t.count)
	case statSum:
		return t.sum
	case statMin:
		return t.min
	case statMax:
		return t.max
	case statAvg:
		if t.count == 0 {
			return 0
		}
		return t.sum / float64(t.count)
	}
	if t.hist != nil {
		return min(max(t.hist.percentile(s.p), t.min), t.max)
	}
	return percentile(t.values, s.p)
}

// percentile is k6's percentile of sorted values: linear interpolation at
// index p/100*(n-1); 0 for no values.
func percentile(sorted []float64, p float64) float64 {
	n := len(sorted)
	switch {
	case n == 0:
		return 0
	case n == 1:
		return sorted[0]
	}
	i := p / 100 * float64(n-1)
	lo := math.Floor(i)
	hi := math.Ceil(i)
	if lo == hi {
		return sorted[int(lo)]
	}
	return sorted[int(lo)] + (i-lo)*(sorted[int(hi)]-sorted[int(lo)])
}

// histSub is the number of buckets per power of two: a bucket spans at
// most 1/256 of its lower bound, its midpoint is within 0.2% of any value
// in it.
const histSub = 256

// logHist is a log-linear histogram of non-zero magnitudes plus a zero
// count; its size depends on the range of values, not their number.
type logHist struct {
	pos, neg map[int32]uint64
	zero     uint64
	n        uint64
	entries  []histEntry // ascending by value; rebuilt by prepare
	dirty    bool
}

type histEntry struct {
	value float64
	count uint64
}

func newLogHist() *logHist {
	return &logHist{pos: map[int32]uint64{}, neg: map[int32]uint64{}}
}

func histKey(a float64) int32 {
	frac, exp := math.Frexp(a) // a = frac * 2^exp, frac in [0.5, 1)
	return int32(exp)*histSub + int32((frac-0.5)*2*histSub)
}

func histMid(k int32) float64 {
	exp := k / histSub
	sub := k % histSub
	if sub < 0 {
		sub += histSub
		exp--
	}
	return math.Ldexp(0.5+(float64(sub)+0.5)/(2*histSub), int(exp))
}

func (h *logHist) add(v float64) {
	h.n++
	h.dirty = true
	switch {
	case v > 0:
		h.pos[histKey(v)]++
	case v < 0:
		h.neg[histKey(-v)]++
	default:
		h.zero++
	}
}

// prepare rebuilds the sorted entries after new values.
func (h *logHist) prepare() {
	if !h.dirty {
		return
	}
	h.dirty = false
	h.entries = h.entries[:0]
	negKeys := make([]int32, 0, len(h.neg))
	for k := range h.neg {
		negKeys = append(negKeys, k)
	}
	slices.Sort(negKeys)
	for i := len(negKeys) - 1; i >= 0; i-- {
		h.entries = append(h.entries, histEntry{-histMid(negKeys[i]), h.neg[negKeys[i]]})
	}
	if h.zero > 0 {
		h.entries = append(h.entries, histEntry{0, h.zero})
	}
	posKeys := make([]int32, 0, len(h.pos))
	for k := range h.pos {
		posKeys = append(posKeys, k)
	}
	slices.Sort(posKeys)
	for _, k := range posKeys {
		h.entries = append(h.entries, histEntry{histMid(k), h.pos[k]})
	}
}

// at returns the approximate value of rank r (0-based) in sorted order.
func (h *logHist) at(r uint64) float64 {
	var seen uint64
	for _, e := range h.entries {
		seen += e.count
		if r < seen {
			return e.value
		}
	}
	return h.entries[len(h.entries)-1].value
}

// percentile applies k6's interpolation to the approximate ranks.
func (h *logHist) percentile(p float64) float64 {
	h.prepare()
	if h.n == 0 {
		return 0
	}
	i := p / 100 * float64(h.n-1)
	lo, hi := math.Floor(i), math.Ceil(i)
	vlo := h.at(uint64(lo))
	if lo == hi {
		return vlo
	}
	return vlo + (i-lo)*(h.at(uint64(hi))-vlo)
}
