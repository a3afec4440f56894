package cdeload

import (
	"context"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/cdeload/cdeload/engine/metrics"
	"github.com/cdeload/cdeload/sshtraffic"
)

// TestStreamRecorderDeliversEverySampleOnce drives one recorder from two
// goroutines (the echo engine's reader and writer) across several flush
// intervals and checks that every RTT sample and every counted byte and
// missed tick reaches the VU's channel exactly once, with the transport
// tag, that the final batch carries the zero error counter, and that
// nothing is sent after finish.
func TestStreamRecorderDeliversEverySampleOnce(t *testing.T) {
	reg := metrics.NewRegistry()
	ms, err := registerMetrics(reg, metrics.RegisterBuiltin(reg))
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan metrics.Samples, 1000)
	e := &emitter{ctx: context.Background(), ch: ch, tags: metrics.NewTagSet(map[string]string{"scenario": "s"}),
		meta: map[string]string{"workspace": "ws"}, ms: ms}
	r := e.startStream("ssh", nil)

	const frames = 300
	// Spread over about two and a half flush intervals, so periodic
	// batches are sent as well as the final one.
	pause := flushInterval * 5 / 2 / frames
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { // writer
		defer wg.Done()
		for range frames {
			r.OnBytes(128, 0)
			time.Sleep(pause)
		}
		r.OnTickMissed(2)
	}()
	go func() { // reader
		defer wg.Done()
		for i := range frames {
			r.OnRTT(time.Millisecond, uint64(i))
			r.OnBytes(0, 128)
			time.Sleep(pause)
		}
	}()
	wg.Wait()
	batchesBeforeFinish := len(ch)
	r.finish()
	r.OnRTT(time.Millisecond, frames) // after finish: dropped
	r.OnBytes(128, 128)
	close(ch)

	if batchesBeforeFinish < 2 {
		t.Errorf("%d batches sent during the stream, want periodic batches (>= 2) every %v", batchesBeforeFinish, flushInterval)
	}
	sums := map[string]float64{}
	counts := map[string]int{}
	for batch := range ch {
		for _, s := range batch {
			if v, _ := s.Tags.Get("transport"); v != "ssh" {
				t.Errorf("%s sample has transport=%q, want ssh", s.Metric.Name, v)
			}
			if s.Metadata["workspace"] != "ws" {
				t.Errorf("%s sample lost the metadata: %v", s.Metric.Name, s.Metadata)
			}
			sums[s.Metric.Name] += s.Value
			counts[s.Metric.Name]++
		}
	}
	want := map[string]float64{
		mTrafficRTT:           frames * 1, // 1 ms each
		mTrafficBytesSent:     frames * 128,
		mTrafficBytesReceived: frames * 128,
		mTrafficTicksMissed:   2,
		mTrafficErrors:        0,
	}
	for name, v := range want {
		if sums[name] != v {
			t.Errorf("%s: sum %v, want %v", name, sums[name], v)
		}
	}
	if counts[mTrafficRTT] != frames {
		t.Errorf("%d %s samples, want %d", counts[mTrafficRTT], mTrafficRTT, frames)
	}
	if counts[mTrafficErrors] != 1 {
		t.Errorf("%d %s samples, want the single zero-valued one of the final batch", counts[mTrafficErrors], mTrafficErrors)
	}
}

