package executor

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/cdeload/cdeload/engine/lib"
)

// startVU takes a VU from the pool (waiting until regCtx ends at the
// most), activates it for the scenario under hardCtx until loop returns,
// with next numbering its iterations (nil: nextIteration), and runs loop
// on it, with the VU's id, in a goroutine counted in wg. The error is the
// pool's when it had no VU in time.
func (b *base) startVU(regCtx, hardCtx context.Context, wg *sync.WaitGroup, next func() (uint64, uint64), loop func(avu lib.ActiveVU, vuID uint64)) error {
	vu, err := b.env.Pool.Get(regCtx)
	if err != nil {
		return err
	}
	id := vu.ID()
	actx, acancel := context.WithCancel(hardCtx)
	avu := b.activate(actx, vu, next)
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer acancel()
		loop(avu, id)
	}()
	return nil
}

// sharedIterations: vus VUs take iterations from one shared counter.
type sharedIterations struct {
	*base
	claimed atomic.Int64
}

func (e *sharedIterations) Run(ctx context.Context) error {
	regCtx, hardCtx, cancel := e.begin(ctx)
	defer cancel()
	total := e.sc.Iterations
	var wg sync.WaitGroup
	for range e.sc.VUs {
		err := e.startVU(regCtx, hardCtx, &wg, nil, func(avu lib.ActiveVU, _ uint64) {
			for regCtx.Err() == nil {
				if e.claimed.Add(1) > total {
					return
				}
				e.iterate(hardCtx, avu)
			}
		})
		if err != nil {
			break
		}
	}
	wg.Wait()
	cancel()
	e.waitVUs()
	e.dropped(total-min(e.claimed.Load(), total), 0)
	return nil
}

func (e *sharedIterations) Progress() (float64, string) {
	done := e.complete.Load() + e.interrupted.Load()
	return float64(done) / float64(e.sc.Iterations), fmt.Sprintf("%d/%d shared iters", done, e.sc.Iterations)
}

// perVUIterations: each of vus VUs runs iterations iterations.
type perVUIterations struct{ *base }

func (e *perVUIterations) Run(ctx context.Context) error {
	regCtx, hardCtx, cancel := e.begin(ctx)
	defer cancel()
	var wg sync.WaitGroup
	for j := range e.sc.VUs {
		err := e.startVU(regCtx, hardCtx, &wg, e.nextIterationOfVU(uint64(j)), func(avu lib.ActiveVU, id uint64) {
			var n int64
			for ; n < e.sc.Iterations && regCtx.Err() == nil; n++ {
				e.iterate(hardCtx, avu)
			}
			e.dropped(e.sc.Iterations-n, id)
		})
		if err != nil {
			e.dropped(e.sc.Iterations, 0)
		}
	}
	wg.Wait()
	cancel()
	e.waitVUs()
	return nil
}

func (e *perVUIterations) Progress() (float64, string) {
	done := e.complete.Load() + e.interrupted.Load()
	total := uint64(e.sc.VUs * e.sc.Iterations)
	return float64(done) / float64(total), fmt.Sprintf("%d/%d iters, %d per VU", done, total, e.sc.Iterations)
}

// constantVUs: vus VUs loop for duration.
type constantVUs struct{ *base }

func (e *constantVUs) Run(ctx context.Context) error {
	regCtx, hardCtx, cancel := e.begin(ctx)
	defer cancel()
	var wg sync.WaitGroup
	for range e.sc.VUs {
		err := e.startVU(regCtx, hardCtx, &wg, nil, func(avu lib.ActiveVU, _ uint64) {
			for regCtx.Err() == nil {
				e.iterate(hardCtx, avu)
			}
		})
		if err != nil {
			break
		}
	}
	wg.Wait()
	cancel()
	e.waitVUs()
	return nil
}

func (e *constantVUs) Progress() (float64, string) {
	return e.timeProgress(), fmt.Sprintf("%d VUs  %s/%s", e.sc.VUs, fmtDur(min(e.elapsed(), e.sc.Duration.D())), e.sc.Duration)
}
