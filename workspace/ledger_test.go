package workspace

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
)

type recRemover struct {
	mu    sync.Mutex
	order []string
	fail  map[string]bool
}

func (r *recRemover) RemoveWorkspace(_ context.Context, e Entry) error { return r.rm("ws:" + e.Name) }
func (r *recRemover) RemoveUser(_ context.Context, e Entry) error      { return r.rm("user:" + e.Name) }
func (r *recRemover) rm(s string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail[s] {
		return errors.New("boom")
	}
	r.order = append(r.order, s)
	return nil
}

func TestLedgerCleanupOrderAndRetry(t *testing.T) {
	var l Ledger
	l.Record(Entry{Kind: KindUser, Name: "u1"})
	l.Record(Entry{Kind: KindWorkspace, Name: "w1", Owner: "u1"})
	l.Record(Entry{Kind: KindWorkspace, Name: "w1", ID: "id1"})
	l.Record(Entry{Kind: KindUser, Name: "u2"})
	l.Record(Entry{Kind: KindWorkspace, Name: "w2"})
	es := l.Entries()
	if len(es) != 4 || es[1].ID != "id1" || es[1].Owner != "u1" {
		t.Fatalf("entries = %+v", es)
	}
	r := &recRemover{fail: map[string]bool{"user:u2": true}}
	err := l.Cleanup(context.Background(), r, 4, nil)
	if err == nil || !strings.Contains(err.Error(), `user "u2"`) {
		t.Fatalf("want error naming u2, got %v", err)
	}
	// Workspaces strictly before users.
	seenUser := false
	for _, s := range r.order {
		if strings.HasPrefix(s, "user:") {
			seenUser = true
		} else if seenUser {
			t.Fatalf("workspace removed after a user: %v", r.order)
		}
	}
	if l.Len() != 1 {
		t.Fatalf("ledger should keep the failed entry, has %d", l.Len())
	}
	r.fail = nil
	if err := l.Cleanup(context.Background(), r, 1, nil); err != nil {
		t.Fatal(err)
	}
	if l.Len() != 0 {
		t.Fatalf("ledger not empty: %+v", l.Entries())
	}
	// Idempotent.
	if err := l.Cleanup(context.Background(), r, 1, nil); err != nil {
		t.Fatal(err)
	}
}

func TestNamer(t *testing.T) {
	n, err := NewNamer("ab12")
	if err != nil {
		t.Fatal(err)
	}
	i := n.Next()
	if got := n.Name(i); got != "scaletest-ab12-1" {
		t.Fatalf("name %q", got)
	}
	if got := n.Email(i); got != "ab12-1@scaletest.local" || !IsScaletestEmail(got) {
		t.Fatalf("email %q", got)
	}
	if _, err := NewNamer("Bad_ID"); err == nil {
		t.Fatal("want error for bad run id")
	}
	r := NewRunID()
	if len(r) != 8 {
		t.Fatalf("run id %q", r)
	}
}

func TestMetricNames(t *testing.T) {
	for p, m := range map[string]string{PhaseBuild: "workspace_build_duration", PhaseAgentConnect: "workspace_agent_connect_duration", PhaseReady: "workspace_ready_duration", PhaseDelete: "workspace_delete_duration", PhaseStop: ""} {
		if MetricName(p) != m {
			t.Fatalf("%s → %q", p, MetricName(p))
		}
	}
}

func TestBelongsToRun(t *testing.T) {
	for name, want := range map[string]bool{
		"scaletest-abc-1":    true,
		"scaletest-abcc1-7":  true,
		"scaletest-abcc12-7": true,
		"scaletest-abcd-1":   false,
		"scaletest-abcc-1":   false,
		"scaletest-ab-1":     false,
		"other-abc-1":        false,
		"scaletest-abc":      false,
		"scaletest-abcc1x-1": false,
	} {
		if got := BelongsToRun(name, "abc"); got != want {
			t.Errorf("BelongsToRun(%q, abc) = %v, want %v", name, got, want)
		}
	}
}
