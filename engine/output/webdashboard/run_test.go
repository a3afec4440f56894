package webdashboard_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestReportWrittenWhenInterrupted interrupts a lab run of scale.js with
// SIGINT (Ctrl-C) during its traffic: the report must still be written,
// with every workspace's row.
func TestReportWrittenWhenInterrupted(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a lab scale test")
	}
	dir := t.TempDir()
	bin := buildCdeload(t, dir)
	port := freePort(t)
	report := filepath.Join(dir, "report.html")
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "run", "-e", "WORKSPACES=2", "-e", "TRAFFIC_DURATION=120s",
		filepath.Join(repoRoot(t), "examples", "scale.js"))
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "K6_WEB_DASHBOARD=true", "K6_WEB_DASHBOARD_PORT="+strconv.Itoa(port),
		"K6_WEB_DASHBOARD_EXPORT="+report)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	url := "http://127.0.0.1:" + strconv.Itoa(port) + "/"
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(300 * time.Millisecond) {
		if page := get(url); strings.Count(page, "data-traffic-start=") == 2 {
			break
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			t.Fatalf("the two workspaces never showed traffic on %s:\n%s", url, out.String())
		}
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if code := exitCode(err); code != 105 {
			t.Errorf("exit code %d after SIGINT; want 105 (interrupted)\n%s", code, out.String())
		}
	case <-ctx.Done():
		t.Fatalf("cdeload did not end after SIGINT:\n%s", out.String())
	}
	b, err := os.ReadFile(report)
	if err != nil {
		t.Fatalf("no report after an interrupted run: %v\n%s", err, out.String())
	}
	if n := strings.Count(string(b), `class="ws-row`); n != 2 {
		t.Errorf("report of the interrupted run has %d workspace rows; want 2", n)
	}
	if strings.Count(string(b), "data-traffic-start=") != 2 {
		t.Errorf("report of the interrupted run lost the traffic of its workspaces")
	}
}

// TestReportShowsFailures runs scale.js with a template the lab does not
// have: each workspace's creation fails, and the report must show one
// failed row per VU with the reason, and the reason in the failures table.
func TestReportShowsFailures(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a lab scale test")
	}
	dir := t.TempDir()
	bin := buildCdeload(t, dir)
	report := filepath.Join(dir, "report.html")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "run", "--quiet", "-e", "WORKSPACES=2", "-e", "TEMPLATE=no-such-template",
		filepath.Join(repoRoot(t), "examples", "scale.js"))
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "K6_WEB_DASHBOARD=true", "K6_WEB_DASHBOARD_PORT=-1", "K6_WEB_DASHBOARD_EXPORT="+report)
	out, _ := cmd.CombinedOutput()
	b, err := os.ReadFile(report)
	if err != nil {
		t.Fatalf("no report: %v\n%s", err, out)
	}
	page := string(b)
	if n := strings.Count(page, `class="ws-row failed"`); n != 2 {
		t.Errorf("report has %d failed rows; want one per VU (2)\n%s", n, out)
	}
	if n := strings.Count(page, `<span class="ws-note">failed: create: `); n != 2 {
		t.Errorf("report shows %d failure reasons next to the rows; want 2", n)
	}
	if !strings.Contains(page, "no-such-template") {
		t.Errorf("report does not name the missing template in the failure reason\n%s", out)
	}
	if !strings.Contains(page, `id="tile-failed"><span class="v" data-value="2"`) {
		t.Errorf("failures tile does not count 2 failures")
	}
}

func get(url string) string {
	resp, err := http.Get(url)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func exitCode(err error) int {
	if err == nil {
		return 0
	}
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	return -1
}
