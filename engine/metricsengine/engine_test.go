package metricsengine

import (
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cdeload/cdeload/engine/lib"
	"github.com/cdeload/cdeload/engine/metrics"
	"github.com/cdeload/cdeload/engine/summary"
	"github.com/cdeload/cdeload/engine/thresholds"
)

type fixture struct {
	reg     *metrics.Registry
	b       *metrics.Builtin
	rtt     *metrics.Metric
	errs    *metrics.Metric
	unused  *metrics.Metric
	failed  *metrics.Metric
	base    *metrics.TagSet
	sshTags *metrics.TagSet
	webTags *metrics.TagSet
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	reg := metrics.NewRegistry()
	f := &fixture{reg: reg, b: metrics.RegisterBuiltin(reg)}
	f.rtt = reg.MustNewMetric("traffic_rtt", metrics.Trend, metrics.Time)
	f.errs = reg.MustNewMetric("traffic_errors", metrics.Counter)
	f.unused = reg.MustNewMetric("tailnet_up_duration", metrics.Trend, metrics.Time)
	f.failed = reg.MustNewMetric("workspace_failed", metrics.Rate)
	f.base = metrics.NewTagSet(map[string]string{"scenario": "traffic"})
	f.sshTags = f.base.With("transport", "ssh")
	f.webTags = f.base.With("transport", "terminal")
	return f
}

