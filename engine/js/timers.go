package js

import (
	"time"

	"github.com/grafana/sobek"

	"github.com/cdeload/cdeload/engine/modules"
)

// timers implements setTimeout/setInterval on a VU's event loop. Each
// pending timer holds one event-loop registration, so the iteration waits
// for it; clearing or stopping a timer releases the registration.
type timers struct {
	v       *vu
	next    int64
	pending map[int64]*timer
}

type timer struct {
	t       *time.Timer
	enqueue func(func() error)
}

func newTimers(v *vu) *timers { return &timers{v: v, pending: map[int64]*timer{}} }

func (ts *timers) install(g *sobek.Object) {
	must(g.Set("setTimeout", ts.setTimeout))
	must(g.Set("clearTimeout", ts.clear))
	must(g.Set("setInterval", ts.setInterval))
	must(g.Set("clearInterval", ts.clear))
}

func (ts *timers) exports() modules.Exports {
	return modules.Exports{Named: map[string]any{
		"setTimeout":    ts.setTimeout,
		"clearTimeout":  ts.clear,
		"setInterval":   ts.setInterval,
		"clearInterval": ts.clear,
	}}
}

func delayOf(v sobek.Value) time.Duration {
	if v == nil || sobek.IsUndefined(v) {
		return 0
	}
	ms := v.ToFloat()
	if ms != ms || ms < 0 { // NaN or negative
		return 0
	}
	return time.Duration(ms * float64(time.Millisecond))
}

func (ts *timers) callback(call sobek.FunctionCall, name string) (sobek.Callable, time.Duration, []sobek.Value) {
	fn, ok := sobek.AssertFunction(call.Argument(0))
	if !ok {
		ts.v.throwTypeError("%s: the first argument must be a function", name)
	}
	var args []sobek.Value
	if len(call.Arguments) > 2 {
		args = append(args, call.Arguments[2:]...)
	}
	return fn, delayOf(call.Argument(1)), args
}

func (ts *timers) setTimeout(call sobek.FunctionCall) sobek.Value {
	fn, d, args := ts.callback(call, "setTimeout")
	ts.next++
	id := ts.next
	ts.schedule(id, d, func() error {
		delete(ts.pending, id)
		_, err := fn(sobek.Undefined(), args...)
		return err
	})
	return ts.v.rt.ToValue(id)
}

func (ts *timers) setInterval(call sobek.FunctionCall) sobek.Value {
	fn, d, args := ts.callback(call, "setInterval")
	ts.next++
	id := ts.next
	var tick func() error
	tick = func() error {
		if _, err := fn(sobek.Undefined(), args...); err != nil {
			delete(ts.pending, id)
			return err
		}
		if _, ok := ts.pending[id]; ok {
			ts.schedule(id, d, tick)
		}
		return nil
	}
	ts.schedule(id, d, tick)
	return ts.v.rt.ToValue(id)
}

// schedule arms timer id to run f on the event loop after d.
func (ts *timers) schedule(id int64, d time.Duration, f func() error) {
	enqueue := ts.v.loop.RegisterCallback()
	tm := &timer{enqueue: enqueue}
	ts.pending[id] = tm
	tm.t = time.AfterFunc(d, func() {
		enqueue(func() error {
			if cur, ok := ts.pending[id]; !ok || cur != tm {
				return nil // cleared after it fired
			}
			return f()
		})
	})
}

func (ts *timers) clear(id sobek.Value) {
	if id == nil || sobek.IsUndefined(id) || sobek.IsNull(id) {
		return
	}
	n := id.ToInteger()
	tm, ok := ts.pending[n]
	if !ok {
		return
	}
	delete(ts.pending, n)
	if tm.t.Stop() {
		tm.enqueue(func() error { return nil })
	}
}

// stopAll clears every pending timer; used when an iteration ends early.
func (ts *timers) stopAll() {
	for id, tm := range ts.pending {
		delete(ts.pending, id)
		if tm.t.Stop() {
			tm.enqueue(func() error { return nil })
		}
	}
}
