package conformance

import (
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// exportGroup is a group of the legacy --summary-export JSON.
type exportGroup struct {
	Name   string                  `json:"name"`
	Path   string                  `json:"path"`
	ID     string                  `json:"id"`
	Groups map[string]*exportGroup `json:"groups"`
	Checks map[string]struct {
		Name   string `json:"name"`
		Path   string `json:"path"`
		ID     string `json:"id"`
		Passes int    `json:"passes"`
		Fails  int    `json:"fails"`
	} `json:"checks"`
}

// export is the legacy --summary-export JSON.
type export struct {
	Metrics   map[string]map[string]json.RawMessage `json:"metrics"`
	RootGroup *exportGroup                          `json:"root_group"`
	SetupData map[string]any                        `json:"setup_data"`
}

func readExport(t *testing.T, path string) *export {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading the summary export: %v", err)
	}
	var e export
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatalf("summary export %s: %v", b, err)
	}
	return &e
}

// num returns metric.key of the export as a number.
func (e *export) num(t *testing.T, metric, key string) float64 {
	t.Helper()
	raw, ok := e.Metrics[metric][key]
	if !ok {
		t.Fatalf("summary export: no %s.%s in %v", metric, key, e.Metrics[metric])
	}
	var v float64
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("summary export %s.%s = %s: %v", metric, key, raw, err)
	}
	return v
}

// thresholds returns metric.thresholds of the export.
func (e *export) thresholds(t *testing.T, metric string) map[string]bool {
	t.Helper()
	var th map[string]bool
	if err := json.Unmarshal(e.Metrics[metric]["thresholds"], &th); err != nil {
		t.Fatalf("summary export %s.thresholds: %v", metric, err)
	}
	return th
}

func keysOf[V any](m map[string]V) string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return strings.Join(ks, ",")
}

func md5hex(s string) string {
	sum := md5.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}

// lineWith returns the first line of text that contains s, trimmed.
func lineWith(text, s string) string {
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, s) {
			return strings.TrimSpace(l)
		}
	}
	return ""
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-6 }

func TestSummaryExportJSON(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "export.json")
	r := cdeload(t, nil, "run", "-q", "--summary-export", path, "sum_groups.js")
	if r.code != 99 { // sum_wait max<10 fails
		t.Fatalf("want exit 99, got %s", r)
	}
	e := readExport(t, path)
	if got := e.num(t, "iterations", "count"); got != 4 {
		t.Errorf("iterations.count = %v, want 4", got)
	}
	if _, ok := e.Metrics["iterations"]["rate"]; !ok {
		t.Errorf("iterations has no rate: %v", e.Metrics["iterations"])
	}
	// 4 checks per iteration, one of which always fails.
	if v, p, f := e.num(t, "checks", "value"), e.num(t, "checks", "passes"), e.num(t, "checks", "fails"); !near(v, 0.75) || p != 12 || f != 4 {
		t.Errorf("checks value=%v passes=%v fails=%v, want 0.75 12 4", v, p, f)
	}
	// Thresholds are inverted: true means the threshold FAILED.
	if th := e.thresholds(t, "checks"); len(th) != 1 || th["rate>0.5"] {
		t.Errorf("checks.thresholds = %v, want {rate>0.5: false}", th)
	}
	if th := e.thresholds(t, "sum_wait"); len(th) != 2 || !th["max<10"] || th["p(95)<1000"] {
		t.Errorf("sum_wait.thresholds = %v, want {max<10: true, p(95)<1000: false}", th)
	}
	// A time trend: one key per default trend stat, in milliseconds.
	if got := keysOf(e.Metrics["sum_wait"]); got != "avg,max,med,min,p(90),p(95),thresholds" {
		t.Errorf("sum_wait keys = %s", got)
	}
	if mn, mx, avg := e.num(t, "sum_wait", "min"), e.num(t, "sum_wait", "max"), e.num(t, "sum_wait", "avg"); mn != 20 || mx != 50 || avg != 35 {
		t.Errorf("sum_wait min=%v max=%v avg=%v, want 20 50 35", mn, mx, avg)
	}

	root := e.RootGroup
	if root == nil || root.Name != "" || root.Path != "" || root.ID != md5hex("") {
		t.Fatalf("root_group = %+v", root)
	}
	if c := root.Checks["top ok"]; c.Passes != 4 || c.Fails != 0 || c.Path != "::top ok" || c.ID != md5hex("::top ok") {
		t.Errorf("root_group.checks[top ok] = %+v", c)
	}
	outer := root.Groups["outer"]
	if outer == nil || outer.Path != "::outer" || outer.ID != md5hex("::outer") {
		t.Fatalf("root_group.groups.outer = %+v", outer)
	}
	if c := outer.Checks["outer bad"]; c.Passes != 0 || c.Fails != 4 || c.Path != "::outer::outer bad" {
		t.Errorf("outer.checks[outer bad] = %+v", c)
	}
	if c := outer.Checks["outer ok"]; c.Passes != 4 || c.Fails != 0 {
		t.Errorf("outer.checks[outer ok] = %+v", c)
	}
	inner := outer.Groups["inner"]
	if inner == nil || inner.Path != "::outer::inner" {
		t.Fatalf("outer.groups.inner = %+v", inner)
	}
	if c := inner.Checks["inner ok"]; c.Passes != 4 || c.Path != "::outer::inner::inner ok" {
		t.Errorf("inner.checks[inner ok] = %+v", c)
	}
	if len(root.Checks) != 1 {
		t.Errorf("root_group.checks = %v, want only top ok", keysOf(root.Checks))
	}
	if e.SetupData["token"] != "abc" {
		t.Errorf("setup_data = %v", e.SetupData)
	}
}

