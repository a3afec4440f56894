package coderbackend

import (
	"strings"
	"testing"

	"github.com/cdeload/cdeload/lab/workspaces"
)

func TestHostnameIsAValidWorkspaceName(t *testing.T) {
	for in, want := range map[string]string{
		"scaletest-ab12cd34-7":         "scaletest-ab12cd34-7",
		"My_Workspace":                 "my-workspace",
		"--x--":                        "x",
		"___":                          "ws",
		"":                             "ws",
		strings.Repeat("a", 80):        strings.Repeat("a", 54),
		strings.Repeat("b", 53) + "-c": strings.Repeat("b", 53),
	} {
		got := Hostname(in)
		if got != want {
			t.Errorf("Hostname(%q) = %q, want %q", in, got, want)
		}
		if err := workspaces.ValidateName(got); err != nil {
			t.Errorf("Hostname(%q) = %q: %v", in, got, err)
		}
		s := suffixed(got, "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f0")
		if err := workspaces.ValidateName(s); err != nil || !strings.HasSuffix(s, "-0f1e2d3c") {
			t.Errorf("suffixed(%q) = %q: %v", got, s, err)
		}
	}
}

func TestNewRequiresTheLab(t *testing.T) {
	if _, err := New(Config{}); err == nil {
		t.Fatal("New without a workspace manager succeeded")
	}
}
