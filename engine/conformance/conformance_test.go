// Package conformance runs real scripts through the real cdeload binary and
// checks what a k6 user would: iteration and VU counts, timing, exit codes.
package conformance

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cdeload/cdeload/internal/syncbuf"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "cdeload-conformance-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "cdeload")
	build := exec.Command("go", "build", "-o", binary, "github.com/cdeload/cdeload/cmd/cdeload")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building cdeload:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// result is one finished cdeload process.
type result struct {
	code           int
	stdout, stderr string
	took           time.Duration
}

// msgs returns the console messages that start with prefix.
func (r *result) msgs(prefix string) []string {
	var out []string
	re := regexp.MustCompile(`msg="((?:[^"\\]|\\.)*)"`)
	sc := bufio.NewScanner(strings.NewReader(r.stderr))
	for sc.Scan() {
		if !strings.Contains(sc.Text(), "source=console") {
			continue
		}
		m := re.FindStringSubmatch(sc.Text())
		if m != nil && strings.HasPrefix(m[1], prefix) {
			out = append(out, m[1])
		}
	}
	return out
}

var finalRE = regexp.MustCompile(`running \(.*\), (\d+)/(\d+) VUs, (\d+) complete and (\d+) interrupted iterations`)

// counts returns the complete and interrupted iterations of the final
// progress line (on stdout: stderr is not a terminal here).
func (r *result) counts(t *testing.T) (complete, interrupted int) {
	t.Helper()
	m := finalRE.FindAllStringSubmatch(r.stdout, -1)
	if m == nil {
		t.Fatalf("no final progress line on stdout:\n%s", r)
	}
	last := m[len(m)-1]
	c, _ := strconv.Atoi(last[3])
	i, _ := strconv.Atoi(last[4])
	return c, i
}

func (r *result) String() string {
	return fmt.Sprintf("exit %d after %s\n--- stdout\n%s\n--- stderr\n%s", r.code, r.took, r.stdout, r.stderr)
}

// cdeload runs the binary with args in testdata; env is added to a minimal
// environment.
func cdeload(t *testing.T, env []string, args ...string) *result {
	t.Helper()
	return start(t, env, args...).wait(t)
}

type proc struct {
	cmd            *exec.Cmd
	stdout, stderr *syncbuf.Buffer
	began          time.Time
	cancel         context.CancelFunc
}

func start(t *testing.T, env []string, args ...string) *proc {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Dir = "testdata"
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}, env...)
	p := &proc{cmd: cmd, stdout: &syncbuf.Buffer{}, stderr: &syncbuf.Buffer{}, began: time.Now(), cancel: cancel}
	cmd.Stdout = p.stdout
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	return p
}

func (p *proc) wait(t *testing.T) *result {
	t.Helper()
	defer p.cancel()
	err := p.cmd.Wait()
	r := &result{stdout: p.stdout.String(), stderr: p.stderr.String(), took: time.Since(p.began)}
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("running cdeload: %v", err)
		}
		r.code = ee.ExitCode()
	}
	return r
}

