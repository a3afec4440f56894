package codersim

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// slowBackend is a MemBackend whose machines take delay to start. It
// ignores cancellation (the worst case: a start that was overtaken still
// brings its machine up) and counts the starts in flight.
type slowBackend struct {
	*MemBackend
	delay    time.Duration
	inFlight atomic.Int32
}

func (b *slowBackend) StartWorkspace(_ context.Context, spec WorkspaceSpec) (Agent, error) {
	b.inFlight.Add(1)
	defer b.inFlight.Add(-1)
	time.Sleep(b.delay)
	return b.MemBackend.StartWorkspace(context.Background(), spec)
}

// createWorkspace creates a workspace from the kubernetes template.
func createWorkspace(t *testing.T, c rawClient, name string) string {
	t.Helper()
	_, _, tmpl, _ := c.do("GET", "/api/v2/organizations/coder/templates/kubernetes", nil)
	st, _, ws, _ := c.do("POST", "/api/v2/organizations/coder/members/me/workspaces", map[string]any{"template_id": tmpl["id"], "name": name})
	if st != 201 {
		t.Fatalf("create workspace %s: %d %v", name, st, ws)
	}
	return ws["id"].(string)
}

// pollBuild polls the workspace until cond holds for its latest build.
func pollBuild(t *testing.T, c rawClient, wsID, what string, cond func(b map[string]any) bool) map[string]any {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, _, w, _ := c.do("GET", "/api/v2/workspaces/"+wsID+"?include_deleted=true", nil)
		b := w["latest_build"].(map[string]any)
		if cond(b) {
			return b
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: latest build is %v", what, b)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func jobStatus(b map[string]any) string { return b["job"].(map[string]any)["status"].(string) }

func firstAgent(b map[string]any) map[string]any {
	for _, r := range b["resources"].([]any) {
		for _, a := range r.(map[string]any)["agents"].([]any) {
			return a.(map[string]any)
		}
	}
	return nil
}

func timeField(t *testing.T, m map[string]any, key string) time.Time {
	t.Helper()
	s, _ := m[key].(string)
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatalf("field %s = %v: %v", key, m[key], err)
	}
	return v
}

func TestBuildDurationExcludesTheMachineStart(t *testing.T) {
	const boot = 300 * time.Millisecond
	be := &slowBackend{MemBackend: NewMemBackend(), delay: boot}
	const buildLatency = 50 * time.Millisecond
	s, c := start(t, Config{Backend: be, Faults: Faults{Build: Latency{Fixed: buildLatency}}})
	wsID := createWorkspace(t, c, "slow-boot")

	// The job succeeds while the machine is still booting: the agent is
	// "connecting" and has no terminal and no machine address yet.
	b := pollBuild(t, c, wsID, "start job", func(b map[string]any) bool { return jobStatus(b) == "succeeded" })
	a := firstAgent(b)
	if a["status"] != "connecting" || a["first_connected_at"] != nil {
		t.Fatalf("agent right after the job succeeded: %v", a)
	}
	agentID := a["id"].(string)
	st, _, body, _ := c.do("GET", "/api/v2/workspaceagents/"+agentID+"/pty?reconnect="+newUUID(), nil)
	if st != 400 || !strings.Contains(body["message"].(string), `"connecting"`) {
		t.Fatalf("terminal of a connecting agent: %d %v", st, body)
	}
	if got, want := s.AgentAddress(agentID), coderAgentAddress(agentID); got != want {
		t.Fatalf("address of a connecting agent = %s, want the derived %s", got, want)
	}

	b = pollBuild(t, c, wsID, "agent connected", func(b map[string]any) bool { return firstAgent(b)["status"] == "connected" })
	job, a := b["job"].(map[string]any), firstAgent(b)
	created, completed := timeField(t, job, "created_at"), timeField(t, job, "completed_at")
	connected := timeField(t, a, "first_connected_at")
	if d := completed.Sub(timeField(t, job, "started_at")); d < buildLatency {
		t.Errorf("build job ran %v, want at least the build latency %v", d, buildLatency)
	}
	if d := completed.Sub(created); d >= boot {
		t.Errorf("build job took %v: it must not include the %v machine start", d, boot)
	}
	if d := connected.Sub(completed); d < boot {
		t.Errorf("agent connected %v after the job completed, before the %v machine start ended", d, boot)
	}
	if be.Running() != 1 {
		t.Fatalf("%d machines running, want 1", be.Running())
	}
}

func TestStopOrDeleteWhileTheMachineStartsLeavesNoMachine(t *testing.T) {
	for _, transition := range []string{"delete", "stop"} {
		t.Run(transition, func(t *testing.T) {
			be := &slowBackend{MemBackend: NewMemBackend(), delay: 300 * time.Millisecond}
			_, c := start(t, Config{Backend: be})
			wsID := createWorkspace(t, c, "gone-"+transition)
			b := pollBuild(t, c, wsID, "start job", func(b map[string]any) bool { return jobStatus(b) == "succeeded" })
			agentID := firstAgent(b)["id"].(string)
			deadline := time.Now().Add(5 * time.Second)
			for be.inFlight.Load() == 0 && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
			if be.inFlight.Load() != 1 {
				t.Fatal("the machine start did not begin after the job succeeded")
			}
			st, _, nb, _ := c.do("POST", "/api/v2/workspaces/"+wsID+"/builds", map[string]any{"transition": transition})
			if st != 201 {
				t.Fatalf("%s build: %d %v", transition, st, nb)
			}
			b = pollBuild(t, c, wsID, transition+" job", func(b map[string]any) bool { return b["id"] == nb["id"] && !jobActiveAny(b) })
			if jobStatus(b) != "succeeded" {
				t.Fatalf("%s build while the machine starts: %v", transition, b["job"])
			}
			if n := be.Running(); n != 0 {
				t.Fatalf("%d machines running after the %s build", n, transition)
			}
			for be.inFlight.Load() != 0 && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
			if n := be.Running(); n != 0 || be.inFlight.Load() != 0 {
				t.Fatalf("after the start returned: %d machines running, %d starts in flight", n, be.inFlight.Load())
			}
			_, _, a, _ := c.do("GET", "/api/v2/workspaceagents/"+agentID, nil)
			if a["lifecycle_state"] != "off" || a["first_connected_at"] != nil {
				t.Fatalf("agent of the overtaken machine: %v", a)
			}
		})
	}
}

func jobActiveAny(b map[string]any) bool { return jobActive(jobStatus(b)) }

func TestCloseStopsMachinesStillStarting(t *testing.T) {
	be := &slowBackend{MemBackend: NewMemBackend(), delay: 300 * time.Millisecond}
	s, c := start(t, Config{Backend: be})
	for _, name := range []string{"a", "b"} {
		createWorkspace(t, c, "closing-"+name)
	}
	deadline := time.Now().Add(5 * time.Second)
	for be.inFlight.Load() != 2 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if be.inFlight.Load() != 2 {
		t.Fatalf("%d machine starts in flight, want 2", be.inFlight.Load())
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if n, f := be.Running(), be.inFlight.Load(); n != 0 || f != 0 {
		t.Fatalf("after Close: %d machines running, %d starts in flight", n, f)
	}
}

func TestAgentCrashStopsTheMachineAfterReady(t *testing.T) {
	const crashAfter = 50 * time.Millisecond
	s, c := start(t, Config{Faults: Faults{AgentCrashAfter: crashAfter, AgentReady: Latency{Fixed: 10 * time.Millisecond}}})
	wsID := createWorkspace(t, c, "crashing")
	b := pollBuild(t, c, wsID, "agent disconnected", func(b map[string]any) bool {
		a := firstAgent(b)
		return a != nil && a["status"] == "disconnected"
	})
	a := firstAgent(b)
	if d := timeField(t, a, "disconnected_at").Sub(timeField(t, a, "ready_at")); d < crashAfter {
		t.Errorf("agent disconnected %v after ready, want at least %v", d, crashAfter)
	}
	if n := s.Backend().(*MemBackend).Running(); n != 0 {
		t.Fatalf("%d machines running after the agent crashed", n)
	}
	st, _, body, _ := c.do("GET", "/api/v2/workspaceagents/"+a["id"].(string)+"/pty?reconnect="+newUUID(), nil)
	if st != 400 || !strings.Contains(body["message"].(string), `"disconnected"`) {
		t.Fatalf("terminal of a crashed agent: %d %v", st, body)
	}
}
