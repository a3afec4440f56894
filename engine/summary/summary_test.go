package summary

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cdeload/cdeload/engine/metrics"
	"github.com/cdeload/cdeload/engine/thresholds"
)

func TestFormatDuration(t *testing.T) {
	cases := []struct {
		ms   float64
		unit string
		want string
	}{
		{0, "", "0s"}, {0.0005, "", "500ns"}, {0.01234, "", "12.34µs"}, {148.219, "", "148.21ms"},
		{165.6, "", "165.6ms"}, {1100, "", "1.1s"}, {12910, "", "12.91s"}, {90500, "", "1m30s"},
		{3725000, "", "1h2m5s"}, {-5, "", "-5ms"},
		{1234.5, "s", "1.23s"}, {1.5, "ms", "1.50ms"}, {1.5, "us", "1500.00µs"},
	}
	for _, c := range cases {
		if got := FormatDuration(c.ms, c.unit); got != c.want {
			t.Errorf("FormatDuration(%v, %q) = %q, want %q", c.ms, c.unit, got, c.want)
		}
	}
}

func TestFormatBytesAndNumbers(t *testing.T) {
	for in, want := range map[float64]string{0: "0 B", 7: "7 B", 9000: "9.0 kB", 176000: "176 kB",
		1.24e6: "1.2 MB", 999_960: "1.0 MB", 3.5e9: "3.5 GB"} {
		if got := FormatBytes(in); got != want {
			t.Errorf("FormatBytes(%v) = %q, want %q", in, got, want)
		}
	}
	if got := FormatNumber(13.1221794); got != "13.122179" {
		t.Errorf("FormatNumber = %q", got)
	}
	if got := FormatNumber(90); got != "90" {
		t.Errorf("FormatNumber(90) = %q", got)
	}
	if got := FormatPercent(0.99); got != "99.00%" {
		t.Errorf("FormatPercent = %q", got)
	}
}

func result(t *testing.T, key, src string, ok bool, obs float64) thresholds.Result {
	t.Helper()
	e, err := thresholds.ParseExpr(src)
	if err != nil {
		t.Fatal(err)
	}
	return thresholds.Result{Key: key, Threshold: &thresholds.Threshold{Source: src, Expr: e}, Evaluated: true, Ok: ok, HasValue: true, Observed: obs}
}

// sampleData is a small, hand-built end-of-test state of a CDE run.
func sampleData(t *testing.T) *Data {
	rttTh := result(t, "traffic_rtt{transport:ssh}", "p(95)<250", false, 312.4)
	chkTh := result(t, "checks", "rate>0.9", true, 0.975)
	_, filter, _ := metrics.ParseMetricKey("traffic_rtt{transport:ssh}")
	root := NewGroup("")
	root.Checks = []*Check{NewCheck("", "no stream errors", 19, 1)}
	g := root.Find("::connect")
	g.Checks = []*Check{NewCheck("::connect", "ssh up", 20, 0)}
	return &Data{
		Metrics: []*Metric{
			{Name: "checks", Type: metrics.Rate, Values: map[string]float64{"rate": 0.975, "passes": 39, "fails": 1}, Thresholds: []thresholds.Result{chkTh}},
			{Name: "data_received", Type: metrics.Counter, Contains: metrics.Data, Values: map[string]float64{"count": 1.24e6, "rate": 176000}},
			{Name: "group_duration", Type: metrics.Trend, Contains: metrics.Time, Values: map[string]float64{"avg": 1}},
			{Name: "iterations", Type: metrics.Counter, Values: map[string]float64{"count": 20, "rate": 2}},
			{Name: "my_custom", Type: metrics.Counter, Values: map[string]float64{"count": 3}},
			{Name: "traffic_rtt", Type: metrics.Trend, Contains: metrics.Time, Values: map[string]float64{"avg": 120.5, "min": 0.8, "med": 100, "max": 1500, "p(90)": 240, "p(95)": 312.4}},
			{Name: "traffic_rtt{transport:ssh}", Parent: "traffic_rtt", Filter: filter, Type: metrics.Trend, Contains: metrics.Time,
				Values: map[string]float64{"avg": 120.5, "min": 0.8, "med": 100, "max": 1500, "p(90)": 240, "p(95)": 312.4}, Thresholds: []thresholds.Result{rttTh}},
			{Name: "vus", Type: metrics.Gauge, Values: map[string]float64{"value": 0, "min": 0, "max": 10}},
			{Name: "workspace_failed", Type: metrics.Rate, Values: map[string]float64{"rate": 0.05, "passes": 1, "fails": 19}},
		},
		RootGroup:        root,
		ThresholdResults: []thresholds.Result{chkTh, rttTh},
		TestRunDuration:  10 * time.Second,
		SetupData:        json.RawMessage(`{"n":1}`),
		Options:          Options{NoColor: true},
	}
}