func (f *fixture) engine(t testing.TB, raw string, opts Options) *Engine {
	t.Helper()
	cfg, err := thresholds.Load(json.RawMessage(raw), f.reg, opts.NoThresholds, nil)
	if err != nil {
		t.Fatal(err)
	}
	opts.Thresholds = cfg
	e, err := New(f.reg, opts)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func s(m *metrics.Metric, tags *metrics.TagSet, v float64) metrics.Sample {
	return metrics.Sample{Metric: m, Tags: tags, Time: time.Now(), Value: v}
}

func TestSubmetricsAndObserved(t *testing.T) {
	f := newFixture(t)
	e := f.engine(t, `{"traffic_rtt{transport:ssh}": ["p(95)<50"], "workspace_failed": ["rate<0.1"]}`, Options{})
	e.AddMetricSamples([]metrics.Samples{{
		s(f.rtt, f.sshTags, 10), s(f.rtt, f.webTags, 1000), s(f.rtt, f.sshTags, 30),
		// Equal tag set, different pointer: must match through the cache by ID.
		s(f.rtt, metrics.NewTagSet(map[string]string{"scenario": "traffic", "transport": "ssh"}), 20),
		s(f.errs, f.base, 2),
	}})
	all, ok := e.Values("traffic_rtt", time.Second)
	if !ok || all["count"] != 4 || all["max"] != 1000 {
		t.Errorf("traffic_rtt = %v", all)
	}
	ssh, ok := e.Values("traffic_rtt{transport:ssh}", time.Second)
	if !ok || ssh["count"] != 3 || ssh["max"] != 30 || ssh["med"] != 20 {
		t.Errorf("traffic_rtt{transport:ssh} = %v, want the 3 ssh samples", ssh)
	}
	// workspace_failed has a threshold and no samples: observed. The unused
	// trend has neither: not observed.
	obs := strings.Join(e.ObservedMetrics(), ",")
	if obs != "traffic_errors,traffic_rtt,workspace_failed" {
		t.Errorf("observed = %s", obs)
	}
	rep, err := e.FinalThresholds(time.Second)
	if err != nil || rep.Failed() {
		t.Errorf("final: %v %+v", err, rep.Results)
	}
}

func TestChecksGroupsAndSummaryData(t *testing.T) {
	f := newFixture(t)
	e := f.engine(t, `{"checks": ["rate==1"]}`, Options{})
	root := f.base
	inA := f.base.With("group", "::a")
	inAB := f.base.With("group", "::a::b")
	ck := func(tags *metrics.TagSet, name string, ok bool) metrics.Sample {
		return s(f.b.Checks, tags.With("check", name), metrics.B(ok))
	}
	e.AddMetricSamples([]metrics.Samples{
		{ck(root, "no stream errors", true), ck(root, "no stream errors", false), ck(root, "no stream errors", true)},
		{ck(inA, "status ok", true), ck(inAB, "deep", true), s(f.b.GroupDuration, inA, 12)},
	})
	d := e.Summary(summary.Options{}, 2*time.Second, json.RawMessage(`{"token":"x"}`))
	if len(d.RootGroup.Checks) != 1 {
		t.Fatalf("root checks: %+v", d.RootGroup.Checks)
	}
	c := d.RootGroup.Checks[0]
	if c.Name != "no stream errors" || c.Passes != 2 || c.Fails != 1 || c.Path != "::no stream errors" {
		t.Errorf("root check = %+v", c)
	}
	if len(d.RootGroup.Groups) != 1 || d.RootGroup.Groups[0].Name != "a" {
		t.Fatalf("groups: %+v", d.RootGroup.Groups)
	}
	a := d.RootGroup.Groups[0]
	if len(a.Checks) != 1 || a.Checks[0].Name != "status ok" || len(a.Groups) != 1 || a.Groups[0].Path != "::a::b" {
		t.Errorf("group a = %+v", a)
	}
	if a.Groups[0].Checks[0].Name != "deep" {
		t.Errorf("group a::b checks = %+v", a.Groups[0].Checks)
	}
	if string(d.SetupData) != `{"token":"x"}` {
		t.Errorf("setup data = %s", d.SetupData)
	}
	// checks has a failure: rate==1 fails at the end with exit code 99.
	_, err := e.FinalThresholds(2 * time.Second)
	if lib.ExitCodeOf(err) != lib.ExitThresholdsFailed || !strings.Contains(err.Error(), "rate==1") {
		t.Errorf("final error = %v", err)
	}
	d = e.Summary(summary.Options{}, 2*time.Second, nil)
	text := summary.Text(&summary.Data{Metrics: d.Metrics, RootGroup: d.RootGroup, ThresholdResults: d.ThresholdResults,
		TestRunDuration: d.TestRunDuration, Options: summary.Options{NoColor: true}})
	for _, want := range []string{"✗ 'rate==1' rate=80.00%", "checks_total", "4 out of 5", "1 out of 5", "✗ no stream errors", "↳  66.66% — ✓ 2 / ✗ 1"} {
		if !strings.Contains(text, want) {
			t.Errorf("summary lacks %q:\n%s", want, text)
		}
	}
}

func TestCheckThresholdsAbort(t *testing.T) {
	f := newFixture(t)
	e := f.engine(t, `{"traffic_errors": [{"threshold": "count<3", "abortOnFail": true, "delayAbortEval": "4s"}]}`, Options{})
	if err := e.Start(); err != nil {
		t.Fatal(err)
	}
	defer e.Stop()
	if err := e.CheckThresholds(2 * time.Second); err != nil {
		t.Fatalf("no samples yet: %v", err)
	}
	e.AddMetricSamples([]metrics.Samples{{s(f.errs, f.base, 5)}})
	if err := e.CheckThresholds(3 * time.Second); err != nil {
		t.Fatalf("inside delayAbortEval: %v", err)
	}
	if !e.Tainted() {
		t.Error("failing threshold does not taint")
	}
	err := e.CheckThresholds(5 * time.Second)
	if lib.ExitCodeOf(err) != lib.ExitThresholdsFailed {
		t.Fatalf("after delayAbortEval: %v", err)
	}
	for _, want := range []string{"count<3", "traffic_errors", "count=5, 2 over the limit of 3"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("abort error %q lacks %q", err, want)
		}
	}
}

func TestNoThresholds(t *testing.T) {
	f := newFixture(t)
	e := f.engine(t, `{"traffic_rtt{transport:ssh}": ["p(95)<0"], "nope": ["count<1"]}`, Options{NoThresholds: true})
	e.AddMetricSamples([]metrics.Samples{{s(f.rtt, f.sshTags, 10)}})
	if _, err := e.FinalThresholds(time.Second); err != nil {
		t.Errorf("--no-thresholds evaluated: %v", err)
	}
	if _, ok := e.Values("traffic_rtt{transport:ssh}", time.Second); ok {
		t.Error("--no-thresholds created a submetric")
	}
	if got := e.ObservedMetrics(); len(got) != 1 || got[0] != "traffic_rtt" {
		t.Errorf("observed = %v", got)
	}
}