func TestSummaryTrendStatsAndTimeUnit(t *testing.T) {
	t.Parallel()
	t.Run("flags", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "export.json")
		r := cdeload(t, nil, "run", "-q", "--summary-trend-stats", "avg,p(99),count", "--summary-time-unit", "ms",
			"--summary-export", path, "sum_groups.js")
		if r.code != 99 {
			t.Fatalf("want exit 99, got %s", r)
		}
		line := lineWith(r.stdout, "sum_wait...")
		wantIn(t, r, "the sum_wait line", line, "avg=35.00ms p(99)=49.70ms count=4")
		wantNotIn(t, r, "the sum_wait line", line, "med=", "p(95)=")
		e := readExport(t, path)
		if got := keysOf(e.Metrics["sum_wait"]); got != "avg,count,p(99),thresholds" {
			t.Errorf("sum_wait keys = %s", got)
		}
		if got := e.num(t, "sum_wait", "count"); got != 4 {
			t.Errorf("sum_wait count = %v", got)
		}
	})
	t.Run("script options", func(t *testing.T) {
		t.Parallel()
		r := cdeload(t, nil, "run", "-q", "-e", "STATS=max,count,p(50)", "-e", "UNIT=us", "sum_groups.js")
		if r.code != 99 {
			t.Fatalf("want exit 99, got %s", r)
		}
		line := lineWith(r.stdout, "sum_wait...")
		wantIn(t, r, "the sum_wait line", line, "max=50000.00µs count=4 p(50)=35000.00µs")
		wantNotIn(t, r, "the sum_wait line", line, "avg=")
	})
	t.Run("flags override script options", func(t *testing.T) {
		t.Parallel()
		r := cdeload(t, nil, "run", "-q", "-e", "STATS=max", "--summary-trend-stats", "min", "sum_groups.js")
		if r.code != 99 {
			t.Fatalf("want exit 99, got %s", r)
		}
		line := lineWith(r.stdout, "sum_wait...")
		wantIn(t, r, "the sum_wait line", line, "min=20")
		wantNotIn(t, r, "the sum_wait line", line, "max=")
	})
	t.Run("env", func(t *testing.T) {
		t.Parallel()
		r := cdeload(t, []string{"K6_SUMMARY_TREND_STATS=min,max", "K6_SUMMARY_TIME_UNIT=s"}, "run", "-q", "sum_groups.js")
		if r.code != 99 {
			t.Fatalf("want exit 99, got %s", r)
		}
		line := lineWith(r.stdout, "sum_wait...")
		wantIn(t, r, "the sum_wait line", line, "min=0.02s max=0.05s")
		wantNotIn(t, r, "the sum_wait line", line, "avg=")
	})
}

