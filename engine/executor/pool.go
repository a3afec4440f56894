package executor

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/cdeload/cdeload/engine/lib"
	"github.com/cdeload/cdeload/engine/metrics"
)

// Pool holds the initialised VUs that are not active in a scenario. All
// scenarios of a run share it; Get hands out the VU with the lowest id.
type Pool struct {
	runner  lib.Runner
	samples chan<- metrics.Samples

	mu    sync.Mutex
	free  []lib.InitializedVU
	avail chan struct{}

	lastID      atomic.Uint64
	initialized atomic.Int64
}

// NewPool returns an empty pool whose VUs are made by runner.
func NewPool(runner lib.Runner, samples chan<- metrics.Samples) *Pool {
	return &Pool{runner: runner, samples: samples, avail: make(chan struct{}, 1)}
}

// Init initialises n VUs with up to workers of them at a time, and adds
// them to the pool. The first error stops the others.
func (p *Pool) Init(ctx context.Context, n int64, workers int) error {
	if n <= 0 {
		return nil
	}
	workers = max(1, min(workers, int(n)))
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ids := make(chan uint64)
	var (
		wg      sync.WaitGroup
		errOnce sync.Once
		first   error
	)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range ids {
				vu, err := p.runner.NewVU(ctx, id, id, p.samples)
				if err != nil {
					errOnce.Do(func() { first = fmt.Errorf("initialising VU %d: %w", id, err); cancel() })
					continue
				}
				p.initialized.Add(1)
				p.Put(vu)
			}
		}()
	}
	for range n {
		select {
		case ids <- p.lastID.Add(1):
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
	}
	close(ids)
	wg.Wait()
	if first != nil {
		return first
	}
	return ctx.Err()
}

// NewUnplanned initialises one more VU, for an arrival-rate executor that
// ran out of them. It is not put in the pool.
func (p *Pool) NewUnplanned(ctx context.Context) (lib.InitializedVU, error) {
	id := p.lastID.Add(1)
	vu, err := p.runner.NewVU(ctx, id, id, p.samples)
	if err != nil {
		return nil, fmt.Errorf("initialising VU %d during the run: %w", id, err)
	}
	p.initialized.Add(1)
	return vu, nil
}

// Initialized returns how many VUs were initialised so far (vus_max).
func (p *Pool) Initialized() int64 { return p.initialized.Load() }

// Free returns how many VUs are in the pool.
func (p *Pool) Free() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.free)
}

// Get takes the free VU with the lowest id, waiting until one is returned
// or ctx is done.
func (p *Pool) Get(ctx context.Context) (lib.InitializedVU, error) {
	for {
		p.mu.Lock()
		if len(p.free) > 0 {
			best := 0
			for i, vu := range p.free {
				if vu.ID() < p.free[best].ID() {
					best = i
				}
			}
			vu := p.free[best]
			p.free[best] = p.free[len(p.free)-1]
			p.free = p.free[:len(p.free)-1]
			more := len(p.free) > 0
			p.mu.Unlock()
			if more {
				p.signal()
			}
			return vu, nil
		}
		p.mu.Unlock()
		select {
		case <-p.avail:
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for a free VU: %w", context.Cause(ctx))
		}
	}
}

// Put returns a VU to the pool.
func (p *Pool) Put(vu lib.InitializedVU) {
	p.mu.Lock()
	p.free = append(p.free, vu)
	p.mu.Unlock()
	p.signal()
}

func (p *Pool) signal() {
	select {
	case p.avail <- struct{}{}:
	default:
	}
}
