package thresholds

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cdeload/cdeload/engine/lib"
	"github.com/cdeload/cdeload/engine/metrics"
)

func TestParseExprValid(t *testing.T) {
	cases := []struct {
		src    string
		method Method
		pct    float64
		op     Op
		limit  float64
	}{
		{"p(95)<200", Percentile, 95, Less, 200},
		{" p(99.9) <= 1.5 ", Percentile, 99.9, LessEq, 1.5},
		{"p(0)>=0", Percentile, 0, GreaterEq, 0},
		{"p(100)>1", Percentile, 100, Greater, 1},
		{"p( 90 )<1", Percentile, 90, Less, 1},
		{"rate<0.01", RateMethod, 0, Less, 0.01},
		{"rate>=0.99", RateMethod, 0, GreaterEq, 0.99},
		{"count==0", Count, 0, Eq, 0},
		{"count===3", Count, 0, StrictEq, 3},
		{"value!=5", Value, 0, NotEq, 5},
		{"avg<-1e3", Avg, 0, Less, -1000},
		{"min>2", Min, 0, Greater, 2},
		{"max<2", Max, 0, Less, 2},
		{"med<2", Med, 0, Less, 2},
	}
	for _, c := range cases {
		e, err := ParseExpr(c.src)
		if err != nil {
			t.Errorf("%q: %v", c.src, err)
			continue
		}
		if e.Method != c.method || e.Pct != c.pct || e.Op != c.op || e.Limit != c.limit {
			t.Errorf("%q parsed as %+v", c.src, e)
		}
	}
}

func TestParseExprInvalid(t *testing.T) {
	cases := []struct{ src, wantInMsg string }{
		{"", "no comparison operator"},
		{"p(95)", "no comparison operator"},
		{"p(95)<", "invalid number"},
		{"p(95)<abc", "invalid number"},
		{"p(95)<200ms", "no units"},
		{"p(101)<1", "from 0 to 100"},
		{"p(-1)<1", "from 0 to 100"},
		{"p(NaN)<1", "from 0 to 100"},
		{"p()<1", "from 0 to 100"},
		{"mean<1", `unknown aggregation method "mean"`},
		{"<1", "no aggregation method"},
		{"avg=1", "invalid operator"},
		{"avg<NaN", "invalid number"},
		{"avg!1", "invalid operator"},
	}
	for _, c := range cases {
		_, err := ParseExpr(c.src)
		if err == nil {
			t.Errorf("%q accepted", c.src)
			continue
		}
		if !strings.Contains(err.Error(), c.wantInMsg) {
			t.Errorf("%q: error %q does not mention %q", c.src, err, c.wantInMsg)
		}
	}
}

func TestCompareOperators(t *testing.T) {
	cases := []struct {
		src  string
		obs  float64
		want bool
	}{
		{"avg<2", 1.9, true}, {"avg<2", 2, false}, {"avg<=2", 2, true},
		{"avg>2", 2, false}, {"avg>=2", 2, true}, {"avg==2", 2, true},
		{"avg===2", 2.1, false}, {"avg!=2", 2, false}, {"avg!=2", 3, true},
	}
	for _, c := range cases {
		e, _ := ParseExpr(c.src)
		if got := e.Compare(c.obs); got != c.want {
			t.Errorf("%s with %v = %v, want %v", c.src, c.obs, got, c.want)
		}
	}
}

func newRegistry(t *testing.T) *metrics.Registry {
	t.Helper()
	r := metrics.NewRegistry()
	metrics.RegisterBuiltin(r)
	r.MustNewMetric("traffic_rtt", metrics.Trend, metrics.Time)
	r.MustNewMetric("traffic_errors", metrics.Counter)
	r.MustNewMetric("workspace_failed", metrics.Rate)
	return r
}

