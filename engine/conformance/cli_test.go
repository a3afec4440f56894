package conformance

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
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
}