func lineWith(t *testing.T, text, prefix string) string {
	t.Helper()
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), prefix) {
			return l
		}
	}
	t.Fatalf("no line starting with %q in:\n%s", prefix, text)
	return ""
}

func TestTextCompact(t *testing.T) {
	text := Text(sampleData(t))
	// Order: thresholds first, then totals, then sections.
	order := []string{"█ THRESHOLDS", "✓ 'rate>0.9' rate=97.50%", "traffic_rtt{transport:ssh}", "✗ 'p(95)<250' p(95)=312.4ms",
		"█ TOTAL RESULTS", "checks_total", "checks_succeeded", "checks_failed", "✗ no stream errors", "↳  95% — ✓ 19 / ✗ 1", "✓ ssh up",
		"CUSTOM", "my_custom", "WORKSPACE", "workspace_failed", "TRAFFIC", "traffic_rtt", "{ transport:ssh }", "EXECUTION", "iterations", "vus", "NETWORK", "data_received",
		"✗ 1 of 2 thresholds crossed:", "traffic_rtt{transport:ssh} 'p(95)<250': p(95)=312.4ms, 62.4ms over the limit of 250ms"}
	at := 0
	for _, want := range order {
		i := strings.Index(text[at:], want)
		if i < 0 {
			t.Fatalf("%q missing or out of order after offset %d in:\n%s", want, at, text)
		}
		at += i + len(want)
	}
	if strings.Contains(text, "group_duration") {
		t.Error("group_duration is shown")
	}
	if strings.Contains(text, "\x1b[") {
		t.Error("colors with NoColor")
	}
	checks := []struct{ prefix, want string }{
		{"checks_total", ": 40"},
		{"checks_total", "4/s"},
		{"checks_succeeded", "97.50% 39 out of 40"},
		{"data_received", "1.2 MB"},
		{"data_received", "176 kB/s"},
		{"iterations", "2/s"},
		{"vus", "min=0"},
		{"workspace_failed", "5.00%"},
		{"workspace_failed", "1 out of 20"},
		{"traffic_rtt.", "avg=120.5ms"},
		{"traffic_rtt.", "min=800µs"},
		{"traffic_rtt.", "max=1.5s"},
		{"traffic_rtt.", "p(95)=312.4ms"},
		{"{ transport:ssh }.", "p(90)=240ms"},
	}
	for _, c := range checks {
		if l := lineWith(t, text, c.prefix); !strings.Contains(l, c.want) {
			t.Errorf("line %q lacks %q", l, c.want)
		}
	}
	// Dots align the colons within each block of metric lines (the checks
	// counters, each section), as k6 aligns them; blocks differ.
	col, cols := -1, map[int]bool{}
	for _, l := range strings.Split(text, "\n") {
		i := strings.Index(l, "...: ")
		if i < 0 {
			col = -1
			continue
		}
		c := strings.Index(l, ": ")
		if col >= 0 && c != col {
			t.Errorf("colon at %d, others of its block at %d: %q", c, col, l)
		}
		col = c
		cols[c] = true
	}
	if len(cols) < 2 {
		t.Errorf("every block is aligned to the same column: %v\n%s", cols, text)
	}
	// The submetric is indented below its parent.
	sub := lineWith(t, text, "{ transport:ssh }")
	parent := lineWith(t, text, "traffic_rtt.")
	if len(sub)-len(strings.TrimLeft(sub, " ")) != len(parent)-len(strings.TrimLeft(parent, " "))+2 {
		t.Errorf("submetric not indented by 2:\n%s\n%s", parent, sub)
	}
}

