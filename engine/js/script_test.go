package js

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/cdeload/cdeload/engine/metrics"
)

func TestBasicLifecycle(t *testing.T) {
	e := load(t, "basic.js")
	if got := e.script.Exports(); len(got) != 3 || got[0] != "default" || got[1] != "setup" || got[2] != "teardown" {
		t.Fatalf("Exports() = %v", got)
	}
	var opts map[string]any
	if err := json.Unmarshal(e.script.Options(), &opts); err != nil || opts["vus"] != 2.0 {
		t.Fatalf("Options() = %s (%v)", e.script.Options(), err)
	}
	data, err := e.runner.Setup(context.Background(), e.sink.ch)
	if err != nil {
		t.Fatalf("Setup: %v\n%s", err, e.console)
	}
	if string(data) != `{"greeting":"hi","n":42}` {
		t.Fatalf("setup data = %s", data)
	}
	e.runner.SetSetupData(data)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for id := uint64(1); id <= 2; id++ {
		a := e.activate(t, ctx, id, "")
		for i := 0; i < 2; i++ {
			if err := a.RunOnce(); err != nil {
				t.Fatalf("RunOnce: %v", err)
			}
		}
	}
	if err := e.runner.Teardown(context.Background(), e.sink.ch, data); err != nil {
		t.Fatalf("Teardown: %v", err)
	}
	checks := e.sink.waitFor(t, "checks", 1+4*4+1)
	if len(checks) != 18 {
		t.Fatalf("got %d checks samples, want 18", len(checks))
	}
	for _, c := range checks {
		name, _ := c.Tags.Get("check")
		if c.Value != 1 {
			t.Errorf("check %q failed: %v", name, c.Tags.Map())
		}
	}
	for _, c := range checks {
		name, _ := c.Tags.Get("check")
		g, _ := c.Tags.Get("group")
		_, hasScenario := c.Tags.Get("scenario")
		switch name {
		case "setup ran":
			if g != "::setup" || hasScenario || c.Metadata["vu"] != "0" {
				t.Errorf("setup check tags = %v meta %v", c.Tags.Map(), c.Metadata)
			}
		case "teardown got data":
			if g != "::teardown" || hasScenario {
				t.Errorf("teardown check tags = %v", c.Tags.Map())
			}
		default:
			if g != "" || !hasScenario {
				t.Errorf("check %q tags = %v", name, c.Tags.Map())
			}
		}
	}
	trend := e.sink.samples("my_trend")
	if len(trend) != 4 || trend[0].Value != 12.5 {
		t.Fatalf("my_trend samples = %v", trend)
	}
	if g, _ := trend[0].Tags.Get("group"); g != "::outer::inner" {
		t.Fatalf("my_trend group = %q", g)
	}
	if k, _ := trend[0].Tags.Get("kind"); k != "x" {
		t.Fatalf("my_trend kind tag = %q", k)
	}
	if m := e.script.cfg.Registry.Get("my_trend"); m == nil || m.Contains != metrics.Time || m.Type != metrics.Trend {
		t.Fatalf("my_trend registered as %+v", m)
	}
	groups := map[string]int{}
	for _, s := range e.sink.samples("group_duration") {
		g, _ := s.Tags.Get("group")
		groups[g]++
	}
	if groups["::outer"] != 4 || groups["::outer::inner"] != 4 || len(groups) != 2 {
		t.Fatalf("group_duration by group = %v", groups)
	}
	if n := len(e.sink.samples("iterations")); n != 4 {
		t.Fatalf("iterations samples = %d, want 4", n)
	}
	files := e.script.Files()
	for _, f := range []string{"basic.js", "lib/util.js", "shared.js", "data.txt"} {
		abs, _ := filepath.Abs(filepath.Join("testdata", f))
		if _, ok := files[abs]; !ok {
			t.Errorf("Files() lacks %s: %v", abs, keys(files))
		}
	}
	if out := e.console.String(); out != "" {
		t.Fatalf("unexpected console output: %s", out)
	}
}

func keys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
