package options

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/cdeload/cdeload/engine/lib"
)

func TestParseDuration(t *testing.T) {
	t.Parallel()
	cases := map[string]time.Duration{
		"30s": 30 * time.Second, "1m30s": 90 * time.Second, "1500": 1500 * time.Millisecond,
		"2d": 48 * time.Hour, "1d12h": 36 * time.Hour, "250ms": 250 * time.Millisecond, "0.5": 500 * time.Microsecond,
	}
	for in, want := range cases {
		got, err := ParseDuration(in)
		if err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %s, %v; want %s", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "abc", "1x", "2dfoo"} {
		if _, err := ParseDuration(bad); err == nil {
			t.Errorf("ParseDuration(%q) accepted", bad)
		}
	}
}

func mustParse(t *testing.T, js string) Options {
	t.Helper()
	o, _, err := Parse([]byte(js))
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func TestParseNumbersAreMilliseconds(t *testing.T) {
	t.Parallel()
	o := mustParse(t, `{"setupTimeout": 2500, "duration": "1m"}`)
	if o.SetupTimeout.D() != 2500*time.Millisecond || o.Duration.D() != time.Minute {
		t.Fatalf("setupTimeout=%s duration=%s", o.SetupTimeout, o.Duration)
	}
}

func TestParseUnknownTopLevelIsWarning(t *testing.T) {
	t.Parallel()
	_, warns, err := Parse([]byte(`{"iterations": 2, "rps": 3, "userAgent": "x", "scenarioz": {}}`))
	if err != nil {
		t.Fatal(err)
	}
	all := strings.Join(warns, "\n")
	if !strings.Contains(all, `"rps" is not supported`) || !strings.Contains(all, `unknown option "scenarioz"`) {
		t.Fatalf("warnings: %v", warns)
	}
	// k6/http reads userAgent: no warning for it.
	if strings.Contains(all, "userAgent") {
		t.Fatalf("warnings: %v", warns)
	}
}

func TestParseErrorsNameTheKey(t *testing.T) {
	t.Parallel()
	cases := map[string][]string{
		`{"vus": "ten"}`:          {`option "vus"`, `"ten"`},
		`{"duration": "forever"}`: {`option "duration"`, "forever"},
		`{"scenarios": {"s": {"executor": "constant-vus", "duration": "1s", "iterationz": 3}}}`: {`scenario "s"`, `"iterationz"`, "allowed:"},
		`{"scenarios": {"s": {"executor": "nope"}}}`:                                            {`unknown executor "nope"`, "shared-iterations"},
		`{"scenarios": {"s": {"executor": "externally-controlled"}}}`:                           {"externally-controlled", "removed"},
		`{"scenarios": {"s": {"executor": "ramping-vus", "stages": [{"duration": "1s"}]}}}`:     {`scenario "s"`, `missing "target"`},
		`{"scenarios": {"bad name": {"executor": "constant-vus"}}}`:                             {`"bad name"`},
		`{"summaryTimeUnit": "h"}`:                                                              {"summaryTimeUnit", `"h"`, "s, ms, us"},
		`{"executionSegment": "1/2:1/4"}`:                                                       {"executionSegment"},
		`{"maxRedirects": -1}`:                                                                  {"maxRedirects", "-1", "at least 0"},
		`{"batchPerHost": "six"}`:                                                               {`option "batchPerHost"`, `"six"`},
		`{"insecureSkipTLSVerify": "yes"}`:                                                      {`option "insecureSkipTLSVerify"`},
	}
	for in, wants := range cases {
		_, _, err := Parse([]byte(in))
		if err == nil {
			t.Errorf("%s: accepted", in)
			continue
		}
		if lib.ExitCodeOf(err) != lib.ExitInvalidConfig {
			t.Errorf("%s: exit code %d, want 104", in, lib.ExitCodeOf(err))
		}
		for _, w := range wants {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not contain %q", in, err, w)
			}
		}
	}
}

