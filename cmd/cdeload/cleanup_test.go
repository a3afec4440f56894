package main

import (
	"bufio"
	"context"
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

// holdScript creates one workspace per VU, then waits until interrupted;
// teardown cleans up.
const holdScript = `
import cde from 'k6/x/cdeload';
const N = Number(__ENV.N || 5);
export const options = { scenarios: { s: { executor: 'per-vu-iterations', vus: N, iterations: 1, maxDuration: '5m' } } };
const coder = new cde.Coder({ pollInterval: '100ms' });
export default async function () {
  const ws = await coder.createWorkspace({ template: 'kubernetes' });
  console.log('created ' + ws.name);
  if (__ENV.HOLD) { await new Promise((r) => setTimeout(r, 120000)); } else { await ws.delete(); }
}
export async function teardown() { await coder.cleanup(); }
`

// TestFaultsThroughTheBinary runs the cdeload binary against a standalone
// `cdeload lab` with its Coder fault knobs.
func TestFaultsThroughTheBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs labs")
	}
	bin := buildBin(t)
	script := filepath.Join(t.TempDir(), "hold.js")
	if err := os.WriteFile(script, []byte(holdScript), 0o644); err != nil {
		t.Fatal(err)
	}

	t.Run("api errors leave nothing and exit 0", func(t *testing.T) {
		env := startLab(t, bin, "--api-error-rate", "0.2", "--seed", "3")
		r := runBin(t, bin, env, 2*time.Minute, "run", "-q", "-e", "N=10", script)
		if r.code != 0 || strings.Contains(r.stderr, "level=error") {
			t.Fatalf("run against --api-error-rate 0.2: %s", r)
		}
		assertNothingLeft(t, bin, env)
	})

	t.Run("interrupt cleans every workspace up in about one delete", func(t *testing.T) {
		const build = 2 * time.Second
		env := startLab(t, bin, "--build-latency", build.String())
		p := startBin(t, bin, env, "run", "-q", "-e", "N=30", "-e", "HOLD=1", script)
		p.waitFor(t, 2*time.Minute, func(s string) bool { return strings.Count(s, "created scaletest-") >= 30 })
		sent := time.Now()
		_ = p.cmd.Process.Signal(os.Interrupt)
		r := p.wait(t)
		took := time.Since(sent)
		t.Logf("30 workspaces, delete build %v: exit %d %v after SIGINT", build, r.code, took)
		if r.code != 105 {
			t.Fatalf("exit %d after SIGINT, want 105: %s", r.code, r)
		}
		// One VU's ledger after another took 30 deletes; at once it is
		// one delete plus polls and closing.
		if took > 5*build {
			t.Fatalf("exit %v after SIGINT with 30 workspaces of %v deletes: not cleaned up concurrently", took, build)
		}
		assertNothingLeft(t, bin, env)
	})

	t.Run("second signal reports leftovers that cdeload cleanup removes", func(t *testing.T) {
		env := startLab(t, bin, "--build-latency", "3s")
		p := startBin(t, bin, env, "run", "-q", "-e", "N=3", "-e", "HOLD=1", script)
		p.waitFor(t, time.Minute, func(s string) bool { return strings.Count(s, "created scaletest-") >= 3 })
		_ = p.cmd.Process.Signal(os.Interrupt)
		p.waitFor(t, 10*time.Second, func(s string) bool { return strings.Contains(s, "stopping the test run") })
		time.Sleep(300 * time.Millisecond)
		_ = p.cmd.Process.Signal(os.Interrupt)
		r := p.wait(t)
		if r.code != 105 {
			t.Fatalf("exit %d after a second signal, want 105: %s", r.code, r)
		}
		m := regexp.MustCompile(`left on (\S+): (\d+) workspaces and (\d+) users of run (\w+)`).FindStringSubmatch(r.stderr)
		if m == nil || m[1] != env["CODER_URL"] || m[2] == "0" {
			t.Fatalf("no report of what was left on %s: %s", env["CODER_URL"], r)
		}
		runID := m[4]
		if want := "cdeload cleanup --run-id " + runID; !strings.Contains(r.stderr, want) {
			t.Fatalf("the report does not give %q: %s", want, r)
		}
		if strings.Contains(r.stderr, env["CODER_SESSION_TOKEN"]) {
			t.Fatal("the report shows the session token")
		}
		dry := runBin(t, bin, env, time.Minute, "cleanup", "--run-id", runID, "--dry-run")
		if dry.code != 0 || !strings.Contains(dry.stdout, "workspace scaletest-"+runID) || !strings.Contains(dry.stdout, "would be removed") {
			t.Fatalf("cleanup --dry-run: %s", dry)
		}
		clean := runBin(t, bin, env, time.Minute, "cleanup", "--run-id", runID)
		if clean.code != 0 {
			t.Fatalf("cleanup --run-id %s: %s", runID, clean)
		}
		assertNothingLeft(t, bin, env)
	})

	t.Run("failed builds fail the gate of examples/scale.js", func(t *testing.T) {
		env := startLab(t, bin, "--build-failure-rate", "1")
		r := runBin(t, bin, env, 2*time.Minute, "run", "-q", "-e", "WORKSPACES=2", "-e", "TRAFFIC_DURATION=1s",
			filepath.Join("..", "..", "examples", "scale.js"))
		if r.code != 99 || !strings.Contains(r.stdout, "workspace_failed{op:create}") {
			t.Fatalf("scale.js with every build failing: exit %d, want 99 (thresholds) with workspace_failed{op:create} in the summary: %s", r.code, r)
		}
	})
}

