package conformance

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cdeload/cdeload/internal/coderpeertest"
	"github.com/cdeload/cdeload/internal/syncbuf"
)

// TestScaleExampleAgainstCoderPeer runs examples/scale.js against a real
// coderd with real agents: by default over SSH through Coder's own tailnet
// (DERP: the peer blocks direct connections), and with TRANSPORT=terminal
// through the web terminal. cdeload runs inside the peer's network
// namespace (coderpeer exec), so its tailnet node can reach nothing but
// loopback.
func TestScaleExampleAgainstCoderPeer(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real coderd")
	}
	p := coderpeertest.Start(t, coderpeertest.Options{})
	script, err := filepath.Abs(filepath.Join("testdata", scaleScript))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ transport, tailnetMetric string }{
		{"ssh", "tailnet_dial_duration"},
		{"terminal", ""},
	} {
		t.Run(tc.transport, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			cmd := p.Exec(ctx, binary, "run", "-e", "WORKSPACES=3", "-e", "TRAFFIC_DURATION=3s",
				"-e", "TEMPLATE="+p.Template, "-e", "TRANSPORT="+tc.transport, script)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Run(); err != nil {
				t.Fatalf("cdeload run (TRANSPORT=%s) inside coderpeer's namespace: %v\n--- stdout\n%s\n--- stderr\n%s", tc.transport, err, &stdout, &stderr)
			}
			out := stdout.String()
			for _, want := range []string{
				"✓ every frame came back", "✓ no stream errors"} {
				if !strings.Contains(out, want) {
					t.Errorf("summary lacks %q:\n%s", want, out)
				}
			}
			for _, want := range []string{`checks_succeeded\.+: 100\.00% 9 out of 9`, `traffic_errors\.+: 0 `} {
				if !regexp.MustCompile(want).MatchString(out) {
					t.Errorf("summary lacks %s:\n%s", want, out)
				}
			}
			// The transport's RTT line has samples (a non-zero max).
			re := regexp.MustCompile(`\{ transport:` + tc.transport + ` \}\.*: avg=\S+\s+min=\S+\s+med=\S+\s+max=(\S+)`)
			m := re.FindStringSubmatch(out)
			if m == nil || m[1] == "0s" {
				t.Errorf("no traffic_rtt{transport:%s} samples in the summary:\n%s", tc.transport, out)
			}
			if tc.tailnetMetric != "" && !strings.Contains(out, tc.tailnetMetric) {
				t.Errorf("summary lacks %s:\n%s", tc.tailnetMetric, out)
			}
		})
	}
}

// TestSSHEchoToACoderAgentThatStops stops a real Coder workspace while an
// SSH echo stream to its agent runs: the stream ends, well before its 60 s,
// with an error naming the workspace, and the run exits normally.
func TestSSHEchoToACoderAgentThatStops(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real coderd")
	}
	p := coderpeertest.Start(t, coderpeertest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := p.Exec(ctx, binary, "run", "-e", "TEMPLATE="+p.Template, "coder_ssh_stop.js")
	cmd.Dir = "testdata"
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	pr, pw := io.Pipe()
	cmd.Stderr = pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var stderr syncbuf.Buffer // read while the scanner still writes
	started := make(chan []string, 1)
	scanned := make(chan struct{})
	go func() {
		defer close(scanned)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			line := sc.Text()
			stderr.Write([]byte(line + "\n"))
			if i := strings.Index(line, "STARTED "); i >= 0 {
				select {
				case started <- strings.Fields(line[i+len("STARTED "):]):
				default:
				}
			}
		}
	}()
	var id, name string
	select {
	case f := <-started:
		if len(f) < 3 || strings.TrimSuffix(f[2], `"`) != "path=derp" {
			t.Fatalf("STARTED line %q: want a workspace id, name and path=derp", f)
		}
		id, name = f[0], f[1]
	case <-time.After(90 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("the script never connected:\n%s", stderr.String())
	}
	time.Sleep(1500 * time.Millisecond)
	stopped := time.Now()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, p.URL+"/api/v2/workspaces/"+id+"/builds", strings.NewReader(`{"transition":"stop"}`))
	req.Header.Set("Coder-Session-Token", p.Token)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode/100 != 2 {
		t.Fatalf("stop workspace %s: %s", name, res.Status)
	}
	err = cmd.Wait()
	pw.Close()
	took := time.Since(stopped)
	<-scanned
	out := stderr.String()
	if err != nil {
		t.Fatalf("cdeload run: %v\n--- stdout\n%s\n--- stderr\n%s", err, &stdout, out)
	}
	want := fmt.Sprintf("error=workspace %s (", name)
	if !strings.Contains(out, "ECHO errors=1") || !strings.Contains(out, want) {
		t.Fatalf("echo after the agent stopped: want errors=1 and an error starting %q\n%s", want, out)
	}
	if took > 45*time.Second {
		t.Fatalf("the run took %v after the workspace stopped: the stream hung", took)
	}
	t.Logf("run ended %v after the stop; %s", took.Round(time.Millisecond), lineWith(out, "ECHO "))
}
