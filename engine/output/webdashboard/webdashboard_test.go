package webdashboard

import (
	"bufio"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cdeload/cdeload/engine/metrics"
)

func TestParseConfig(t *testing.T) {
	c, err := ParseConfig(map[string]string{}, "")
	if err != nil || c.Addr() != "127.0.0.1:5665" || c.Period != 10*time.Second || c.Export != "" || c.Open {
		t.Fatalf("defaults = %+v, %v; want 127.0.0.1:5665, 10s, no export, not open", c, err)
	}
	c, err = ParseConfig(map[string]string{"K6_WEB_DASHBOARD_HOST": "0.0.0.0", "K6_WEB_DASHBOARD_PORT": "7000",
		"K6_WEB_DASHBOARD_PERIOD": "2s", "K6_WEB_DASHBOARD_EXPORT": "report.html", "K6_WEB_DASHBOARD_OPEN": "true"}, "port=-1")
	if err != nil || c.Host != "0.0.0.0" || c.Port != -1 || c.Period != 2*time.Second || c.Export != "report.html" || !c.Open {
		t.Fatalf("env + arg = %+v, %v", c, err)
	}
	for _, bad := range []struct{ env, arg, want string }{
		{"K6_WEB_DASHBOARD_PORT", "70000", `invalid value "70000" for K6_WEB_DASHBOARD_PORT`},
		{"K6_WEB_DASHBOARD_PERIOD", "fast", `invalid value "fast" for K6_WEB_DASHBOARD_PERIOD`},
		{"K6_WEB_DASHBOARD_OPEN", "maybe", `invalid value "maybe" for K6_WEB_DASHBOARD_OPEN`},
		{"", "colour=red", `unknown argument key "colour"`},
	} {
		env := map[string]string{}
		if bad.env != "" {
			env[bad.env] = bad.arg
			bad.arg = ""
		}
		if _, err := ParseConfig(env, bad.arg); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("ParseConfig(%v, %q) error = %v; want it to contain %q", env, bad.arg, err, bad.want)
		}
	}
}

func TestWithEnv(t *testing.T) {
	on := map[string]string{"K6_WEB_DASHBOARD": "true"}
	if got := WithEnv([]string{"json=x.json"}, on); strings.Join(got, " ") != "json=x.json web-dashboard" {
		t.Errorf("WithEnv = %v; want the dashboard added", got)
	}
	if got := WithEnv([]string{"web-dashboard=port=-1"}, on); len(got) != 1 {
		t.Errorf("WithEnv = %v; want no second dashboard", got)
	}
	if got := WithEnv(nil, map[string]string{"K6_WEB_DASHBOARD": "false"}); len(got) != 0 {
		t.Errorf("WithEnv = %v; want nothing when K6_WEB_DASHBOARD=false", got)
	}
}

// lifecycle feeds the samples one workspace's life emits.
type feeder struct {
	reg   *metrics.Registry
	start time.Time
	out   metrics.Samples
}

func (f *feeder) add(name string, at time.Duration, value float64, meta map[string]string, tags ...string) {
	m := f.reg.Get(name)
	if m == nil {
		typ := metrics.Trend
		switch name {
		case "workspace_failed", "checks":
			typ = metrics.Rate
		case "iterations", "traffic_bytes_sent":
			typ = metrics.Counter
		case "vus", "workspace_pods_pending":
			typ = metrics.Gauge
		}
		m = f.reg.MustNewMetric(name, typ)
	}
	tm := map[string]string{"scenario": "default"}
	for i := 0; i+1 < len(tags); i += 2 {
		tm[tags[i]] = tags[i+1]
	}
	f.out = append(f.out, metrics.Sample{Metric: m, Tags: metrics.NewTagSet(tm), Time: f.start.Add(at), Value: value, Metadata: meta})
}