func TestFullModePerGroupAndScenario(t *testing.T) {
	f := newFixture(t)
	e := f.engine(t, `{}`, Options{PerGroupAndScenario: true})
	other := metrics.NewTagSet(map[string]string{"scenario": "warmup"})
	e.AddMetricSamples([]metrics.Samples{{
		s(f.rtt, f.sshTags.With("group", "::login"), 10),
		s(f.rtt, f.sshTags, 20),
		s(f.rtt, other, 30),
		s(f.b.GroupDuration, f.base.With("group", "::login"), 5),
	}})
	d := e.Summary(summary.Options{Mode: summary.ModeFull}, time.Second, nil)
	if len(d.RootGroup.Groups) != 1 {
		t.Fatalf("groups = %+v", d.RootGroup.Groups)
	}
	g := d.RootGroup.Groups[0]
	var rtt *summary.Metric
	for _, m := range g.Metrics {
		if m.Name == "traffic_rtt" {
			rtt = m
		}
	}
	if rtt == nil || rtt.Values["max"] != 10 {
		t.Errorf("group login traffic_rtt = %+v", rtt)
	}
	if len(d.Scenarios) != 2 || d.Scenarios[0].Name != "traffic" || d.Scenarios[1].Name != "warmup" {
		t.Fatalf("scenarios = %+v", d.Scenarios)
	}
	for _, m := range d.Scenarios[0].Metrics {
		if m.Name == "traffic_rtt" && (m.Values["min"] != 10 || m.Values["max"] != 20) {
			t.Errorf("scenario traffic rtt = %v", m.Values)
		}
	}
	text := summary.Text(d)
	for _, want := range []string{"█ GROUP: login", "█ SCENARIO: traffic", "█ SCENARIO: warmup"} {
		if !strings.Contains(text, want) {
			t.Errorf("full summary lacks %q:\n%s", want, text)
		}
	}
}

// TestConcurrentIngestAndEvaluate pushes from several goroutines while the
// flusher runs and thresholds are evaluated; run with -race.
func TestConcurrentIngestAndEvaluate(t *testing.T) {
	f := newFixture(t)
	e := f.engine(t, `{"traffic_rtt{transport:ssh}": ["p(99)<1000"], "checks": ["rate>0.5"]}`, Options{FlushInterval: time.Millisecond, PerGroupAndScenario: true})
	if err := e.Start(); err != nil {
		t.Fatal(err)
	}
	const writers, batches, per = 4, 50, 100
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < batches; i++ {
				b := make(metrics.Samples, 0, per)
				for j := 0; j < per; j++ {
					b = append(b, s(f.rtt, f.sshTags, float64(j)), s(f.b.Checks, f.base.With("check", "c"), 1))
				}
				e.AddMetricSamples([]metrics.Samples{b})
			}
		}()
	}
	stop := make(chan struct{})
	evalDone := make(chan struct{})
	go func() {
		defer close(evalDone)
		for {
			select {
			case <-stop:
				return
			default:
				_ = e.CheckThresholds(time.Second)
				_ = e.Summary(summary.Options{}, time.Second, nil)
			}
		}
	}()
	wg.Wait()
	close(stop)
	<-evalDone
	if err := e.Stop(); err != nil {
		t.Fatal(err)
	}
	v, _ := e.Values("traffic_rtt{transport:ssh}", time.Second)
	if v["count"] != writers*batches*per {
		t.Errorf("count = %v, want %d", v["count"], writers*batches*per)
	}
	if _, err := e.FinalThresholds(time.Second); err != nil {
		t.Errorf("final: %v", err)
	}
}