func TestSummaryOptionsInvalidExit104(t *testing.T) {
	t.Parallel()
	cases := map[string]struct {
		env  []string
		args []string
		want []string
	}{
		"trend stats flag":   {args: []string{"--summary-trend-stats", "avg,p(abc)"}, want: []string{"summaryTrendStats", "p(abc)"}},
		"trend stats env":    {env: []string{"K6_SUMMARY_TREND_STATS=avg,mean"}, want: []string{"summaryTrendStats", "mean"}},
		"trend stats script": {args: []string{"-e", "STATS=avg,p(-1)"}, want: []string{"summaryTrendStats", "p(-1)"}},
		"time unit script":   {args: []string{"-e", "UNIT=minutes"}, want: []string{"summaryTimeUnit", "minutes"}},
		"time unit flag":     {args: []string{"--summary-time-unit", "h"}, want: []string{"summaryTimeUnit", `\"h\"`}},
		"summary mode":       {args: []string{"--summary-mode", "verbose"}, want: []string{"summary-mode", "verbose"}},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			args := append(append([]string{"run", "-q"}, c.args...), "sum_groups.js")
			r := cdeload(t, c.env, args...)
			if r.code != 104 {
				t.Fatalf("want exit 104, got %s", r)
			}
			wantIn(t, r, "stderr", r.stderr, c.want...)
			wantNotIn(t, r, "stdout", r.stdout, "TOTAL RESULTS")
		})
	}
}

func TestSummaryModes(t *testing.T) {
	t.Parallel()
	t.Run("full has group and scenario sections", func(t *testing.T) {
		t.Parallel()
		r := cdeload(t, nil, "run", "-q", "--summary-mode=full", "sum_groups.js")
		if r.code != 99 {
			t.Fatalf("want exit 99, got %s", r)
		}
		// A nested group is a "↳ GROUP:" inside its parent, as in k6.
		wantIn(t, r, "stdout", r.stdout, "█ THRESHOLDS", "█ TOTAL RESULTS", "\n  █ GROUP: outer", "\n    ↳ GROUP: inner",
			"█ SCENARIO: main", "✗ outer bad")
		// The scenario's section lists its own checks and groups.
		if sc := r.stdout[strings.Index(r.stdout, "█ SCENARIO: main"):]; !strings.Contains(sc, "✓ top ok") ||
			!strings.Contains(sc, "\n    ↳ GROUP: outer\n\n      ✓ outer ok\n      ✗ outer bad") || !strings.Contains(sc, "\n      ↳ GROUP: inner") {
			t.Errorf("the scenario section does not list its checks and groups:\n%s", sc)
		}
		if strings.Index(r.stdout, "█ GROUP: outer") > strings.Index(r.stdout, "↳ GROUP: inner") {
			t.Errorf("inner group before its parent\n%s", r.stdout)
		}
	})
	t.Run("compact has none", func(t *testing.T) {
		t.Parallel()
		r := cdeload(t, nil, "run", "-q", "sum_groups.js")
		if r.code != 99 {
			t.Fatalf("want exit 99, got %s", r)
		}
		wantIn(t, r, "stdout", r.stdout, "█ TOTAL RESULTS", "✓ top ok", "✗ outer bad", "sum_wait")
		wantNotIn(t, r, "stdout", r.stdout, "█ GROUP", "█ SCENARIO")
	})
	for _, flag := range []string{"--summary-mode=disabled", "--no-summary"} {
		t.Run(flag, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "export.json")
			r := cdeload(t, nil, "run", "-q", flag, "--summary-export", path, "sum_groups.js")
			// Thresholds are still evaluated without a summary.
			if r.code != 99 {
				t.Fatalf("want exit 99, got %s", r)
			}
			wantNotIn(t, r, "stdout", r.stdout, "THRESHOLDS", "TOTAL RESULTS", "sum_wait")
			if _, err := os.Stat(path); err == nil {
				t.Errorf("--summary-export written although the summary is disabled")
			}
		})
	}
}

