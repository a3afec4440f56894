package conformance

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// wantIn fails the test unless every string of want occurs in got.
func wantIn(t *testing.T, r *result, where, got string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Errorf("%s does not contain %q\n%s", where, w, r)
		}
	}
}

// wantNotIn fails the test if any string of bad occurs in got.
func wantNotIn(t *testing.T, r *result, where, got string, bad ...string) {
	t.Helper()
	for _, b := range bad {
		if strings.Contains(got, b) {
			t.Errorf("%s contains %q\n%s", where, b, r)
		}
	}
}

func TestThresholdsPass(t *testing.T) {
	t.Parallel()
	r := cdeload(t, nil, "run", "-q", "thr_metrics.js")
	if r.code != 0 {
		t.Fatalf("want exit 0, got %s", r)
	}
	wantIn(t, r, "stdout", r.stdout,
		"█ THRESHOLDS",
		// Setup, 10 iterations and teardown: every sample was evaluated.
		"✓ 'count==12' count=12",
		"✓ 'count==10' count=10",
		// Submetrics only see their tagged samples (the whole trend's max is 50ms).
		"thr_latency{kind:fast}", "✓ 'max<1' max=500µs",
		"thr_latency{kind:slow}", "✓ 'p(95)<100' p(95)=50ms", "✓ 'min>=50' min=50ms",
		"✓ 'rate>0.7' rate=80.00%",
		"✓ 'value==7' value=7",
		"✓ 'rate==1' rate=100.00%",
		"{ kind:fast }", "{ kind:slow }",
		"█ TOTAL RESULTS",
	)
	wantNotIn(t, r, "stdout", r.stdout, "✗", "crossed")
	if len(r.msgs("TEARDOWN")) != 1 {
		t.Errorf("teardown did not run once\n%s", r)
	}
}

func TestThresholdsFailExit99(t *testing.T) {
	t.Parallel()
	r := cdeload(t, nil, "run", "-q", "-e", "LIMIT=10", "-e", "BADCHECK=1", "thr_metrics.js")
	if r.code != 99 {
		t.Fatalf("want exit 99, got %s", r)
	}
	wantIn(t, r, "stdout", r.stdout,
		"✗ 'p(95)<10' p(95)=50ms",
		"✗ 'rate==1' rate=80.00%",
		"✓ 'min>=50' min=50ms",
		"2 of 8 thresholds crossed",
		"thr_latency{kind:slow} 'p(95)<10': p(95)=50ms, 40ms over the limit of 10ms",
		"checks 'rate==1': rate=80.00%",
		"✗ even iterations only",
	)
	wantIn(t, r, "stderr", r.stderr, "thresholds crossed", "p(95)<10")
	if len(r.msgs("TEARDOWN")) != 1 {
		t.Errorf("teardown did not run once\n%s", r)
	}
}

func TestNoThresholdsIgnoresThem(t *testing.T) {
	t.Parallel()
	cases := map[string]struct {
		env  []string
		args []string
	}{
		"flag": {args: []string{"--no-thresholds"}},
		"env":  {env: []string{"K6_NO_THRESHOLDS=true"}},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			args := append([]string{"run", "-q", "-e", "LIMIT=10", "-e", "BADCHECK=1"}, c.args...)
			r := cdeload(t, c.env, append(args, "thr_metrics.js")...)
			if r.code != 0 {
				t.Fatalf("want exit 0 with thresholds disabled, got %s", r)
			}
			wantNotIn(t, r, "stdout", r.stdout, "THRESHOLDS", "crossed", "{ kind:slow }")
			wantIn(t, r, "stdout", r.stdout, "█ TOTAL RESULTS", "✗ even iterations only")
		})
	}
	t.Run("invalid thresholds are only a warning", func(t *testing.T) {
		t.Parallel()
		r := cdeload(t, nil, "run", "-q", "--no-thresholds", "-e", "CASE=unknown", "thr_bad.js")
		if r.code != 0 || len(r.msgs("ITER")) != 1 {
			t.Fatalf("want exit 0 after one iteration, got %s", r)
		}
		wantIn(t, r, "stderr", r.stderr, "no_such_metric")
	})
}

func TestInvalidThresholdsExit104(t *testing.T) {
	t.Parallel()
	cases := map[string][]string{
		"expr":       {"thr_bad_hits", "count >> 3"},
		"method":     {"thr_bad_latency", "rate<1", "unsupported aggregation method", "trend"},
		"unknown":    {`metric \"no_such_metric\" is not defined`},
		"unknownsub": {"no_such_metric{kind:a}", "not defined"},
		"percentile": {"p(101)<5", "0 to 100"},
		"object":     {"thr_bad_hits", "abortOnFial"},
	}
	for name, want := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r := cdeload(t, nil, "run", "-q", "-e", "CASE="+name, "thr_bad.js")
			if r.code != 104 {
				t.Fatalf("want exit 104, got %s", r)
			}
			wantIn(t, r, "stderr", r.stderr, want...)
			if len(r.msgs("ITER")) != 0 {
				t.Errorf("iterations ran despite the invalid threshold\n%s", r)
			}
		})
	}
}

