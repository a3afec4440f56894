package webdashboard_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/cdeload/cdeload/engine/metrics"
	"github.com/cdeload/cdeload/engine/output/webdashboard"
)

// TestReportSizeAndLoadTime writes the report of a synthetic run of 1000
// workspaces over 10 minutes (each one built, connected, ready, one echo
// frame a second for most of the run, deleted; 2% failing) and checks it
// stays under 5 MB and loads in chromium in under 2 s.
func TestReportSizeAndLoadTime(t *testing.T) {
	if testing.Short() {
		t.Skip("feeds a million samples")
	}
	b := newBrowser(t)
	const workspaces = 1000
	const run = 10 * time.Minute
	path := filepath.Join(t.TempDir(), "report.html")
	o := webdashboard.New(webdashboard.Config{Port: -1, Period: time.Second, Export: path}, nil)
	o.SetThresholds(map[string][]string{"traffic_rtt{transport:ssh}": {"p(95)<100"}, "workspace_ready_duration": {"p(95)<120000"}})
	if err := o.Start(); err != nil {
		t.Fatal(err)
	}
	reg := metrics.NewRegistry()
	trend := func(n string) *metrics.Metric { return reg.MustNewMetric(n, metrics.Trend, metrics.Time) }
	build, agent, ready, del, rtt := trend("workspace_build_duration"), trend("workspace_agent_connect_duration"),
		trend("workspace_ready_duration"), trend("workspace_delete_duration"), trend("traffic_rtt")
	failed := reg.MustNewMetric("workspace_failed", metrics.Rate)
	sent := reg.MustNewMetric("traffic_bytes_sent", metrics.Counter, metrics.Data)
	tags := metrics.NewTagSet(map[string]string{"scenario": "scale"})
	ssh := tags.With("transport", "ssh")
	start := time.Now()
	for i := range workspaces {
		meta := map[string]string{"workspace": fmt.Sprintf("scaletest-abcdefgh-%d", i), "vu": fmt.Sprint(i + 1), "iter": "0"}
		t0 := start.Add(time.Duration(i) * 60 * time.Millisecond) // ramp over the first minute
		var s metrics.Samples
		add := func(m *metrics.Metric, tg *metrics.TagSet, at time.Duration, v float64) {
			s = append(s, metrics.Sample{Metric: m, Tags: tg, Time: t0.Add(at), Value: v, Metadata: meta})
		}
		add(build, tags, 20*time.Second, 15000)
		if i%50 == 7 {
			s = append(s, metrics.Sample{Metric: failed, Tags: tags, Time: t0.Add(90 * time.Second), Value: 1,
				Metadata: map[string]string{"vu": meta["vu"], "iter": "0", "op": "create", "error": "agent did not connect within 90s"}})
			o.AddMetricSamples([]metrics.Samples{s})
			continue
		}
		add(agent, tags, 40*time.Second, 20000)
		add(ready, tags, 40*time.Second, 40000)
		for sec := 41; sec < 530; sec++ {
			add(rtt, ssh, time.Duration(sec)*time.Second, float64(1+i%7+sec%5))
			add(sent, ssh, time.Duration(sec)*time.Second, 1280)
		}
		add(del, tags, 535*time.Second, 4000)
		o.AddMetricSamples([]metrics.Samples{s})
	}
	if err := o.Stop(); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("report of %d workspaces over %s: %.2f MB", workspaces, run, float64(st.Size())/1e6)
	if st.Size() >= 5e6 {
		t.Errorf("report is %d bytes; want under 5 MB", st.Size())
	}
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	began := time.Now()
	if err := chromedp.Do(ctx, chromedp.Navigate("file://"+path)); err != nil {
		t.Fatal(err)
	}
	wall := time.Since(began)
	// Time from navigation to the end of the load event and to the first
	// contentful paint, as the browser measured them.
	loaded, err := chromedp.Run(ctx, chromedp.Evaluate[float64](`performance.getEntriesByType('navigation')[0].loadEventEnd`))
	if err != nil {
		t.Fatal(err)
	}
	// Chromium records the first contentful paint when the frame is
	// presented, which can come after the load event: ask until it is
	// there (its value is still the paint's time since navigation).
	var painted float64
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		painted, err = chromedp.Run(ctx, chromedp.Evaluate[float64](
			`(performance.getEntriesByName('first-contentful-paint')[0] || {startTime: -1}).startTime`))
		if err != nil {
			t.Fatal(err)
		}
		if painted >= 0 || time.Now().After(deadline) {
			break
		}
	}
	t.Logf("report loaded in %.0f ms (load event), first contentful paint at %.0f ms, navigation took %s", loaded, painted, wall)
	if loaded > 2000 || painted > 2000 {
		t.Errorf("the report took %.0f ms to load and %.0f ms to paint; want both under 2 s", loaded, painted)
	}
	if painted < 0 {
		t.Error("chromium reported no first contentful paint")
	}
	f := b.facts(t)
	if len(f.Rows) != workspaces {
		t.Errorf("report has %d timeline rows; want %d", len(f.Rows), workspaces)
	}
	if got := f.Tiles["failed"]; got != workspaces/50 {
		t.Errorf("failures tile %v; want %d", got, workspaces/50)
	}
	if errs := b.jsErrors(); len(errs) > 0 {
		t.Errorf("the report logged JavaScript errors: %q", errs)
	}
}