func TestValidationMessages(t *testing.T) {
	t.Parallel()
	cases := map[string][]string{
		`{"executor": "shared-iterations", "vus": 5, "iterations": 2}`:                                                         {"iterations is 2", "vus (5)"},
		`{"executor": "per-vu-iterations", "vus": 0}`:                                                                          {"vus is 0", "greater than 0"},
		`{"executor": "constant-vus", "vus": 2}`:                                                                               {"duration is missing"},
		`{"executor": "constant-vus", "duration": "500ms"}`:                                                                    {"duration is 500ms", "at least 1s"},
		`{"executor": "ramping-vus", "startVUs": 0, "stages": [{"duration": "1s", "target": 0}]}`:                              {"greater than 0"},
		`{"executor": "ramping-vus", "stages": []}`:                                                                            {"at least one stage"},
		`{"executor": "constant-arrival-rate", "rate": 5, "duration": "1s"}`:                                                   {"preAllocatedVUs is missing"},
		`{"executor": "constant-arrival-rate", "rate": 0, "duration": "1s", "preAllocatedVUs": 1}`:                             {"rate is 0"},
		`{"executor": "ramping-arrival-rate", "preAllocatedVUs": 3, "maxVUs": 1, "stages": [{"duration": "1s", "target": 1}]}`: {"maxVUs is 1", "preAllocatedVUs (3)"},
		`{"executor": "constant-vus", "duration": "1s", "gracefulStop": "-1s"}`:                                                {"gracefulStop is -1s"},
	}
	for in, wants := range cases {
		s, err := DecodeScenario("sc", []byte(in))
		if err == nil {
			err = s.Validate()
		}
		if err == nil {
			t.Errorf("%s: valid", in)
			continue
		}
		if lib.ExitCodeOf(err) != lib.ExitInvalidConfig || !strings.Contains(err.Error(), `scenario "sc"`) {
			t.Errorf("%s: %v (code %d)", in, err, lib.ExitCodeOf(err))
		}
		for _, w := range wants {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not contain %q", in, err, w)
			}
		}
	}
}

func TestScenarioDefaults(t *testing.T) {
	t.Parallel()
	s, err := DecodeScenario("a", []byte(`{"executor": "constant-arrival-rate", "rate": 5, "duration": "1m", "preAllocatedVUs": 7}`))
	if err != nil {
		t.Fatal(err)
	}
	if s.MaxVUs != 7 || s.TimeUnit.D() != time.Second || s.GracefulStop.D() != 30*time.Second || s.ExecName() != "default" {
		t.Fatalf("defaults: maxVUs=%d timeUnit=%s gracefulStop=%s exec=%s", s.MaxVUs, s.TimeUnit, s.GracefulStop, s.ExecName())
	}
}

func consolidate(t *testing.T, tiers ...Tier) (Options, []string) {
	t.Helper()
	o, w, err := Consolidate(tiers...)
	if err != nil {
		t.Fatal(err)
	}
	return o, w
}

func TestShortcuts(t *testing.T) {
	t.Parallel()
	check := func(name string, o Options, executor string, f func(s *Scenario) bool) {
		t.Helper()
		got, _ := consolidate(t, Tier{Name: "script", Options: o})
		s := got.Scenarios[DefaultScenarioName]
		if len(got.Scenarios) != 1 || s == nil || s.Executor != executor || !f(s) {
			t.Errorf("%s: got %+v", name, s)
		}
	}
	check("nothing", Options{}, PerVUIterations, func(s *Scenario) bool { return s.VUs == 1 && s.Iterations == 1 })
	check("iterations+vus+duration", Options{Iterations: Int64(10), VUs: Int64(2), Duration: Dur(time.Minute)}, SharedIterations,
		func(s *Scenario) bool { return s.VUs == 2 && s.Iterations == 10 && s.MaxDuration.D() == time.Minute })
	check("duration", Options{Duration: Dur(5 * time.Second), VUs: Int64(3)}, ConstantVUs,
		func(s *Scenario) bool { return s.VUs == 3 && s.Duration.D() == 5*time.Second })
	check("stages", Options{Stages: []Stage{{Duration: Duration(time.Second), Target: 4}}, VUs: Int64(2)}, RampingVUs,
		func(s *Scenario) bool {
			return s.StartVUs == 2 && len(s.Stages) == 1 && s.GracefulRampDown.D() == 30*time.Second
		})
	check("vus alone (k6 v2.1)", Options{VUs: Int64(4)}, SharedIterations, func(s *Scenario) bool { return s.VUs == 4 && s.Iterations == 4 })
}

