package webdashboard_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	cdplog "github.com/chromedp/cdproto/log"
	cdpruntime "github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// chromiumPath returns Debian's chromium; outside CI the test is skipped
// when it is missing, under CI=true it fails (scripts/chromium-install.sh).
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium is not installed (scripts/chromium-install.sh installs it)")
	}
	t.Skip("chromium is not installed; run scripts/chromium-install.sh")
	return ""
}

// browser is a headless chromium on a fresh profile that records the
// JavaScript errors its pages log.
type browser struct {
	ctx    context.Context
	mu     sync.Mutex
	errors []string
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1400, 1000),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	b := &browser{ctx: ctx}
	// The first Run starts the browser on this context, without a timeout.
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	err := chromedp.Listen(ctx, func(ev any) {
		var msg string
		switch e := ev.(type) {
		case *cdpruntime.EventExceptionThrown:
			msg = fmt.Sprintf("exception: %s at %s:%d", e.ExceptionDetails.Text, e.ExceptionDetails.URL, e.ExceptionDetails.LineNumber)
			if e.ExceptionDetails.Exception != nil {
				msg += " " + e.ExceptionDetails.Exception.Description
			}
		case *cdpruntime.EventConsoleAPICalled:
			if e.Type == cdpruntime.ConsoleAPICalledTypeError {
				msg = "console.error"
				for _, a := range e.Args {
					msg += " " + string(a.Value)
				}
			}
		case *cdplog.EventEntryAdded:
			if e.Entry.Level == cdplog.EntryLevelError {
				msg = "log: " + e.Entry.Text + " " + e.Entry.URL
			}
		}
		if msg != "" {
			b.mu.Lock()
			b.errors = append(b.errors, msg)
			b.mu.Unlock()
		}
	})
	if err != nil {
		t.Fatalf("listen to chromium: %v", err)
	}
	if _, err := chromedp.Call(ctx, cdplog.Enable, cdp.Empty{}); err != nil {
		t.Fatalf("enable chromium's log: %v", err)
	}
	return b
}

func (b *browser) jsErrors() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.errors...)
}

func (b *browser) do(t *testing.T, timeout time.Duration, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, timeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatalf("chromium: %v", err)
	}
}

// screenshot saves the whole page as a test artifact in $CDELOAD_ARTIFACTS
// (default: a cdeload-artifacts folder in the temp dir).
func (b *browser) screenshot(t *testing.T, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	dir := os.Getenv("CDELOAD_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "cdeload-artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", p)
}

// pageFacts is what the test reads from a dashboard page.
type pageFacts struct {
	Status string `json:"status"`
	Rows   []struct {
		Name   string           `json:"name"`
		Times  map[string]int64 `json:"times"`
		Failed bool             `json:"failed"`
	} `json:"rows"`
	Charts map[string]struct {
		Total   string             `json:"total"`
		Bucket  float64            `json:"bucket"`
		Sums    map[string]float64 `json:"sums"`
		Points  map[string]int     `json:"points"`
		Present bool               `json:"present"`
	} `json:"charts"`
	Tiles      map[string]float64 `json:"tiles"`
	Thresholds []string           `json:"thresholds"`
}

const factsJS = `(() => {
  const st = document.querySelector('.status');
  const rows = [...document.querySelectorAll('.ws-row')].map(r => {
    const times = {};
    for (const k of ['requested','built','agentConnected','ready','trafficStart','trafficEnd','deleteStart','deleted']) {
      if (r.dataset[k] !== undefined) times[k] = Number(r.dataset[k]);
    }
    return {name: r.querySelector('.ws-name').textContent, times, failed: r.classList.contains('failed')};
  });
  const charts = {};
  for (const f of document.querySelectorAll('figure.chart')) {
    const sums = {}, points = {};
    for (const g of f.querySelectorAll('g.series')) {
      sums[g.dataset.series] = Number(g.dataset.sum);
      points[g.dataset.series] = Number(g.dataset.points);
    }
    charts[f.id] = {total: f.dataset.total, bucket: Number(f.dataset.bucketSeconds), sums, points,
      present: f.querySelectorAll('polyline, circle').length > 0};
  }
  const tiles = {};
  for (const t of document.querySelectorAll('.tile')) tiles[t.id.replace('tile-','')] = Number(t.querySelector('.v').dataset.value);
  const thresholds = [...document.querySelectorAll('.thresholds tr[data-state]')].map(r => r.dataset.state);
  return {status: st ? st.dataset.status : '', rows, charts, tiles, thresholds};
})()`

func (b *browser) facts(t *testing.T) pageFacts {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	f, err := chromedp.Run(ctx, chromedp.Evaluate[pageFacts](factsJS))
	if err != nil {
		t.Fatalf("read the page: %v", err)
	}
	return f
}

var lifecycle = []string{"requested", "built", "agentConnected", "ready", "trafficStart", "trafficEnd", "deleteStart", "deleted"}

func repoRoot(t *testing.T) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", "..", ".."))
}

