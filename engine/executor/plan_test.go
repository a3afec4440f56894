package executor

import (
	"strings"
	"testing"
	"time"

	"github.com/cdeload/cdeload/engine/options"
)

func decode(t *testing.T, name, js string) *options.Scenario {
	t.Helper()
	s, err := options.DecodeScenario(name, []byte(js))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestPlanSharesVUsBetweenScenarios(t *testing.T) {
	t.Parallel()
	a := decode(t, "a", `{"executor": "constant-vus", "vus": 5, "duration": "10s", "gracefulStop": "0s"}`)
	b := decode(t, "b", `{"executor": "per-vu-iterations", "vus": 3, "startTime": "10s", "maxDuration": "5s", "gracefulStop": "1s"}`)
	c := decode(t, "c", `{"executor": "constant-arrival-rate", "rate": 1, "duration": "2s", "preAllocatedVUs": 2, "maxVUs": 6, "startTime": "11s"}`)
	p := NewPlan(options.Scenarios{"a": a, "b": b})
	if p.MaxPlannedVUs != 5 || p.TotalDuration != 16*time.Second {
		t.Fatalf("sequential: max=%d total=%s, want 5 (VUs reused) and 16s", p.MaxPlannedVUs, p.TotalDuration)
	}
	p = NewPlan(options.Scenarios{"a": a, "b": b, "c": c})
	if p.MaxPlannedVUs != 5 || p.MaxPossibleVUs != 9 || p.TotalDuration != 43*time.Second {
		t.Fatalf("overlap: planned=%d possible=%d total=%s, want 5, 3+6=9, 11s+2s+30s", p.MaxPlannedVUs, p.MaxPossibleVUs, p.TotalDuration)
	}
}

func TestRampingVUsPlanReservesGracefulRampDown(t *testing.T) {
	t.Parallel()
	s := decode(t, "r", `{"executor": "ramping-vus", "startVUs": 0, "gracefulRampDown": "5s", "gracefulStop": "1s",
		"stages": [{"duration": "0s", "target": 10}, {"duration": "10s", "target": 10}, {"duration": "0s", "target": 0}, {"duration": "3s", "target": 0}, {"duration": "0s", "target": 4}, {"duration": "10s", "target": 4}]}`)
	steps := ScenarioSteps(s)
	at := func(d time.Duration) int64 {
		v := int64(0)
		for _, st := range steps {
			if st.Offset <= d {
				v = st.PlannedVUs
			}
		}
		return v
	}
	// Dropping from 10 to 0 at 10s keeps 10 reserved until 15s.
	if at(5*time.Second) != 10 || at(12*time.Second) != 10 || at(16*time.Second) != 4 || at(24*time.Second) != 0 {
		t.Fatalf("steps %v", steps)
	}
	raw := rampingVUSteps(0, []options.Stage{{Duration: options.Duration(4 * time.Second), Target: 4}, {Duration: options.Duration(4 * time.Second), Target: 0}})
	want := []int64{0, 1, 2, 3, 4, 3, 2, 1, 0}
	if len(raw) != len(want) {
		t.Fatalf("raw steps %v", raw)
	}
	for i, st := range raw {
		if st.PlannedVUs != want[i] || st.Offset != time.Duration(i)*time.Second {
			t.Fatalf("raw step %d = %+v, want %d VUs at %ds", i, st, want[i], i)
		}
	}
}

func TestDescribe(t *testing.T) {
	t.Parallel()
	cases := map[string]string{
		`{"executor": "shared-iterations", "vus": 2, "iterations": 10}`:                                                            "10 iterations shared among 2 VUs (maxDuration: 10m0s, gracefulStop: 30s)",
		`{"executor": "constant-vus", "vus": 3, "duration": "1m", "exec": "f", "startTime": "5s"}`:                                 "3 looping VUs for 1m0s (exec: f, startTime: 5s, gracefulStop: 30s)",
		`{"executor": "constant-arrival-rate", "rate": 30, "timeUnit": "1m", "duration": "1m", "preAllocatedVUs": 2, "maxVUs": 5}`: "0.50 iterations/s for 1m0s (maxVUs: 2-5, gracefulStop: 30s)",
	}
	for in, want := range cases {
		if got := Describe(decode(t, "x", in)); got != want {
			t.Errorf("%s:\n got %s\nwant %s", in, got, want)
		}
	}
	if got := Describe(decode(t, "x", `{"executor": "ramping-vus", "stages": [{"duration": "1s", "target": 8}]}`)); !strings.HasPrefix(got, "Up to 8 looping VUs for 1s over 1 stages") {
		t.Errorf("ramping: %s", got)
	}
}
