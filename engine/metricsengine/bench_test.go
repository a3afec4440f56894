package metricsengine

import (
	"testing"
	"time"

	"github.com/cdeload/cdeload/engine/metrics"
	"github.com/cdeload/cdeload/engine/summary"
)

const benchBatch = 1000

// benchBatches builds 16 batches of 1000 samples with a realistic mix:
// 60% traffic_rtt over 8 tag sets, 20% a data counter, 10% checks, 10%
// iterations.
func benchBatches(f *fixture) []metrics.Samples {
	sent := f.reg.MustNewMetric("traffic_bytes_sent", metrics.Counter, metrics.Data)
	var tagsets []*metrics.TagSet
	for _, sc := range []string{"a", "b", "c", "d"} {
		for _, tr := range []string{"ssh", "terminal"} {
			tagsets = append(tagsets, metrics.NewTagSet(map[string]string{"scenario": sc, "transport": tr, "group": "::traffic"}))
		}
	}
	out := make([]metrics.Samples, 16)
	now := time.Now()
	for b := range out {
		batch := make(metrics.Samples, benchBatch)
		for i := range batch {
			ts := tagsets[(b+i)%len(tagsets)]
			var m *metrics.Metric
			switch k := i % 10; {
			case k < 6:
				m = f.rtt
			case k < 8:
				m = sent
			case k < 9:
				m, ts = f.b.Checks, ts.With("check", "no stream errors")
			default:
				m = f.b.Iterations
			}
			batch[i] = metrics.Sample{Metric: m, Tags: ts, Time: now, Value: float64((b*benchBatch + i) % 997)}
		}
		out[b] = batch
	}
	return out
}

const benchThresholds = `{
	"traffic_rtt{transport:ssh}": ["p(95)<50"],
	"traffic_rtt{transport:terminal}": ["p(95)<80"],
	"traffic_rtt": ["avg<100"],
	"checks": ["rate>0.99"],
	"iterations": ["count>0"]
}`

// BenchmarkIngest measures samples per second through the engine: buffer,
// aggregate into metric and submetric sinks, count checks.
func BenchmarkIngest(b *testing.B) {
	for _, full := range []bool{false, true} {
		name := "compact"
		if full {
			name = "full"
		}
		b.Run(name, func(b *testing.B) {
			f := newFixture(b)
			e := f.engine(b, benchThresholds, Options{PerGroupAndScenario: full})
			batches := benchBatches(f)
			i := 0
			start := time.Now()
			for b.Loop() {
				e.AddMetricSamples([]metrics.Samples{batches[i%len(batches)]})
				i++
			}
			e.Flush()
			el := time.Since(start)
			b.ReportMetric(float64(i*benchBatch)/el.Seconds(), "samples/s")
			_ = e.Summary(summary.Options{}, time.Second, nil)
		})
	}
}

// BenchmarkIngestParallel pushes from GOMAXPROCS goroutines at once.
func BenchmarkIngestParallel(b *testing.B) {
	f := newFixture(b)
	e := f.engine(b, benchThresholds, Options{})
	batches := benchBatches(f)
	if err := e.Start(); err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	var total int64
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			e.AddMetricSamples([]metrics.Samples{batches[i%len(batches)]})
			i++
		}
	})
	total = int64(b.N) * benchBatch
	_ = e.Stop()
	b.ReportMetric(float64(total)/time.Since(start).Seconds(), "samples/s")
}

// BenchmarkIngestBaseline is the floor the engine is compared with: the
// same samples added straight into one sink per metric, with no tags,
// submetrics, checks, buffering or locking.
func BenchmarkIngestBaseline(b *testing.B) {
	f := newFixture(b)
	batches := benchBatches(f)
	sinks := map[*metrics.Metric]metrics.Sink{}
	for _, batch := range batches {
		for _, s := range batch {
			if sinks[s.Metric] == nil {
				sinks[s.Metric] = metrics.NewSink(s.Metric.Type)
			}
		}
	}
	i := 0
	start := time.Now()
	for b.Loop() {
		batch := batches[i%len(batches)]
		for j := range batch {
			sinks[batch[j].Metric].Add(batch[j])
		}
		i++
	}
	b.ReportMetric(float64(i*benchBatch)/time.Since(start).Seconds(), "samples/s")
}
