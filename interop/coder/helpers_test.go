package coder_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cdeload/cdeload/internal/coderpeertest"
	"github.com/cdeload/cdeload/workspace/coder"
)

// result is one `cdeload run`: its exit code, output and what the script
// logged as `console.log('RESULT ' + JSON.stringify(v))`.
type result struct {
	code           int
	stdout, stderr string
	results        []string
}

// decode unmarshals the script's only RESULT into out.
func (r result) decode(t *testing.T, out any) {
	t.Helper()
	if len(r.results) != 1 {
		t.Fatalf("want 1 RESULT line, got %d; exit %d, stderr:\n%s", len(r.results), r.code, r.stderr)
	}
	if err := json.Unmarshal([]byte(r.results[0]), out); err != nil {
		t.Fatalf("RESULT %s: %v", r.results[0], err)
	}
}

// command returns `cdeload run -q <script> args...` aimed at the peer.
func command(ctx context.Context, t *testing.T, p *coderpeertest.Peer, bin, script string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.CommandContext(ctx, bin, append([]string{"run", "-q", script}, args...)...)
	cmd.Env = append(os.Environ(), p.ClientEnv()...)
	cmd.Env = append(cmd.Env, "TEMPLATE="+p.Template)
	return cmd
}

// runJS writes src to a file and runs it with the binary against the peer.
func runJS(t *testing.T, p *coderpeertest.Peer, bin, src string, args ...string) result {
	t.Helper()
	file := filepath.Join(t.TempDir(), "script.js")
	if err := os.WriteFile(file, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := command(ctx, t, p, bin, file, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("cdeload run: %v\n%s", err, stderr.String())
	}
	r := result{code: cmd.ProcessState.ExitCode(), stdout: stdout.String(), stderr: stderr.String()}
	r.results = consoleResults(r.stderr)
	return r
}

// consoleResults extracts the RESULT payloads of console.log lines from
// cdeload's logfmt log (msg="RESULT {...}").
func consoleResults(log string) []string {
	var out []string
	for _, line := range strings.Split(log, "\n") {
		i := strings.Index(line, `msg="RESULT `)
		if i < 0 {
			continue
		}
		q, err := strconv.QuotedPrefix(line[i+len("msg="):])
		if err != nil {
			continue
		}
		msg, err := strconv.Unquote(q)
		if err != nil {
			continue
		}
		out = append(out, strings.TrimPrefix(msg, "RESULT "))
	}
	return out
}

// ownerClient is a client of the peer's API with the owner's token.
func ownerClient(t *testing.T, p *coderpeertest.Peer) *coder.Client {
	t.Helper()
	c, err := coder.NewClient(p.URL, p.Token, coder.ClientOptions{BypassRateLimit: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// leftovers lists the workspaces and users whose names start with prefix,
// as the real API reports them.
func leftovers(t *testing.T, c *coder.Client, prefix string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var names []string
	wss, err := c.Workspaces(ctx, "name:"+prefix, 0, 200)
	if err != nil {
		t.Fatalf("list workspaces: %v", err)
	}
	for _, w := range wss.Workspaces {
		if strings.HasPrefix(w.Name, prefix) {
			names = append(names, "workspace "+w.OwnerName+"/"+w.Name)
		}
	}
	us, err := c.Users(ctx, prefix, 0, 200)
	if err != nil {
		t.Fatalf("list users: %v", err)
	}
	for _, u := range us.Users {
		if strings.HasPrefix(u.Username, prefix) {
			names = append(names, "user "+u.Username)
		}
	}
	return names
}