func TestExecutors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		executor           string
		minIters, maxIters int
		wantVUs            int
		minTook, maxTook   time.Duration
		exactPerVU         int
	}{
		{executor: "shared", minIters: 12, maxIters: 12, wantVUs: 3, maxTook: 10 * time.Second},
		{executor: "pervu", minIters: 12, maxIters: 12, wantVUs: 3, exactPerVU: 4, maxTook: 10 * time.Second},
		// 2 VUs × 1s / (50ms sleep + overhead).
		{executor: "constant", minIters: 10, maxIters: 42, wantVUs: 2, minTook: time.Second, maxTook: 10 * time.Second},
		{executor: "ramping", minIters: 5, maxIters: 100, wantVUs: 3, minTook: 1500 * time.Millisecond, maxTook: 10 * time.Second},
		// 10/s for 1s; the first at 0.
		{executor: "car", minIters: 10, maxIters: 10, wantVUs: 2, minTook: time.Second, maxTook: 10 * time.Second},
		// 0 → 20/s over 1s: 10 iterations.
		{executor: "rar", minIters: 10, maxIters: 10, minTook: time.Second, maxTook: 10 * time.Second},
	}
	for _, c := range cases {
		t.Run(c.executor, func(t *testing.T) {
			t.Parallel()
			r := cdeload(t, nil, "run", "-e", "EXECUTOR="+c.executor, "executors.js")
			if r.code != 0 {
				t.Fatalf("want exit 0, got %s", r)
			}
			iters := r.msgs("ITER " + c.executor)
			if len(iters) < c.minIters || len(iters) > c.maxIters {
				t.Fatalf("%d iterations, want %d..%d\n%s", len(iters), c.minIters, c.maxIters, r)
			}
			// ITER is logged when an iteration starts; ramping-vus with
			// gracefulRampDown 0 may interrupt the ramped-down VUs.
			complete, interrupted := r.counts(t)
			if complete+interrupted != len(iters) || (interrupted != 0 && c.executor != "ramping") || interrupted > 3 {
				t.Fatalf("progress says %d complete, %d interrupted; the script logged %d", complete, interrupted, len(iters))
			}
			perVU := map[string]int{}
			for _, m := range iters {
				perVU[m[strings.Index(m, "vu="):]]++
			}
			if c.wantVUs > 0 && len(perVU) != c.wantVUs {
				t.Fatalf("iterations ran on %d VUs %v, want %d", len(perVU), perVU, c.wantVUs)
			}
			if c.exactPerVU > 0 {
				for vu, n := range perVU {
					if n != c.exactPerVU {
						t.Fatalf("%s ran %d iterations, want %d", vu, n, c.exactPerVU)
					}
				}
			}
			if r.took < c.minTook || r.took > c.maxTook {
				t.Fatalf("run took %s, want %s..%s", r.took, c.minTook, c.maxTook)
			}
			if !strings.Contains(r.stdout, "scenarios: (100.00%) 1 scenario") || !strings.Contains(r.stdout, "* "+c.executor+":") {
				t.Fatalf("banner does not describe the scenario:\n%s", r.stdout)
			}
		})
	}
}

func TestScenariosExecStartTimeSetupAndTeardown(t *testing.T) {
	t.Parallel()
	r := cdeload(t, nil, "run", "lifecycle.js")
	if r.code != 0 {
		t.Fatalf("want exit 0, got %s", r)
	}
	first, later := r.msgs("ITER first"), r.msgs("ITER later")
	if len(first) != 4 || len(later) != 2 || len(r.msgs("ITER default")) != 0 {
		t.Fatalf("first=%d later=%d default=%d iterations, want 4, 2, 0\n%s", len(first), len(later), len(r.msgs("ITER default")), r)
	}
	for _, m := range append(first, later...) {
		if !strings.Contains(m, "token=tok-42") {
			t.Fatalf("iteration without the setup data: %q", m)
		}
	}
	for _, m := range later {
		at, _ := strconv.Atoi(regexp.MustCompile(`at=(\d+)`).FindStringSubmatch(m)[1])
		if at < 950 {
			t.Fatalf("scenario with startTime 1s ran at %dms after setup: %q", at, m)
		}
		if !strings.Contains(m, "who=later") {
			t.Fatalf("scenario env not in __ENV: %q", m)
		}
	}
	if td := r.msgs("TEARDOWN"); len(td) != 1 || td[0] != "TEARDOWN token=tok-42" {
		t.Fatalf("teardown messages %v, want one with the setup data", td)
	}
	if !strings.Contains(r.stdout, "2 scenarios, 3 max VUs") {
		t.Fatalf("banner does not show 2 scenarios and 3 max VUs:\n%s", r.stdout)
	}
	if !strings.Contains(r.stdout, "exec: later, startTime: 1s") {
		t.Fatalf("banner does not describe exec and startTime:\n%s", r.stdout)
	}
}

func TestGracefulStopInterruptsLongIteration(t *testing.T) {
	t.Parallel()
	r := cdeload(t, nil, "run", "-e", "CASE=stop", "graceful.js")
	if r.code != 0 {
		t.Fatalf("want exit 0, got %s", r)
	}
	if c, i := r.counts(t); c != 0 || i != 1 {
		t.Fatalf("%d complete, %d interrupted, want 0 and 1\n%s", c, i, r)
	}
	if r.took < 1400*time.Millisecond || r.took > 6*time.Second {
		t.Fatalf("run took %s, want duration 1s + gracefulStop 500ms", r.took)
	}
}

func TestGracefulStopLetsIterationFinish(t *testing.T) {
	t.Parallel()
	r := cdeload(t, nil, "run", "-e", "CASE=finish", "graceful.js")
	if c, i := r.counts(t); r.code != 0 || c != 1 || i != 0 {
		t.Fatalf("%d complete, %d interrupted, want 1 and 0\n%s", c, i, r)
	}
	if r.took < 1400*time.Millisecond || r.took > 6*time.Second {
		t.Fatalf("run took %s, want the 1.5s iteration to finish", r.took)
	}
}

