package prometheusrw

import (
	"fmt"
	"math"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/cdeload/cdeload/engine/metrics"
	"github.com/cdeload/cdeload/engine/output/prometheusrw/promtest"
)

func TestNativeBucketIndex(t *testing.T) {
	// Bucket i holds (2^((i-1)/8), 2^(i/8)]; want = ceil(8*log2(v)),
	// computed by hand.
	for _, c := range []struct {
		v    float64
		want int32
	}{
		{1, 0}, {2, 8}, {0.5, -8}, {1024, 80}, // powers of two are upper bounds
		{1.05, 1},   // 8*log2(1.05) = 0.563
		{1.09, 1},   // 0.9946, just below 2^(1/8) = 1.0905
		{1.091, 2},  // 1.0052, just above it
		{1.1, 2},    // 1.100
		{3, 13},     // 12.68
		{0.05, -34}, // -34.58
		{0.001, -79},
		{math.Nextafter(1, 2), 1},
		{math.Nextafter(1, 0), 0},
	} {
		if got := nativeBucketIndex(c.v); got != c.want {
			t.Errorf("nativeBucketIndex(%v) = %d, want %d", c.v, got, c.want)
		}
	}
}

func TestNativeHistAdd(t *testing.T) {
	var h nativeHist
	for _, v := range []float64{1, 1.05, 1.1, 0, 1e-200, -3, 2} {
		h.add(v)
	}
	if h.count != 7 || h.zero != 2 {
		t.Fatalf("count %d zero %d, want 7 and 2", h.count, h.zero)
	}
	if !approx(h.sum, 1+1.05+1.1+1e-200-3+2) {
		t.Errorf("sum = %v", h.sum)
	}
	// positive: index 0 (1), 1 (1.05), 2 (1.1), 8 (2)
	if h.pos.first != 0 || len(h.pos.counts) != 9 || h.pos.counts[0] != 1 || h.pos.counts[1] != 1 ||
		h.pos.counts[2] != 1 || h.pos.counts[8] != 1 {
		t.Errorf("positive buckets first=%d %v", h.pos.first, h.pos.counts)
	}
	if h.neg.first != 13 || len(h.neg.counts) != 1 || h.neg.counts[0] != 1 {
		t.Errorf("negative buckets first=%d %v", h.neg.first, h.neg.counts)
	}
	// Growing downwards keeps earlier counts.
	h.add(0.5)
	if h.pos.first != -8 || h.pos.counts[8] != 1 || h.pos.counts[0] != 1 || h.pos.counts[16] != 1 {
		t.Errorf("after 0.5: first=%d %v", h.pos.first, h.pos.counts)
	}
}

type span struct {
	offset int64
	length uint64
}

// decodeBuckets decodes the spans and deltas fields of a Histogram body.
func decodeBuckets(t *testing.T, b []byte, spansField, deltasField protowire.Number) ([]span, []int64) {
	t.Helper()
	var spans []span
	var deltas []int64
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			t.Fatalf("bad tag: %v", protowire.ParseError(n))
		}
		b = b[n:]
		val := b
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			t.Fatalf("bad field %d: %v", num, protowire.ParseError(n))
		}
		val, b = val[:n], b[n:]
		switch num {
		case spansField:
			body, _ := protowire.ConsumeBytes(val)
			var s span
			for len(body) > 0 {
				f, _, m := protowire.ConsumeTag(body)
				body = body[m:]
				v, m := protowire.ConsumeVarint(body)
				body = body[m:]
				if f == fieldSpanOffset {
					s.offset = protowire.DecodeZigZag(v)
				} else {
					s.length = v
				}
			}
			spans = append(spans, s)
		case deltasField:
			body, _ := protowire.ConsumeBytes(val)
			for len(body) > 0 {
				v, m := protowire.ConsumeVarint(body)
				body = body[m:]
				deltas = append(deltas, protowire.DecodeZigZag(v))
			}
		}
	}
	return spans, deltas
}

