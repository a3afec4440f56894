package conformance

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cdeload/cdeload/engine/archive"
)

// The k6-operator contract (spec §7): archive + inspect in the
// initializer, runners started paused with the REST API, the starter's and
// the stopper's PATCH /v1/status.

// starterBody is the exact body of the operator's starter curl.
const starterBody = `{"data":{"attributes":{"paused":false,"stopped":false},"id":"default","type":"status"}}`

// stopperBody is the operator's stopper PATCH.
const stopperBody = `{"data":{"attributes":{"paused":false,"stopped":true},"id":"default","type":"status"}}`

// runIn runs the binary (or argv0 when set) in dir with env added to a
// minimal environment.
func runIn(t *testing.T, dir string, env []string, argv0 string, args ...string) *result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if argv0 == "" {
		argv0 = binary
	}
	cmd := exec.CommandContext(ctx, argv0, args...)
	cmd.Dir = dir
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}, env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	began := time.Now()
	err := cmd.Run()
	r := &result{stdout: stdout.String(), stderr: stderr.String(), took: time.Since(began)}
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("running %s: %v", argv0, err)
		}
		r.code = ee.ExitCode()
	}
	return r
}

// copyScripts copies testdata files into a new temp dir and returns it.
func copyScripts(t *testing.T, names ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join("testdata", n))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, n), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestArchiveThenInspectAndRunWithoutTheOriginalFiles(t *testing.T) {
	t.Parallel()
	src := copyScripts(t, "op_main.js", "op_lib.js")
	if err := os.WriteFile(filepath.Join(src, "op_data.txt"), []byte("archived\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "archive.tar")
	r := runIn(t, src, nil, "", "archive", "op_main.js", "-e", "GREETING=hi", "--iterations", "6", "--vus", "3", "-O", out)
	if r.code != 0 || r.stdout != "" {
		t.Fatalf("archive: want exit 0 and nothing on stdout, got %s", r)
	}
	a, err := archive.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	entry := filepath.Join(src, "op_main.js")
	if a.Filename != entry || a.Pwd != src || a.Env["GREETING"] != "hi" || a.CompatibilityMode != "extended" || a.K6Version == "" {
		t.Fatalf("metadata: filename=%s pwd=%s env=%v mode=%s version=%s", a.Filename, a.Pwd, a.Env, a.CompatibilityMode, a.K6Version)
	}
	for _, f := range []string{"op_main.js", "op_lib.js", "op_data.txt"} {
		if _, ok := a.Files[filepath.Join(src, f)]; !ok {
			t.Fatalf("archive lacks file/%s; it has %v", filepath.Join(src, f), keysOf(a.Files))
		}
	}
	want, _ := os.ReadFile(entry)
	if !bytes.Equal(a.Data, want) {
		t.Fatalf("data member is not the entry script:\n%s", a.Data)
	}

	// The initializer's step two: JSON only on stdout.
	r = runIn(t, filepath.Dir(out), nil, "", "inspect", "--execution-requirements", "archive.tar")
	var req struct {
		MaxVUs        int    `json:"maxVUs"`
		TotalDuration string `json:"totalDuration"`
	}
	if r.code != 0 {
		t.Fatalf("inspect: want exit 0, got %s", r)
	}
	if err := json.Unmarshal([]byte(r.stdout), &req); err != nil {
		t.Fatalf("inspect stdout is not only JSON: %v\n%s", err, r.stdout)
	}
	// --iterations 6 --vus 3 given to archive: 3 VUs, 10m + 30s.
	if req.MaxVUs != 3 || req.TotalDuration != "10m30s" {
		t.Fatalf("maxVUs=%d totalDuration=%s, want 3 and 10m30s", req.MaxVUs, req.TotalDuration)
	}

	// Run from elsewhere once the original files are gone.
	if err := os.RemoveAll(src); err != nil {
		t.Fatal(err)
	}
	r = runIn(t, t.TempDir(), nil, "", "run", "--quiet", out)
	if r.code != 0 {
		t.Fatalf("run archive.tar: want exit 0, got %s", r)
	}
	iters := r.msgs("ITER")
	if len(iters) != 6 || iters[0] != "ITER hello-archived env=hi" || len(r.msgs("TEARDOWN")) != 1 {
		t.Fatalf("want 6 iterations logging %q and a teardown, got %q\n%s", "ITER hello-archived env=hi", iters, r)
	}
	// A run's -e wins over the archive's env; --type archive needs no
	// .tar name.
	renamed := filepath.Join(filepath.Dir(out), "test.bin")
	if err := os.Rename(out, renamed); err != nil {
		t.Fatal(err)
	}
	r = runIn(t, t.TempDir(), nil, "", "run", "--quiet", "-t", "archive", "-e", "GREETING=override", "-i", "1", renamed)
	if r.code != 0 || len(r.msgs("ITER hello-archived env=override")) != 1 {
		t.Fatalf("run -t archive -e GREETING=override -i 1: got %s", r)
	}
	// Detected by the tar header without the flag.
	r = runIn(t, t.TempDir(), nil, "", "run", "--quiet", "-i", "1", renamed)
	if r.code != 0 || len(r.msgs("ITER hello-archived env=hi")) != 1 {
		t.Fatalf("run of an archive without .tar: got %s", r)
	}
}

func TestArchiveFlags(t *testing.T) {
	t.Parallel()
	src := copyScripts(t, "op_runner.js")
	for _, bad := range [][]string{{"--out", "json"}, {"-o", "json"}, {"--linger"}, {"-l"}} {
		r := runIn(t, src, nil, "", append([]string{"archive", "op_runner.js"}, bad...)...)
		if r.code != 255 || !strings.Contains(r.stderr, "unknown flag") {
			t.Fatalf("archive %v: want exit 255 and an unknown flag error, got %s", bad, r)
		}
	}
	r := runIn(t, src, nil, "", "archive", "op_runner.js", "-e", "SECRET=x", "--exclude-env-vars")
	if r.code != 0 {
		t.Fatalf("archive --exclude-env-vars: got %s", r)
	}
	a, err := archive.ReadFile(filepath.Join(src, "archive.tar"))
	if err != nil {
		t.Fatalf("the default output is archive.tar: %v", err)
	}
	if len(a.Env) != 0 {
		t.Fatalf("--exclude-env-vars stored env %v", a.Env)
	}
	r = runIn(t, src, nil, "", "run", "-t", "zip", "op_runner.js")
	if r.code == 0 || !strings.Contains(r.stderr, `--type \"zip\"`) {
		t.Fatalf("run -t zip: want an error naming the flag, got %s", r)
	}
}

// TestInitializerAsK6 runs the operator initializer's steps with the binary
// invoked as k6 through a symlink on PATH.
func TestInitializerAsK6(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no sh")
	}
	bin := t.TempDir()
	if err := os.Symlink(binary, filepath.Join(bin, "k6")); err != nil {
		t.Fatal(err)
	}
	src := copyScripts(t, "op_runner.js")
	tmp := t.TempDir()
	script := fmt.Sprintf(`k6 archive %s/op_runner.js -e ITERS=6 -O %s/op_runner.js.archived.tar --vus 2 2> %s/k6logs || exit 1
k6 inspect --execution-requirements %s/op_runner.js.archived.tar 2> %s/k6logs || exit 1
! grep 'level.*error' %s/k6logs`, src, tmp, tmp, tmp, tmp, tmp)
	cmd := exec.Command("sh", "-c", script)
	cmd.Env = []string{"PATH=" + bin + ":" + os.Getenv("PATH"), "HOME=" + tmp}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("initializer script: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	// The operator unmarshals the whole pod log.
	var req struct {
		MaxVUs        int    `json:"maxVUs"`
		TotalDuration string `json:"totalDuration"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &req); err != nil {
		t.Fatalf("initializer output is not one JSON document: %v\n%s", err, stdout.String())
	}
	// --vus 2 alone (k6 v2.1): 2 VUs × 2 shared iterations, maxDuration 10m.
	if req.MaxVUs != 2 || req.TotalDuration != "10m30s" {
		t.Fatalf("maxVUs=%d totalDuration=%s, want 2 and 10m30s", req.MaxVUs, req.TotalDuration)
	}
}

// statusAttrs are /v1/status attributes.
type statusAttrs struct {
	Status  int   `json:"status"`
	Paused  bool  `json:"paused"`
	VUs     int64 `json:"vus"`
	VUsMax  int64 `json:"vus-max"`
	Stopped bool  `json:"stopped"`
	Running bool  `json:"running"`
	Tainted bool  `json:"tainted"`
}

// The k6 status enum values the tests look for.
const (
	statusPausedBeforeRun = 4
	statusRunning         = 7
)

// freeAddr returns a loopback address nothing listens on right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

var httpClient = &http.Client{Timeout: 5 * time.Second}

// getStatus is GET /v1/status; ok is false while nothing answers.
func getStatus(addr string) (statusAttrs, bool, error) {
	resp, err := httpClient.Get("http://" + addr + "/v1/status")
	if err != nil {
		return statusAttrs{}, false, nil
	}
	defer resp.Body.Close()
	var doc struct {
		Data struct {
			Type       string      `json:"type"`
			ID         string      `json:"id"`
			Attributes statusAttrs `json:"attributes"`
		} `json:"data"`
	}
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return statusAttrs{}, true, fmt.Errorf("GET /v1/status: %d %s", resp.StatusCode, b)
	}
	if err := json.Unmarshal(b, &doc); err != nil || doc.Data.Type != "status" || doc.Data.ID != "default" {
		return statusAttrs{}, true, fmt.Errorf("GET /v1/status: not a status document (%v): %s", err, b)
	}
	return doc.Data.Attributes, true, nil
}

// waitStatus polls GET /v1/status until cond holds (bounded by 20s).
func waitStatus(t *testing.T, p *proc, addr string, what string, cond func(statusAttrs) bool) statusAttrs {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		st, ok, err := getStatus(addr)
		if err != nil {
			t.Fatal(err)
		}
		if ok && cond(st) {
			return st
		}
		if p.cmd.ProcessState != nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	p.cmd.Process.Kill()
	t.Fatalf("no %s status from %s\n%s", what, addr, p.wait(t))
	return statusAttrs{}
}

// patch sends a PATCH /v1/status the way the starter's curl does.
func patch(t *testing.T, addr, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPatch, "http://"+addr+"/v1/status", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatalf("PATCH /v1/status: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// runner starts `run` with the operator's exact argv for instance i of n.
func runner(t *testing.T, env []string, addr string, i, n int) *proc {
	t.Helper()
	seg := fmt.Sprintf("%d/%d:%d/%d", i-1, n, i, n)
	if i == 1 {
		seg = fmt.Sprintf("0:%d/%d", i, n)
	}
	if i == n {
		seg = fmt.Sprintf("%d/%d:1", i-1, n)
	}
	seq := []string{"0"}
	for k := 1; k < n; k++ {
		seq = append(seq, fmt.Sprintf("%d/%d", k, n))
	}
	seq = append(seq, "1")
	return start(t, env, "run", "--quiet", "--execution-segment="+seg,
		"--execution-segment-sequence="+strings.Join(seq, ","), "op_runner.js",
		"--address="+addr, "--paused", "--tag", "instance_id="+strconv.Itoa(i), "--tag", "testrun_name=x")
}

func TestOperatorRunnerStartsPausedAndResumes(t *testing.T) {
	t.Parallel()
	addr := freeAddr(t)
	p := runner(t, []string{"ITERS=11"}, addr, 1, 2)
	st := waitStatus(t, p, addr, "PausedBeforeRun", func(s statusAttrs) bool { return s.Status == statusPausedBeforeRun })
	if !st.Paused || st.Running || st.Stopped || st.VUsMax != 1 || st.VUs != 0 {
		t.Fatalf("paused runner reports %+v, want paused, not running, 1 VU initialised", st)
	}
	// Live VU updates are refused.
	code, body := patch(t, addr, `{"data":{"attributes":{"vus":5},"id":"default","type":"status"}}`)
	if code != 500 || !strings.Contains(body, "live VU configuration updates are not supported") || !strings.Contains(body, `"errors"`) {
		t.Fatalf("PATCH vus: want 500 with the error document, got %d %s", code, body)
	}
	// A body that is not JSON is a 400 error document.
	if code, body := patch(t, addr, `{"data":`); code != 400 || !strings.Contains(body, `"status":"400"`) {
		t.Fatalf("PATCH with a broken body: got %d %s", code, body)
	}
	// Nothing ran while paused.
	time.Sleep(200 * time.Millisecond)
	if st, _, _ := getStatus(addr); st.Status != statusPausedBeforeRun {
		t.Fatalf("the run moved on while paused: %+v", st)
	}
	code, body = patch(t, addr, starterBody)
	if code != 200 || !strings.Contains(body, `"paused":false`) {
		t.Fatalf("starter PATCH: got %d %s", code, body)
	}
	r := p.wait(t)
	if r.code != 0 {
		t.Fatalf("want exit 0, got %s", r)
	}
	// Segment 0:1/2 of 11 shared iterations.
	if it := r.msgs("ITER"); len(it) != 5 && len(it) != 6 {
		t.Fatalf("segment 0:1/2 of 11 iterations ran %d\n%s", len(it), r)
	}
	if len(r.msgs("SETUP")) != 1 || len(r.msgs("TEARDOWN")) != 1 {
		t.Fatalf("want setup and teardown once\n%s", r)
	}
}

func TestOperatorTwoRunnersRunExactlyTheTotal(t *testing.T) {
	t.Parallel()
	const total = 11
	addrs := []string{freeAddr(t), freeAddr(t)}
	procs := []*proc{
		runner(t, []string{"ITERS=" + strconv.Itoa(total)}, addrs[0], 1, 2),
		runner(t, []string{"ITERS=" + strconv.Itoa(total)}, addrs[1], 2, 2),
	}
	// Like the operator: every runner answers before any is started.
	for i, p := range procs {
		waitStatus(t, p, addrs[i], "ready", func(s statusAttrs) bool { return s.Status == statusPausedBeforeRun })
	}
	for _, a := range addrs {
		if code, body := patch(t, a, starterBody); code != 200 {
			t.Fatalf("starter PATCH to %s: %d %s", a, code, body)
		}
	}
	sum := 0
	seen := map[int]int{} // iterationInTest → runner
	for i, p := range procs {
		r := p.wait(t)
		if r.code != 0 {
			t.Fatalf("runner %d: want exit 0, got %s", i+1, r)
		}
		it := r.msgs("ITER")
		if len(it) == 0 {
			t.Fatalf("runner %d ran no iteration\n%s", i+1, r)
		}
		sum += len(it)
		// exec.scenario.iterationInTest is unique across the instances.
		for _, m := range it {
			n, err := strconv.Atoi(strings.TrimPrefix(m, "ITER "))
			if err != nil {
				t.Fatalf("runner %d printed %q, want ITER <iterationInTest>", i+1, m)
			}
			if j, dup := seen[n]; dup {
				t.Fatalf("iterationInTest %d printed by runner %d and runner %d", n, j, i+1)
			}
			seen[n] = i + 1
		}
	}
	if sum != total {
		t.Fatalf("segments 0:1/2 and 1/2:1 ran %d iterations together, want %d", sum, total)
	}
	for n := range total {
		if _, ok := seen[n]; !ok {
			t.Fatalf("no runner printed iterationInTest %d; the union must be 0..%d, got %v", n, total-1, seen)
		}
	}
}

func TestOperatorStopperExits103AfterTeardown(t *testing.T) {
	t.Parallel()
	addr := freeAddr(t)
	p := runner(t, []string{"ITERS=100000", "SLEEP=0.05", "TAINT=1"}, addr, 1, 1)
	waitStatus(t, p, addr, "PausedBeforeRun", func(s statusAttrs) bool { return s.Status == statusPausedBeforeRun })
	if code, body := patch(t, addr, starterBody); code != 200 {
		t.Fatalf("starter PATCH: %d %s", code, body)
	}
	// The executor starts its VUs one after the other: wait for both.
	st := waitStatus(t, p, addr, "running with 2 active VUs", func(s statusAttrs) bool { return s.Status == statusRunning && s.VUs == 2 })
	if !st.Running || st.Paused || st.VUs != 2 {
		t.Fatalf("running runner reports %+v, want running with 2 active VUs", st)
	}
	// Thresholds are evaluated every 2s: "tainted" follows the failing one.
	waitStatus(t, p, addr, "tainted", func(s statusAttrs) bool { return s.Tainted })
	code, body := patch(t, addr, stopperBody)
	if code != 200 || !strings.Contains(body, `"stopped":true`) {
		t.Fatalf("stopper PATCH: got %d %s", code, body)
	}
	r := p.wait(t)
	// The stop decides the code although a threshold failed too.
	if r.code != 103 {
		t.Fatalf("want exit 103 after a REST stop, got %s", r)
	}
	if len(r.msgs("TEARDOWN")) != 1 || len(r.msgs("ITER")) == 0 {
		t.Fatalf("want iterations and then teardown\n%s", r)
	}
	if !strings.Contains(r.stderr, "stopped through the REST API") {
		t.Fatalf("the stop is not explained on stderr\n%s", r)
	}
}

// A resume may arrive while VUs are still initialising: it is latched.
// The address and pause come from K6_ADDRESS and K6_PAUSED here.
func TestOperatorResumeBeforeVUInitEndsIsLatched(t *testing.T) {
	t.Parallel()
	addr := freeAddr(t)
	p := start(t, []string{"K6_ADDRESS=" + addr, "K6_PAUSED=true", "SLOW_INIT=1500", "ITERS=4"}, "run", "--quiet", "op_runner.js")
	st := waitStatus(t, p, addr, "any", func(statusAttrs) bool { return true })
	if st.Status >= statusPausedBeforeRun || !st.Paused {
		t.Fatalf("want an answer while VUs initialise (status < 4, paused), got %+v", st)
	}
	if code, body := patch(t, addr, starterBody); code != 200 {
		t.Fatalf("early starter PATCH: %d %s", code, body)
	}
	r := p.wait(t)
	if r.code != 0 || len(r.msgs("ITER")) != 4 {
		t.Fatalf("want exit 0 and 4 iterations after an early resume, got %s", r)
	}
}

func TestOperatorAddressInUseExits106(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	r := cdeload(t, nil, "run", "--quiet", "op_runner.js", "--address="+ln.Addr().String(), "--paused")
	if r.code != 106 || !strings.Contains(r.stderr, "REST API") {
		t.Fatalf("want exit 106 naming the REST API, got %s", r)
	}
	if len(r.msgs("SETUP")) != 0 {
		t.Fatalf("setup ran although the API could not start\n%s", r)
	}
}

// --paused without --address waits (nothing can resume it) until a signal.
func TestPausedWithoutAddressWaitsUntilInterrupted(t *testing.T) {
	t.Parallel()
	p := start(t, nil, "run", "--quiet", "--paused", "op_runner.js")
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(p.stderr.String(), "without --address") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	if err := p.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	r := p.wait(t)
	if r.code != 105 || len(r.msgs("ITER")) != 0 || len(r.msgs("SETUP")) != 0 {
		t.Fatalf("want exit 105 without any iteration, got %s", r)
	}
	if !strings.Contains(r.stderr, "without --address") {
		t.Fatalf("no warning about --paused without --address\n%s", r)
	}
}