func TestPrecedenceAndOverride(t *testing.T) {
	t.Parallel()
	script := mustParse(t, `{"scenarios": {"a": {"executor": "constant-vus", "duration": "10s"}}, "tags": {"k": "script"}, "noSetup": true}`)
	env, err := FromEnv(map[string]string{"K6_TAGS": "k=env,x=1", "HOME": "/root"})
	if err != nil {
		t.Fatal(err)
	}
	cli := Options{Iterations: Int64(3)}
	got, warns := consolidate(t, Tier{"config file", Options{Duration: Dur(time.Hour), SetupTimeout: Dur(time.Second)}},
		Tier{"script", script}, Tier{"env", env}, Tier{"cli", cli})
	if got.Scenarios["a"] != nil || got.Scenarios[DefaultScenarioName].Executor != SharedIterations {
		t.Fatalf("cli iterations did not replace the script scenarios: %v", got.Scenarios)
	}
	if got.Duration != nil {
		t.Fatalf("config file duration survived a higher tier's execution options")
	}
	if got.Tags["k"] != "env" || got.Tags["x"] != "1" || !IsSet(got.NoSetup) || got.SetupTimeoutOrDefault() != time.Second {
		t.Fatalf("merged: tags=%v noSetup=%v setupTimeout=%s", got.Tags, got.NoSetup, got.SetupTimeoutOrDefault())
	}
	if !strings.Contains(strings.Join(warns, "\n"), `"cli" level configuration overrode scenarios`) {
		t.Fatalf("warnings: %v", warns)
	}
}

func TestVUsFromHigherTierReplacesScenarios(t *testing.T) {
	t.Parallel()
	script := mustParse(t, `{"vus": 7, "scenarios": {"a": {"executor": "per-vu-iterations", "vus": 2}}}`)
	got, _ := consolidate(t, Tier{"script", script})
	if got.Scenarios["a"] == nil {
		t.Fatal("vus next to scenarios in the same tier replaced them")
	}
	got, warns := consolidate(t, Tier{"script", script}, Tier{"cli", Options{VUs: Int64(3)}})
	d := got.Scenarios[DefaultScenarioName]
	if d == nil || d.Executor != SharedIterations || d.VUs != 3 || d.Iterations != 3 || len(got.Scenarios) != 1 {
		t.Fatalf("--vus 3: %v", got.Scenarios)
	}
	if !strings.Contains(strings.Join(warns, "\n"), "replaces the scenarios (a)") {
		t.Fatalf("warnings: %v", warns)
	}
}

func TestSameTierConflicts(t *testing.T) {
	t.Parallel()
	for _, in := range []string{
		`{"iterations": 1, "stages": [{"duration": "1s", "target": 1}]}`,
		`{"duration": "1s", "scenarios": {"a": {"executor": "constant-vus", "duration": "1s"}}}`,
		`{"stages": [{"duration": "1s", "target": 1}], "scenarios": {"a": {"executor": "constant-vus", "duration": "1s"}}}`,
	} {
		_, _, err := Consolidate(Tier{"script", mustParse(t, in)})
		if lib.ExitCodeOf(err) != lib.ExitInvalidConfig || !strings.Contains(err.Error(), "script configuration sets both") {
			t.Errorf("%s: %v", in, err)
		}
	}
	// iterations + duration in one tier is the shared-iterations shortcut.
	if _, _, err := Consolidate(Tier{"script", mustParse(t, `{"iterations": 2, "duration": "1m"}`)}); err != nil {
		t.Errorf("iterations+duration: %v", err)
	}
}