func TestNaNIgnoredAndUnknownMetricsBound(t *testing.T) {
	f := newFixture(t)
	e := f.engine(t, `{}`, Options{})
	late := f.reg.MustNewMetric("late_metric", metrics.Counter)
	nan := 0.0
	e.AddMetricSamples([]metrics.Samples{{s(f.rtt, f.base, nan/nan), s(late, nil, 2), {Value: 1}}})
	if v, ok := e.Values("late_metric", time.Second); !ok || v["count"] != 2 {
		t.Errorf("late metric = %v %v", v, ok)
	}
	if v, _ := e.Values("traffic_rtt", time.Second); v["count"] != 0 {
		t.Errorf("NaN counted: %v", v)
	}
}

// TestEndToEndSummary goes from raw options.thresholds and samples to
// what the user reads: the text summary, the export and handleSummary data.
func TestEndToEndSummary(t *testing.T) {
	f := newFixture(t)
	e := f.engine(t, `{"traffic_rtt{transport:ssh}": ["p(95)<90", "med<60"], "traffic_errors": ["count<1"]}`, Options{})
	if err := e.Start(); err != nil {
		t.Fatal(err)
	}
	var batch metrics.Samples
	for i := 1; i <= 100; i++ {
		batch = append(batch, s(f.rtt, f.sshTags, float64(i)), s(f.rtt, f.webTags, 1000))
	}
	batch = append(batch, s(f.b.Iterations, f.base, 1), s(f.b.Iterations, f.base, 1))
	e.AddMetricSamples([]metrics.Samples{batch})
	if err := e.Stop(); err != nil {
		t.Fatal(err)
	}
	rep, err := e.FinalThresholds(4 * time.Second)
	if lib.ExitCodeOf(err) != lib.ExitThresholdsFailed {
		t.Fatalf("final = %v", err)
	}
	// p(95) of 1..100: i = 0.95·99 = 94.05 → 95.05. med = 50.5. count of an
	// unobserved-but-thresholded counter = 0 (passes count<1).
	if len(rep.FailedResults()) != 1 || rep.FailedResults()[0].Observed != 95.05 {
		t.Fatalf("failed = %+v", rep.FailedResults())
	}
	d := e.Summary(summary.Options{NoColor: true}, 4*time.Second, nil)
	text := summary.Text(d)
	for _, want := range []string{
		"✓ 'count<1' count=0",
		"✗ 'p(95)<90' p(95)=95.05ms",
		"✓ 'med<60' med=50.5ms",
		"traffic_errors",
		"{ transport:ssh }",
		"p(95)=95.05ms",
		"iterations............: 2 0.5/s",
		"traffic_rtt{transport:ssh} 'p(95)<90': p(95)=95.05ms, 5.05ms over the limit of 90ms",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("summary lacks %q:\n%s", want, text)
		}
	}
	exp, err := summary.ExportJSON(d)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(exp), `"p(95)<90": true`) || !strings.Contains(string(exp), `"med<60": false`) {
		t.Errorf("export thresholds:\n%s", exp)
	}
	hs, err := summary.HandleSummaryData(d)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(hs), `"traffic_rtt{transport:ssh}":{"type":"trend","contains":"time"`) ||
		!strings.Contains(string(hs), `"p(95)<90":{"ok":false}`) {
		t.Errorf("handleSummary data: %s", hs)
	}
}

func TestExpectedResponseSubmetricIsInTheSummary(t *testing.T) {
	reg := metrics.NewRegistry()
	dur := reg.MustNewMetric("http_req_duration", metrics.Trend, metrics.Time)
	e, err := New(reg, Options{ExpectedResponse: true})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	e.AddMetricSamples([]metrics.Samples{{
		{Metric: dur, Tags: metrics.NewTagSet(map[string]string{"expected_response": "true"}), Time: now, Value: 10},
		{Metric: dur, Tags: metrics.NewTagSet(map[string]string{"expected_response": "false"}), Time: now, Value: 30},
	}})
	d := e.Summary(summary.Options{}, time.Second, nil)
	var found bool
	for _, m := range d.Metrics {
		if m.Name == "http_req_duration{expected_response:true}" {
			found = true
			if m.Values["avg"] != 10 || m.Values["max"] != 10 {
				t.Fatalf("submetric values %v, want only the expected response's 10ms", m.Values)
			}
		}
	}
	if !found {
		t.Fatal("no http_req_duration{expected_response:true} in the summary")
	}
}
