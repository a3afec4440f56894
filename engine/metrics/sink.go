package metrics

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Sink aggregates the samples of one metric or submetric. Sinks are not
// safe for concurrent use: the owner (the metrics engine) locks around them.
type Sink interface {
	// Add folds one sample into the aggregate.
	Add(s Sample)
	// IsEmpty reports whether no sample was added yet.
	IsEmpty() bool
	// Format returns the aggregate as named values, for a test run that has
	// lasted d so far. Keys per type: Counter count, rate (rate is absent
	// when d is 0); Gauge value, min, max; Rate rate (absent with no
	// samples), passes, fails; Trend min, max, avg, med, count, sum,
	// p(90), p(95).
	Format(d time.Duration) map[string]float64
}

// NewSink returns an empty sink for a metric of type t.
func NewSink(t MetricType) Sink {
	switch t {
	case Counter:
		return &CounterSink{}
	case Gauge:
		return &GaugeSink{}
	case Rate:
		return &RateSink{}
	default:
		return &TrendSink{}
	}
}

// CounterSink sums sample values.
type CounterSink struct {
	Sum float64
	N   uint64
}

// Add adds the sample's value to the sum.
func (c *CounterSink) Add(s Sample) {
	c.Sum += s.Value
	c.N++
}

// IsEmpty reports whether no sample was added.
func (c *CounterSink) IsEmpty() bool { return c.N == 0 }

// Rate returns the count per second of d, and false when d is 0.
func (c *CounterSink) Rate(d time.Duration) (float64, bool) {
	if d <= 0 {
		return 0, false
	}
	return c.Sum / d.Seconds(), true
}

// Format returns count and, when d > 0, rate.
func (c *CounterSink) Format(d time.Duration) map[string]float64 {
	out := map[string]float64{"count": c.Sum}
	if r, ok := c.Rate(d); ok {
		out["rate"] = r
	}
	return out
}

// GaugeSink keeps the last value and the extremes.
type GaugeSink struct {
	Value, Min, Max float64
	N               uint64
}

// Add makes the sample the current value and updates min and max; the
// first sample initialises both.
func (g *GaugeSink) Add(s Sample) {
	v := s.Value
	if g.N == 0 || v < g.Min {
		g.Min = v
	}
	if g.N == 0 || v > g.Max {
		g.Max = v
	}
	g.Value = v
	g.N++
}

// IsEmpty reports whether no sample was added.
func (g *GaugeSink) IsEmpty() bool { return g.N == 0 }

// Format returns value, min and max (all 0 when empty).
func (g *GaugeSink) Format(time.Duration) map[string]float64 {
	return map[string]float64{"value": g.Value, "min": g.Min, "max": g.Max}
}

// RateSink counts non-zero samples against all samples.
type RateSink struct {
	Trues, Total uint64
}

// Add counts the sample, as a pass when its value is not zero.
func (r *RateSink) Add(s Sample) {
	if s.Value != 0 {
		r.Trues++
	}
	r.Total++
}

// IsEmpty reports whether no sample was added.
func (r *RateSink) IsEmpty() bool { return r.Total == 0 }

// Rate returns passes/total, and false when there is no sample.
func (r *RateSink) Rate() (float64, bool) {
	if r.Total == 0 {
		return 0, false
	}
	return float64(r.Trues) / float64(r.Total), true
}

// Format returns passes, fails and, with at least one sample, rate.
func (r *RateSink) Format(time.Duration) map[string]float64 {
	out := map[string]float64{"passes": float64(r.Trues), "fails": float64(r.Total - r.Trues)}
	if v, ok := r.Rate(); ok {
		out["rate"] = v
	}
	return out
}

// TrendSink keeps every value (8 bytes each) for exact percentiles. The
// values are sorted lazily: a sorted prefix is remembered, so that
// re-evaluating after a few more samples only sorts and merges the tail.
type TrendSink struct {
	values   []float64
	sorted   int // values[:sorted] is sorted
	sum      float64
	min, max float64
}

// Add appends the sample's value.
func (t *TrendSink) Add(s Sample) { t.AddValue(s.Value) }

// AddValue appends one value.
func (t *TrendSink) AddValue(v float64) {
	if len(t.values) == 0 || v < t.min {
		t.min = v
	}
	if len(t.values) == 0 || v > t.max {
		t.max = v
	}
	t.sum += v
	t.values = append(t.values, v)
}

// IsEmpty reports whether no value was added.
func (t *TrendSink) IsEmpty() bool { return len(t.values) == 0 }

// Count returns the number of values.
func (t *TrendSink) Count() int { return len(t.values) }

// Sum returns the sum of the values.
func (t *TrendSink) Sum() float64 { return t.sum }

