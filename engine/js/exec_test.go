package js

import (
	"context"
	"testing"
	"time"

	"github.com/cdeload/cdeload/engine/lib"
)

func TestExecutionModuleAndTags(t *testing.T) {
	e := load(t, "execinfo.js")
	v, err := e.runner.NewVU(context.Background(), 1, 101, e.sink.ch)
	if err != nil {
		t.Fatal(err)
	}
	var n uint64
	a := v.Activate(&lib.ActivationParams{
		RunContext:    context.Background(),
		Scenario:      &lib.ScenarioState{Name: "sc", Executor: "shared-iterations", StartTime: time.Unix(1000, 0)},
		Tags:          map[string]string{"scenario": "sc"},
		Env:           map[string]string{"SCEN": "yes"},
		NextIteration: func() (uint64, uint64) { n++; return n - 1, n + 9 },
	})
	for i := 0; i < 2; i++ {
		if err := a.RunOnce(); err != nil {
			t.Fatal(err)
		}
	}
	allPassed(t, e.sink, 20)

	tagged := e.sink.waitFor(t, "tagged", 6)
	if len(tagged) != 6 {
		t.Fatalf("got %d tagged samples", len(tagged))
	}
	type want struct {
		value float64
		tags  map[string]string
		meta  map[string]string
	}
	base := map[string]string{"run": "r1", "scenario": "sc", "group": ""}
	with := func(m map[string]string, kv ...string) map[string]string {
		out := map[string]string{}
		for k, v := range m {
			out[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			out[kv[i]] = kv[i+1]
		}
		return out
	}
	wants := []want{
		// first iteration: the mine tag is not set yet
		{1, base, map[string]string{"vu": "1", "iter": "0"}},
		{2, with(base, "mine", "a", "group", "::g1", "extra", "e"), map[string]string{"vu": "1", "iter": "0", "trace": "abc"}},
		{3, with(base, "mine", "a"), map[string]string{"vu": "1", "iter": "0"}},
		// the VU's tags persist to the next iteration
		{1, with(base, "mine", "a"), map[string]string{"vu": "1", "iter": "1"}},
	}
	for i, w := range wants {
		s := tagged[i]
		if s.Value != w.value || !equalMaps(s.Tags.Map(), w.tags) || !equalMaps(s.Metadata, w.meta) {
			t.Errorf("sample %d = %v %v %v, want %v %v %v", i, s.Value, s.Tags.Map(), s.Metadata, w.value, w.tags, w.meta)
		}
	}
	gd := e.sink.samples("group_duration")
	if len(gd) != 2 {
		t.Fatalf("group_duration samples = %d", len(gd))
	}
	if g, _ := gd[0].Tags.Get("group"); g != "::g1" {
		t.Fatalf("group_duration group tag = %q", g)
	}
	it := e.sink.waitFor(t, "iteration_duration", 2)
	if g, ok := it[0].Tags.Get("group"); !ok || g != "" {
		t.Fatalf("iteration_duration tags = %v", it[0].Tags.Map())
	}
	if len(e.sink.samples("iterations")) != 2 {
		t.Fatal("want 2 iterations samples")
	}
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if bv, ok := b[k]; !ok || bv != v {
			return false
		}
	}
	return true
}