func TestGracefulRampDown(t *testing.T) {
	t.Parallel()
	r := cdeload(t, nil, "run", "-e", "CASE=rampdown", "graceful.js")
	if r.code != 0 {
		t.Fatalf("want exit 0, got %s", r)
	}
	// VU 2 sleeps 30s and is ramped down at 500ms with 500ms of grace.
	c, i := r.counts(t)
	if i != 1 || c < 5 {
		t.Fatalf("%d complete, %d interrupted, want 1 interrupted (the ramped-down VU) and VU 1 looping\n%s", c, i, r)
	}
	if r.took > 8*time.Second {
		t.Fatalf("run took %s: the ramped-down iteration was not cut after gracefulRampDown", r.took)
	}
}

func TestMaxDuration(t *testing.T) {
	t.Parallel()
	r := cdeload(t, nil, "run", "-e", "CASE=maxduration", "graceful.js")
	c, i := r.counts(t)
	if r.code != 0 || c < 2 || c > 4 || i > 1 {
		t.Fatalf("%d complete, %d interrupted, want about 3 (1s / 300ms) and at most 1 interrupted\n%s", c, i, r)
	}
	if r.took > 6*time.Second {
		t.Fatalf("run took %s, want about maxDuration 1s", r.took)
	}
}

func TestDroppedIterations(t *testing.T) {
	t.Parallel()
	out := filepath.Join(t.TempDir(), "samples.json")
	r := cdeload(t, nil, "run", "-o", "json="+out, "dropped.js")
	if r.code != 0 {
		t.Fatalf("want exit 0, got %s", r)
	}
	c, _ := r.counts(t)
	f, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	dropped := 0.0
	sc := bufio.NewScanner(bytes.NewReader(f))
	for sc.Scan() {
		var p struct {
			Type   string
			Metric string
			Data   struct {
				Value float64
				Tags  map[string]string
			}
		}
		if json.Unmarshal(sc.Bytes(), &p) == nil && p.Type == "Point" && p.Metric == "dropped_iterations" {
			if p.Data.Tags["scenario"] != "busy" {
				t.Fatalf("dropped_iterations without scenario tag: %s", sc.Text())
			}
			dropped += p.Data.Value
		}
	}
	// 20 planned starts, one VU busy 400ms: about 3 run, the rest drop.
	if dropped < 10 || c+int(dropped) != 20 {
		t.Fatalf("%d complete + %v dropped, want 20 planned with most dropped\n%s", c, dropped, r)
	}
	if !strings.Contains(r.stderr, "insufficient VUs") {
		t.Fatalf("no warning about insufficient VUs:\n%s", r.stderr)
	}
}

func TestAbortRunsTeardownAndExits108(t *testing.T) {
	t.Parallel()
	r := cdeload(t, nil, "run", "-e", "CASE=abort", "control.js")
	if r.code != 108 {
		t.Fatalf("want exit 108, got %s", r)
	}
	if len(r.msgs("ITER")) != 2 || len(r.msgs("TEARDOWN")) != 1 {
		t.Fatalf("iterations %d (want 2) teardown %d (want 1)\n%s", len(r.msgs("ITER")), len(r.msgs("TEARDOWN")), r)
	}
	if !strings.Contains(r.stderr, "enough") {
		t.Fatalf("abort reason not reported:\n%s", r.stderr)
	}
}

func TestFailExits110AfterFullRun(t *testing.T) {
	t.Parallel()
	r := cdeload(t, nil, "run", "-e", "CASE=fail", "control.js")
	if r.code != 110 || len(r.msgs("ITER")) != 5 || len(r.msgs("TEARDOWN")) != 1 {
		t.Fatalf("want exit 110 after 5 iterations and teardown, got %s", r)
	}
}

