package cdeload

import (
	"context"
	"testing"
	"time"

	"github.com/cdeload/cdeload/engine/metrics"
)

// benchEmitter returns an emitter whose channel is drained, the way the
// engine's sample pump drains a VU's channel, and a stop function.
func benchEmitter(b *testing.B) (*emitter, func()) {
	var sends int
	reg := metrics.NewRegistry()
	ms, err := registerMetrics(reg, metrics.RegisterBuiltin(reg))
	if err != nil {
		b.Fatal(err)
	}
	ch := make(chan metrics.Samples, 100)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range ch {
			sends++
		}
	}()
	e := &emitter{ctx: context.Background(), ch: ch, tags: metrics.NewTagSet(map[string]string{"scenario": "s"}),
		meta: map[string]string{"workspace": "ws"}, ms: ms}
	return e, func() {
		close(ch)
		<-done
		b.ReportMetric(float64(sends)/float64(b.N), "sends/sample")
	}
}

// BenchmarkRTTBatched records RTT samples and byte counts through a stream recorder (one
// channel send per flush interval).
func BenchmarkRTTBatched(b *testing.B) {
	e, stop := benchEmitter(b)
	r := e.startStream("ssh", nil)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r.OnRTT(time.Millisecond, uint64(i))
		r.OnBytes(128, 0)
		r.OnBytes(0, 128)
	}
	r.finish()
	stop()
}

// BenchmarkRTTPerSample is the baseline: one channel send per sample
// (RTT, bytes sent, bytes received).
func BenchmarkRTTPerSample(b *testing.B) {
	e, stop := benchEmitter(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		e.push(e.sample(e.ms.rtt, 1, "transport", "ssh"))
		e.push(e.sample(e.ms.bytesSent, 128, "transport", "ssh"))
		e.push(e.sample(e.ms.bytesReceived, 128, "transport", "ssh"))
	}
	stop()
}
