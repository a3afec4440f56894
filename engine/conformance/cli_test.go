package conformance

import (
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"
)

func TestBadFlagsSayWhatIsWrongAndExit255(t *testing.T) {
	t.Parallel()
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"run", "--bogus", "control.js"}, `msg="unknown flag: --bogus"`},
		{[]string{"run", "--vus", "abc", "control.js"}, `invalid argument \"abc\" for \"-u, --vus\" flag`},
		{[]string{"run", "control.js", "--iterations"}, `msg="flag needs an argument: --iterations"`},
		{[]string{"run", "--http-debug", "control.js"}, `unknown flag: --http-debug (a k6 flag that cdeload does not support)`},
		{[]string{"inspect", "--bogus", "control.js"}, `msg="unknown flag: --bogus"`},
		{[]string{"--bogus", "run", "control.js"}, `msg="unknown flag: --bogus"`},
		{[]string{"run"}, `accepts 1 arg(s)`},
	}
	for _, c := range cases {
		r := cdeload(t, nil, c.args...)
		if r.code != 255 || !strings.Contains(r.stderr, c.want) || !strings.Contains(r.stderr, "--help' for usage.") {
			t.Errorf("%v: want exit 255 with %s and a usage hint, got %s", c.args, c.want, r)
		}
		if r.stdout != "" {
			t.Errorf("%v: stdout should be empty, got %q", c.args, r.stdout)
		}
	}
}

func TestPersistentFlagsBeforeTheCommand(t *testing.T) {
	t.Parallel()
	r := cdeload(t, nil, "--quiet", "run", "-e", "CASE=fail", "control.js")
	if r.code != 110 {
		t.Fatalf("want exit 110, got %s", r)
	}
	if strings.Contains(r.stdout, "execution: local") || finalRE.MatchString(r.stdout+r.stderr) {
		t.Fatalf("--quiet before the command was ignored: %s", r)
	}
	r = cdeload(t, nil, "-v", "--address=127.0.0.1:0", "run", "-e", "CASE=fail", "control.js")
	if r.code != 110 || !strings.Contains(r.stderr, "level=debug") {
		t.Fatalf("want exit 110 with debug logs from -v before the command, got %s", r)
	}
}

func TestHelpGoesToStdoutWithTheInvokedName(t *testing.T) {
	t.Parallel()
	link := filepath.Join(t.TempDir(), "k6")
	if err := os.Symlink(binary, link); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range []string{"run", "inspect", "archive"} {
		c := exec.Command(link, cmd, "--help")
		var stderr strings.Builder
		c.Stderr = &stderr
		out, err := c.Output()
		if err != nil {
			t.Fatalf("%s --help: %v\n%s", cmd, err, stderr.String())
		}
		if !strings.HasPrefix(string(out), "Usage: k6 "+cmd+" ") || !strings.Contains(string(out), "--vus") || stderr.Len() != 0 {
			t.Fatalf("%s --help: want the usage of k6 %s on stdout only, got stdout %q stderr %q", cmd, cmd, out, stderr.String())
		}
	}
	r := cdeload(t, nil, "lab", "--help")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "Usage: ") || !strings.Contains(r.stdout, "--env-file") || r.stderr != "" {
		t.Fatalf("lab --help: want its usage on stdout only, got %s", r)
	}
}

func TestProgressOnATerminalEndsBeforeTheSummary(t *testing.T) {
	t.Parallel()
	cmd := exec.Command(binary, "run", "--vus", "1", "--duration", "1s", "-e", "CASE=signal", "control.js")
	cmd.Dir = "testdata"
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "TERM=xterm"}
	tty, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 50, Cols: 160})
	if err != nil {
		t.Fatal(err)
	}
	defer tty.Close()
	var out strings.Builder
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		_, _ = io.Copy(&out, tty) // ends with EIO once the process exits
	}()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run on a terminal: %v\n%s", err, out.String())
		}
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("run on a terminal did not end")
	}
	<-copied
	text := out.String()
	summary := strings.Index(text, "█ TOTAL RESULTS")
	if summary < 0 {
		t.Fatalf("no summary on the terminal:\n%q", text)
	}
	if cursorUpRE.MatchString(text[summary:]) {
		t.Fatalf("a progress frame was redrawn over the summary:\n%q", text[summary:])
	}
	frames := finalRE.FindAllStringSubmatch(text[:summary], -1)
	if len(frames) == 0 || frames[len(frames)-1][1] != "00" {
		t.Fatalf("the final progress frame (0 active VUs) is not drawn before the summary:\n%q", text[:summary])
	}
	if finalRE.MatchString(text[summary:]) {
		t.Fatalf("progress lines after the summary:\n%q", text[summary:])
	}
	if !strings.Contains(text[summary:], "vus_max") {
		t.Fatalf("the summary's last lines are missing:\n%q", text[summary:])
	}
}