func TestParseConfigForms(t *testing.T) {
	raw := json.RawMessage(`{
		"traffic_rtt{transport:ssh}": ["p(95)<50", {"threshold": "avg<20", "abortOnFail": true, "delayAbortEval": "10s"}],
		"checks": ["rate==1"],
		"traffic_errors": [{"threshold": "count<1", "delayAbortEval": 1500}]
	}`)
	cfg, err := ParseConfig(raw)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Len() != 4 || len(cfg.Metrics) != 3 {
		t.Fatalf("parsed %d thresholds on %d keys", cfg.Len(), len(cfg.Metrics))
	}
	// Sorted by key.
	if cfg.Metrics[0].Key != "checks" || cfg.Metrics[2].Key != "traffic_rtt{transport:ssh}" {
		t.Errorf("keys not sorted: %s, %s", cfg.Metrics[0].Key, cfg.Metrics[2].Key)
	}
	rtt := cfg.Metrics[2]
	if rtt.Metric != "traffic_rtt" || rtt.Filter == nil {
		t.Fatalf("submetric not parsed: %+v", rtt)
	}
	if v, _ := rtt.Filter.Get("transport"); v != "ssh" {
		t.Errorf("filter transport = %q", v)
	}
	th := rtt.Thresholds[1]
	if th.Source != "avg<20" || !th.AbortOnFail || th.DelayAbortEval != 10*time.Second {
		t.Errorf("object form parsed as %+v", th)
	}
	if d := cfg.Metrics[1].Thresholds[0].DelayAbortEval; d != 1500*time.Millisecond {
		t.Errorf("numeric delayAbortEval = %v, want 1.5s", d)
	}
	if err := cfg.Validate(newRegistry(t)); err != nil {
		t.Errorf("valid config rejected: %v", err)
	}
	if src := cfg.Sources()["traffic_rtt{transport:ssh}"]; len(src) != 2 || src[0] != "p(95)<50" || src[1] != "avg<20" {
		t.Errorf("Sources = %v", cfg.Sources())
	}
	if empty, err := ParseConfig(nil); err != nil || empty.Len() != 0 {
		t.Errorf("nil config: %v, %v", empty, err)
	}
}

func TestParseConfigErrors(t *testing.T) {
	cases := []struct{ raw, wantInMsg string }{
		{`[]`, "expected an object"},
		{`{"m": "p(95)<1"}`, `expected a list`},
		{`{"m": [42]}`, "expected a string"},
		{`{"m": [{"threshold": "p(95)<1", "abortOnFail": "yes"}]}`, "abortOnFail"},
		{`{"m": [{"threshold": "p(95)<1", "abort": true}]}`, `unknown key "abort"`},
		{`{"m": [{"abortOnFail": true}]}`, `missing key "threshold"`},
		{`{"m": [{"threshold": "p(95)<1", "delayAbortEval": "soon"}]}`, "delayAbortEval"},
		{`{"m": [{"threshold": "p(95)<1", "delayAbortEval": "-5s"}]}`, "delayAbortEval"},
		{`{"m{a}": ["p(95)<1"]}`, "tag:value"},
		{`{"m": ["p(95)<<1"]}`, `threshold #1 of "m"`},
	}
	for _, c := range cases {
		_, err := ParseConfig(json.RawMessage(c.raw))
		if err == nil {
			t.Errorf("%s accepted", c.raw)
			continue
		}
		if lib.ExitCodeOf(err) != lib.ExitInvalidConfig {
			t.Errorf("%s: exit code %d, want 104", c.raw, lib.ExitCodeOf(err))
		}
		if !strings.Contains(err.Error(), c.wantInMsg) {
			t.Errorf("%s: error %q does not mention %q", c.raw, err, c.wantInMsg)
		}
	}
}

func TestValidateAgainstRegistry(t *testing.T) {
	reg := newRegistry(t)
	cases := []struct{ raw, wantInMsg string }{
		{`{"nope": ["count<1"]}`, `metric "nope" is not defined`},
		{`{"traffic_rtt": ["rate<1"]}`, `unsupported aggregation method "rate" for a trend metric; allowed: avg, min, max, med, p(N)`},
		{`{"traffic_errors": ["p(95)<1"]}`, `allowed: count, rate`},
		{`{"vus": ["count<1"]}`, `allowed: value`},
		{`{"workspace_failed": ["count<1"]}`, `allowed: rate`},
	}
	for _, c := range cases {
		cfg, err := ParseConfig(json.RawMessage(c.raw))
		if err != nil {
			t.Fatalf("%s: %v", c.raw, err)
		}
		err = cfg.Validate(reg)
		if err == nil {
			t.Errorf("%s validated", c.raw)
			continue
		}
		if lib.ExitCodeOf(err) != lib.ExitInvalidConfig {
			t.Errorf("%s: exit code %d, want 104", c.raw, lib.ExitCodeOf(err))
		}
		if !strings.Contains(err.Error(), c.wantInMsg) {
			t.Errorf("%s: error %q does not mention %q", c.raw, err, c.wantInMsg)
		}
	}
}

