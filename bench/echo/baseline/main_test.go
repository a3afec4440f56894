package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cdeload/cdeload/lab"
)

func TestPercentileInterpolatesBetweenRanks(t *testing.T) {
	d := []time.Duration{4 * time.Millisecond, 1 * time.Millisecond, 3 * time.Millisecond, 2 * time.Millisecond}
	st := summarize(d)
	if st.Count != 4 || st.Min != 1 || st.Max != 4 || st.Mean != 2.5 {
		t.Fatalf("summary = %+v, want count 4, min 1, max 4, mean 2.5", st)
	}
	// Ranks 0..3: p50 sits halfway between 2 and 3, p95 at 2.85 → 3.85.
	if st.P50 != 2.5 {
		t.Errorf("p50 = %v, want 2.5", st.P50)
	}
	if diff := st.P95 - 3.85; diff > 1e-9 || diff < -1e-9 {
		t.Errorf("p95 = %v, want 3.85", st.P95)
	}
	if got := summarize(nil); got.Count != 0 || got.P50 != 0 {
		t.Errorf("summary of nothing = %+v, want zero", got)
	}
}

func TestFlagsAreStrict(t *testing.T) {
	for _, args := range [][]string{
		{"--lab", "http://127.0.0.1:1", "--streams", "0"},
		{"--lab", "http://127.0.0.1:1", "--bytes", "10"},
		{"--lab", "http://127.0.0.1:1", "--interval", "0s"},
		{"--lab", "http://127.0.0.1:1", "--bogus", "1"},
		{"--lab", "http://127.0.0.1:1", "extra"},
	} {
		var stderr bytes.Buffer
		if code := run(args, &bytes.Buffer{}, &stderr); code != 2 {
			t.Errorf("run(%q) = %d, want 2 (stderr %q)", args, code, stderr.String())
		}
	}
}

// TestEchoAgainstLab runs the baseline against a real lab on loopback (in
// this process, for the test only) and checks the report a user reads.
func TestEchoAgainstLab(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a lab with tailnet nodes")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	l, err := lab.Start(ctx, lab.Config{Workspaces: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	t.Setenv("CDELOAD_LAB_TOKEN", l.Token()) // the lab's info endpoint requires it

	out := filepath.Join(t.TempDir(), "report.json")
	var stderr bytes.Buffer
	args := []string{"--lab", l.URL(), "--streams", "3", "--duration", "1s", "--settle", "2s",
		"--hostname", "baseline-test", "--timeline", "--out", out}
	if code := run(args, &bytes.Buffer{}, &stderr); code != 0 {
		t.Fatalf("run = %d, stderr: %s", code, stderr.String())
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var rep report
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatalf("report %s: %v", b, err)
	}
	// 3 streams × 10 ticks of 100 ms in 1 s.
	if rep.Streams != 3 || rep.Workspaces != 2 || rep.FramesSent != 30 || rep.FramesReceived != 30 {
		t.Errorf("streams/workspaces/frames = %d/%d/%d/%d, want 3/2/30/30", rep.Streams, rep.Workspaces, rep.FramesSent, rep.FramesReceived)
	}
	if rep.Errors != 0 || rep.TicksMissed != 0 || rep.LateStarts != 0 {
		t.Errorf("errors %d, ticks missed %d, late starts %d, want 0 (%s)", rep.Errors, rep.TicksMissed, rep.LateStarts,
			strings.Join(rep.FirstErrors, "; "))
	}
	if rep.RTT.Count != 30 || rep.RTT.P50 <= 0 || rep.RTT.P50 > rep.RTT.P95 || rep.RTT.P95 > rep.RTT.Max {
		t.Errorf("rtt = %+v, want 30 frames with 0 < p50 <= p95 <= max", rep.RTT)
	}
	if rep.CPUUserS+rep.CPUSysS <= 0 || rep.WallS < 1 {
		t.Errorf("cpu %v+%v s, wall %v s: want positive CPU and at least the 1 s schedule", rep.CPUUserS, rep.CPUSysS, rep.WallS)
	}
	if n := rep.PathsAtEnd["direct"] + rep.PathsAtEnd["derp"]; n != 2 {
		t.Errorf("paths at end = %v, want both workspaces direct or derp", rep.PathsAtEnd)
	}
	frames := 0
	for _, s := range rep.Timeline {
		frames += s.Frames
	}
	if frames != 30 {
		t.Errorf("timeline holds %d frames, want 30", frames)
	}
}

// hangingCloser's Close blocks until release is closed.
type hangingCloser struct{ release chan struct{} }

func (h hangingCloser) Close() error { <-h.release; return nil }

func TestCloseWithinDoesNotWaitForAHangingClose(t *testing.T) {
	h := hangingCloser{release: make(chan struct{})}
	defer close(h.release)
	start := time.Now()
	closeWithin(h, 50*time.Millisecond)
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("closeWithin returned after %v, want about its 50 ms grace", took)
	}
}
