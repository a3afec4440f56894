package webdashboard

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cdeload/cdeload/engine/metrics"
)

// benchSamples is one second of echo traffic from n workspaces at 10 ticks
// a second: an RTT and the bytes sent and received per tick.
func benchSamples(n int, start time.Time) metrics.Samples {
	reg := metrics.NewRegistry()
	rtt := reg.MustNewMetric("traffic_rtt", metrics.Trend, metrics.Time)
	sent := reg.MustNewMetric("traffic_bytes_sent", metrics.Counter, metrics.Data)
	recv := reg.MustNewMetric("traffic_bytes_received", metrics.Counter, metrics.Data)
	tags := metrics.NewTagSet(map[string]string{"scenario": "scale", "transport": "ssh"})
	var out metrics.Samples
	for w := range n {
		meta := map[string]string{"workspace": fmt.Sprintf("scaletest-bench-%d", w), "vu": fmt.Sprint(w + 1), "iter": "0"}
		for tick := range 10 {
			at := start.Add(time.Duration(tick) * 100 * time.Millisecond)
			out = append(out,
				metrics.Sample{Metric: rtt, Tags: tags, Time: at, Value: float64(1 + tick%5), Metadata: meta},
				metrics.Sample{Metric: sent, Tags: tags, Time: at, Value: 128, Metadata: meta},
				metrics.Sample{Metric: recv, Tags: tags, Time: at, Value: 128, Metadata: meta})
		}
	}
	return out
}

// BenchmarkAggregate is the cost of aggregating one sample on the output's
// goroutine (a threshold on traffic_rtt included, as in scale.js).
func BenchmarkAggregate(b *testing.B) {
	start := time.Now()
	batch := benchSamples(100, start)
	a := newAggregator(start)
	a.setThresholds(map[string][]string{"traffic_rtt{transport:ssh}": {"p(95)<100"}})
	b.ResetTimer()
	n := 0
	for b.Loop() {
		// Each round is the next second of the run.
		for j := range batch {
			batch[j].Time = batch[j].Time.Add(time.Second)
		}
		a.add([]metrics.Samples{batch})
		n += len(batch)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/sample")
}

// BenchmarkRender is the cost of one page update of a run of 100
// workspaces after 10 minutes.
func BenchmarkRender(b *testing.B) {
	start := time.Now()
	batch := benchSamples(100, start)
	a := newAggregator(start)
	for range 600 {
		for j := range batch {
			batch[j].Time = batch[j].Time.Add(time.Second)
		}
		a.add([]metrics.Samples{batch})
	}
	var size int
	for b.Loop() {
		var sb strings.Builder
		a.render(&sb, pageState{now: start.Add(10 * time.Minute)})
		size = sb.Len()
	}
	b.ReportMetric(float64(size), "bytes/page")
}