func TestTimelineAndFailures(t *testing.T) {
	start := time.Now()
	f := &feeder{reg: metrics.NewRegistry(), start: start}
	ok := map[string]string{"workspace": "ws-ok", "vu": "1", "iter": "0"}
	f.add("workspace_build_duration", 2*time.Second, 1500, ok)
	f.add("workspace_agent_connect_duration", 3*time.Second, 1000, ok)
	f.add("workspace_ready_duration", 3*time.Second, 2500, ok)
	f.add("traffic_rtt", 4*time.Second, 2, ok, "transport", "ssh")
	f.add("traffic_rtt", 6*time.Second, 3, ok, "transport", "ssh")
	f.add("workspace_delete_duration", 8*time.Second, 500, ok)
	bad := map[string]string{"workspace": "ws-bad", "vu": "2", "iter": "0"}
	f.add("workspace_build_duration", 2*time.Second, 1000, bad)
	// The failure of WaitReady carries no workspace name: it is matched
	// through the VU and iteration.
	f.add("workspace_failed", 5*time.Second, 1, map[string]string{"vu": "2", "iter": "0", "op": "create", "error": "agent never connected"})
	f.add("workspace_failed", 5*time.Second, 1, map[string]string{"vu": "3", "iter": "0", "op": "create", "error": "template not found"})
	f.add("iterations", 8*time.Second, 1, nil)

	a := newAggregator(start)
	a.setThresholds(map[string][]string{"traffic_rtt{transport:ssh}": {"p(95)<1", "max<10"}})
	a.add([]metrics.Samples{f.out})
	var b strings.Builder
	a.render(&b, pageState{now: start.Add(9 * time.Second), finished: true})
	page := b.String()

	row := rowOf(t, page, "ws-ok")
	var last int
	for _, ev := range phaseEvents {
		v, err := strconv.Atoi(attr(row, "data-"+ev))
		if err != nil {
			t.Fatalf("ws-ok row lacks %s: %s", ev, row)
		}
		if v < last {
			t.Errorf("ws-ok: %s at %dms, before the previous phase at %dms", ev, v, last)
		}
		last = v
	}
	if got := attr(row, "data-requested"); got != "500" {
		t.Errorf("ws-ok requested at %sms; want 500 (ready at 3s minus a 2.5s ready duration)", got)
	}
	if r := rowOf(t, page, "ws-bad"); !strings.Contains(r, "failed: create: agent never connected") {
		t.Errorf("ws-bad row does not show its failure reason: %s", r)
	}
	if r := rowOf(t, page, "(unnamed 1: VU 3, iteration 0)"); !strings.Contains(r, "template not found") {
		t.Errorf("the nameless failure has no row with its reason: %s", r)
	}
	if !strings.Contains(page, `data-rows="3"`) {
		t.Errorf("timeline does not have 3 rows")
	}
	for _, want := range []string{
		`<tr class="th-failing" data-state="failing"><td>traffic_rtt{transport:ssh}</td><td><code>p(95)&lt;1</code>`,
		`<tr class="th-passing" data-state="passing"><td>traffic_rtt{transport:ssh}</td><td><code>max&lt;10</code>`,
		`id="chart-rtt-ssh" data-total="2" data-bucket-seconds="1"`,
		`id="chart-iterations" data-total="1" data-bucket-seconds="1"`,
		`<td>1</td><td>create: agent never connected</td>`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %s", want)
		}
	}
}

func rowOf(t *testing.T, page, name string) string {
	t.Helper()
	i := strings.Index(page, `data-workspace="`+htmlEscape(name)+`"`)
	if i < 0 {
		t.Fatalf("no timeline row for %q", name)
	}
	j := strings.LastIndex(page[:i], "<li")
	k := strings.Index(page[i:], "</li>")
	return page[j : i+k]
}

func htmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&#34;", "'", "&#39;").Replace(s)
}

func attr(tag, name string) string {
	i := strings.Index(tag, " "+name+`="`)
	if i < 0 {
		return ""
	}
	rest := tag[i+len(name)+3:]
	return rest[:strings.IndexByte(rest, '"')]
}

func TestCoarsenKeepsTotals(t *testing.T) {
	start := time.Now()
	f := &feeder{reg: metrics.NewRegistry(), start: start}
	for i := 0; i < 3*maxBuckets; i++ {
		f.add("iterations", time.Duration(i)*time.Second, 1, nil)
	}
	a := newAggregator(start)
	a.add([]metrics.Samples{f.out})
	if len(a.buckets) > maxBuckets || a.width != 4*time.Second {
		t.Fatalf("%d buckets of %s; want at most %d of 4s", len(a.buckets), a.width, maxBuckets)
	}
	sum := 0.0
	for _, b := range a.buckets {
		sum += b.iterations
	}
	if sum != 3*maxBuckets {
		t.Errorf("iterations after coarsening = %v; want %d", sum, 3*maxBuckets)
	}
}

func TestLiveEventsAndReport(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	report := filepath.Join(t.TempDir(), "report.html")
	o := New(Config{Host: "127.0.0.1", Port: port, Period: 100 * time.Millisecond, Export: report}, nil)
	if err := o.Start(); err != nil {
		t.Fatal(err)
	}
	stopped := false
	defer func() {
		if !stopped {
			_ = o.Stop()
		}
	}()
	f := &feeder{reg: metrics.NewRegistry(), start: time.Now()}
	f.add("workspace_ready_duration", 0, 1000, map[string]string{"workspace": "ws-live"})
	o.AddMetricSamples([]metrics.Samples{f.out})

	resp, err := http.Get(o.URL() + "events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	deadline := time.Now().Add(10 * time.Second)
	var got bool
	for !got && time.Now().Before(deadline) && sc.Scan() {
		got = strings.HasPrefix(sc.Text(), "data: ") && strings.Contains(sc.Text(), `data-workspace="ws-live"`)
	}
	if !got {
		t.Fatal("no update with the workspace's row within 10s")
	}
	stopped = true
	if err := o.Stop(); err != nil {
		t.Fatal(err)
	}
	var sawDone bool
	for sc.Scan() {
		if sc.Text() == "event: done" {
			sawDone = true
		}
	}
	if !sawDone {
		t.Error("the stream ended without the done event")
	}
	b, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `data-workspace="ws-live"`) || strings.Contains(string(b), "EventSource") {
		t.Errorf("report lacks the workspace row or depends on the server")
	}
}

