package metrics

import (
	"math"
	"math/rand/v2"
	"runtime"
	"sort"
	"testing"
	"time"
)

func trendOf(vals ...float64) *TrendSink {
	t := &TrendSink{}
	for _, v := range vals {
		t.Add(Sample{Value: v})
	}
	return t
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func TestTrendPercentilesHandComputed(t *testing.T) {
	// 1..10 shuffled: i = x/100·9.
	tr := trendOf(7, 3, 10, 1, 9, 2, 8, 4, 6, 5)
	cases := []struct {
		stat string
		want float64
	}{
		{"p(0)", 1}, {"p(100)", 10}, {"med", 5.5}, {"p(50)", 5.5},
		{"p(90)", 9.1},     // i=8.1: 9 + 0.1·(10−9)
		{"p(95)", 9.55},    // i=8.55
		{"p(99.9)", 9.991}, // i=8.991
		{"p(10)", 1.9},     // i=0.9
		{"avg", 5.5}, {"min", 1}, {"max", 10}, {"count", 10}, {"sum", 55},
	}
	for _, c := range cases {
		got, ok := tr.Stat(c.stat)
		if !ok || !near(got, c.want) {
			t.Errorf("%s = %v (ok=%v), want %v", c.stat, got, ok, c.want)
		}
	}
	if got := trendOf(10, 20).P(25); !near(got, 12.5) {
		t.Errorf("p(25) of [10 20] = %v, want 12.5", got)
	}
	if got := trendOf(42).P(99); got != 42 {
		t.Errorf("p(99) of one value = %v, want 42", got)
	}
	empty := &TrendSink{}
	for _, s := range []string{"avg", "min", "max", "med", "p(95)"} {
		if v, _ := empty.Stat(s); v != 0 {
			t.Errorf("empty trend %s = %v, want 0", s, v)
		}
	}
	if _, ok := tr.Stat("p(101)"); ok {
		t.Error("p(101) accepted")
	}
	if _, ok := tr.Stat("mean"); ok {
		t.Error("unknown stat accepted")
	}
}

// refPercentile is an independent reference: sort a copy, interpolate.
func refPercentile(vals []float64, pct float64) float64 {
	s := append([]float64(nil), vals...)
	sort.Float64s(s)
	i := pct / 100 * float64(len(s)-1)
	lo, hi := int(math.Floor(i)), int(math.Ceil(i))
	return s[lo] + (s[hi]-s[lo])*(i-math.Floor(i))
}

func TestTrendIncrementalSortMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	tr := &TrendSink{}
	var all []float64
	for round := 0; round < 20; round++ {
		n := 1 + r.IntN(500)
		for i := 0; i < n; i++ {
			// Later rounds skew lower so that the merge path is exercised.
			v := r.Float64() * 1000 / float64(round+1)
			tr.AddValue(v)
			all = append(all, v)
		}
		for _, p := range []float64{0, 1, 50, 90, 95, 99, 100} {
			if got, want := tr.P(p), refPercentile(all, p); !near(got, want) {
				t.Fatalf("round %d p(%v) = %v, want %v", round, p, got, want)
			}
		}
	}
	if tr.Count() != len(all) {
		t.Fatalf("count %d, want %d", tr.Count(), len(all))
	}
}

func TestCounterSink(t *testing.T) {
	c := NewSink(Counter).(*CounterSink)
	for _, v := range []float64{3, 4, 3} {
		c.Add(Sample{Value: v})
	}
	f := c.Format(0)
	if f["count"] != 10 {
		t.Errorf("count = %v, want 10", f["count"])
	}
	if _, ok := f["rate"]; ok {
		t.Error("rate is set for a zero duration")
	}
	if f := c.Format(2 * time.Second); f["rate"] != 5 {
		t.Errorf("rate over 2s = %v, want 5", f["rate"])
	}
	if !NewSink(Counter).IsEmpty() || c.IsEmpty() {
		t.Error("IsEmpty wrong")
	}
}

func TestGaugeSinkAllNegative(t *testing.T) {
	g := NewSink(Gauge).(*GaugeSink)
	for _, v := range []float64{-5, -3, -10} {
		g.Add(Sample{Value: v})
	}
	f := g.Format(time.Second)
	if f["value"] != -10 || f["min"] != -10 || f["max"] != -3 {
		t.Errorf("gauge = %v, want value=-10 min=-10 max=-3", f)
	}
}

