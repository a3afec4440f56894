package flusher_test

import (
	"sync"
	"testing"
	"time"

	"github.com/cdeload/cdeload/engine/metrics"
	"github.com/cdeload/cdeload/engine/output/flusher"
)

// recorder collects the values of the samples each write call received.
type recorder struct {
	mu     sync.Mutex
	writes [][]float64
}

func (r *recorder) write(batches []metrics.Samples) {
	var vals []float64
	for _, b := range batches {
		for _, s := range b {
			vals = append(vals, s.Value)
		}
	}
	r.mu.Lock()
	r.writes = append(r.writes, vals)
	r.mu.Unlock()
}

func (r *recorder) all() []float64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []float64
	for _, w := range r.writes {
		out = append(out, w...)
	}
	return out
}

func sample(m *metrics.Metric, v float64) metrics.Samples {
	return metrics.Samples{{Metric: m, Time: time.Now(), Value: v}}
}

func TestWritesWhileRunningAndTheRestOnStop(t *testing.T) {
	m := metrics.NewRegistry().MustNewMetric("iterations", metrics.Counter)
	var r recorder
	f := flusher.New(20*time.Millisecond, r.write)
	f.Start()
	f.Add([]metrics.Samples{sample(m, 1), sample(m, 2)})
	deadline := time.Now().Add(10 * time.Second)
	for len(r.all()) < 2 {
		if time.Now().After(deadline) {
			t.Fatal("buffered samples were not written while running")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Concurrent adders while the ticker writes; the race detector checks
	// that write is never called concurrently with itself.
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				f.Add([]metrics.Samples{sample(m, float64(100+g*50+i))})
			}
		}()
	}
	wg.Wait()
	f.Stop()
	got := r.all()
	if len(got) != 202 {
		t.Fatalf("wrote %d samples, want 202 (every one exactly once)", len(got))
	}
	seen := map[float64]int{}
	for _, v := range got {
		seen[v]++
	}
	for _, v := range []float64{1, 2, 100, 150, 299} {
		if seen[v] != 1 {
			t.Errorf("sample %v written %d times, want 1", v, seen[v])
		}
	}
}

func TestStopWritesWhatIsLeft(t *testing.T) {
	m := metrics.NewRegistry().MustNewMetric("iterations", metrics.Counter)
	var r recorder
	f := flusher.New(time.Hour, r.write)
	f.Start()
	f.Add([]metrics.Samples{sample(m, 7)})
	f.Stop()
	if got := r.all(); len(got) != 1 || got[0] != 7 {
		t.Errorf("after Stop wrote %v, want [7]", got)
	}
}