func TestAppendBucketsSpansAndDeltas(t *testing.T) {
	// Buckets 0:2, 1:1, 4:3 (gap of 2: same span), 10:1 (gap of 5: new span).
	b := nativeBuckets{first: 0, counts: []uint64{2, 1, 0, 0, 3, 0, 0, 0, 0, 0, 1}}
	enc := appendBuckets(nil, &b, fieldHistPositiveSpans, fieldHistPositiveDeltas)
	spans, deltas := decodeBuckets(t, enc, fieldHistPositiveSpans, fieldHistPositiveDeltas)
	wantSpans := []span{{0, 5}, {5, 1}}
	wantDeltas := []int64{2, -1, -1, 0, 3, -2}
	if len(spans) != len(wantSpans) || spans[0] != wantSpans[0] || spans[1] != wantSpans[1] {
		t.Errorf("spans = %v, want %v", spans, wantSpans)
	}
	if len(deltas) != len(wantDeltas) {
		t.Fatalf("deltas = %v, want %v", deltas, wantDeltas)
	}
	for i := range deltas {
		if deltas[i] != wantDeltas[i] {
			t.Fatalf("deltas = %v, want %v", deltas, wantDeltas)
		}
	}
	// A negative first index is an absolute (zig-zag) offset.
	b = nativeBuckets{first: -34, counts: []uint64{4}}
	spans, deltas = decodeBuckets(t, appendBuckets(nil, &b, fieldHistNegativeSpans, fieldHistNegativeDeltas),
		fieldHistNegativeSpans, fieldHistNegativeDeltas)
	if len(spans) != 1 || spans[0] != (span{-34, 1}) || len(deltas) != 1 || deltas[0] != 4 {
		t.Errorf("spans %v deltas %v, want [{-34 1}] [4]", spans, deltas)
	}
	if enc := appendBuckets(nil, &nativeBuckets{}, fieldHistPositiveSpans, fieldHistPositiveDeltas); len(enc) != 0 {
		t.Errorf("empty buckets encoded as %x", enc)
	}
}