func TestRateSink(t *testing.T) {
	r := NewSink(Rate).(*RateSink)
	if _, ok := r.Format(0)["rate"]; ok {
		t.Error("empty rate has a rate")
	}
	for _, v := range []float64{1, 0, 1, 5} {
		r.Add(Sample{Value: v})
	}
	f := r.Format(0)
	if f["rate"] != 0.75 || f["passes"] != 3 || f["fails"] != 1 {
		t.Errorf("rate sink = %v, want rate=0.75 passes=3 fails=1", f)
	}
}

func TestValidateTrendStats(t *testing.T) {
	if err := ValidateTrendStats([]string{"avg", "p(99.9)", "count", "sum", "med"}); err != nil {
		t.Errorf("valid stats rejected: %v", err)
	}
	for _, bad := range []string{"p(101)", "p(-1)", "mean", "p(NaN)", "p(x)", "p95"} {
		if err := ValidateTrendStats([]string{bad}); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestParseMetricKey(t *testing.T) {
	cases := []struct {
		key, name string
		tags      map[string]string
	}{
		{"http_req_duration", "http_req_duration", nil},
		{"traffic_rtt{transport:ssh}", "traffic_rtt", map[string]string{"transport": "ssh"}},
		{`m{ a : "x" , b:'y'}`, "m", map[string]string{"a": "x", "b": "y"}},
		{"checks{group:::setup}", "checks", map[string]string{"group": "::setup"}},
		{"m{url:http://x:80/}", "m", map[string]string{"url": "http://x:80/"}},
	}
	for _, c := range cases {
		name, f, err := ParseMetricKey(c.key)
		if err != nil {
			t.Errorf("%q: %v", c.key, err)
			continue
		}
		if name != c.name {
			t.Errorf("%q: name %q, want %q", c.key, name, c.name)
		}
		if c.tags == nil {
			if f != nil {
				t.Errorf("%q: filter %v, want nil", c.key, f.Map())
			}
			continue
		}
		got := f.Map()
		if len(got) != len(c.tags) {
			t.Errorf("%q: tags %v, want %v", c.key, got, c.tags)
		}
		for k, v := range c.tags {
			if got[k] != v {
				t.Errorf("%q: tag %s=%q, want %q", c.key, k, got[k], v)
			}
		}
	}
	for _, bad := range []string{"m{}", "m{a}", "m{a:1", "{a:1}", "m}", "m{:x}"} {
		if _, _, err := ParseMetricKey(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestSubmetricMatching(t *testing.T) {
	_, f, err := ParseMetricKey("traffic_rtt{transport:ssh,scenario:a}")
	if err != nil {
		t.Fatal(err)
	}
	match := NewTagSet(map[string]string{"transport": "ssh", "scenario": "a", "group": "::g"})
	if !Matches(match, f) {
		t.Error("superset of the filter does not match")
	}
	for _, tags := range []map[string]string{
		{"transport": "ssh"},
		{"transport": "terminal", "scenario": "a"},
		{},
	} {
		if Matches(NewTagSet(tags), f) {
			t.Errorf("%v matches %v", tags, f.Map())
		}
	}
	if got := FormatSubmetricTags(f); got != "{ scenario:a, transport:ssh }" {
		t.Errorf("FormatSubmetricTags = %q", got)
	}
}

func BenchmarkTrend1M(b *testing.B) {
	const n = 1_000_000
	r := rand.New(rand.NewPCG(3, 4))
	vals := make([]float64, n)
	for i := range vals {
		vals[i] = r.ExpFloat64() * 100
	}
	var retained, total uint64
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		tr := &TrendSink{}
		for _, v := range vals {
			tr.AddValue(v)
		}
		_ = tr.P(95)
		tr.AddValue(1) // one more value and a re-sort: exercises the merge
		_ = tr.P(99)
		runtime.ReadMemStats(&after)
		total = after.TotalAlloc - before.TotalAlloc
		runtime.GC()
		runtime.ReadMemStats(&after)
		retained = after.HeapAlloc - before.HeapAlloc
		runtime.KeepAlive(tr)
	}
	// The target is a 1M-value Trend in at most 16 MB retained.
	b.ReportMetric(float64(retained)/(1<<20), "MiB-retained/1M")
	b.ReportMetric(float64(total)/(1<<20), "MiB-allocated/1M")
}
