package conformance

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// tailnetState lists the tailnet state directories a run left in tmp.
func tailnetState(t *testing.T, tmp string) []string {
	t.Helper()
	left, err := filepath.Glob(filepath.Join(tmp, "cdeload-tailnet-*"))
	if err != nil {
		t.Fatal(err)
	}
	return left
}

func TestRunLeavesNoTailnetStateOnAnyExit(t *testing.T) {
	if testing.Short() {
		t.Skip("starts workspaces on a tailnet")
	}
	t.Parallel()
	// Normal end: the embedded lab's workspaces and the client's node.
	tmp := t.TempDir()
	r := cdeload(t, []string{"TMPDIR=" + tmp, "ECHO_DURATION=500ms"}, "run", "vanishing_lab.js")
	if r.code != 0 {
		t.Fatalf("want exit 0, got %s", r)
	}
	if left := tailnetState(t, tmp); len(left) != 0 {
		t.Errorf("a finished run left tailnet state: %q", left)
	}

	// A second signal, while teardown runs, stops at once without closing
	// the nodes.
	tmp = t.TempDir()
	p := start(t, []string{"TMPDIR=" + tmp, "ECHO_DURATION=10m", "SLOW_TEARDOWN=1"}, "run", "vanishing_lab.js")
	deadline := time.Now().Add(40 * time.Second)
	for len((&result{stderr: p.stderr.String()}).msgs("STREAMING ")) == 0 {
		if time.Now().After(deadline) {
			p.cmd.Process.Kill()
			t.Fatalf("the echo stream never started:\n%s", p.stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if left := tailnetState(t, tmp); len(left) == 0 {
		entries, _ := os.ReadDir(tmp)
		t.Fatalf("no tailnet state while nodes run (TMPDIR has %v): the test would prove nothing", entries)
	}
	if err := p.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	for len((&result{stderr: p.stderr.String()}).msgs("TEARDOWN sleeping")) == 0 {
		if time.Now().After(deadline) {
			p.cmd.Process.Kill()
			t.Fatalf("teardown never started:\n%s", p.stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if left := tailnetState(t, tmp); len(left) == 0 {
		t.Fatal("no tailnet state while teardown runs: the test would prove nothing")
	}
	if err := p.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	r = p.wait(t)
	if r.code != 105 {
		t.Errorf("want exit 105 after two signals, got %s", r)
	}
	if left := tailnetState(t, tmp); len(left) != 0 {
		t.Errorf("a run stopped by a second signal left tailnet state: %q", left)
	}
}
