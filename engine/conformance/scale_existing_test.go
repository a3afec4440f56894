package conformance

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cdeload/cdeload/lab"
	"github.com/cdeload/cdeload/workspace"
	"github.com/cdeload/cdeload/workspace/coder"
)

// TestScaleExampleOnExistingWorkspaces runs examples/scale.js with
// EXISTING=<prefix> against a standalone lab whose Coder simulator already
// has workspaces: the SSH echo runs on the two matching ones, one VU each,
// and afterwards every workspace is still there and none was created. Too
// few matches fail setup() with a message saying so.
func TestScaleExampleOnExistingWorkspaces(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a lab")
	}
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	l, err := lab.Start(ctx, lab.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	pre, err := coder.NewProvider(coder.Config{URL: l.CoderURL(), Token: l.CoderToken(), Users: coder.UsersMe, PollInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer pre.Close()
	for _, name := range []string{"pre-1", "pre-2", "dev-x"} {
		ws, err := pre.Create(ctx, workspace.CreateRequest{Template: "kubernetes", Name: name})
		if err == nil {
			_, err = pre.WaitReady(ctx, ws)
		}
		if err != nil {
			t.Fatalf("create %s before the run: %v", name, err)
		}
	}
	env := []string{"CDELOAD_LAB_URL=" + l.URL(), "CDELOAD_LAB_TOKEN=" + l.Token()}
	r := cdeload(t, env, "run", "-e", "WORKSPACES=2", "-e", "TRAFFIC_DURATION=2s", "-e", "EXISTING=pre-", scaleScript)
	if r.code != 0 {
		t.Fatalf("want exit 0, got %s", r)
	}
	for _, want := range []string{"✓ every frame came back", "✓ no stream errors", "{ transport:ssh }"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("summary lacks %q:\n%s", want, r.stdout)
		}
	}
	if line := strings.Join(strings.Fields(lineWith(r.stdout, "checks_succeeded...")), " "); !strings.Contains(line, ": 100.00% 6 out of 6") {
		t.Errorf("summary line %q, want 6 of 6 checks (3 per workspace)", line)
	}
	if line := lineWith(r.stdout, "workspace_ready_duration..."); !strings.HasSuffix(line, "no data") {
		t.Errorf("a workspace was created in EXISTING mode:\n%s", r.stdout)
	}
	names := func() []string {
		list, err := coderClient(t, l.CoderURL(), l.CoderToken()).Workspaces(ctx, "", 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, w := range list.Workspaces {
			out = append(out, w.Name)
		}
		slices.Sort(out)
		return out
	}
	if got, want := names(), []string{"dev-x", "pre-1", "pre-2"}; !slices.Equal(got, want) {
		t.Errorf("workspaces after the run: %v, want %v (none created, none deleted)", got, want)
	}

	r = cdeload(t, env, "run", "-e", "WORKSPACES=3", "-e", "TRAFFIC_DURATION=1s", "-e", "EXISTING=pre-", scaleScript)
	if r.code == 0 || !strings.Contains(r.stderr, "EXISTING=pre-: 2 workspaces match, WORKSPACES=3 wanted") {
		t.Errorf("3 VUs on 2 matching workspaces: want a failed setup() saying so, got %s", r)
	}
	if got, want := names(), []string{"dev-x", "pre-1", "pre-2"}; !slices.Equal(got, want) {
		t.Errorf("workspaces after the failed run: %v, want %v", got, want)
	}
}
