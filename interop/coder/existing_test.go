package coder_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cdeload/cdeload/workspace"
	"github.com/cdeload/cdeload/workspace/coder"
)

// TestExistingWorkspaces makes two workspaces on the real coderd outside
// cdeload (and a third whose name only contains the prefix), then runs a
// script inside the peer's network namespace that lists them with
// coder.workspaces(), SSH-echoes to one over Coder's tailnet, tries to
// delete it and calls cleanup(). The listing is exact, the echo works,
// delete() rejects, and after the process ended (its on-close cleanup
// included) all three workspaces are still there and running.
func TestExistingWorkspaces(t *testing.T) {
	p, bin := setup(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	pre, err := coder.NewProvider(coder.Config{URL: p.URL, Token: p.Token, Users: coder.UsersMe,
		Client: coder.ClientOptions{BypassRateLimit: true}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cctx, ccancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer ccancel()
		if err := pre.Cleanup(cctx); err != nil {
			t.Errorf("remove the test's workspaces: %v", err)
		}
		pre.Close()
	})
	for _, name := range []string{"existing-a", "existing-b", "not-existing-c"} {
		ws, err := pre.Create(ctx, workspace.CreateRequest{Template: p.Template, Name: name})
		if err == nil {
			_, err = pre.WaitReady(ctx, ws)
		}
		if err != nil {
			t.Fatalf("create %s outside cdeload: %v", name, err)
		}
	}

	file := filepath.Join(t.TempDir(), "existing.js")
	if err := os.WriteFile(file, []byte(`
import cde from 'k6/x/cdeload';
const coder = new cde.Coder();
const net = new cde.Tailnet();
async function msg(fn) { try { await fn(); return 'no error'; } catch (e) { return e.message; } }
export default async function () {
  const out = {};
  const list = await coder.workspaces({ prefix: 'existing-', template: __ENV.TEMPLATE });
  out.listed = list.map((w) => ({ name: w.name, owner: w.owner, status: w.status, existing: w.existing, address: w.address }));
  out.byName = (await coder.workspaces({ owner: 'me', name: 'existing-b' })).map((w) => w.name);
  out.substring = (await coder.workspaces({ query: 'name:existing-' })).map((w) => w.name).sort();
  const s = await cde.ssh.connect({ tailnet: net, host: list[0].address });
  out.echo = await s.echo({ bytesPerTick: 128, tickInterval: '100ms', duration: '3s' });
  await s.close();
  out.delete = await msg(() => list[0].delete());
  await coder.cleanup();
  out.badQuery = await msg(() => coder.workspaces({ query: 'colour:blue' }));
  console.log('RESULT ' + JSON.stringify(out));
}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := p.Exec(ctx, bin, "run", "-q", file)
	cmd.Env = append(cmd.Env, "TEMPLATE="+p.Template)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Fatal(err)
		}
		t.Fatalf("cdeload run inside coderpeer's namespace: %v\n--- stdout\n%s\n--- stderr\n%s", err, &stdout, &stderr)
	}
	r := result{stdout: stdout.String(), stderr: stderr.String(), results: consoleResults(stderr.String())}
	var out struct {
		Listed []struct {
			Name, Owner, Status, Address string
			Existing                     bool
		}
		ByName, Substring []string
		Echo              struct {
			FramesSent, FramesReceived, Errors int
			RTT                                struct{ Count int }
		}
		Delete, BadQuery string
	}
	r.decode(t, &out)
	var names []string
	for _, w := range out.Listed {
		names = append(names, w.Name)
		if !w.Existing || w.Status != "running" || w.Address == "" || w.Owner != "admin" {
			t.Errorf("listed %+v: want existing, running, an address, owner admin", w)
		}
	}
	if want := []string{"existing-a", "existing-b"}; !slices.Equal(names, want) {
		t.Errorf("coder.workspaces({prefix: 'existing-'}) = %v, want %v", names, want)
	}
	if want := []string{"existing-b"}; !slices.Equal(out.ByName, want) {
		t.Errorf("coder.workspaces({owner: 'me', name: 'existing-b'}) = %v, want %v", out.ByName, want)
	}
	if want := []string{"existing-a", "existing-b", "not-existing-c"}; !slices.Equal(out.Substring, want) {
		t.Errorf("coder.workspaces({query: 'name:existing-'}) = %v, want %v (Coder's name: matches a substring)", out.Substring, want)
	}
	if e := out.Echo; e.Errors != 0 || e.FramesSent == 0 || e.FramesReceived != e.FramesSent || e.RTT.Count != e.FramesSent {
		t.Errorf("SSH echo to a listed workspace over Coder's tailnet = %+v, want every frame back with its RTT", e)
	}
	if !strings.Contains(out.Delete, "not created by this run") {
		t.Errorf("delete() of a listed workspace: %q, want a rejection", out.Delete)
	}
	if !strings.Contains(out.BadQuery, `q="colour:blue"`) || !strings.Contains(out.BadQuery, "colour") || !strings.Contains(out.BadQuery, "400") {
		t.Errorf("a query coderd refuses: %q, want coderd's 400 naming the key", out.BadQuery)
	}
	c := ownerClient(t, p)
	list, err := c.Workspaces(ctx, "name:existing-", 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, w := range list.Workspaces {
		if w.LatestBuild.Status == "running" {
			left = append(left, w.Name)
		}
	}
	slices.Sort(left)
	if want := []string{"existing-a", "existing-b", "not-existing-c"}; !slices.Equal(left, want) {
		t.Errorf("running after the run ended: %v, want %v (cdeload deletes nothing it did not create)", left, want)
	}
}
