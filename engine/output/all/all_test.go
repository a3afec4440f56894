package all

import (
	"slices"
	"testing"

	"github.com/cdeload/cdeload/engine/output"
)

func TestAllOutputsRegistered(t *testing.T) {
	types := output.Types()
	for _, want := range []string{"csv", "json", "experimental-prometheus-rw", "prometheus-rw", "web-dashboard"} {
		if !slices.Contains(types, want) {
			t.Errorf("output %q not registered; registered: %v", want, types)
		}
	}
}