func TestTextOptions(t *testing.T) {
	d := sampleData(t)
	d.Options = Options{TrendStats: []string{"p(99)", "count"}, TimeUnit: "s"}
	d.Metrics[5].Values = map[string]float64{"p(99)": 1400, "count": 20}
	text := Text(d)
	if l := lineWith(t, text, "traffic_rtt\x1b[2m."); !strings.Contains(l, "p(99)=") || !strings.Contains(l, "1.40s") || !strings.Contains(l, "count=") || strings.Contains(l, "avg=") {
		t.Errorf("trend stats/time unit not applied: %q", l)
	}
	if !strings.Contains(text, "\x1b[32m✓") {
		t.Error("no colors by default")
	}
	if err := (Options{Mode: "legacy"}).Validate(); err == nil || !strings.Contains(err.Error(), "compact, full, disabled") {
		t.Errorf("bad mode: %v", err)
	}
	if err := (Options{TimeUnit: "h"}).Validate(); err == nil {
		t.Error("bad time unit accepted")
	}
	if err := (Options{TrendStats: []string{"p(200)"}}).Validate(); err == nil {
		t.Error("bad trend stat accepted")
	}
}

func TestTextFullModeGroups(t *testing.T) {
	d := sampleData(t)
	d.Options.Mode = ModeFull
	d.RootGroup.Groups[0].Metrics = []*Metric{{Name: "ssh_connect_duration", Type: metrics.Trend, Contains: metrics.Time, Values: map[string]float64{"avg": 2}}}
	d.Scenarios = []*Scenario{{Name: "traffic", Metrics: []*Metric{{Name: "iterations", Type: metrics.Counter, Values: map[string]float64{"count": 7}}}}}
	text := Text(d)
	for _, want := range []string{"█ GROUP: connect", "✓ ssh up", "SSH", "ssh_connect_duration", "█ SCENARIO: traffic"} {
		if !strings.Contains(text, want) {
			t.Errorf("full text lacks %q:\n%s", want, text)
		}
	}
}

func TestExportJSONLegacyShape(t *testing.T) {
	b, err := ExportJSON(sampleData(t))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		RootGroup struct {
			Name, Path, ID string
			Groups         map[string]struct{ Path string }
			Checks         map[string]struct {
				Name, Path, ID string
				Passes, Fails  int
			}
		} `json:"root_group"`
		Metrics   map[string]map[string]any `json:"metrics"`
		SetupData map[string]any            `json:"setup_data"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	if doc.RootGroup.ID != "d41d8cd98f00b204e9800998ecf8427e" || doc.RootGroup.Path != "" {
		t.Errorf("root group = %+v", doc.RootGroup)
	}
	c := doc.RootGroup.Checks["no stream errors"]
	if c.Passes != 19 || c.Fails != 1 || c.Path != "::no stream errors" || c.ID != GroupID("::no stream errors") {
		t.Errorf("check = %+v", c)
	}
	if doc.RootGroup.Groups["connect"].Path != "::connect" {
		t.Errorf("groups = %+v", doc.RootGroup.Groups)
	}
	wf := doc.Metrics["workspace_failed"]
	if wf["value"] != 0.05 || wf["passes"] != 1.0 || wf["fails"] != 19.0 {
		t.Errorf("rate metric = %v (want value/passes/fails)", wf)
	}
	if _, ok := wf["rate"]; ok {
		t.Error("legacy rate metric has key rate")
	}
	sub := doc.Metrics["traffic_rtt{transport:ssh}"]
	// Inverted booleans: true means the threshold FAILED.
	if th, _ := sub["thresholds"].(map[string]any); th["p(95)<250"] != true {
		t.Errorf("failed threshold not true: %v", sub["thresholds"])
	}
	if th, _ := doc.Metrics["checks"]["thresholds"].(map[string]any); th["rate>0.9"] != false {
		t.Errorf("passed threshold not false: %v", doc.Metrics["checks"]["thresholds"])
	}
	if doc.Metrics["iterations"]["count"] != 20.0 || doc.Metrics["vus"]["max"] != 10.0 || sub["p(95)"] != 312.4 {
		t.Errorf("metrics = %v", doc.Metrics)
	}
	if doc.SetupData["n"] != 1.0 {
		t.Errorf("setup_data = %v", doc.SetupData)
	}
	path := filepath.Join(t.TempDir(), "export.json")
	if err := WriteExport(path, sampleData(t)); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(path); !bytes.Equal(got, b) {
		t.Error("WriteExport wrote something else")
	}
}

func TestHandleSummaryDataShape(t *testing.T) {
	d := sampleData(t)
	d.Options.IsStdOutTTY = true
	raw, err := HandleSummaryData(d)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Metrics map[string]struct {
			Type, Contains string
			Values         map[string]float64
			Thresholds     map[string]struct{ Ok bool }
		}
		RootGroup struct {
			Groups []struct{ Name string }
			Checks []struct {
				Name          string
				Passes, Fails int
			}
		} `json:"root_group"`
		Options struct {
			SummaryTrendStats []string
			SummaryTimeUnit   string
			NoColor           bool
		}
		State struct {
			IsStdOutTTY, IsStdErrTTY bool
			TestRunDurationMs        float64
		}
		SetupData json.RawMessage `json:"setup_data"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	rtt := doc.Metrics["traffic_rtt{transport:ssh}"]
	if rtt.Type != "trend" || rtt.Contains != "time" || rtt.Values["p(95)"] != 312.4 {
		t.Errorf("submetric = %+v", rtt)
	}
	if rtt.Thresholds["p(95)<250"].Ok {
		t.Error("failed threshold reported ok")
	}
	if !doc.Metrics["checks"].Thresholds["rate>0.9"].Ok || doc.Metrics["workspace_failed"].Values["rate"] != 0.05 {
		t.Errorf("checks/workspace_failed = %+v", doc.Metrics)
	}
	if len(doc.RootGroup.Groups) != 1 || doc.RootGroup.Groups[0].Name != "connect" || doc.RootGroup.Checks[0].Fails != 1 {
		t.Errorf("root_group = %+v", doc.RootGroup)
	}
	if strings.Join(doc.Options.SummaryTrendStats, ",") != "avg,min,med,max,p(90),p(95)" || !doc.Options.NoColor {
		t.Errorf("options = %+v", doc.Options)
	}
	if !doc.State.IsStdOutTTY || doc.State.IsStdErrTTY || doc.State.TestRunDurationMs != 10000 {
		t.Errorf("state = %+v", doc.State)
	}
	if string(doc.SetupData) != `{"n":1}` {
		t.Errorf("setup_data = %s", doc.SetupData)
	}
	// Groups and checks are arrays even when empty.
	raw, _ = HandleSummaryData(&Data{})
	if !strings.Contains(string(raw), `"groups":[]`) || !strings.Contains(string(raw), `"checks":[]`) {
		t.Errorf("empty data = %s", raw)
	}
}

