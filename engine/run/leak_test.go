package run_test

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/cdeload/cdeload/engine/js"
	"github.com/cdeload/cdeload/engine/lib"
	"github.com/cdeload/cdeload/engine/metrics"
	"github.com/cdeload/cdeload/engine/options"
	"github.com/cdeload/cdeload/engine/run"
)

// leakScript exercises what can leave goroutines behind: several
// executors at once, timers still pending when an iteration is cut by
// gracefulStop, intervals, async functions and setup/teardown.
const leakScript = `
import { sleep } from 'k6';
export const options = {
  scenarios: {
    loop: { executor: 'constant-vus', vus: 3, duration: '1s', gracefulStop: '0s' },
    rate: { executor: 'constant-arrival-rate', rate: 20, timeUnit: '1s', duration: '1s', preAllocatedVUs: 2, maxVUs: 4, gracefulStop: '0s', exec: 'timers' },
    ramp: { executor: 'ramping-vus', startVUs: 0, stages: [{ duration: '500ms', target: 2 }, { duration: '500ms', target: 0 }], gracefulRampDown: '0s', gracefulStop: '0s', exec: 'timers' },
  },
};
export function setup() { return { n: 1 }; }
export default async function () {
  await new Promise((r) => setTimeout(r, 20));
  sleep(0.01);
}
export async function timers() {
  setTimeout(() => {}, 60000); // never fires: the iteration is interrupted
  const id = setInterval(() => {}, 5);
  await new Promise((r) => setTimeout(r, 30));
  clearInterval(id);
}
export function teardown(d) {}
`

// TestRunLeavesNoGoroutines runs a whole test through the real JS runner
// and checks that every goroutine the run started has ended.
func TestRunLeavesNoGoroutines(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "leak.js")
	if err := os.WriteFile(file, []byte(leakScript), 0o600); err != nil {
		t.Fatal(err)
	}
	before := runtime.NumGoroutine()

	ctx := context.Background()
	reg := metrics.NewRegistry()
	builtin := metrics.RegisterBuiltin(reg)
	script, err := js.Parse(ctx, js.Config{Filename: file, Registry: reg, Builtin: builtin, Console: os.Stderr})
	if err != nil {
		t.Fatal(err)
	}
	o, _, err := options.Parse(script.Options())
	if err != nil {
		t.Fatal(err)
	}
	opts, _, err := options.Consolidate(options.Tier{Name: "script", Options: o})
	if err != nil {
		t.Fatal(err)
	}
	res, err := run.Run(ctx, run.Config{
		Options:  opts,
		Registry: reg,
		Builtin:  builtin,
		NewRunner: func(ctl lib.TestControl) (lib.Runner, error) {
			return script.NewRunner(js.RunnerConfig{Control: ctl})
		},
	})
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if res.Complete == 0 {
		t.Fatalf("no iteration completed: %+v", res)
	}

	deadline := time.Now().Add(5 * time.Second)
	after := runtime.NumGoroutine()
	for after > before && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		after = runtime.NumGoroutine()
	}
	if after > before {
		buf := make([]byte, 1<<20)
		n := runtime.Stack(buf, true)
		t.Fatalf("%d goroutines before the run, %d after; still running:\n%s", before, after, buf[:n])
	}
}
