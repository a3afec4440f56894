package conformance

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cdeload/cdeload/lab/codersim"
	"github.com/cdeload/cdeload/workspace"
	"github.com/cdeload/cdeload/workspace/coder"
)

// scaleScript is the shipped example, run from testdata.
const scaleScript = "../../../examples/scale.js"

func TestScaleExampleAgainstTheEmbeddedLab(t *testing.T) {
	if testing.Short() {
		t.Skip("starts workspaces on a tailnet")
	}
	t.Parallel()
	r := cdeload(t, nil, "run", "-e", "WORKSPACES=2", "-e", "TRAFFIC_DURATION=2s", scaleScript)
	if r.code != 0 {
		t.Fatalf("want exit 0, got %s", r)
	}
	for _, want := range []string{
		"✓ every frame came back", "✓ no stream errors", "✓ workspace has an agent address",
		"checks_succeeded...................: 100.00% 6 out of 6",
		"{ transport:ssh }", "workspace_failed...................: 0.00%   0 out of 4",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("summary lacks %q:\n%s", want, r.stdout)
		}
	}
	if strings.Contains(r.stderr, "NOTICE") {
		t.Errorf("the lab run fell back to the web terminal:\n%s", r.stderr)
	}
}

func TestScaleExampleAgainstARealCoderUsesTheTerminal(t *testing.T) {
	t.Parallel()
	// A Coder API with no lab behind it stands in for a real deployment.
	sim, err := codersim.New(codersim.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	env := []string{"CODER_URL=" + sim.URL, "CODER_SESSION_TOKEN=" + sim.AdminToken}
	r := cdeload(t, env, "run", "-e", "WORKSPACES=2", "-e", "TRAFFIC_DURATION=1s", scaleScript)
	if r.code != 0 {
		t.Fatalf("want exit 0, got %s", r)
	}
	if !strings.Contains(r.stderr, "SSH over Coder's tailnet is not supported yet") {
		t.Errorf("no notice about SSH in stderr:\n%s", r.stderr)
	}
	if !strings.Contains(r.stdout, "✓ every frame came back") || !strings.Contains(r.stdout, "{ transport:terminal }") {
		t.Errorf("no terminal echo in the summary:\n%s", r.stdout)
	}

	r = cdeload(t, env, "run", "scale_coder_ssh.js")
	if r.code != 0 {
		t.Fatalf("want exit 0, got %s", r)
	}
	ws, rej := r.msgs("WS "), r.msgs("SSH REJECTED ")
	if len(ws) != 1 || !strings.Contains(ws[0], "sshSupported=false") {
		t.Fatalf("workspace messages %q, want sshSupported=false\n%s", ws, r)
	}
	if len(rej) != 1 || !strings.Contains(rej[0], "SSH over Coder's tailnet is not supported yet") ||
		!strings.Contains(rej[0], "ws.terminal()") {
		t.Fatalf("ssh.connect to a Coder workspace: %q, want a rejection pointing to ws.terminal()\n%s", rej, r)
	}
	left, err := coderClient(t, sim.URL, sim.AdminToken).Workspaces(context.Background(), "", 0, 100)
	if err != nil || left.Count != 0 {
		t.Fatalf("workspaces left: %+v %v", left, err)
	}
}

// TestInterruptedScaleRunAgainstAStandaloneLabLeavesNothing starts
// `cdeload lab` with build failures, runs a scale script against it with
// the lab's exports, interrupts the run once workspaces exist, and checks
// through the Coder API that none of the run's users or workspaces remain.
func TestInterruptedScaleRunAgainstAStandaloneLabLeavesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("starts workspaces on a tailnet")
	}
	t.Parallel()
	labProc := start(t, nil, "lab", "--listen", "127.0.0.1:0", "--build-failure-rate", "0.3", "--seed", "7",
		"--build-latency", "100ms")
	defer labProc.cmd.Process.Kill() // only if the test fails before the lab stops
	exports := labExports(t, labProc)
	for _, k := range []string{"CODER_URL", "CODER_SESSION_TOKEN", "TS_CONTROL_URL", "TS_AUTHKEY", "CDELOAD_LAB_URL"} {
		if exports[k] == "" {
			t.Fatalf("cdeload lab did not export %s:\n%s", k, labProc.stdout.String())
		}
	}
	var env []string
	for k, v := range exports {
		env = append(env, k+"="+v)
	}

	run := start(t, env, "run", "scale_interrupt.js")
	deadline := time.Now().Add(40 * time.Second)
	for strings.Count(run.stderr.String(), "READY scaletest-") < 3 {
		if time.Now().After(deadline) {
			run.cmd.Process.Kill()
			t.Fatalf("workspaces never became ready:\n%s", run.stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	c := coderClient(t, exports["CODER_URL"], exports["CODER_SESSION_TOKEN"])
	ctx := context.Background()
	n := countScaletest(t, c)
	if n == 0 {
		t.Fatal("no scaletest workspaces exist before the interrupt")
	}
	if err := run.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	r := run.wait(t)
	if r.code != 105 {
		t.Fatalf("want exit 105 after SIGINT, got %s", r)
	}
	t.Logf("interrupted with %d scaletest workspaces; %d failed builds", n, strings.Count(r.stderr, "simulated provisioning failure"))
	if len(r.msgs("TEARDOWN cleaned up")) != 1 {
		t.Errorf("teardown did not finish its cleanup:\n%s", r.stderr)
	}
	if n := countScaletest(t, c); n != 0 {
		t.Fatalf("%d scaletest workspaces remain after the interrupted run", n)
	}
	users, err := c.Users(ctx, "", 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range users.Users {
		if workspace.IsScaletestName(u.Username) {
			t.Errorf("scaletest user %s remains", u.Username)
		}
	}
	// The lab's machines are gone too.
	resp, err := http.Get(exports["CDELOAD_LAB_URL"] + "/lab/v1/workspaces")
	if err != nil {
		t.Fatal(err)
	}
	var list struct{ Workspaces []struct{ Name string } }
	json.NewDecoder(resp.Body).Decode(&list)
	resp.Body.Close()
	if len(list.Workspaces) != 0 {
		t.Errorf("lab workspaces still running: %+v", list.Workspaces)
	}

	if err := labProc.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if lr := labProc.wait(t); lr.code != 0 {
		t.Fatalf("cdeload lab after SIGINT: %s", lr)
	}
}

func TestLabRejectsBadFaultFlags(t *testing.T) {
	t.Parallel()
	for flag, want := range map[string]string{
		"--build-failure-rate=1.5":      "--build-failure-rate 1.5: must be a probability between 0 and 1",
		"--api-error-rate=-0.1":         "--api-error-rate -0.1: must be a probability between 0 and 1",
		"--build-latency=-2s":           "--build-latency -2s: must not be negative",
		"--rate-limit=-1":               "--rate-limit -1: must be >= 0",
		"--agent-crash-after=soon":      "agent-crash-after",
		"--agent-never-connects-rate=x": "agent-never-connects-rate",
	} {
		r := cdeload(t, nil, "lab", flag)
		if r.code != 2 || !strings.Contains(r.stderr, want) {
			t.Errorf("cdeload lab %s: exit %d, stderr %q; want exit 2 naming %q", flag, r.code, r.stderr, want)
		}
	}
	r := cdeload(t, nil, "lab", "--no-coder", "--build-latency=1s")
	if r.code != 2 || !strings.Contains(r.stderr, "--build-latency") {
		t.Errorf("--no-coder with a fault: exit %d, stderr %q", r.code, r.stderr)
	}
}

// labExports waits for `cdeload lab` to print its banner and returns the
// exported variables.
func labExports(t *testing.T, p *proc) map[string]string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(p.stdout.String(), "# serving") {
		if time.Now().After(deadline) {
			t.Fatalf("cdeload lab did not start:\n%s\n%s", p.stdout.String(), p.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	out := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(p.stdout.String()))
	for sc.Scan() {
		if kv, ok := strings.CutPrefix(sc.Text(), "export "); ok {
			k, v, _ := strings.Cut(kv, "=")
			out[k] = v
		}
	}
	return out
}

func coderClient(t *testing.T, url, token string) *coder.Client {
	t.Helper()
	c, err := coder.NewClient(url, token, coder.ClientOptions{BypassRateLimit: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// countScaletest counts the scaletest workspaces the deployment lists.
func countScaletest(t *testing.T, c *coder.Client) int {
	t.Helper()
	ws, err := c.Workspaces(context.Background(), "", 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, w := range ws.Workspaces {
		if workspace.IsScaletestName(w.Name) {
			n++
		}
	}
	return n
}

func TestLabEnvFileIsWrittenOnceServingAndTheBannerNamesTheTarget(t *testing.T) {
	t.Parallel()
	envFile := filepath.Join(t.TempDir(), "lab.env")
	labProc := start(t, nil, "lab", "--listen", "127.0.0.1:0", "--env-file", envFile)
	defer labProc.cmd.Process.Kill() // only if the test fails before the lab stops
	deadline := time.Now().Add(30 * time.Second)
	var b []byte
	for {
		var err error
		if b, err = os.ReadFile(envFile); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("--env-file never appeared:\n%s\n%s", labProc.stdout.String(), labProc.stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The file appears whole: every variable is there at the first read,
	// and the lab answers at its URL.
	exports := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		kv, ok := strings.CutPrefix(line, "export ")
		if !ok {
			t.Fatalf("not an export line in %s: %q", envFile, line)
		}
		k, v, _ := strings.Cut(kv, "=")
		exports[k] = v
	}
	for _, k := range []string{"CODER_URL", "CODER_SESSION_TOKEN", "TS_CONTROL_URL", "TS_AUTHKEY", "CDELOAD_LAB_URL", "CDELOAD_SSH_KEY"} {
		if exports[k] == "" {
			t.Fatalf("%s lacks %s:\n%s", envFile, k, b)
		}
	}
	resp, err := http.Get(exports["CDELOAD_LAB_URL"] + "/lab/v1/workspaces")
	if err != nil {
		t.Fatalf("the lab does not serve once its env file exists: %v", err)
	}
	resp.Body.Close()

	// The README's way: source the file, then run.
	sh := exec.Command("sh", "-c", ". \"$1\" && exec \"$2\" run -i 1 target.js", "sh", envFile, binary)
	sh.Dir = "testdata"
	sh.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	out, err := sh.Output()
	if err != nil {
		t.Fatalf("run with the sourced env file: %v\n%s", err, out)
	}
	if want := "target: standalone lab at " + exports["CDELOAD_LAB_URL"]; !strings.Contains(string(out), want) {
		t.Errorf("the banner does not say %q:\n%s", want, out)
	}
	r := cdeload(t, nil, "run", "-i", "1", "target.js")
	if !strings.Contains(r.stdout, "target: embedded lab") {
		t.Errorf("without variables the banner does not name the embedded lab:\n%s", r)
	}
	r = cdeload(t, nil, "run", "-i", "1", "-e", "CASE=fail", "control.js")
	if strings.Contains(r.stdout, "target:") {
		t.Errorf("a script without k6/x/cdeload has a target line:\n%s", r.stdout)
	}

	if err := labProc.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if lr := labProc.wait(t); lr.code != 0 {
		t.Fatalf("cdeload lab after SIGINT: %s", lr)
	}
	if _, err := os.Stat(envFile); !os.IsNotExist(err) {
		t.Errorf("the env file outlives the lab (stat: %v)", err)
	}
}
