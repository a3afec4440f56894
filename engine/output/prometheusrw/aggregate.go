package prometheusrw

import (
	"math"
	"sort"
	"time"

	"github.com/cdeload/cdeload/engine/metrics"
)

// seriesKey identifies a time series: a metric and its indexed tags.
type seriesKey struct {
	metric *metrics.Metric
	tags   string
}

// series is the cumulative state of one metric+tags time series since the
// start of the run. A trend series is exported as one Prometheus series per
// trend stat; the others as exactly one.
type series struct {
	metric *metrics.Metric
	// labels holds, per exported series, the encoded Label fields of a
	// TimeSeries message (tags plus __name__), built once.
	labels [][]byte

	sum     float64 // counter
	last    float64 // gauge
	total   uint64  // rate: samples
	nonzero uint64  // rate: non-zero samples
	trend   trendAgg
	hist    *nativeHist // trend, when sent as a native histogram

	lastMs int64 // newest sample time, ms since epoch
	sentMs int64 // sample time of the last successful push, ms
}

// aggregator keeps one series per metric+tags and builds write requests.
// It is owned by a single goroutine.
type aggregator struct {
	stats     []trendStat
	keepTrend bool
	// native sends each trend series as one native histogram instead of
	// one gauge per trend stat; set before the first add.
	native  bool
	histBuf []byte // scratch for encoding one histogram
	series  map[seriesKey]*series
	order   []*series // creation order, for deterministic requests
	scratch []float64
	dropped uint64 // non-finite values ignored
}

func newAggregator(stats []trendStat) *aggregator {
	a := &aggregator{stats: stats, series: make(map[seriesKey]*series)}
	for _, s := range stats {
		if s.needsValues() {
			a.keepTrend = true
		}
	}
	return a
}

// add aggregates one sample.
func (a *aggregator) add(s *metrics.Sample) {
	if s.Metric == nil {
		return
	}
	v := s.Value
	if math.IsNaN(v) || (math.IsInf(v, 0) && s.Metric.Type != metrics.Gauge) {
		a.dropped++
		return
	}
	key := seriesKey{metric: s.Metric, tags: s.Tags.ID()}
	sr := a.series[key]
	if sr == nil {
		sr = a.newSeries(s.Metric, s.Tags)
		a.series[key] = sr
		a.order = append(a.order, sr)
	}
	switch s.Metric.Type {
	case metrics.Counter:
		sr.sum += v
	case metrics.Gauge:
		sr.last = v
	case metrics.Rate:
		sr.total++
		if v != 0 {
			sr.nonzero++
		}
	case metrics.Trend:
		if sr.hist != nil {
			if s.Metric.Contains == metrics.Time {
				v /= 1000 // milliseconds to seconds
			}
			sr.hist.add(v)
		} else {
			sr.trend.add(v)
		}
	}
	ts := s.Time
	if ts.IsZero() {
		ts = time.Now() // an emitter that did not set the time
	}
	if ms := ts.UnixMilli(); ms > sr.lastMs {
		sr.lastMs = ms
	}
}

func (a *aggregator) newSeries(m *metrics.Metric, tags *metrics.TagSet) *series {
	sr := &series{metric: m, lastMs: math.MinInt64, sentMs: math.MinInt64}
	sr.trend.keep = a.keepTrend
	base := "k6_" + m.Name
	var names []string
	switch m.Type {
	case metrics.Counter:
		names = []string{base + "_total"}
	case metrics.Gauge:
		names = []string{base}
	case metrics.Rate:
		names = []string{base + "_rate"}
	case metrics.Trend:
		if a.native {
			sr.hist = &nativeHist{}
			sr.trend.keep = false
			names = []string{base + nativeSuffix(m.Contains)}
			break
		}
		for _, st := range a.stats {
			names = append(names, base+"_"+st.suffix)
		}
	}
	labels := seriesLabels(tags)
	for _, n := range names {
		sr.labels = append(sr.labels, encodeLabels(withName(labels, n)))
	}
	return sr
}

// label is one Prometheus label.
type label struct{ name, value string }