var cursorUpRE = regexp.MustCompile(`\x1b\[\d+A`)

func TestProgressWithoutATerminalGoesToStdoutEverySecond(t *testing.T) {
	t.Parallel()
	r := cdeload(t, nil, "run", "--vus", "1", "--duration", "2500ms", "-e", "CASE=signal", "control.js")
	if r.code != 0 {
		t.Fatalf("want exit 0, got %s", r)
	}
	frames := finalRE.FindAllString(r.stdout, -1)
	if len(frames) < 3 || finalRE.MatchString(r.stderr) {
		t.Fatalf("want a progress block every second on stdout (>= 2 during 2.5s, then the final one), got %d:\n%s", len(frames), r)
	}
	if cursorUpRE.MatchString(r.stdout) || strings.Contains(r.stdout, "\x1b[2K") {
		t.Fatalf("terminal escapes in a log:\n%q", r.stdout)
	}
	if strings.LastIndex(r.stdout, "running (") > strings.Index(r.stdout, "█ TOTAL RESULTS") {
		t.Fatalf("progress after the summary:\n%s", r.stdout)
	}
}

func TestQuietWithASilentHandleSummaryPrintsNothing(t *testing.T) {
	t.Parallel()
	r := cdeload(t, nil, "run", "--quiet", "-e", "HANDLE=1", "quiet_handle.js")
	if r.code != 0 || r.stdout != "" || r.stderr != "" {
		t.Fatalf("want exit 0 with empty stdout and stderr, got %s", r)
	}
}

func TestDataCountersAreEmittedWithoutTraffic(t *testing.T) {
	t.Parallel()
	export := filepath.Join(t.TempDir(), "summary.json")
	r := cdeload(t, nil, "run", "-q", "--summary-export", export, "quiet_handle.js")
	if r.code != 0 {
		t.Fatalf("want exit 0, got %s", r)
	}
	for _, name := range []string{"data_sent", "data_received"} {
		if line := lineWith(r.stdout, name+"..."); !strings.Contains(line, ": 0 B") {
			t.Errorf("the summary has no %s line of 0 B: %q\n%s", name, line, r.stdout)
		}
	}
	b, err := os.ReadFile(export)
	if err != nil {
		t.Fatal(err)
	}
	var exp struct {
		Metrics map[string]map[string]float64 `json:"metrics"`
	}
	if err := json.Unmarshal(b, &exp); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"data_sent", "data_received"} {
		if v, ok := exp.Metrics[name]["count"]; !ok || v != 0 {
			t.Errorf("--summary-export lacks %s with count 0: %s", name, b)
		}
	}
}

func TestBannerNamesJSONOnStdoutAsK6(t *testing.T) {
	t.Parallel()
	r := cdeload(t, nil, "run", "-o", "json", "quiet_handle.js")
	if r.code != 0 || !strings.Contains(r.stdout, "output: json(stdout)\n") {
		t.Fatalf("want the banner's output line to read json(stdout), got %s", r)
	}
}

func TestAbortLogLineCarriesTheLocation(t *testing.T) {
	t.Parallel()
	r := cdeload(t, nil, "run", "-e", "CASE=abort", "control.js")
	wd, _ := os.Getwd()
	want := `test aborted: enough at default (file://` + filepath.Join(wd, "testdata", "control.js") + `:16:20(`
	if r.code != 108 || !strings.Contains(r.stderr, want) {
		t.Fatalf("want exit 108 and %q, got %s", want, r)
	}
}