// A Kubernetes workspace's pod phases are placed by their phase_end
// metadata (the samples go out once the workspace is ready), in order,
// within the workspace's row, and workspace_pods_pending is charted.
func TestTimelinePodPhases(t *testing.T) {
	start := time.Now()
	f := &feeder{reg: metrics.NewRegistry(), start: start}
	at := func(d time.Duration) string { return start.Add(d).UTC().Format(time.RFC3339Nano) }
	ws := map[string]string{"workspace": "ws-kube", "vu": "1", "iter": "0"}
	f.add("workspace_build_duration", 2*time.Second, 1500, ws)
	f.add("workspace_pods_pending", 1*time.Second, 1, nil)
	f.add("workspace_pods_pending", 2*time.Second, 3, nil)
	f.add("workspace_agent_connect_duration", 5*time.Second, 2000, ws)
	f.add("workspace_ready_duration", 5*time.Second, 4500, ws)
	// Created at 1s, scheduled at 1.6s, containers ready at 2.5s; both
	// samples sent at 5s, when the workspace is ready.
	f.add("workspace_pod_schedule_duration", 5*time.Second, 600, withMeta(ws, "phase_end", at(1600*time.Millisecond)))
	f.add("workspace_pod_start_duration", 5*time.Second, 900, withMeta(ws, "phase_end", at(2500*time.Millisecond)))

	a := newAggregator(start)
	a.add([]metrics.Samples{f.out})
	var b strings.Builder
	a.render(&b, pageState{now: start.Add(10 * time.Second), finished: true})
	page := b.String()

	row := rowOf(t, page, "ws-kube")
	for ev, want := range map[string]string{"pod-created": "1000", "pod-scheduled": "1600", "pod-ready": "2500", "built": "2000"} {
		if got := attr(row, "data-"+ev); got != want {
			t.Errorf("ws-kube %s at %qms; want %sms", ev, got, want)
		}
	}
	// The pod's segments, in order: scheduling 20% to 32% of the 5s
	// timeline (up to the last sample), then starting 32% to 50%.
	sched := strings.Index(row, `<i class="seg pod p-pod-sched" style="left:20.00%;width:12.00%" title="pod scheduling 0.6s">`)
	startSeg := strings.Index(row, `<i class="seg pod p-pod-start" style="left:32.00%;width:18.00%" title="pod starting 0.9s">`)
	if sched < 0 || startSeg < 0 || startSeg < sched {
		t.Errorf("ws-kube row lacks pod scheduling then pod starting segments: %s", row)
	}
	if !strings.Contains(row, "pod created 1.0s, pod scheduled 1.6s, pod ready 2.5s") {
		t.Errorf("ws-kube row's label lacks the pod phases: %s", row)
	}
	if !strings.Contains(page, `<span class="p-pod-sched">pod scheduling</span> <span class="p-pod-start">pod starting</span>`) {
		t.Error("the timeline's legend lacks the pod phases")
	}
	if !strings.Contains(page, `data-series="pods pending" data-points="2" data-sum="4"`) {
		t.Error("chart-inflight lacks the pods pending series (2 samples, 1 + 3)")
	}

	// Without phase_end, a phase ends at its sample's time.
	a = newAggregator(start)
	f.out = nil
	f.add("workspace_pod_start_duration", 3*time.Second, 500, ws)
	a.add([]metrics.Samples{f.out})
	if r := a.workspaces["ws-kube"]; !r.podReady.Equal(start.Add(3*time.Second)) || !r.podScheduled.Equal(start.Add(2500*time.Millisecond)) {
		t.Errorf("without phase_end: scheduled %v, ready %v; want 2.5s and 3s after the start", r.podScheduled.Sub(start), r.podReady.Sub(start))
	}
	b.Reset()
	a.render(&b, pageState{now: start.Add(10 * time.Second), finished: true})
	if strings.Contains(b.String(), "pods pending") {
		t.Error("a run without workspace_pods_pending samples has a pods pending series")
	}
}

func withMeta(m map[string]string, k, v string) map[string]string {
	c := map[string]string{k: v}
	for mk, mv := range m {
		c[mk] = mv
	}
	return c
}