// handleSummaryData is the part of handleSummary's argument the test reads.
type handleSummaryData struct {
	Metrics map[string]struct {
		Type       string                       `json:"type"`
		Contains   string                       `json:"contains"`
		Values     map[string]float64           `json:"values"`
		Thresholds map[string]struct{ Ok bool } `json:"thresholds"`
	} `json:"metrics"`
	RootGroup struct {
		Checks []struct {
			Name   string `json:"name"`
			Passes int    `json:"passes"`
			Fails  int    `json:"fails"`
		} `json:"checks"`
	} `json:"root_group"`
	Options struct {
		SummaryTrendStats []string `json:"summaryTrendStats"`
	} `json:"options"`
	State struct {
		TestRunDurationMs float64 `json:"testRunDurationMs"`
	} `json:"state"`
}

func TestHandleSummary(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	out, exp := filepath.Join(dir, "summary.json"), filepath.Join(dir, "export.json")
	r := cdeload(t, nil, "run", "-q", "-e", "OUT="+out, "--summary-export", exp, "sum_handle.js")
	if r.code != 0 {
		t.Fatalf("want exit 0, got %s", r)
	}
	if strings.TrimSpace(r.stdout) != "CUSTOM SUMMARY iterations=3 checks_ok=true" {
		t.Errorf("stdout is not handleSummary's: %q", r.stdout)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatalf("handleSummary's file: %v", err)
	}
	var d handleSummaryData
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("handleSummary's file %s: %v", b, err)
	}
	it := d.Metrics["iterations"]
	if it.Type != "counter" || it.Values["count"] != 3 {
		t.Errorf("data.metrics.iterations = %+v", it)
	}
	ch := d.Metrics["checks"]
	if ch.Type != "rate" || ch.Values["rate"] != 1 || ch.Values["passes"] != 3 || !ch.Thresholds["rate==1"].Ok {
		t.Errorf("data.metrics.checks = %+v", ch)
	}
	if d.Metrics["iteration_duration"].Contains != "time" {
		t.Errorf("data.metrics.iteration_duration = %+v", d.Metrics["iteration_duration"])
	}
	if len(d.RootGroup.Checks) != 1 || d.RootGroup.Checks[0].Name != "is one" || d.RootGroup.Checks[0].Passes != 3 {
		t.Errorf("data.root_group.checks = %+v", d.RootGroup.Checks)
	}
	if strings.Join(d.Options.SummaryTrendStats, ",") != "avg,min,med,max,p(90),p(95)" {
		t.Errorf("data.options.summaryTrendStats = %v", d.Options.SummaryTrendStats)
	}
	if d.State.TestRunDurationMs <= 0 {
		t.Errorf("data.state.testRunDurationMs = %v", d.State.TestRunDurationMs)
	}
	// --summary-export is written as well, as k6 does.
	if e := readExport(t, exp); e.num(t, "iterations", "count") != 3 {
		t.Errorf("summary export iterations.count = %v", e.num(t, "iterations", "count"))
	}
}

func TestHandleSummaryErrorFallsBackToTextSummary(t *testing.T) {
	t.Parallel()
	r := cdeload(t, nil, "run", "-q", "-e", "THROW=1", "sum_handle.js")
	if r.code != 0 {
		t.Fatalf("a failing handleSummary must not change the exit code, got %s", r)
	}
	wantIn(t, r, "stderr", r.stderr, "handleSummary", "summary boom")
	wantIn(t, r, "stdout", r.stdout, "█ TOTAL RESULTS", "✓ is one")
}