func TestLoadNoThresholds(t *testing.T) {
	reg := newRegistry(t)
	var logged strings.Builder
	logger := slog.New(slog.NewTextHandler(&logged, nil))
	cfg, err := Load(json.RawMessage(`{"nope": ["count<1"]}`), reg, true, logger)
	if err != nil || cfg != nil {
		t.Fatalf("--no-thresholds: cfg=%v err=%v, want nil, nil", cfg, err)
	}
	if !strings.Contains(logged.String(), "nope") {
		t.Errorf("error not logged: %q", logged.String())
	}
	if _, err := Load(json.RawMessage(`{"nope": ["count<1"]}`), reg, false, logger); lib.ExitCodeOf(err) != lib.ExitInvalidConfig {
		t.Errorf("without --no-thresholds: %v", err)
	}
	logged.Reset()
	cfg, err = Load(json.RawMessage(`{"traffic_rtt{vu:1}": ["avg<1"]}`), reg, false, logger)
	if err != nil || cfg.Len() != 1 {
		t.Fatalf("load: %v", err)
	}
	if !strings.Contains(logged.String(), "not indexed") {
		t.Errorf("vu filter not warned about: %q", logged.String())
	}
}

// fixture builds a config and one real sink per key.
func fixture(t *testing.T, raw string) (*State, []metrics.Sink) {
	t.Helper()
	reg := newRegistry(t)
	cfg, err := ParseConfig(json.RawMessage(raw))
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(reg); err != nil {
		t.Fatal(err)
	}
	sinks := make([]metrics.Sink, len(cfg.Metrics))
	for i, mt := range cfg.Metrics {
		sinks[i] = metrics.NewSink(reg.Get(mt.Metric).Type)
	}
	return NewState(cfg), sinks
}

func add(s metrics.Sink, vals ...float64) {
	for _, v := range vals {
		s.Add(metrics.Sample{Value: v})
	}
}

func TestPeriodicSkipsEmptyFinalDoesNot(t *testing.T) {
	// Keys sort: checks, traffic_errors, traffic_rtt, workspace_failed.
	st, sinks := fixture(t, `{
		"checks": ["rate==1"],
		"traffic_errors": ["count>0"],
		"traffic_rtt": ["avg>5"],
		"workspace_failed": ["rate<0.1"]
	}`)
	get := func(i int) metrics.Sink { return sinks[i] }
	rep := st.Evaluate(Periodic, time.Second, get)
	for _, r := range rep.Results {
		if r.Evaluated || !r.Ok {
			t.Errorf("periodic on empty sinks evaluated %s %q: %+v", r.Key, r.Threshold.Source, r)
		}
	}
	if rep.Failed() || st.Tainted() {
		t.Error("empty periodic evaluation failed")
	}
	rep = st.Evaluate(Final, time.Second, get)
	byKey := map[string]Result{}
	for _, r := range rep.Results {
		byKey[r.Key] = r
	}
	// Empty Counter counts 0: count>0 fails, and 0 is data.
	if r := byKey["traffic_errors"]; r.Ok || !r.HasValue || r.Observed != 0 || r.NoData {
		t.Errorf("final empty counter: %+v", r)
	}
	// Empty Trend evaluates as 0: avg>5 fails, reported as no data.
	if r := byKey["traffic_rtt"]; r.Ok || r.Observed != 0 || !r.NoData {
		t.Errorf("final empty trend: %+v", r)
	}
	if d := byKey["traffic_rtt"].Describe(func(v float64) string { return fmt.Sprint(v) }); d != "avg=no data (read as 0), 5 under the limit of 5" {
		t.Errorf("empty trend described as %q", d)
	}
	// A Rate without samples passes.
	if r := byKey["workspace_failed"]; !r.Ok || r.HasValue {
		t.Errorf("final empty rate: %+v", r)
	}
	if r := byKey["checks"]; !r.Ok {
		t.Errorf("final empty checks rate: %+v", r)
	}
	if !rep.Failed() || len(rep.FailedResults()) != 2 || !st.Tainted() {
		t.Errorf("final: failed=%v results=%d", rep.Failed(), len(rep.FailedResults()))
	}
}

func TestPeriodicKeepsPreviousResultWhenSinkEmpty(t *testing.T) {
	st, sinks := fixture(t, `{"traffic_rtt": ["p(95)<100"], "traffic_errors": ["count<1"]}`)
	get := func(i int) metrics.Sink { return sinks[i] }
	add(sinks[1], 50, 150, 300) // traffic_rtt sorts second
	rep := st.Evaluate(Periodic, 2*time.Second, get)
	r := rep.Results[1]
	if r.Ok || !r.Evaluated || !r.HasValue {
		t.Fatalf("p(95)<100 over [50 150 300]: %+v", r)
	}
	// p(95): i = 0.95·2 = 1.9 → 150 + 0.9·150 = 285.
	if r.Observed != 285 {
		t.Errorf("observed %v, want 285", r.Observed)
	}
	if got := r.Describe(func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) + "ms" }); got != "p(95)=285ms, 185ms over the limit of 100ms" {
		t.Errorf("Describe = %q", got)
	}
	if !rep.Results[0].Ok || rep.Results[0].Evaluated {
		t.Errorf("empty counter evaluated periodically: %+v", rep.Results[0])
	}
	if rep.Abort {
		t.Error("abort without abortOnFail")
	}
}

