package js

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/grafana/sobek"

	"github.com/cdeload/cdeload/engine/lib"
)

func TestEnqueueTwicePanics(t *testing.T) {
	l := newEventLoop(sobek.New())
	enqueue := l.RegisterCallback()
	enqueue(func() error { return nil })
	defer func() {
		if r := recover(); r == nil || !strings.Contains(r.(string), "called twice") {
			t.Fatalf("second enqueue: recover() = %v", r)
		}
	}()
	enqueue(func() error { return nil })
}

func TestLoopWaitsForCallbacksAndStopsOnTaskError(t *testing.T) {
	l := newEventLoop(sobek.New())
	var ran []int
	err := l.run(context.Background(), func() error {
		for i := 0; i < 3; i++ {
			enqueue := l.RegisterCallback()
			go func() {
				time.Sleep(time.Duration(i) * time.Millisecond)
				enqueue(func() error { ran = append(ran, i); return nil })
			}()
		}
		return nil
	})
	if err != nil || len(ran) != 3 {
		t.Fatalf("run = %v, ran %v", err, ran)
	}
	boom := errors.New("boom")
	err = l.run(context.Background(), func() error {
		l.RegisterCallback()(func() error { return boom })
		late := l.RegisterCallback()
		go func() { time.Sleep(10 * time.Millisecond); late(func() error { return nil }) }()
		return nil
	})
	if !errors.Is(err, boom) {
		t.Fatalf("run = %v, want boom", err)
	}
	l.drain() // waits for the late callback
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.registered != 0 || len(l.queue) != 0 {
		t.Fatalf("after drain: %d registered, %d queued", l.registered, len(l.queue))
	}
}

func TestFailingTaskFailsIteration(t *testing.T) {
	p := writeScript(t, map[string]string{"main.js": `
		import { failTask } from 'k6/x/jstest';
		export default function () { failTask(); }`}, "main.js")
	e := load(t, p)
	if err := e.activate(t, context.Background(), 1, "").RunOnce(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(e.console.String(), "task failed on purpose") {
		t.Fatalf("console: %s", e.console)
	}
}

func TestNoGoroutineLeaks(t *testing.T) {
	settle := func(limit int) int {
		n := runtime.NumGoroutine()
		for i := 0; i < 200 && n > limit; i++ {
			time.Sleep(10 * time.Millisecond)
			n = runtime.NumGoroutine()
		}
		return n
	}
	e := load(t, "leak.js")
	time.Sleep(20 * time.Millisecond)
	base := runtime.NumGoroutine()
	for id := uint64(1); id <= 4; id++ {
		ctx, cancel := context.WithCancel(context.Background())
		a := e.activate(t, ctx, id, "")
		for i := 0; i < 5; i++ {
			if err := a.RunOnce(); err != nil {
				t.Fatal(err)
			}
		}
		cancel()
		b := e.activate(t, context.Background(), id+10, "throwsWithPending")
		if err := b.RunOnce(); err != nil {
			t.Fatal(err)
		}
		ctx2, cancel2 := context.WithCancel(context.Background())
		h := e.activate(t, ctx2, id+20, "hang")
		time.AfterFunc(20*time.Millisecond, cancel2)
		if err := h.RunOnce(); !errors.Is(err, lib.ErrInterrupted) {
			t.Fatalf("hang: %v", err)
		}
	}
	if n := settle(base); n > base {
		buf := make([]byte, 1<<16)
		buf = buf[:runtime.Stack(buf, true)]
		t.Fatalf("%d goroutines before, %d after:\n%s", base, n, buf)
	}
	if !strings.Contains(e.console.String(), "leaving work behind") {
		t.Fatalf("console: %s", e.console)
	}
}

func TestStructDefaultExports(t *testing.T) {
	p := writeScript(t, map[string]string{"main.js": `
		import api, { hello, version } from 'k6/x/jsteststruct';
		import { check } from 'k6';
		export default function () {
			check(null, { named: () => hello('x') === 'hello x' && version === '1.0', def: () => api.hello('y') === 'hello y' });
		}`}, "main.js")
	e := load(t, p)
	if err := e.activate(t, context.Background(), 1, "").RunOnce(); err != nil {
		t.Fatal(err)
	}
	allPassed(t, e.sink, 2)
}
