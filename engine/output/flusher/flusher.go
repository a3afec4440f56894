// Package flusher buffers the sample batches a file output receives and
// hands them to the output's write function on one goroutine: every
// interval while running, and once more when stopped. AddMetricSamples
// then never waits on the file.
package flusher

import (
	"sync"
	"time"

	"github.com/cdeload/cdeload/engine/metrics"
)

// Flusher is a buffer of sample batches and the goroutine that drains it.
type Flusher struct {
	interval time.Duration
	write    func(batches []metrics.Samples)

	mu      sync.Mutex
	pending []metrics.Samples
	spare   []metrics.Samples

	stop chan struct{}
	done chan struct{}
}

// New returns a Flusher that calls write with the batches buffered since
// the last call, every interval (which must be positive) once started.
// write is never called concurrently with itself; it must not keep the
// slice it is given.
func New(interval time.Duration, write func(batches []metrics.Samples)) *Flusher {
	return &Flusher{
		interval: interval,
		write:    write,
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
	}
}

// Add buffers batches for the next write. It is safe for concurrent use.
func (f *Flusher) Add(batches []metrics.Samples) {
	f.mu.Lock()
	f.pending = append(f.pending, batches...)
	f.mu.Unlock()
}

// Start starts the goroutine that writes every interval. Call it once.
func (f *Flusher) Start() { go f.run() }

// Stop ends the goroutine and then writes what is still buffered, before
// it returns. Call it once, after Start.
func (f *Flusher) Stop() {
	close(f.stop)
	<-f.done
	f.flush()
}

func (f *Flusher) run() {
	defer close(f.done)
	t := time.NewTicker(f.interval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			f.flush()
		case <-f.stop:
			return
		}
	}
}

// flush swaps the buffer for the spare one, writes it, and keeps its
// (cleared) backing array as the next spare, so steady state allocates
// nothing.
func (f *Flusher) flush() {
	f.mu.Lock()
	batch := f.pending
	f.pending = f.spare[:0]
	f.mu.Unlock()
	f.write(batch)
	clear(batch) // drop references to the samples
	f.mu.Lock()
	f.spare = batch[:0]
	f.mu.Unlock()
}
