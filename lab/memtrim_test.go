package lab

import (
	"context"
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

var sink []byte

// The trimmer collects once at start and again whenever the budget has
// been allocated, and returns when its context ends.
func TestTrimMemoryCollectsAfterEachBudget(t *testing.T) {
	numGC := func() uint32 {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.NumGC
	}
	// Only the trimmer collects during the test.
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	before := numGC()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		trimMemory(ctx, 5*time.Millisecond, 1<<20)
	}()
	// Allocate well past the budget several times, slower than the checks.
	deadline := time.Now().Add(10 * time.Second)
	for numGC()-before < 4 && time.Now().Before(deadline) {
		for range 64 {
			sink = make([]byte, 64<<10)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := numGC() - before; n < 4 {
		t.Fatalf("%d collections after allocating many budgets, want >= 4", n)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("trimMemory did not return after its context ended")
	}
}