func TestSIGINTRunsTeardownAndExits105(t *testing.T) {
	t.Parallel()
	p := start(t, nil, "run", "-e", "CASE=signal", "control.js")
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(p.stderr.String(), "RUNNING") {
		if time.Now().After(deadline) {
			p.cmd.Process.Kill()
			t.Fatalf("the test never started: %s", p.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	sent := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	r := p.wait(t)
	if r.code != 105 || len(r.msgs("TEARDOWN")) != 1 {
		t.Fatalf("want exit 105 with teardown, got %s", r)
	}
	if time.Since(sent) > 5*time.Second {
		t.Fatalf("took %s to stop after SIGINT", time.Since(sent))
	}
}

// waitFor waits until the process's stderr contains s.
func (p *proc) waitFor(t *testing.T, s string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(p.stderr.String(), s) {
		if time.Now().After(deadline) {
			p.cmd.Process.Kill()
			t.Fatalf("%q never appeared: %s", s, p.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestSIGINTDuringTeardownLetsItFinishAndExits105(t *testing.T) {
	t.Parallel()
	p := start(t, nil, "run", "-e", "CASE=teardown-signal", "control.js")
	p.waitFor(t, "TEARDOWN-START")
	if err := p.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	r := p.wait(t)
	if r.code != 105 || len(r.msgs("TEARDOWN")) != 2 {
		t.Fatalf("want exit 105 after teardown finished, got %s", r)
	}
	if strings.Contains(r.stderr, "teardown runs now") || !strings.Contains(r.stderr, "teardown is running") {
		t.Fatalf("the signal message does not say that teardown is already running:\n%s", r.stderr)
	}
}

func TestSIGINTWhileLingeringDoesNotClaimTeardown(t *testing.T) {
	t.Parallel()
	p := start(t, nil, "run", "--linger", "-e", "CASE=fail", "control.js")
	p.waitFor(t, "lingering until interrupted")
	if err := p.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	r := p.wait(t)
	if r.code != 110 {
		t.Fatalf("want the test's own exit code 110 after lingering, got %s", r)
	}
	if strings.Contains(r.stderr, "teardown runs now") || !strings.Contains(r.stderr, "stopping the lingering process") {
		t.Fatalf("the signal message while lingering is wrong:\n%s", r.stderr)
	}
}

func TestScriptErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		script string
		code   int
		want   []string
	}{
		{"init_error.js", 107, []string{"broken init"}},
		{"unknown_module.js", 107, []string{"k6/x/does-not-exist"}},
		{"bad_config.js", 104, []string{`unknown field \"iterationz\"`, `scenario \"s\"`, "constant-vus"}},
		{"bad_validation.js", 104, []string{`scenario \"s\"`, "maxVUs is 2", "preAllocatedVUs (4)"}},
		{"setup_timeout.js", 100, []string{"setup"}},
	}
	for _, c := range cases {
		t.Run(c.script, func(t *testing.T) {
			t.Parallel()
			r := cdeload(t, nil, "run", "-q", c.script)
			if r.code != c.code {
				t.Fatalf("want exit %d, got %s", c.code, r)
			}
			for _, w := range c.want {
				if !strings.Contains(r.stderr, w) {
					t.Fatalf("stderr does not mention %q:\n%s", w, r.stderr)
				}
			}
			if len(r.msgs("ITER")) != 0 {
				t.Fatalf("iterations ran: %s", r)
			}
		})
	}
}

func TestEnvAndCLIPrecedence(t *testing.T) {
	t.Parallel()
	t.Run("-e reaches __ENV and init-time options", func(t *testing.T) {
		t.Parallel()
		r := cdeload(t, nil, "run", "-e", "FOO=bar", "-e", "N=3", "env.js")
		if it := r.msgs("ITER foo=bar"); r.code != 0 || len(it) != 3 {
			t.Fatalf("want 3 iterations with foo=bar, got %d\n%s", len(it), r)
		}
	})
	t.Run("system env is in __ENV unless excluded", func(t *testing.T) {
		t.Parallel()
		r := cdeload(t, []string{"FOO=sys"}, "run", "env.js")
		if it := r.msgs("ITER foo=sys"); len(it) != 5 {
			t.Fatalf("want 5 iterations with foo=sys, got %s", r)
		}
		r = cdeload(t, []string{"FOO=sys"}, "run", "--include-system-env-vars=false", "env.js")
		if it := r.msgs("ITER foo=undefined"); len(it) != 5 {
			t.Fatalf("want 5 iterations with foo=undefined, got %s", r)
		}
	})
	t.Run("CLI flags after the script override script options", func(t *testing.T) {
		t.Parallel()
		r := cdeload(t, nil, "run", "env.js", "-i", "2", "--tag", "testid=abc", "--quiet")
		if it := r.msgs("ITER"); r.code != 0 || len(it) != 2 {
			t.Fatalf("want 2 iterations (-i 2 over iterations: 5), got %d\n%s", len(it), r)
		}
		if strings.Contains(r.stdout, "scenarios:") {
			t.Fatalf("--quiet still printed the banner:\n%s", r.stdout)
		}
	})
	t.Run("K6_ITERATIONS overrides the script, -i overrides K6_ITERATIONS", func(t *testing.T) {
		t.Parallel()
		r := cdeload(t, []string{"K6_ITERATIONS=4"}, "run", "env.js")
		if it := r.msgs("ITER"); len(it) != 4 {
			t.Fatalf("want 4 iterations, got %d\n%s", len(it), r)
		}
		r = cdeload(t, []string{"K6_ITERATIONS=4"}, "run", "-i", "1", "env.js")
		if it := r.msgs("ITER"); len(it) != 1 {
			t.Fatalf("want 1 iteration, got %d\n%s", len(it), r)
		}
	})
	t.Run("--vus alone replaces the scenarios", func(t *testing.T) {
		t.Parallel()
		r := cdeload(t, nil, "run", "--vus", "3", "lifecycle.js")
		if it := r.msgs("ITER default"); r.code != 0 || len(it) != 3 {
			t.Fatalf("want 3 iterations of default, got %d\n%s", len(it), r)
		}
		if !strings.Contains(r.stderr, "replaces the scenarios") {
			t.Fatalf("no warning about replaced scenarios:\n%s", r.stderr)
		}
	})
	t.Run("config file is below the script", func(t *testing.T) {
		t.Parallel()
		cfg := filepath.Join(t.TempDir(), "config.json")
		if err := os.WriteFile(cfg, []byte(`{"iterations": 7, "summaryTimeUnit": "ms"}`), 0o644); err != nil {
			t.Fatal(err)
		}
		r := cdeload(t, nil, "run", "-c", cfg, "env.js")
		if it := r.msgs("ITER"); len(it) != 5 {
			t.Fatalf("want the script's 5 iterations over the config file's 7, got %d\n%s", len(it), r)
		}
	})
	t.Run("same-tier conflict is 104", func(t *testing.T) {
		t.Parallel()
		r := cdeload(t, nil, "run", "-i", "2", "-s", "1s:2", "env.js")
		if r.code != 104 || !strings.Contains(r.stderr, "stages") {
			t.Fatalf("want 104 naming stages, got %s", r)
		}
	})
}

func TestInspectExecutionRequirements(t *testing.T) {
	t.Parallel()
	r := cdeload(t, nil, "inspect", "--execution-requirements", "lifecycle.js")
	if r.code != 0 {
		t.Fatalf("want exit 0, got %s", r)
	}
	var out struct {
		MaxVUs        int                        `json:"maxVUs"`
		TotalDuration string                     `json:"totalDuration"`
		Scenarios     map[string]json.RawMessage `json:"scenarios"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatalf("stdout is not only JSON: %v\n%s", err, r.stdout)
	}
	// first: 2 VUs for 10m30s; later: 1 VU from 1s on → 3 at once; ends
	// at 1s + 10m + 30s.
	if out.MaxVUs != 3 || out.TotalDuration != "10m31s" || len(out.Scenarios) != 2 {
		t.Fatalf("maxVUs=%d totalDuration=%s scenarios=%d, want 3, 10m31s, 2", out.MaxVUs, out.TotalDuration, len(out.Scenarios))
	}
	r = cdeload(t, nil, "inspect", "--execution-requirements", "env.js", "--vus", "4", "--iterations", "8")
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || out.MaxVUs != 4 {
		t.Fatalf("flags after the script: maxVUs=%d err=%v\n%s", out.MaxVUs, err, r)
	}
}

func TestOperatorArgumentOrder(t *testing.T) {
	t.Parallel()
	// The k6-operator puts flags after the script path.
	r := cdeload(t, nil, "run", "env.js", "--vus", "2", "--tag", "instance_id=1", "--tag", "job_name=x",
		"--execution-segment", "0:1/2", "--execution-segment-sequence", "0,1/2,1", "--quiet", "-i", "4")
	if r.code != 0 {
		t.Fatalf("want exit 0, got %s", r)
	}
	if it := r.msgs("ITER"); len(it) != 2 {
		t.Fatalf("segment 0:1/2 of 4 iterations ran %d, want 2\n%s", len(it), r)
	}
}
