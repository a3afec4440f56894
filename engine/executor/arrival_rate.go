package executor

import (
	"context"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cdeload/cdeload/engine/lib"
	"github.com/cdeload/cdeload/engine/options"
)

// startTimes yields the offsets, from the scenario start, at which
// iterations start; ok is false when there are no more.
type startTimes func() (offset time.Duration, ok bool)

// constantStarts: iteration i starts at i·timeUnit/rate.
func constantStarts(sc *options.Scenario) func() startTimes {
	return func() startTimes {
		i := int64(0)
		return func() (time.Duration, bool) {
			off := time.Duration(float64(i) * float64(sc.TimeUnit.D()) / float64(sc.Rate))
			i++
			return off, off < sc.Duration.D()
		}
	}
}

// rampingStarts: iteration k starts when the integral of the piecewise
// linear rate reaches k.
func rampingStarts(sc *options.Scenario) func() startTimes {
	return func() startTimes {
		unit := float64(sc.TimeUnit.D())
		stage := 0
		stageStart := 0.0 // ns
		countAtStage := 0.0
		from := float64(sc.StartRate) / unit // iterations per ns
		k := 0.0
		return func() (time.Duration, bool) {
			for stage < len(sc.Stages) {
				st := sc.Stages[stage]
				d := float64(st.Duration.D())
				to := float64(st.Target) / unit
				stageCount := d * (from + to) / 2
				rem := k - countAtStage
				if d > 0 && rem < stageCount {
					var t float64
					if slope := (to - from) / d; math.Abs(slope) < 1e-30 {
						t = rem / from
					} else {
						t = (-from + math.Sqrt(math.Max(0, from*from+2*slope*rem))) / slope
					}
					k++
					return time.Duration(stageStart + t), true
				}
				countAtStage += stageCount
				stageStart += d
				from = to
				stage++
			}
			return 0, false
		}
	}
}

// arrivalRate starts iterations at precomputed times on whichever VU is
// idle; without an idle VU the iteration is dropped and, below maxVUs, one
// more VU is initialised in the background.
type arrivalRate struct {
	*base
	starts func() startTimes

	mu      sync.Mutex
	closed  bool
	all     []*arVU
	idle    chan *arVU
	vuCount atomic.Int64
	warned  atomic.Bool
	wg      sync.WaitGroup
}

type arVU struct {
	trigger chan struct{}
}

func newArrivalRate(b *base, starts func() startTimes) *arrivalRate {
	return &arrivalRate{base: b, starts: starts, idle: make(chan *arVU, b.sc.MaxVUs)}
}

func (e *arrivalRate) Run(ctx context.Context) error {
	regCtx, hardCtx, cancel := e.begin(ctx)
	defer cancel()
	for range e.sc.PreAllocatedVUs {
		vu, err := e.env.Pool.Get(regCtx)
		if err != nil {
			break
		}
		e.vuCount.Add(1)
		e.startVU(hardCtx, vu)
	}
	var inits sync.WaitGroup
	start := e.state.StartTime
	next := e.starts()
	for {
		off, ok := next()
		if !ok || off >= e.sc.RegularDuration() {
			break
		}
		if !sleepUntil(regCtx, start.Add(off)) {
			if ctx.Err() == nil {
				// The scenario's time ran out before these starts came
				// up (the scheduler lagged): they are dropped.
				e.dropRest(off, next)
			}
			break
		}
		select {
		case v := <-e.idle:
			v.trigger <- struct{}{}
			continue
		default:
		}
		e.dropped(1, 0)
		if e.vuCount.Add(1) <= e.sc.MaxVUs {
			inits.Add(1)
			go func() {
				defer inits.Done()
				vu, err := e.env.Pool.NewUnplanned(hardCtx)
				if err != nil {
					if hardCtx.Err() == nil {
						e.env.Abort(lib.WithExitCode(lib.ExitScriptException, err))
					}
					return
				}
				e.startVU(hardCtx, vu)
			}()
		} else {
			e.vuCount.Add(-1)
			if !e.warned.Swap(true) {
				e.env.Logger.Warn(fmt.Sprintf("scenario %q: insufficient VUs, all %d maxVUs are busy and no more can be initialised; iterations are dropped", e.sc.Name, e.sc.MaxVUs))
			}
		}
	}
	<-regCtx.Done()
	inits.Wait()
	e.mu.Lock()
	e.closed = true
	for _, v := range e.all {
		close(v.trigger)
	}
	e.mu.Unlock()
	e.wg.Wait()
	cancel()
	e.waitVUs()
	return nil
}

// dropRest counts the start at off and every later one within the
// scenario's duration as dropped.
func (e *arrivalRate) dropRest(off time.Duration, next startTimes) {
	n := int64(0)
	for ok := true; ok && off < e.sc.RegularDuration(); off, ok = next() {
		n++
	}
	e.dropped(n, 0)
}

// startVU activates vu and makes it wait for triggers.
func (e *arrivalRate) startVU(hardCtx context.Context, vu lib.InitializedVU) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed || hardCtx.Err() != nil {
		e.env.Pool.Put(vu)
		return
	}
	actx, acancel := context.WithCancel(hardCtx)
	avu := e.activate(actx, vu, nil)
	v := &arVU{trigger: make(chan struct{}, 1)}
	e.all = append(e.all, v)
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		defer acancel()
		for {
			select {
			case _, ok := <-v.trigger:
				if !ok {
					return
				}
				e.iterate(hardCtx, avu)
				e.idle <- v
			case <-hardCtx.Done():
				return
			}
		}
	}()
	e.idle <- v
}

func (e *arrivalRate) Progress() (float64, string) {
	reg := e.sc.RegularDuration()
	e.mu.Lock()
	n := len(e.all)
	e.mu.Unlock()
	busy := n - len(e.idle)
	return e.timeProgress(), fmt.Sprintf("%d/%d VUs busy  %s/%s", max(busy, 0), n, fmtDur(min(e.elapsed(), reg)), reg)
}