// seriesLabels returns the non-empty tags as labels with valid names,
// sorted by name, without __name__.
func seriesLabels(tags *metrics.TagSet) []label {
	out := make([]label, 0, tags.Len()+1)
	seen := map[string]bool{}
	tags.Each(func(k, v string) {
		if v == "" {
			return
		}
		n := sanitizeLabelName(k)
		if n == "__name__" || seen[n] {
			return
		}
		seen[n] = true
		out = append(out, label{n, v})
	})
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// withName returns labels plus __name__=name, sorted by name.
func withName(labels []label, name string) []label {
	out := make([]label, 0, len(labels)+1)
	out = append(out, labels...)
	out = append(out, label{"__name__", name})
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// sanitizeLabelName maps a tag name to a valid Prometheus label name
// ([a-zA-Z_][a-zA-Z0-9_]*) by replacing other characters with '_'.
func sanitizeLabelName(s string) string {
	ok := s != ""
	for i := 0; i < len(s) && ok; i++ {
		ok = isLabelChar(s[i], i == 0)
	}
	if ok {
		return s
	}
	b := []byte(s)
	for i := range b {
		if !isLabelChar(b[i], i == 0) {
			b[i] = '_'
		}
	}
	if len(b) == 0 {
		return "_"
	}
	return string(b)
}

func isLabelChar(c byte, first bool) bool {
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (!first && c >= '0' && c <= '9')
}

// value returns the current value of the i-th exported series of sr.
func (a *aggregator) value(sr *series, i int) float64 {
	switch sr.metric.Type {
	case metrics.Counter:
		return sr.sum
	case metrics.Gauge:
		return sr.last
	case metrics.Rate:
		if sr.total == 0 {
			return 0
		}
		return float64(sr.nonzero) / float64(sr.total)
	}
	st := a.stats[i]
	v := sr.trend.stat(st)
	if sr.metric.Contains == metrics.Time && st.kind != statCount {
		v /= 1000 // milliseconds to seconds
	}
	return v
}

// sent records that a push included a series at a sample time.
type sent struct {
	s  *series
	ms int64
}

// build encodes every series that got newer samples than its last
// successful push into req (reset first) and returns the included series.
func (a *aggregator) build(req []byte, included []sent) ([]byte, []sent) {
	req = req[:0]
	included = included[:0]
	for _, sr := range a.order {
		if sr.lastMs <= sr.sentMs {
			continue
		}
		if sr.hist != nil {
			hint := uint64(resetHintUnknown)
			if sr.sentMs != math.MinInt64 {
				hint = resetHintNo // cumulative: never reset after a push
			}
			req, a.histBuf = appendHistogramTimeSeries(req, a.histBuf, sr.labels[0], sr.hist, hint, sr.lastMs)
			included = append(included, sent{sr, sr.lastMs})
			continue
		}
		if sr.metric.Type == metrics.Trend && a.keepTrend {
			sr.trend.sort(&a.scratch)
		}
		for i, lb := range sr.labels {
			req = appendTimeSeries(req, lb, a.value(sr, i), sr.lastMs)
		}
		included = append(included, sent{sr, sr.lastMs})
	}
	return req, included
}

// markSent records a successful push.
func markSent(included []sent) {
	for _, in := range included {
		if in.ms > in.s.sentMs {
			in.s.sentMs = in.ms
		}
	}
}

// buildStale encodes a Prometheus stale marker for every exported series,
// at nowMs+1 or 1ms after the series' newest sample, whichever is later.
func (a *aggregator) buildStale(req []byte, nowMs int64) []byte {
	req = req[:0]
	stale := math.Float64frombits(staleNaN)
	for _, sr := range a.order {
		ts := nowMs
		if sr.lastMs > ts {
			ts = sr.lastMs
		}
		for _, lb := range sr.labels {
			req = appendTimeSeries(req, lb, stale, ts+1)
		}
	}
	return req
}

// staleNaN is the bit pattern Prometheus uses to mark a series stale.
const staleNaN uint64 = 0x7ff0000000000002