// assertNothingLeft checks with `cdeload cleanup --all --dry-run` that no
// scaletest workspace or user is left.
func assertNothingLeft(t *testing.T, bin string, env map[string]string) {
	t.Helper()
	r := runBin(t, bin, env, time.Minute, "cleanup", "--all", "--dry-run")
	if r.code != 0 || !strings.Contains(r.stdout, "0 workspaces and 0 users would be removed") {
		t.Fatalf("left behind: %s", r)
	}
}

// startLab runs `cdeload lab` with args on loopback and returns its
// exports; the lab is interrupted when the test ends.
func startLab(t *testing.T, bin string, args ...string) map[string]string {
	t.Helper()
	p := startBin(t, bin, nil, append([]string{"lab", "--listen", "127.0.0.1:0"}, args...)...)
	t.Cleanup(func() {
		_ = p.cmd.Process.Signal(os.Interrupt)
		p.wait(t)
	})
	out := p.waitForStdout(t, 30*time.Second, func(s string) bool { return strings.Contains(s, "# serving") })
	env := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		if kv, ok := strings.CutPrefix(sc.Text(), "export "); ok {
			if k, v, ok := strings.Cut(kv, "="); ok {
				env[k] = v
			}
		}
	}
	if env["CODER_URL"] == "" {
		t.Fatalf("lab printed no CODER_URL:\n%s", out)
	}
	return env
}

type binResult struct {
	code           int
	stdout, stderr string
}

func (r *binResult) String() string {
	return "exit " + strconv.Itoa(r.code) + "\n--- stdout\n" + r.stdout + "\n--- stderr\n" + r.stderr
}

type binProc struct {
	cmd            *exec.Cmd
	stdout, stderr *syncbuf.Buffer
	cancel         context.CancelFunc
	done           chan struct{}
	err            error
}

func startBin(t *testing.T, bin string, env map[string]string, args ...string) *binProc {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	p := &binProc{cmd: cmd, stdout: &syncbuf.Buffer{}, stderr: &syncbuf.Buffer{}, cancel: cancel, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.stdout, p.stderr
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGKILL) }
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	return p
}

func (p *binProc) wait(t *testing.T) *binResult {
	t.Helper()
	<-p.done
	p.cancel()
	r := &binResult{stdout: p.stdout.String(), stderr: p.stderr.String()}
	if p.err != nil {
		ee, ok := p.err.(*exec.ExitError)
		if !ok {
			t.Fatalf("running cdeload: %v", p.err)
		}
		r.code = ee.ExitCode()
	}
	return r
}

// waitFor waits until ok holds for the process's stderr.
func (p *binProc) waitFor(t *testing.T, d time.Duration, ok func(string) bool) string {
	t.Helper()
	return p.poll(t, d, p.stderr, ok)
}

// waitForStdout waits until ok holds for the process's stdout.
func (p *binProc) waitForStdout(t *testing.T, d time.Duration, ok func(string) bool) string {
	t.Helper()
	return p.poll(t, d, p.stdout, ok)
}

func (p *binProc) poll(t *testing.T, d time.Duration, b *syncbuf.Buffer, ok func(string) bool) string {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		s := b.String()
		if ok(s) {
			return s
		}
		select {
		case <-p.done:
			t.Fatalf("cdeload %v exited early:\n--- stdout\n%s\n--- stderr\n%s", p.cmd.Args[1:], p.stdout, p.stderr)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("cdeload %v: not seen in %v:\n--- stdout\n%s\n--- stderr\n%s", p.cmd.Args[1:], d, p.stdout, p.stderr)
		}
	}
}

func runBin(t *testing.T, bin string, env map[string]string, d time.Duration, args ...string) *binResult {
	t.Helper()
	p := startBin(t, bin, env, args...)
	select {
	case <-p.done:
	case <-time.After(d):
		p.cancel()
		<-p.done
		t.Fatalf("cdeload %v did not end in %v:\n--- stdout\n%s\n--- stderr\n%s", args, d, p.stdout, p.stderr)
	}
	return p.wait(t)
}