// Min returns the smallest value, 0 when empty.
func (t *TrendSink) Min() float64 { return t.min }

// Max returns the largest value, 0 when empty.
func (t *TrendSink) Max() float64 { return t.max }

// Avg returns the mean, 0 when empty.
func (t *TrendSink) Avg() float64 {
	if len(t.values) == 0 {
		return 0
	}
	return t.sum / float64(len(t.values))
}

// P returns the pct-th percentile (0..100) by linear interpolation between
// the closest ranks: with the values sorted, i = pct/100·(n−1), and the
// result lies between values[floor(i)] and values[ceil(i)]. It is 0 when
// the sink is empty.
func (t *TrendSink) P(pct float64) float64 {
	n := len(t.values)
	switch {
	case n == 0:
		return 0
	case n == 1:
		return t.values[0]
	}
	t.sort()
	if pct <= 0 {
		return t.values[0]
	}
	if pct >= 100 {
		return t.values[n-1]
	}
	i := pct / 100 * float64(n-1)
	lo := math.Floor(i)
	l := int(lo)
	if l+1 >= n {
		return t.values[n-1]
	}
	return t.values[l] + (t.values[l+1]-t.values[l])*(i-lo)
}

// sort sorts the unsorted tail and merges it into the sorted prefix.
func (t *TrendSink) sort() {
	n := len(t.values)
	if t.sorted == n {
		return
	}
	tail := t.values[t.sorted:]
	slices.Sort(tail)
	if t.sorted > 0 && tail[0] < t.values[t.sorted-1] {
		// Merge from the back, with a copy of the (short) tail.
		buf := slices.Clone(tail)
		i, j, k := t.sorted-1, len(buf)-1, n-1
		for j >= 0 {
			if i >= 0 && t.values[i] > buf[j] {
				t.values[k] = t.values[i]
				i--
			} else {
				t.values[k] = buf[j]
				j--
			}
			k--
		}
	}
	t.sorted = n
}

// Stat returns one named statistic: avg, min, max, med, count, sum or
// p(N). ok is false for an unknown name.
func (t *TrendSink) Stat(name string) (v float64, ok bool) {
	switch name {
	case "avg":
		return t.Avg(), true
	case "min":
		return t.min, true
	case "max":
		return t.max, true
	case "med":
		return t.P(50), true
	case "count":
		return float64(len(t.values)), true
	case "sum":
		return t.sum, true
	}
	pct, err := ParsePercentile(name)
	if err != nil {
		return 0, false
	}
	return t.P(pct), true
}

// Format returns min, max, avg, med, count, sum, p(90) and p(95).
func (t *TrendSink) Format(time.Duration) map[string]float64 {
	return map[string]float64{
		"min": t.min, "max": t.max, "avg": t.Avg(), "med": t.P(50),
		"count": float64(len(t.values)), "sum": t.sum,
		"p(90)": t.P(90), "p(95)": t.P(95),
	}
}

// ParsePercentile parses "p(N)" with 0 ≤ N ≤ 100 and returns N.
func ParsePercentile(s string) (float64, error) {
	inner, ok := strings.CutPrefix(s, "p(")
	if ok {
		inner, ok = strings.CutSuffix(inner, ")")
	}
	if !ok {
		return 0, fmt.Errorf("%q is not a percentile: expected p(N) with 0 ≤ N ≤ 100", s)
	}
	pct, err := strconv.ParseFloat(strings.TrimSpace(inner), 64)
	if err != nil || math.IsNaN(pct) || pct < 0 || pct > 100 {
		return 0, fmt.Errorf("invalid percentile %q: N in p(N) must be a number from 0 to 100", s)
	}
	return pct, nil
}

// defaultTrendStats is the default list of trend statistics in the summary.
var defaultTrendStats = []string{"avg", "min", "med", "max", "p(90)", "p(95)"}

// DefaultTrendStats returns k6's default summaryTrendStats:
// avg, min, med, max, p(90), p(95).
func DefaultTrendStats() []string { return slices.Clone(defaultTrendStats) }

// ValidateTrendStats checks a summaryTrendStats list: each entry must be
// avg, min, med, max, count, sum or p(N) with 0 ≤ N ≤ 100.
func ValidateTrendStats(stats []string) error {
	for _, s := range stats {
		switch s {
		case "avg", "min", "med", "max", "count", "sum":
			continue
		}
		if _, err := ParsePercentile(s); err != nil {
			return fmt.Errorf("invalid summaryTrendStats entry %q: allowed are avg, min, med, max, count, sum and p(N) with 0 ≤ N ≤ 100", s)
		}
	}
	return nil
}