func TestFromEnvErrorsNameTheVariable(t *testing.T) {
	t.Parallel()
	_, err := FromEnv(map[string]string{"K6_VUS": "many"})
	if err == nil || !strings.Contains(err.Error(), "K6_VUS") || !strings.Contains(err.Error(), "many") {
		t.Fatalf("err = %v", err)
	}
	_, err = FromEnv(map[string]string{"K6_BATCH": "-2"})
	if err == nil || !strings.Contains(err.Error(), "batch is -2") {
		t.Fatalf("K6_BATCH=-2: err = %v", err)
	}
	_, err = FromEnv(map[string]string{"K6_INSECURE_SKIP_TLS_VERIFY": "maybe"})
	if err == nil || !strings.Contains(err.Error(), "K6_INSECURE_SKIP_TLS_VERIFY") {
		t.Fatalf("K6_INSECURE_SKIP_TLS_VERIFY=maybe: err = %v", err)
	}
	o, err := FromEnv(map[string]string{"K6_STAGES": "10s:5,20s:0", "K6_NO_TEARDOWN": "true"})
	if err != nil || len(o.Stages) != 2 || o.Stages[1].Duration.D() != 20*time.Second || !IsSet(o.NoTeardown) {
		t.Fatalf("o=%+v err=%v", o, err)
	}
}

func TestSegmentScaling(t *testing.T) {
	t.Parallel()
	seq := []string{"0:1/3", "1/3:2/3", "2/3:1"}
	sc := Scenarios{"a": {Name: "a", Executor: SharedIterations, VUs: 10, Iterations: 100},
		"b": {Name: "b", Executor: ConstantArrivalRate, Rate: 9, TimeUnit: Duration(time.Second), PreAllocatedVUs: 5, MaxVUs: 7}}
	var vus, iters, pre int64
	var rate float64
	for _, s := range seq {
		seg, err := ParseSegment(s)
		if err != nil {
			t.Fatal(err)
		}
		out := seg.ScaleScenarios(sc)
		vus += out["a"].VUs
		iters += out["a"].Iterations
		pre += out["b"].PreAllocatedVUs
		rate += float64(out["b"].Rate) / out["b"].TimeUnit.D().Seconds()
	}
	if vus != 10 || iters != 100 || pre != 5 || rate < 8.999 || rate > 9.001 {
		t.Fatalf("segment shares sum to vus=%d iterations=%d preAllocated=%d rate=%f", vus, iters, pre, rate)
	}
	if sc["a"].VUs != 10 {
		t.Fatal("scaling changed the original scenarios")
	}
	if s, err := ParseSegment("25%"); err != nil || s.String() != "0:1/4" {
		t.Fatalf("25%%: %v %v", s, err)
	}
}

func TestOptionsJSONRoundTrip(t *testing.T) {
	t.Parallel()
	got, _ := consolidate(t, Tier{"script", mustParse(t, `{"scenarios": {"r": {"executor": "ramping-vus", "stages": [{"duration": "1s", "target": 2}], "exec": "f"}}}`)})
	again := mustParse(t, string(got.JSON()))
	r := again.Scenarios["r"]
	if r == nil || r.Exec != "f" || len(r.Stages) != 1 || r.GracefulRampDown.D() != 30*time.Second {
		t.Fatalf("round trip: %s → %+v", got.JSON(), r)
	}
}

func TestTestOptionsJSONHasK6Shape(t *testing.T) {
	o, _, err := Consolidate(Tier{Name: "script", Options: Options{VUs: Int64(2), Iterations: Int64(4)}})
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(o.TestOptionsJSON(), &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"vus", "iterations", "duration", "stages", "paused", "tags", "thresholds", "userAgent"} {
		if v, ok := m[k]; !ok || string(v) != "null" {
			t.Errorf("%s: want null, got %s (present %v)", k, v, ok)
		}
	}
	if got := string(m["summaryTrendStats"]); got != `["avg","min","med","max","p(90)","p(95)"]` {
		t.Errorf("summaryTrendStats = %s", got)
	}
	if !strings.Contains(string(m["systemTags"]), `"scenario"`) {
		t.Errorf("systemTags = %s", m["systemTags"])
	}
	var sc map[string]map[string]any
	if err := json.Unmarshal(m["scenarios"], &sc); err != nil {
		t.Fatal(err)
	}
	if d := sc["default"]; d["executor"] != "shared-iterations" || d["vus"] != float64(2) || d["iterations"] != float64(4) {
		t.Errorf("the shortcuts are not folded into the default scenario: %v", sc)
	}
}
