// Package coderpeertest starts a real Coder server (shared/coderpeer: coderd
// with PostgreSQL, the echo provisioner and one real `coder agent` per
// workspace, on loopback in its own network namespace) for interop tests.
//
// Coder is AGPL: it runs only as a separate test peer, started through its
// script and reached over HTTP; nothing of it is linked into cdeload.
//
// The script is found through the environment variable CODERPEER (its path),
// else at ../shared/coderpeer/coderpeer above the module root. When it is
// missing Start skips the test with a message saying how to run it, unless
// CI is "true", in which case the test fails.
package coderpeertest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Peer is a running coderpeer instance.
type Peer struct {
	// URL is coderd's access URL on 127.0.0.1 (CODER_URL).
	URL string
	// Token is the owner's session token (CODER_SESSION_TOKEN).
	Token string
	// Template is the template whose workspaces get a real agent each
	// (CODERPEER_TEMPLATE, "echo-agent").
	Template string
	// Dir is the instance's directory (CODERPEER_DIR): logs/ holds coderd's,
	// PostgreSQL's and every agent's log.
	Dir string
	// Coder is the unpacked coder binary (CODERPEER_CODER), whose
	// `exp scaletest` commands are Coder's own scale test.
	Coder string
	// Script is the coderpeer script that started the instance.
	Script string
	// Env holds every exported variable of the instance.
	Env map[string]string
}

// Options tune an instance. The zero value is the script's defaults.
// (CODERPEER_SMOKE=0 is not offered: the script's check that its agent
// spawner runs races with the spawner's start when the smoke workspace,
// which also warms coderd's tailnet, is skipped.)
type Options struct {
	// RateLimitsOff disables coderd's API and login rate limits.
	RateLimitsOff bool
}

// Script returns the coderpeer script's path, or "" when it is not there.
func Script() string {
	if p := os.Getenv("CODERPEER"); p != "" {
		return p
	}
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	for ; ; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			p := filepath.Join(dir, "..", "shared", "coderpeer", "coderpeer")
			if _, err := os.Stat(p); err == nil {
				return p
			}
			return ""
		}
		if filepath.Dir(dir) == dir {
			return ""
		}
	}
}

// Start starts a new coderpeer instance for t and stops it in t.Cleanup
// (keeping its logs when t failed). It skips t when the script is missing,
// or fails t under CI=true.
func Start(t testing.TB, opts Options) *Peer {
	t.Helper()
	script := Script()
	if script == "" {
		msg := "the real-Coder interop tests need shared/coderpeer: set CODERPEER=/path/to/shared/coderpeer/coderpeer " +
			"(or keep a shared/ folder beside the checkout) and run go test again"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg + "; CI=true requires it")
		}
		t.Skip(msg)
	}
	p, err := Up(context.Background(), script, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Down(t.Failed()); err != nil {
			t.Errorf("%v", err)
		}
		if t.Failed() {
			t.Logf("coderpeer logs kept in %s/logs", p.Dir)
		}
	})
	return p
}

// Up starts an instance with script, without the testing package.
func Up(ctx context.Context, script string, opts Options) (*Peer, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, script, "up")
	cmd.Env = append(os.Environ(), "CODERPEER_DIR=") // always a new instance
	if opts.RateLimitsOff {
		cmd.Env = append(cmd.Env, "CODERPEER_RATE_LIMITS=off")
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("coderpeer up: %w\n%s", err, stderr.String())
	}
	env := ParseExports(string(out))
	p := &Peer{
		URL: env["CODER_URL"], Token: env["CODER_SESSION_TOKEN"], Template: env["CODERPEER_TEMPLATE"],
		Dir: env["CODERPEER_DIR"], Coder: env["CODERPEER_CODER"], Script: script, Env: env,
	}
	if p.URL == "" || p.Token == "" || p.Dir == "" {
		return nil, fmt.Errorf("coderpeer up printed no CODER_URL, CODER_SESSION_TOKEN or CODERPEER_DIR:\n%s\n%s", out, stderr.String())
	}
	return p, nil
}

// Down stops the instance; keepLogs keeps its logs/ folder.
func (p *Peer) Down(keepLogs bool) error {
	cmd := exec.Command(p.Script, "down")
	cmd.Env = append(os.Environ(), "CODERPEER_DIR="+p.Dir)
	if keepLogs {
		cmd.Env = append(cmd.Env, "CODERPEER_KEEP_LOGS=1")
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("coderpeer down %s: %w\n%s", p.Dir, err, out)
	}
	return nil
}

// Exec returns a command that runs name with args inside the instance's
// network namespace, with CODER_URL and CODER_SESSION_TOKEN set.
func (p *Peer) Exec(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, p.Script, append([]string{"exec", name}, args...)...)
	cmd.Env = append(os.Environ(), "CODERPEER_DIR="+p.Dir)
	return cmd
}

// ClientEnv returns the variables a cdeload run needs to target the peer.
func (p *Peer) ClientEnv() []string {
	return []string{"CODER_URL=" + p.URL, "CODER_SESSION_TOKEN=" + p.Token}
}

// ParseExports reads `export NAME=value` lines (values possibly quoted as
// the script prints them) into a map.
func ParseExports(out string) map[string]string {
	env := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		k, v, ok := strings.Cut(strings.TrimPrefix(strings.TrimSpace(line), "export "), "=")
		if !ok || k == "" {
			continue
		}
		if uq, err := strconv.Unquote(v); err == nil {
			v = uq
		} else if len(v) >= 2 && v[0] == '\'' && v[len(v)-1] == '\'' {
			v = v[1 : len(v)-1]
		}
		env[k] = v
	}
	return env
}