// buildCdeload builds the CLI into dir and returns its path.
func buildCdeload(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "cdeload")
	build := exec.Command("go", "build", "-o", bin, "./cmd/cdeload")
	build.Dir = repoRoot(t)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// TestBrowserLiveAndReport runs examples/scale.js against the embedded lab
// with the dashboard on, watches the live page in chromium during the run
// and opens the report afterwards: both must show every workspace's
// lifecycle in order and the summary's counts, without a JavaScript error.
func TestBrowserLiveAndReport(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a lab scale test")
	}
	b := newBrowser(t)
	workspaces := 4
	if v := os.Getenv("CDELOAD_DASHBOARD_WORKSPACES"); v != "" {
		workspaces, _ = strconv.Atoi(v)
	}
	root := repoRoot(t)
	dir := t.TempDir()
	bin := buildCdeload(t, dir)
	port := freePort(t)
	report := filepath.Join(dir, "report.html")
	summary := filepath.Join(dir, "summary.json")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "run", "--summary-trend-stats", "count,avg,p(95)", "--summary-export", summary,
		"-e", fmt.Sprintf("WORKSPACES=%d", workspaces), "-e", "TRAFFIC_DURATION=8s", filepath.Join(root, "examples", "scale.js"))
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "K6_WEB_DASHBOARD=true", "K6_WEB_DASHBOARD_HOST=127.0.0.1",
		"K6_WEB_DASHBOARD_PORT="+strconv.Itoa(port), "K6_WEB_DASHBOARD_PERIOD=1s", "K6_WEB_DASHBOARD_EXPORT="+report)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the live page never answered at %s:\n%s", url, out.String())
		}
	}
	b.do(t, 30*time.Second, chromedp.Navigate(url))
	// Wait until every workspace has traffic: the page is updated by
	// server-sent events, never reloaded.
	var live pageFacts
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(500 * time.Millisecond) {
		live = b.facts(t)
		n := 0
		for _, r := range live.Rows {
			if _, ok := r.Times["trafficStart"]; ok {
				n++
			}
		}
		if n == workspaces {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the live page never showed %d workspaces with traffic; it shows %+v", workspaces, live.Rows)
		}
	}
	if live.Status != "running" {
		t.Errorf("live page status %q during the run; want running", live.Status)
	}
	b.screenshot(t, "dashboard-live.png")

	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("cdeload run: %v\n%s", err, out.String())
		}
	case <-ctx.Done():
		t.Fatalf("cdeload run did not end:\n%s", out.String())
	}
	sum := readSummary(t, summary)
	// The run's end reached the open page as the final update.
	var end pageFacts
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		if end = b.facts(t); end.Status == "finished" || time.Now().After(deadline) {
			break
		}
	}
	if end.Status != "finished" {
		t.Errorf("live page status %q after the run; want finished", end.Status)
	}
	checkFacts(t, "live page at the end", end, sum, workspaces)

	b.do(t, 30*time.Second, chromedp.Navigate("file://"+report))
	rep := b.facts(t)
	checkFacts(t, "report", rep, sum, workspaces)
	b.screenshot(t, "dashboard-report.png")
	if errs := b.jsErrors(); len(errs) > 0 {
		t.Errorf("the pages logged JavaScript errors: %q", errs)
	}
}

