package cdeload

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

// TestCoderExistingWorkspaces lists workspaces that were made before the
// run, on a lab's Coder simulator, with coder.workspaces(): the filters
// find exactly the expected ones, an SSH echo to a listed workspace works
// over Coder's tailnet, delete() of a listed workspace rejects and
// cleanup() leaves it, while the run's own workspace is removed; bad
// options are clear errors.
func TestCoderExistingWorkspaces(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a second lab")
	}
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
	for _, name := range []string{"pre-a", "pre-b", "pre-stopped", "other-pre-c"} {
		ws, err := pre.Create(ctx, workspace.CreateRequest{Template: "kubernetes", Name: name})
		if err == nil {
			ws, err = pre.WaitReady(ctx, ws)
		}
		if err == nil && name == "pre-stopped" {
			err = pre.Stop(ctx, ws)
		}
		if err != nil {
			t.Fatalf("create %s before the run: %v", name, err)
		}
	}

	r := runScript(t, header+`
import { Coder } from 'k6/x/cdeload';
const coder = new Coder({ pollInterval: '20ms' });
const net = new cde.Tailnet();
async function msg(fn) { try { await fn(); return 'no error'; } catch (e) { return e.message; } }
const brief = (list) => list.map((w) => ({ name: w.name, owner: w.owner, template: w.template, status: w.status,
  existing: w.existing, address: w.address, agentId: w.agentId }));
export default async function () {
  const own = await coder.createWorkspace({ template: 'kubernetes' });
  report(TEST, 'own', { name: own.name, existing: own.existing, status: own.status });
  const byPrefix = await coder.workspaces({ prefix: 'pre-' });
  report(TEST, 'prefix', brief(byPrefix));
  report(TEST, 'name', brief(await coder.workspaces({ name: 'pre-a', owner: 'me' })).map((w) => w.name));
  report(TEST, 'substring', brief(await coder.workspaces({ query: 'name:pre-' })).map((w) => w.name));
  report(TEST, 'running', brief(await coder.workspaces({ prefix: 'pre-', template: 'kubernetes', query: 'status:running' })).map((w) => w.name));
  report(TEST, 'limit', (await coder.workspaces({ prefix: 'pre-', limit: 1 })).length);
  report(TEST, 'none', (await coder.workspaces({ template: 'no-such-template' })).length);
  const a = byPrefix[0];
  const s = await cde.ssh.connect({ tailnet: net, host: a.address });
  report(TEST, 'echo', await s.echo({ bytesPerTick: 128, tickInterval: '20ms', duration: 400 }));
  await s.close();
  report(TEST, 'delete', await msg(() => a.delete()));
  await coder.cleanup();
  report(TEST, 'after', (await coder.workspaces({ query: 'owner:me' })).map((w) => w.name).sort());
  report(TEST, 'errors', {
    unknown: await msg(() => coder.workspaces({ prefx: 'pre-' })),
    both: await msg(() => coder.workspaces({ name: 'pre-a', prefix: 'pre-' })),
    limit: await msg(() => coder.workspaces({ limit: 0 })),
    owner: await msg(() => coder.workspaces({ owner: 'a b' })),
    query: await msg(() => coder.workspaces({ query: 'colour:blue' })),
  });
}
`, map[string]string{envLabURL: l.URL(), envLabToken: l.Token()})

	var own struct {
		Name, Status string
		Existing     bool
	}
	r.report("own", &own)
	if own.Existing || own.Status != "running" || !strings.HasPrefix(own.Name, "scaletest-") {
		t.Errorf("createWorkspace() object = %+v, want existing false, status running", own)
	}
	type brief struct {
		Name, Owner, Template, Status, Address, AgentID string
		Existing                                        bool
	}
	var byPrefix []brief
	r.report("prefix", &byPrefix)
	var names []string
	for _, w := range byPrefix {
		names = append(names, w.Name)
		if !w.Existing || w.Template != "kubernetes" || w.Owner == "" {
			t.Errorf("listed %+v: want existing true, template kubernetes, an owner", w)
		}
		if stopped := w.Name == "pre-stopped"; stopped != (w.Address == "" && w.AgentID == "" && w.Status == "stopped") {
			t.Errorf("listed %+v: a running workspace has an agent and an address, a stopped one none", w)
		}
	}
	want := []string{"pre-a", "pre-b", "pre-stopped"}
	if !slices.Equal(names, want) {
		t.Errorf("coder.workspaces({prefix: 'pre-'}) = %v, want %v", names, want)
	}
	for key, want := range map[string][]string{
		"name":      {"pre-a"},
		"substring": {"other-pre-c", "pre-a", "pre-b", "pre-stopped"}, // Coder's name: matches a substring
		"running":   {"pre-a", "pre-b"},
	} {
		var got []string
		r.report(key, &got)
		if !slices.Equal(got, want) {
			t.Errorf("%s: listed %v, want %v", key, got, want)
		}
	}
	var n int
	if r.report("limit", &n); n != 1 {
		t.Errorf("limit 1: %d workspaces", n)
	}
	if r.report("none", &n); n != 0 {
		t.Errorf("unknown template: %d workspaces, want 0", n)
	}
	var echo struct {
		FramesSent, FramesReceived int64
		Errors                     int
	}
	r.report("echo", &echo)
	if echo.Errors != 0 || echo.FramesSent == 0 || echo.FramesReceived != echo.FramesSent {
		t.Errorf("echo to a listed workspace = %+v, want every frame back", echo)
	}
	if got := r.reportString("delete"); !strings.Contains(got, "workspace.delete() of pre-a") || !strings.Contains(got, "not created by this run") {
		t.Errorf("delete() of a listed workspace: %q, want a rejection saying it was not created by this run", got)
	}
	var after []string
	r.report("after", &after)
	if want := []string{"other-pre-c", "pre-a", "pre-b", "pre-stopped"}; !slices.Equal(after, want) {
		t.Errorf("after cleanup() the caller's workspaces are %v, want %v (the run's own removed, the existing kept)", after, want)
	}
	var errs map[string]string
	r.report("errors", &errs)
	for key, want := range map[string]string{
		"unknown": `coder.workspaces: unknown option "prefx" (allowed: limit, name, owner, prefix, query, template, timeout)`,
		"both":    `options name ("pre-a", an exact name) and prefix ("pre-") exclude each other`,
		"limit":   `option limit = 0: want an integer from 1 to 100000`,
		"owner":   `option owner = "a b": want a single word`,
		"query":   `coder.workspaces(): list workspaces (q="colour:blue"): `,
	} {
		if !strings.Contains(errs[key], want) {
			t.Errorf("%s: %q, want it to contain %q", key, errs[key], want)
		}
	}
	if !strings.Contains(errs["query"], "colour") || !strings.Contains(errs["query"], "not a valid query param") {
		t.Errorf("bad query: %q, want coderd's answer naming the key", errs["query"])
	}
}