func TestAbortInTheInitOfALaterVUStillSummarizes(t *testing.T) {
	t.Parallel()
	r := cdeload(t, nil, "run", "abort_init.js")
	if r.code != 108 || len(r.msgs("HANDLESUMMARY")) != 1 || !strings.Contains(r.stderr, "test aborted: init of vu 2") {
		t.Fatalf("want exit 108 after handleSummary ran, got %s", r)
	}
}

func TestWarnsWhenNoIterationFullyFinished(t *testing.T) {
	t.Parallel()
	const warning = "No script iterations fully finished, consider making the test duration longer"
	r := cdeload(t, nil, "run", "-q", "unfinished.js")
	if r.code != 0 || !strings.Contains(r.stderr, warning) {
		t.Fatalf("want exit 0 with k6's warning, got %s", r)
	}
	r = cdeload(t, nil, "run", "-q", "quiet_handle.js")
	if strings.Contains(r.stderr, warning) {
		t.Fatalf("warned though iterations finished: %s", r)
	}
}

func TestSequentialScenariosReuseVUs(t *testing.T) {
	t.Parallel()
	r := cdeload(t, nil, "run", "sequential.js")
	if r.code != 0 || !strings.Contains(r.stdout, "3 scenarios, 4 max VUs") {
		t.Fatalf("want exit 0 and a plan of 4 max VUs (not 12), got %s", r)
	}
	if line := lineWith(r.stdout, "vus_max..."); !strings.Contains(line, "max=2") {
		t.Fatalf("vus_max is not the planned maximum of 2: %q\n%s", line, r.stdout)
	}
}

func TestExecTestOptionsHaveK6Shape(t *testing.T) {
	t.Parallel()
	r := cdeload(t, nil, "run", "-q", "test_options.js")
	msgs := r.msgs("OPTIONS ")
	if r.code != 0 || len(msgs) != 1 {
		t.Fatalf("want one OPTIONS line, got %s", r)
	}
	raw := strings.ReplaceAll(strings.TrimPrefix(msgs[0], "OPTIONS "), `\"`, `"`)
	var o map[string]json.RawMessage
	if err := json.Unmarshal([]byte(raw), &o); err != nil {
		t.Fatalf("exec.test.options is not JSON: %v\n%s", err, raw)
	}
	for _, k := range []string{"vus", "iterations", "duration", "stages", "paused", "setupTimeout", "tags"} {
		if string(o[k]) != "null" {
			t.Errorf("exec.test.options.%s = %s, want null", k, o[k])
		}
	}
	if string(o["summaryTrendStats"]) == "null" || string(o["systemTags"]) == "null" {
		t.Errorf("summaryTrendStats or systemTags missing: %s", raw)
	}
	var sc map[string]map[string]json.RawMessage
	if err := json.Unmarshal(o["scenarios"], &sc); err != nil {
		t.Fatalf("exec.test.options.scenarios: %v\n%s", err, o["scenarios"])
	}
	def := sc["default"]
	if string(def["iterations"]) != "2" || string(def["vus"]) != "1" || string(def["executor"]) != `"shared-iterations"` {
		t.Errorf("the shortcuts are not in the default scenario: %s", o["scenarios"])
	}
	// Fields the user did not set are null, not their defaults (as in k6).
	for _, k := range []string{"startTime", "gracefulStop", "env", "exec", "tags", "maxDuration"} {
		if v, ok := def[k]; !ok || string(v) != "null" {
			t.Errorf("exec.test.options.scenarios.default.%s = %s, want null", k, v)
		}
	}
}

func TestInitCodeRunsOnceMoreForTheSummary(t *testing.T) {
	t.Parallel()
	r := cdeload(t, nil, "run", "-q", "init_count.js")
	// VU 0 (options), VUs 1 and 2, then the summary's VU.
	if n := len(r.msgs("INIT")); r.code != 0 || n != 4 {
		t.Fatalf("want the init code 4 times, got %d: %s", n, r)
	}
	r = cdeload(t, nil, "run", "-q", "--summary-mode=disabled", "init_count.js")
	if n := len(r.msgs("INIT")); r.code != 0 || n != 3 {
		t.Fatalf("without a summary want the init code 3 times, got %d: %s", n, r)
	}
}