func TestAbortOnFailAndDelay(t *testing.T) {
	st, sinks := fixture(t, `{
		"traffic_errors": [{"threshold": "count<1", "abortOnFail": true, "delayAbortEval": "10s"}],
		"workspace_failed": ["rate<0.5"]
	}`)
	get := func(i int) metrics.Sink { return sinks[i] }
	add(sinks[0], 1)
	add(sinks[1], 1, 1)
	rep := st.Evaluate(Periodic, 5*time.Second, get)
	if !rep.Failed() || rep.Abort {
		t.Fatalf("before the delay: failed=%v abort=%v, want failed, no abort", rep.Failed(), rep.Abort)
	}
	rep = st.Evaluate(Periodic, 11*time.Second, get)
	if !rep.Abort || rep.AbortCause == nil || rep.AbortCause.Threshold.Source != "count<1" {
		t.Fatalf("after the delay: abort=%v cause=%v", rep.Abort, rep.AbortCause)
	}
	// The final evaluation reports failure but never asks to abort.
	if rep := st.Evaluate(Final, 12*time.Second, get); rep.Abort || !rep.Failed() {
		t.Errorf("final: abort=%v failed=%v", rep.Abort, rep.Failed())
	}
	// A failing threshold without abortOnFail never aborts.
	st2, sinks2 := fixture(t, `{"workspace_failed": ["rate<0.5"]}`)
	add(sinks2[0], 1)
	if rep := st2.Evaluate(Periodic, time.Hour, func(i int) metrics.Sink { return sinks2[i] }); rep.Abort || !rep.Failed() {
		t.Errorf("no abortOnFail: abort=%v failed=%v", rep.Abort, rep.Failed())
	}
	// abortOnFail without delay aborts at the first failing periodic run.
	st3, sinks3 := fixture(t, `{"traffic_rtt": [{"threshold": "max<10", "abortOnFail": true}]}`)
	add(sinks3[0], 20)
	if rep := st3.Evaluate(Periodic, 2*time.Second, func(i int) metrics.Sink { return sinks3[i] }); !rep.Abort {
		t.Error("abortOnFail without delay did not abort")
	}
}

func TestCounterRateThreshold(t *testing.T) {
	st, sinks := fixture(t, `{"traffic_errors": ["rate<2"]}`)
	get := func(i int) metrics.Sink { return sinks[i] }
	add(sinks[0], 10)
	// At time 0 the rate is unset: the threshold passes without a value.
	if r := st.Evaluate(Final, 0, get).Results[0]; !r.Ok || r.HasValue {
		t.Errorf("rate at time 0: %+v", r)
	}
	// 10 over 4s = 2.5/s: fails.
	r := st.Evaluate(Final, 4*time.Second, get).Results[0]
	if r.Ok || r.Observed != 2.5 {
		t.Errorf("rate over 4s: %+v", r)
	}
	if got := r.Describe(func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }); got != "rate=2.5, 0.5 over the limit of 2" {
		t.Errorf("Describe = %q", got)
	}
}

func TestDescribeOperators(t *testing.T) {
	f := func(v float64) string { b, _ := json.Marshal(v); return string(b) }
	cases := []struct {
		src  string
		obs  float64
		want string
	}{
		{"rate>=0.99", 0.95, "rate=0.95, 0.040000000000000036 under the limit of 0.99"},
		{"count==5", 3, "count=3, 2 away from the required 5"},
		{"value!=5", 5, "value=5, equal to the excluded value 5"},
		{"avg<5", 5, "avg=5, not below the limit of 5"},
		{"avg<5", 4, "avg=4"},
	}
	for _, c := range cases {
		e, _ := ParseExpr(c.src)
		r := Result{Threshold: &Threshold{Source: c.src, Expr: e}, Evaluated: true, HasValue: true, Observed: c.obs, Ok: e.Compare(c.obs)}
		if got := r.Describe(f); got != c.want {
			t.Errorf("%s @ %v: %q, want %q", c.src, c.obs, got, c.want)
		}
	}
}

func TestParseDuration(t *testing.T) {
	cases := map[string]time.Duration{"10s": 10 * time.Second, "1m30s": 90 * time.Second, "1d": 24 * time.Hour,
		"1d2h": 26 * time.Hour, "250": 250 * time.Millisecond, "0": 0}
	for in, want := range cases {
		if got, err := ParseDuration(in); err != nil || got != want {
			t.Errorf("%q = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "x", "-1s", "-3", "1dx"} {
		if _, err := ParseDuration(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
