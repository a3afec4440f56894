package conformance

import (
	"bytes"
	"context"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cdeload/cdeload/internal/coderpeertest"
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
				"✓ every frame came back", "✓ no stream errors", "checks_succeeded...................: 100.00% 9 out of 9",
				"traffic_errors.....................: 0 ",
			} {
				if !strings.Contains(out, want) {
					t.Errorf("summary lacks %q:\n%s", want, out)
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
