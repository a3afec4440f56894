package coder_test

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/cdeload/cdeload/tailnet/coder"
	wscoder "github.com/cdeload/cdeload/workspace/coder"
)

// The address the client dials must be the one the workspace provider
// reports as ws.address, or ssh.connect would never find the agent.
func TestAgentAddrMatchesTheWorkspaceAddress(t *testing.T) {
	for _, id := range []string{"5f1e21df-c4da-4792-9477-975a6cc1843c", "00000000-0000-0000-0000-000000000001"} {
		a, err := coder.AgentAddr(id)
		if err != nil {
			t.Fatal(err)
		}
		if want := wscoder.AgentAddress(id); a.String() != want {
			t.Errorf("AgentAddr(%s) = %s, workspace address %s", id, a, want)
		}
		if !netip.MustParsePrefix("fd7a:115c:a1e0::/48").Contains(a) {
			t.Errorf("AgentAddr(%s) = %s, not in fd7a:115c:a1e0::/48", id, a)
		}
	}
	if got := must(coder.AgentAddr("5f1e21df-c4da-4792-9477-975a6cc1843c")).String(); got != "fd7a:115c:a1e0:4792:9477:975a:6cc1:843c" {
		t.Errorf("agent address %s, want the prefix followed by the ID's last 10 bytes", got)
	}
	if _, err := coder.AgentAddr("not-a-uuid"); err == nil || !strings.Contains(err.Error(), `"not-a-uuid"`) {
		t.Errorf("bad agent ID: %v, want an error naming it", err)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	for _, tc := range []struct {
		cfg  coder.Config
		want string
	}{
		{coder.Config{Token: "t"}, "Config.URL is required"},
		{coder.Config{URL: "ftp://x", Token: "t"}, `Config.URL "ftp://x"`},
		{coder.Config{URL: "http://127.0.0.1:1"}, "Config.Token is required"},
	} {
		if _, err := coder.New(tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%+v): %v, want an error containing %q", tc.cfg, err, tc.want)
		}
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
