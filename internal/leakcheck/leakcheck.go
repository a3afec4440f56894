// Package leakcheck tells tests whether a component's goroutines all ended
// after it was closed.
package leakcheck

import (
	"runtime"
	"runtime/pprof"
	"strings"
	"testing"
	"time"
)

// Settled waits up to 10 s for the goroutine count to reach at most want
// (or, when want is 0, to stop falling) and returns it.
func Settled(want int) int {
	deadline := time.Now().Add(10 * time.Second)
	n := runtime.NumGoroutine()
	for time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
		m := runtime.NumGoroutine()
		if (want > 0 && m <= want) || (want == 0 && m == n) {
			return m
		}
		n = m
	}
	return n
}

// NoneLeft fails t, with a goroutine dump, unless the goroutine count
// settles back to base (the count before the component started); during
// is the count while it ran, for the log.
func NoneLeft(t testing.TB, base, during int) {
	t.Helper()
	after := Settled(base)
	t.Logf("goroutines: %d before the client, %d while connected, %d after Close", base, during, after)
	if after > base {
		var b strings.Builder
		pprof.Lookup("goroutine").WriteTo(&b, 1)
		t.Fatalf("%d goroutines left after Close (%d before the client):\n%s", after-base, base, b.String())
	}
}
