package js

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/cdeload/cdeload/engine/lib"
)

func TestParallelVUs(t *testing.T) {
	e := load(t, "xmod.js")
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for id := uint64(1); id <= 8; id++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v, err := e.runner.NewVU(context.Background(), id, id, e.sink.ch)
			if err != nil {
				errs <- err
				return
			}
			a := v.Activate(&lib.ActivationParams{RunContext: context.Background(), Tags: map[string]string{"scenario": "p"}})
			for i := 0; i < 3; i++ {
				if err := a.RunOnce(); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	allPassed(t, e.sink, 8*3*6)
}

func TestDeactivateAfterRunningIteration(t *testing.T) {
	p := writeScript(t, map[string]string{"main.js": `
		import { sleep } from 'k6';
		import exec from 'k6/execution';
		export default function () { sleep(0.05); }
		export async function abortsAsync() { await null; exec.test.abort('from async'); }
		export function envCheck() { if (__ENV.ONLY_A !== undefined) throw new Error('scenario env leaked: ' + __ENV.ONLY_A); }`}, "main.js")
	e := load(t, p)
	v, err := e.runner.NewVU(context.Background(), 1, 1, e.sink.ch)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	deactivated := make(chan time.Time, 1)
	a := v.Activate(&lib.ActivationParams{
		RunContext: ctx,
		Env:        map[string]string{"ONLY_A": "1"},
		Deactivate: func(lib.InitializedVU) { deactivated <- time.Now() },
	})
	done := make(chan time.Time, 1)
	go func() {
		if err := a.RunOnce(); err != nil && !errors.Is(err, lib.ErrInterrupted) {
			t.Error(err)
		}
		done <- time.Now()
	}()
	time.Sleep(10 * time.Millisecond)
	cancel()
	d := <-deactivated
	r := <-done
	if d.Before(r) {
		t.Fatalf("Deactivate ran at %s, before the iteration ended at %s", d, r)
	}
	// Reactivate the same VU elsewhere: the scenario env is gone.
	b := v.Activate(&lib.ActivationParams{RunContext: context.Background(), Exec: "envCheck"})
	if err := b.RunOnce(); err != nil {
		t.Fatal(err)
	}
	c := v.Activate(&lib.ActivationParams{RunContext: context.Background(), Exec: "abortsAsync"})
	var ae *lib.AbortError
	if err := c.RunOnce(); !errors.As(err, &ae) || ae.Reason != "from async" {
		t.Fatalf("abort from async: %v", err)
	}
	if out := e.console.String(); out != "" {
		t.Fatalf("console: %s", out)
	}
}
