package prometheusrw

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/cdeload/cdeload/engine/metrics"
)

const benchBatch = 100 // samples per AddMetricSamples call, like a VU flush

// benchSamples returns batches of a realistic mix: counters, gauges, rates
// and time trends over 4 tag sets each (16 series).
func benchSamples(n int) []metrics.Samples {
	reg := metrics.NewRegistry()
	ms := []*metrics.Metric{
		reg.MustNewMetric("iterations", metrics.Counter),
		reg.MustNewMetric("vus", metrics.Gauge),
		reg.MustNewMetric("checks", metrics.Rate),
		reg.MustNewMetric("traffic_rtt", metrics.Trend, metrics.Time),
	}
	var tagsets []*metrics.TagSet
	for i := 0; i < 4; i++ {
		tagsets = append(tagsets, metrics.NewTagSet(map[string]string{
			"scenario": "default", "testid": "bench", "transport": fmt.Sprint("t", i),
		}))
	}
	now := time.Now()
	out := make([]metrics.Samples, 0, n)
	for b := 0; b < n; b++ {
		batch := make(metrics.Samples, benchBatch)
		for i := range batch {
			k := b*benchBatch + i
			batch[i] = metrics.Sample{
				Metric: ms[k%4], Tags: tagsets[(k/4)%4],
				Time: now.Add(time.Duration(k) * time.Microsecond), Value: float64(k % 97),
				Metadata: map[string]string{"vu": "1"},
			}
		}
		out = append(out, batch)
	}
	return out
}

func discardServer(b *testing.B) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusNoContent)
	}))
	b.Cleanup(srv.Close)
	return srv.URL
}

// BenchmarkHandOff compares, in one run, the cost per sample of handing a
// batch to the output (AddMetricSamples) with the baseline of appending
// the batch to a slice. bench/output.sh prints the ratio.
func BenchmarkHandOff(b *testing.B) {
	batches := benchSamples(1024)
	b.Run("baseline_append", func(b *testing.B) {
		var mu sync.Mutex
		var sink []metrics.Samples
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			mu.Lock()
			sink = append(sink, batches[i%len(batches)])
			if len(sink) >= 1<<16 {
				sink = sink[:0]
			}
			mu.Unlock()
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*benchBatch), "ns/sample")
	})
	b.Run("AddMetricSamples", func(b *testing.B) {
		cfg, err := ParseConfig(nil, nil, "url="+discardServer(b)+",pushInterval=1s")
		if err != nil {
			b.Fatal(err)
		}
		o, err := New(cfg, nil)
		if err != nil {
			b.Fatal(err)
		}
		if err := o.Start(); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			o.AddMetricSamples(batches[i%len(batches) : i%len(batches)+1])
		}
		b.StopTimer()
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*benchBatch), "ns/sample")
		_ = o.Stop()
	})
}

// BenchmarkThroughput measures samples per second through the whole
// output: AddMetricSamples from 4 goroutines plus aggregation, until every
// sample is aggregated, with pushes to a loopback receiver.
func BenchmarkThroughput(b *testing.B) {
	batches := benchSamples(1024)
	cfg, err := ParseConfig(nil, nil, "url="+discardServer(b)+",pushInterval=100ms")
	if err != nil {
		b.Fatal(err)
	}
	o, err := New(cfg, nil)
	if err != nil {
		b.Fatal(err)
	}
	if err := o.Start(); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	const producers = 4
	var wg sync.WaitGroup
	for p := 0; p < producers; p++ {
		wg.Add(1)
		go func(p int) {
			defer wg.Done()
			for i := p; i < b.N; i += producers {
				o.AddMetricSamples(batches[i%len(batches) : i%len(batches)+1])
			}
		}(p)
	}
	wg.Wait()
	want := uint64(b.N) * benchBatch
	for o.Stats().Samples < want {
		time.Sleep(100 * time.Microsecond)
	}
	b.StopTimer()
	secs := b.Elapsed().Seconds()
	b.ReportMetric(float64(want)/secs, "samples/s")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(want), "ns/sample")
	_ = o.Stop()
}

// BenchmarkAggregate is the aggregation alone (one goroutine), per sample.
func BenchmarkAggregate(b *testing.B) {
	batches := benchSamples(1024)
	stats := []trendStat{}
	for _, s := range DefaultTrendStats {
		st, _ := parseStat(s)
		stats = append(stats, st)
	}
	agg := newAggregator(stats)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		batch := batches[i%len(batches)]
		for j := range batch {
			agg.add(&batch[j])
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*benchBatch), "ns/sample")
}
