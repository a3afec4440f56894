package executor

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cdeload/cdeload/engine/lib"
)

// rampingVUs follows the linear VU count of its stages. Ramping down stops
// the highest-index VU first; it may finish its iteration within
// gracefulRampDown.
type rampingVUs struct {
	*base
	steps   []Step
	maxVUs  int64
	current atomic.Int64
}

func newRampingVUs(b *base) *rampingVUs {
	e := &rampingVUs{base: b, steps: rampingVUSteps(b.sc.StartVUs, b.sc.Stages)}
	for _, s := range e.steps {
		e.maxVUs = max(e.maxVUs, s.PlannedVUs)
	}
	return e
}

func (e *rampingVUs) Run(ctx context.Context) error {
	regCtx, hardCtx, cancel := e.begin(ctx)
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	handles := make([]*vuHandle, e.maxVUs)
	for i := range handles {
		handles[i] = &vuHandle{e: e, regCtx: regCtx, hardCtx: hardCtx, wg: &wg}
	}
	cur := int64(0)
	for _, st := range e.steps {
		if !sleepUntil(regCtx, start.Add(st.Offset)) {
			break
		}
		for i := cur; i < st.PlannedVUs; i++ {
			handles[i].start()
		}
		for i := cur - 1; i >= st.PlannedVUs; i-- {
			handles[i].rampDown(e.sc.GracefulRampDown.D())
		}
		cur = st.PlannedVUs
		e.current.Store(cur)
	}
	<-regCtx.Done()
	wg.Wait()
	cancel()
	e.waitVUs()
	return nil
}

func (e *rampingVUs) Progress() (float64, string) {
	total := e.sc.StagesDuration()
	return e.timeProgress(), fmt.Sprintf("%d/%d VUs  %s/%s", e.current.Load(), e.maxVUs, fmtDur(min(e.elapsed(), total)), total)
}

// vuHandle is one VU slot of a ramping-vus executor.
type vuHandle struct {
	e       *rampingVUs
	regCtx  context.Context
	hardCtx context.Context
	wg      *sync.WaitGroup

	mu       sync.Mutex
	running  bool
	stopping bool
	gen      uint64
	cancel   context.CancelFunc
}

// start makes the slot run iterations; a slot still finishing after a
// ramp-down simply goes on.
func (h *vuHandle) start() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.gen++
	h.stopping = false
	if h.running {
		return
	}
	h.running = true
	h.wg.Add(1)
	go h.loop()
}

// rampDown lets the current iteration finish within grace, then stops it.
func (h *vuHandle) rampDown(grace time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.running {
		return
	}
	h.stopping = true
	h.gen++
	if grace <= 0 {
		if h.cancel != nil {
			h.cancel()
		}
		return
	}
	gen := h.gen
	time.AfterFunc(grace, func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		if h.gen == gen && h.stopping && h.cancel != nil {
			h.cancel()
		}
	})
}

func (h *vuHandle) loop() {
	defer h.wg.Done()
	vu, err := h.e.env.Pool.Get(h.regCtx)
	if err != nil {
		h.mu.Lock()
		h.running = false
		h.mu.Unlock()
		return
	}
	ctx, cancel := context.WithCancel(h.hardCtx)
	defer cancel()
	h.mu.Lock()
	h.cancel = cancel
	h.mu.Unlock()
	var avu lib.ActiveVU = h.e.activate(ctx, vu, nil)
	for {
		h.mu.Lock()
		if h.stopping || h.regCtx.Err() != nil || ctx.Err() != nil {
			h.running = false
			h.cancel = nil
			h.mu.Unlock()
			return
		}
		h.mu.Unlock()
		h.e.iterate(ctx, avu)
	}
}