type summaryExport struct {
	Metrics map[string]map[string]any `json:"metrics"`
}

func readSummary(t *testing.T, path string) summaryExport {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var s summaryExport
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatal(err)
	}
	return s
}

func (s summaryExport) num(t *testing.T, metric, field string) float64 {
	t.Helper()
	v, ok := s.Metrics[metric][field].(float64)
	if !ok {
		t.Fatalf("summary has no %s.%s: %v", metric, field, s.Metrics[metric])
	}
	return v
}

func checkFacts(t *testing.T, where string, f pageFacts, sum summaryExport, workspaces int) {
	t.Helper()
	if len(f.Rows) != workspaces {
		t.Errorf("%s: %d timeline rows; want one per workspace (%d)", where, len(f.Rows), workspaces)
	}
	names := map[string]bool{}
	for _, r := range f.Rows {
		if !strings.HasPrefix(r.Name, "scaletest-") || names[r.Name] {
			t.Errorf("%s: row labelled %q; want each workspace's own name once", where, r.Name)
		}
		names[r.Name] = true
		prev := int64(-1)
		for _, ev := range lifecycle {
			v, ok := r.Times[ev]
			if !ok {
				t.Errorf("%s: workspace %s has no %s in the timeline: %v", where, r.Name, ev, r.Times)
				continue
			}
			if v < prev {
				t.Errorf("%s: workspace %s: %s at %dms comes before the previous phase at %dms", where, r.Name, ev, v, prev)
			}
			prev = v
		}
		if r.Failed {
			t.Errorf("%s: workspace %s marked failed in a run without failures", where, r.Name)
		}
	}
	counts := []struct {
		chart, series string
		want          float64
		perSecond     bool
	}{
		{"chart-iterations", "iterations/s", sum.num(t, "iterations", "count"), true},
		{"chart-ready", "ready/s", sum.num(t, "workspace_ready_duration", "count"), true},
		{"chart-bytes", "sent", sum.num(t, "traffic_bytes_sent", "count"), true},
		{"chart-rtt-ssh", "p50", sum.num(t, "traffic_rtt", "count"), false},
	}
	for _, c := range counts {
		ch, ok := f.Charts[c.chart]
		if !ok || !ch.Present {
			t.Errorf("%s: chart %s missing or empty", where, c.chart)
			continue
		}
		if total, _ := strconv.ParseFloat(ch.Total, 64); total != c.want {
			t.Errorf("%s: chart %s shows a total of %s; the summary says %v", where, c.chart, ch.Total, c.want)
		}
		if c.perSecond {
			// The plotted rates times the bucket width add up to the count.
			if got := ch.Sums[c.series] * ch.Bucket; got < c.want*0.999 || got > c.want*1.001 {
				t.Errorf("%s: chart %s plots %v in all (series %s); the summary says %v", where, c.chart, got, c.series, c.want)
			}
		} else if ch.Points[c.series] == 0 {
			t.Errorf("%s: chart %s has no %s points", where, c.chart, c.series)
		}
	}
	if got, want := f.Tiles["iterations"], sum.num(t, "iterations", "count"); got != want {
		t.Errorf("%s: iterations tile %v; summary %v", where, got, want)
	}
	if got, want := f.Tiles["failed"], sum.num(t, "workspace_failed", "passes"); got != want {
		t.Errorf("%s: failures tile %v; summary %v", where, got, want)
	}
	if len(f.Thresholds) == 0 {
		t.Errorf("%s: no thresholds shown; scale.js sets four", where)
	}
	for _, s := range f.Thresholds {
		if s == "failing" || s == "invalid" {
			t.Errorf("%s: a threshold is %s in a passing lab run: %v", where, s, f.Thresholds)
		}
	}
}
