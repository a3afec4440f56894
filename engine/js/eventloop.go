package js

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/grafana/sobek"
)

// errLoopInterrupted is returned by eventLoop.run when its context ended
// while callbacks were still outstanding.
var errLoopInterrupted = errors.New("event loop interrupted: context done")

// eventLoop is a VU's event loop. run, RegisterCallback and the rejection
// tracker are used on the VU goroutine only; the enqueue functions returned
// by RegisterCallback may be called from any goroutine.
type eventLoop struct {
	rt *sobek.Runtime

	mu         sync.Mutex
	queue      []func() error
	registered int
	wakeup     chan struct{}

	// rejected holds promises rejected with no handler, in order.
	rejected []*sobek.Promise
	// watched is a promise whose rejection the caller handles itself
	// (the result of the function the loop runs).
	watched *sobek.Promise
	spare   []func() error
}

func newEventLoop(rt *sobek.Runtime) *eventLoop {
	l := &eventLoop{rt: rt, wakeup: make(chan struct{}, 1)}
	rt.SetPromiseRejectionTracker(l.track)
	return l
}

func (l *eventLoop) track(p *sobek.Promise, op sobek.PromiseRejectionOperation) {
	switch op {
	case sobek.PromiseRejectionReject:
		l.rejected = append(l.rejected, p)
	case sobek.PromiseRejectionHandle:
		for i, r := range l.rejected {
			if r == p {
				l.rejected = append(l.rejected[:i], l.rejected[i+1:]...)
				break
			}
		}
	}
}

// RegisterCallback implements modules.VU.RegisterCallback.
func (l *eventLoop) RegisterCallback() func(func() error) {
	l.mu.Lock()
	l.registered++
	l.mu.Unlock()
	var called atomic.Bool
	return func(f func() error) {
		if called.Swap(true) {
			panic("js: the function returned by RegisterCallback was called twice")
		}
		l.mu.Lock()
		l.queue = append(l.queue, f)
		l.registered--
		l.mu.Unlock()
		select {
		case l.wakeup <- struct{}{}:
		default:
		}
	}
}

// watch marks p as the result of the function the loop runs: its rejection
// ends the loop with the rejection reason as the error.
func (l *eventLoop) watch(p *sobek.Promise) {
	l.watched = p
}

// checkRejections returns an error for the first promise rejected with no
// handler, other than the watched one.
func (l *eventLoop) checkRejections() error {
	for len(l.rejected) > 0 {
		p := l.rejected[0]
		l.rejected = l.rejected[1:]
		l.rejected = l.rejected[:0]
		if p == l.watched {
			// the function's own promise rejected: that ends the call
			return valueError(p.Result())
		}
		return &uncaughtError{reason: describeValue(p.Result())}
	}
	return nil
}

// run runs first, then queued tasks, until the queue is empty and no
// callback is outstanding, a task fails, or ctx is done.
func (l *eventLoop) run(ctx context.Context, first func() error) error {
	l.watched = nil
	l.rejected = l.rejected[:0]
	if err := first(); err != nil {
		return err
	}
	if err := l.checkRejections(); err != nil {
		return err
	}
	for {
		l.mu.Lock()
		q := l.queue
		l.queue = l.spare
		reg := l.registered
		l.mu.Unlock()
		if len(q) == 0 {
			l.spare = q
			if reg == 0 {
				return nil
			}
			select {
			case <-l.wakeup:
				continue
			case <-ctx.Done():
				return errLoopInterrupted
			}
		}
		for i, f := range q {
			q[i] = nil
			if err := f(); err != nil {
				return err
			}
			if err := l.checkRejections(); err != nil {
				return err
			}
		}
		l.spare = q[:0]
	}
}

// drain waits until every registered callback has been enqueued and drops
// the queued work. It is called after run ended early, once the context the
// callbacks honour is done.
func (l *eventLoop) drain() {
	for {
		l.mu.Lock()
		l.queue = l.queue[:0]
		reg := l.registered
		l.mu.Unlock()
		if reg == 0 {
			break
		}
		<-l.wakeup
	}
	l.rejected = l.rejected[:0]
	l.watched = nil
}

// uncaughtError is a promise rejection nobody handled.
type uncaughtError struct{ reason string }

func (e *uncaughtError) Error() string { return "Uncaught (in promise) " + e.reason }

// describeValue renders a thrown or rejected JS value, with its stack when
// it is an Error.
func describeValue(v sobek.Value) string {
	if v == nil {
		return "undefined"
	}
	if obj, ok := v.(*sobek.Object); ok {
		switch x := obj.Export().(type) {
		case *sobek.Exception:
			return strings.TrimRight(x.String(), "\n")
		case *sobek.InterruptedError:
			return strings.TrimRight(x.String(), "\n")
		}
		if st := obj.Get("stack"); st != nil && !sobek.IsUndefined(st) && st.String() != "" {
			return strings.TrimRight(st.String(), "\n")
		}
		if err, ok := obj.Export().(error); ok {
			return err.Error()
		}
	}
	return v.String()
}