// TestStreamRecorderDoesNotBlockOnAFullChannel: a batch due while the
// sample pump is not reading must not hold up the stream's reader or
// writer (that would miss ticks); its samples are sent with the final
// batch instead, none lost.
func TestStreamRecorderDoesNotBlockOnAFullChannel(t *testing.T) {
	reg := metrics.NewRegistry()
	ms, err := registerMetrics(reg, metrics.RegisterBuiltin(reg))
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan metrics.Samples) // nobody reads yet
	e := &emitter{ctx: context.Background(), ch: ch, tags: metrics.NewTagSet(nil), ms: ms}
	r := e.startStream("terminal", nil)

	const frames = 30
	events := make(chan struct{})
	go func() {
		defer close(events)
		for i := range frames {
			r.OnBytes(128, 0)
			r.OnRTT(time.Millisecond, uint64(i))
			r.OnBytes(0, 128)
			time.Sleep(flushInterval * 3 / 2 / frames)
		}
	}()
	select {
	case <-events:
	case <-time.After(flushInterval * 3 / 2 * 10):
		t.Fatalf("the stream's events blocked on a channel nobody reads")
	}
	got := make(chan map[string]float64)
	go func() {
		sums := map[string]float64{}
		for batch := range ch {
			for _, s := range batch {
				sums[s.Metric.Name] += s.Value
			}
		}
		got <- sums
	}()
	r.finish()
	close(ch)
	sums := <-got
	if sums[mTrafficRTT] != frames || sums[mTrafficBytesSent] != frames*128 || sums[mTrafficBytesReceived] != frames*128 {
		t.Errorf("sums %v, want %s=%d, bytes %d each way", sums, mTrafficRTT, frames, frames*128)
	}
}

// stallingEcho echoes every write back through a pipe; its stallAt-th
// write first sleeps for stall, as a writer starved of CPU would.
type stallingEcho struct {
	r       *io.PipeReader
	w       *io.PipeWriter
	writes  int // only the stream's writer calls Write
	stallAt int
	stall   time.Duration
}

func (s *stallingEcho) Read(p []byte) (int, error) { return s.r.Read(p) }

func (s *stallingEcho) Write(p []byte) (int, error) {
	s.writes++
	if s.writes == s.stallAt {
		time.Sleep(s.stall)
	}
	return s.w.Write(p)
}

// TestEchoMissedTicksReachTheMetricAsCounted: the benchmark compares the
// baseline's missed ticks (the echo engine's EchoResult.TicksMissed) with
// cdeload's (the sum of traffic_ticks_missed): the two must be the same
// count. A writer stalled for several intervals misses ticks; every one of
// them reaches the metric, once.
func TestEchoMissedTicksReachTheMetricAsCounted(t *testing.T) {
	reg := metrics.NewRegistry()
	ms, err := registerMetrics(reg, metrics.RegisterBuiltin(reg))
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan metrics.Samples, 100)
	e := &emitter{ctx: context.Background(), ch: ch, tags: metrics.NewTagSet(nil), ms: ms}
	rec := e.startStream("ssh", nil)

	pr, pw := io.Pipe()
	defer pr.Close()
	// Write 1 is the warm-up frame; the stall hits the third scheduled frame.
	rw := &stallingEcho{r: pr, w: pw, stallAt: 4, stall: 350 * time.Millisecond}
	const interval, ticks = 50 * time.Millisecond, 20
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := sshtraffic.EchoStream(ctx, rw, sshtraffic.StreamConfig{BytesPerTick: 64, TickInterval: interval, Duration: ticks * interval}, rec)
	rec.finish()
	close(ch)
	if err != nil {
		t.Fatalf("echo: %v", err)
	}
	var missed float64
	for batch := range ch {
		for _, s := range batch {
			if s.Metric.Name == mTrafficTicksMissed {
				missed += s.Value
			}
		}
	}
	// 350 ms late at 50 ms intervals: ticks more than one interval overdue
	// are missed (about 6; scheduling noise may add some).
	if res.TicksMissed < 4 {
		t.Errorf("EchoResult.TicksMissed = %d after a 350 ms stall at %v intervals, want >= 4", res.TicksMissed, interval)
	}
	if missed != float64(res.TicksMissed) {
		t.Errorf("traffic_ticks_missed sums to %v, EchoResult.TicksMissed is %d: the two counts must agree", missed, res.TicksMissed)
	}
	if res.FramesSent+res.TicksMissed != ticks {
		t.Errorf("%d frames sent + %d ticks missed, want the %d ticks of the schedule", res.FramesSent, res.TicksMissed, ticks)
	}
}