func TestRealPrometheusNativeHistograms(t *testing.T) {
	prom := promtest.StartWith(t, "--enable-feature=native-histograms")
	out := startFromEnv(t, map[string]string{
		"K6_PROMETHEUS_RW_SERVER_URL":                prom.URL + "/api/v1/write",
		"K6_PROMETHEUS_RW_PUSH_INTERVAL":             "100ms",
		"K6_PROMETHEUS_RW_TREND_AS_NATIVE_HISTOGRAM": "true",
		"K6_PROMETHEUS_RW_TREND_STATS":               "p(95),avg",
		"K6_PROMETHEUS_RW_STALE_MARKERS":             "true",
	})
	reg := metrics.NewRegistry()
	dur := reg.MustNewMetric("dur", metrics.Trend, metrics.Time)
	size := reg.MustNewMetric("size", metrics.Trend, metrics.Data)
	plain := reg.MustNewMetric("plain", metrics.Trend)
	reqs := reg.MustNewMetric("reqs", metrics.Counter)
	tags := metrics.NewTagSet(map[string]string{"scenario": "default", "testid": "nh-1"})

	t0 := time.Now().Add(-2 * time.Second).Truncate(time.Millisecond)
	// dur gets 1..100 ms at t0+i ms, in two pushes: the histogram must be
	// cumulative across them.
	batch := func(from, to int) metrics.Samples {
		var s metrics.Samples
		for i := from; i <= to; i++ {
			at := t0.Add(time.Duration(i) * time.Millisecond)
			s = append(s,
				metrics.Sample{Metric: dur, Tags: tags, Time: at, Value: float64(i)},
				metrics.Sample{Metric: size, Tags: tags, Time: at, Value: float64(i * 1000)},
				metrics.Sample{Metric: plain, Tags: tags, Time: at, Value: 0},
				metrics.Sample{Metric: reqs, Tags: tags, Time: at, Value: 1})
		}
		return s
	}
	first := batch(1, 50)
	out.AddMetricSamples([]metrics.Samples{first})
	waitFor(t, 20*time.Second, "a first successful push", func() bool {
		s := out.Stats()
		return s.Pushes-s.FailedPushes >= 1 && s.Samples == uint64(len(first))
	}, func() string { return fmt.Sprintf("stats %+v", out.Stats()) })
	out.AddMetricSamples([]metrics.Samples{batch(51, 100)})
	if err := out.Stop(); err != nil {
		t.Fatal(err)
	}
	if s := out.Stats(); s.FailedPushes != 0 {
		t.Fatalf("failed pushes: %+v\nprometheus log:\n%s", s, prom.Log())
	}

	mid := t0.Add(75 * time.Millisecond) // after the first push's samples only
	end := t0.Add(time.Second)           // after every sample, before the stale markers
	expectValue(t, prom, "histogram_count(k6_dur_seconds)", mid, 50)
	expectValue(t, prom, "histogram_count(k6_dur_seconds)", end, 100)
	expectValue(t, prom, "histogram_sum(k6_dur_seconds)", end, 5.050) // seconds
	expectValue(t, prom, "histogram_count(k6_size_bytes)", end, 100)
	expectValue(t, prom, "histogram_sum(k6_size_bytes)", end, 5050000)
	expectValue(t, prom, "histogram_count(k6_plain)", end, 100)
	expectValue(t, prom, "histogram_sum(k6_plain)", end, 0)
	expectSeries(t, prom, "k6_reqs_total", end, map[string]string{"scenario": "default", "testid": "nh-1"}, 100)

	// The histogram series carries the tags as labels (histogram_count
	// keeps them, without __name__).
	got := prom.QueryAt(t, "histogram_count(k6_dur_seconds)", end)
	if len(got) != 1 || got[0].Labels["testid"] != "nh-1" || got[0].Labels["scenario"] != "default" || len(got[0].Labels) != 2 {
		t.Errorf("k6_dur_seconds series = %v, want one with labels scenario and testid", got)
	}
	// No per-stat gauges in histogram mode.
	for _, q := range []string{"k6_dur_p95", "k6_dur_avg", "k6_dur_seconds_p95", "k6_size_p95", "k6_plain_avg"} {
		if res := prom.QueryAt(t, q, end); len(res) != 0 {
			t.Errorf("%s = %v, want no series in histogram mode", q, res)
		}
	}

	// The median (50 or 51 ms) lies in schema-3 bucket -34 =
	// (2^(-35/8), 2^(-34/8)] = (0.048194, 0.052556] s; Prometheus
	// interpolates within it.
	q := prom.QueryAt(t, "histogram_quantile(0.5, k6_dur_seconds)", end)
	if len(q) != 1 {
		t.Fatalf("histogram_quantile: %v", q)
	}
	if v := q[0].Value; v <= 0.048194 || v > 0.052556 || math.Abs(v-0.0505)/0.0505 > 0.05 {
		t.Errorf("histogram_quantile(0.5) = %v s, want within bucket (0.048194, 0.052556] and 5%% of 0.0505", v)
	}
	q = prom.QueryAt(t, "histogram_quantile(0.99, k6_dur_seconds)", end)
	if len(q) != 1 || math.Abs(q[0].Value-0.099)/0.099 > 0.1 {
		t.Errorf("histogram_quantile(0.99) = %v, want about 0.099 s", q)
	}

	// Stale markers end the histogram series too.
	if res := prom.QueryAt(t, "histogram_count(k6_dur_seconds)", time.Now().Add(time.Second)); len(res) != 0 {
		t.Errorf("after the stale marker k6_dur_seconds = %v, want no series", res)
	}
}

// expectValue asserts that query q at time at returns one series with
// value want.
func expectValue(t *testing.T, p *promtest.Server, q string, at time.Time, want float64) {
	t.Helper()
	res := p.QueryAt(t, q, at)
	if len(res) != 1 || !approx(res[0].Value, want) {
		t.Errorf("%s = %v, want one series with value %v", q, res, want)
	}
}