func TestAbortOnFailStopsEarlyAndRunsTeardown(t *testing.T) {
	t.Parallel()
	r := cdeload(t, nil, "run", "-q", "thr_abort.js")
	if r.code != 99 {
		t.Fatalf("want exit 99, got %s", r)
	}
	// The scenario is 30s long; the first periodic evaluation is at 2s.
	if r.took > 12*time.Second {
		t.Errorf("abortOnFail did not stop the 30s test early: took %s", r.took)
	}
	if len(r.msgs("TEARDOWN")) != 1 {
		t.Errorf("teardown did not run after the abort\n%s", r)
	}
	wantIn(t, r, "stderr", r.stderr, "abortOnFail", "count<5")
	wantIn(t, r, "stdout", r.stdout, "✗ 'count<5'", "█ TOTAL RESULTS")
}

func TestDelayAbortEval(t *testing.T) {
	t.Parallel()
	r := cdeload(t, nil, "run", "-q", "-e", "DELAY=3s", "thr_abort.js")
	if r.code != 99 {
		t.Fatalf("want exit 99, got %s", r)
	}
	// The threshold fails from the first evaluation (2s) on, but may only
	// abort once 3s of the test have passed: at the evaluation at 4s.
	if r.took < 3*time.Second {
		t.Errorf("aborted after %s, before delayAbortEval (3s)", r.took)
	}
	if r.took > 15*time.Second {
		t.Errorf("delayAbortEval 3s: the 30s test was not aborted early (took %s)", r.took)
	}
	if len(r.msgs("TEARDOWN")) != 1 {
		t.Errorf("teardown did not run after the abort\n%s", r)
	}
}

// jsonLine is one line of the json output.
type jsonLine struct {
	Type   string `json:"type"`
	Metric string `json:"metric"`
	Data   struct {
		Name       string   `json:"name"`
		Type       string   `json:"type"`
		Thresholds []string `json:"thresholds"`
		Submetrics []struct {
			Name string            `json:"name"`
			Tags map[string]string `json:"tags"`
		} `json:"submetrics"`
		Value float64           `json:"value"`
		Tags  map[string]string `json:"tags"`
	} `json:"data"`
}

func TestJSONOutputHasThresholds(t *testing.T) {
	t.Parallel()
	out := filepath.Join(t.TempDir(), "out.json")
	r := cdeload(t, nil, "run", "-q", "-o", "json="+out, "thr_metrics.js")
	if r.code != 0 {
		t.Fatalf("want exit 0, got %s", r)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	metricLines := map[string]jsonLine{}
	points := map[string]float64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var l jsonLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		switch l.Type {
		case "Metric":
			metricLines[l.Metric] = l
		case "Point":
			points[l.Metric] += l.Data.Value
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	hits, ok := metricLines["thr_hits"]
	if !ok || strings.Join(hits.Data.Thresholds, ",") != "count==12" || hits.Data.Type != "counter" {
		t.Errorf("Metric line of thr_hits: %+v", hits)
	}
	lat := metricLines["thr_latency"]
	var subs []string
	for _, s := range lat.Data.Submetrics {
		subs = append(subs, s.Name+"="+s.Tags["kind"])
	}
	if strings.Join(subs, " ") != "thr_latency{kind:fast}=fast thr_latency{kind:slow}=slow" {
		t.Errorf("submetrics of thr_latency: %v (%+v)", subs, lat)
	}
	if got := metricLines["checks"].Data.Thresholds; len(got) != 1 || got[0] != "rate==1" {
		t.Errorf("thresholds of checks: %v", got)
	}
	if points["iterations"] != 10 || points["thr_hits"] != 12 {
		t.Errorf("points: iterations sum %v (want 10), thr_hits sum %v (want 12)", points["iterations"], points["thr_hits"])
	}
}

func TestThresholdOnAnEmptySubmetricSaysNoData(t *testing.T) {
	t.Parallel()
	r := cdeload(t, nil, "run", "-q", "thr_nodata.js")
	if r.code != 0 {
		t.Fatalf("an empty Trend passes its threshold as in k6 (exit 0), got %s", r)
	}
	if !strings.Contains(r.stdout, "✓ 'p(95)<1000' p(95)=no data") {
		t.Errorf("the empty submetric's threshold is not reported as no data:\n%s", r.stdout)
	}
	if !strings.Contains(r.stdout, "✓ 'p(95)<1000' p(95)=5ms") {
		t.Errorf("the observed submetric's threshold lost its value:\n%s", r.stdout)
	}
	if line := lineWith(r.stdout, "{ transport:terminal }"); !strings.HasSuffix(strings.TrimSpace(line), ": no data") {
		t.Errorf("the empty submetric's line shows values, not no data: %q\n%s", line, r.stdout)
	}
	if strings.Contains(r.stdout, "p(95)=0s") {
		t.Errorf("an empty sink is shown as 0s:\n%s", r.stdout)
	}
}