func TestWriteResults(t *testing.T) {
	dir := t.TempDir()
	var stdout, stderr bytes.Buffer
	err := WriteResults(map[string]any{
		"stdout":       "text summary\n",
		"stderr":       []byte("warn\n"),
		"summary.json": `{"ok":true}`,
		"bin.dat":      []byte{0, 1, 2},
	}, &stdout, &stderr, dir)
	if err != nil {
		t.Fatal(err)
	}
	if stdout.String() != "text summary\n" || stderr.String() != "warn\n" {
		t.Errorf("stdout=%q stderr=%q", stdout.String(), stderr.String())
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "summary.json")); string(b) != `{"ok":true}` {
		t.Errorf("summary.json = %q", b)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "bin.dat")); !bytes.Equal(b, []byte{0, 1, 2}) {
		t.Errorf("bin.dat = %v", b)
	}
	err = WriteResults(map[string]any{"n.txt": 42, "missing/dir/x.txt": "x", "ok.txt": "fine"}, &stdout, &stderr, dir)
	if err == nil || !strings.Contains(err.Error(), `"n.txt"`) || !strings.Contains(err.Error(), `"missing/dir/x.txt"`) {
		t.Errorf("errors = %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "ok.txt")); string(b) != "fine" {
		t.Error("a good entry was not written after a bad one")
	}
}

func TestDataFromHandleSummaryRoundTrip(t *testing.T) {
	raw, err := HandleSummaryData(sampleData(t))
	if err != nil {
		t.Fatal(err)
	}
	d, err := DataFromHandleSummary(raw)
	if err != nil {
		t.Fatal(err)
	}
	want := Text(sampleData(t))
	if got := Text(d); got != want {
		t.Errorf("text from handleSummary data differs:\n--- got\n%s\n--- want\n%s", got, want)
	}
	if _, err := DataFromHandleSummary(json.RawMessage(`{"metrics":{"x":{"type":"histogram"}}}`)); err == nil || !strings.Contains(err.Error(), "histogram") {
		t.Errorf("bad type: %v", err)
	}
}
