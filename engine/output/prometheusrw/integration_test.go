package prometheusrw

import (
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cdeload/cdeload/engine/metrics"
	"github.com/cdeload/cdeload/engine/output/prometheusrw/promtest"
	"github.com/cdeload/cdeload/internal/syncbuf"
)

// waitFor polls cond for at most d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool, state ...func() string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			var extra string
			for _, f := range state {
				extra += "; " + f()
			}
			t.Fatalf("timed out after %s waiting for %s%s", d, what, extra)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// startFromEnv starts an output configured from K6_PROMETHEUS_RW_* settings.
func startFromEnv(t *testing.T, env map[string]string) *Output {
	t.Helper()
	cfg, err := ParseConfig(nil, env, "")
	if err != nil {
		t.Fatal(err)
	}
	out, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := out.Start(); err != nil {
		t.Fatal(err)
	}
	return out
}

func approx(a, b float64) bool {
	return math.Abs(a-b) <= 1e-9*math.Max(1, math.Max(math.Abs(a), math.Abs(b)))
}

// expectSeries asserts that query q returns exactly one series with the
// given labels (besides __name__) and value.
func expectSeries(t *testing.T, p *promtest.Server, q string, at time.Time, labels map[string]string, want float64) {
	t.Helper()
	res := p.QueryAt(t, q, at)
	if len(res) != 1 {
		t.Fatalf("%s: got %d series %v, want 1", q, len(res), res)
	}
	got := res[0]
	if !approx(got.Value, want) {
		t.Errorf("%s = %v, want %v", q, got.Value, want)
	}
	if len(got.Labels) != len(labels)+1 {
		t.Errorf("%s labels = %v, want %v plus __name__", q, got.Labels, labels)
	}
	for k, v := range labels {
		if got.Labels[k] != v {
			t.Errorf("%s label %s = %q, want %q (all: %v)", q, k, got.Labels[k], v, got.Labels)
		}
	}
}

func TestRealPrometheusAllMetricTypes(t *testing.T) {
	prom := promtest.Start(t)
	out := startFromEnv(t, map[string]string{
		"K6_PROMETHEUS_RW_SERVER_URL":    prom.URL + "/api/v1/write",
		"K6_PROMETHEUS_RW_PUSH_INTERVAL": "100ms",
		"K6_PROMETHEUS_RW_TREND_STATS":   "p(95),p(99.9),avg,min,max,med,count,sum",
		"K6_PROMETHEUS_RW_STALE_MARKERS": "true",
	})

	reg := metrics.NewRegistry()
	reqs := reg.MustNewMetric("reqs", metrics.Counter)
	dataSent := reg.MustNewMetric("data_sent", metrics.Counter, metrics.Data)
	vus := reg.MustNewMetric("vus", metrics.Gauge)
	checks := reg.MustNewMetric("checks", metrics.Rate)
	rtt := reg.MustNewMetric("traffic_rtt", metrics.Trend, metrics.Time)
	size := reg.MustNewMetric("payload_size", metrics.Trend)

	base := metrics.NewTagSet(map[string]string{"scenario": "default", "testid": "it-1", "empty": ""})
	ok := base.With("status", "200")
	bad := base.With("status", "500")
	ssh := base.With("transport", "ssh")
	meta := map[string]string{"vu": "3", "iter": "7", "workspace": "ws-123"}

	t0 := time.Now().Add(-2 * time.Second).Truncate(time.Millisecond)
	ms := 0
	at := func() time.Time { ms++; return t0.Add(time.Duration(ms) * time.Millisecond) }
	sample := func(m *metrics.Metric, tags *metrics.TagSet, v float64) metrics.Sample {
		return metrics.Sample{Metric: m, Tags: tags, Time: at(), Value: v, Metadata: meta}
	}

	// First half: pushed once before the second half arrives, so the test
	// checks that values are cumulative across pushes.
	var first metrics.Samples
	for i := 1; i <= 50; i++ {
		first = append(first, sample(rtt, ssh, float64(i)), sample(size, base, float64(i)))
	}
	first = append(first,
		sample(reqs, ok, 1), sample(reqs, ok, 2), sample(reqs, bad, 1),
		sample(dataSent, base, 1000), sample(vus, base, 3),
		sample(checks, base, 1), sample(checks, base, 0))
	out.AddMetricSamples([]metrics.Samples{first})
	waitFor(t, 20*time.Second, "a first successful push", func() bool {
		s := out.Stats()
		return s.Pushes-s.FailedPushes >= 1 && s.Samples == uint64(len(first))
	})

	var second metrics.Samples
	for i := 51; i <= 100; i++ {
		second = append(second, sample(rtt, ssh, float64(i)), sample(size, base, float64(i)))
	}
	second = append(second,
		sample(reqs, ok, 4), sample(dataSent, base, 24), sample(vus, base, 7),
		sample(checks, base, 1), sample(checks, base, 2))
	// Several small batches, as VUs would send them.
	for i := 0; i < len(second); i += 7 {
		out.AddMetricSamples([]metrics.Samples{second[i:min(i+7, len(second))]})
	}
	if err := out.Stop(); err != nil {
		t.Fatal(err)
	}
	if s := out.Stats(); s.FailedPushes != 0 {
		t.Fatalf("failed pushes: %+v\nprometheus log:\n%s", s, prom.Log())
	}

	queryAt := t0.Add(time.Second) // after every sample, before the stale markers
	common := map[string]string{"scenario": "default", "testid": "it-1"}
	with := func(k, v string) map[string]string {
		m := map[string]string{k: v}
		for a, b := range common {
			m[a] = b
		}
		return m
	}
	expectSeries(t, prom, `k6_reqs_total{status="200"}`, queryAt, with("status", "200"), 7)
	expectSeries(t, prom, `k6_reqs_total{status="500"}`, queryAt, with("status", "500"), 1)
	expectSeries(t, prom, `k6_data_sent_total`, queryAt, common, 1024)
	expectSeries(t, prom, `k6_vus`, queryAt, common, 7)
	expectSeries(t, prom, `k6_checks_rate`, queryAt, common, 0.75)
	// Time trend: 1..100 ms, stats in seconds (count stays a count).
	sshL := with("transport", "ssh")
	expectSeries(t, prom, `k6_traffic_rtt_p95`, queryAt, sshL, 0.09505)
	expectSeries(t, prom, `k6_traffic_rtt_p999`, queryAt, sshL, 0.099901)
	expectSeries(t, prom, `k6_traffic_rtt_avg`, queryAt, sshL, 0.0505)
	expectSeries(t, prom, `k6_traffic_rtt_med`, queryAt, sshL, 0.0505)
	expectSeries(t, prom, `k6_traffic_rtt_min`, queryAt, sshL, 0.001)
	expectSeries(t, prom, `k6_traffic_rtt_max`, queryAt, sshL, 0.1)
	expectSeries(t, prom, `k6_traffic_rtt_count`, queryAt, sshL, 100)
	expectSeries(t, prom, `k6_traffic_rtt_sum`, queryAt, sshL, 5.05)
	// A non-time trend keeps its unit.
	expectSeries(t, prom, `k6_payload_size_p95`, queryAt, common, 95.05)
	expectSeries(t, prom, `k6_payload_size_max`, queryAt, common, 100)

	// Metadata never becomes a label: no series has vu, iter or workspace.
	for _, l := range []string{"vu", "iter", "workspace", "empty"} {
		if res := prom.QueryAt(t, `{`+l+`!=""}`, queryAt); len(res) != 0 {
			t.Errorf("series with label %s: %v", l, res)
		}
	}
	// Stale markers: after Stop, the series are gone from instant queries.
	if res := prom.QueryAt(t, `{testid="it-1"}`, time.Now().Add(time.Second)); len(res) != 0 {
		t.Errorf("series still present after stale markers: %v", res)
	}
	// 2 reqs + data_sent + vus + checks + 8 stats for each of the 2 trends.
	if res := prom.QueryAt(t, `count({testid="it-1"})`, queryAt); len(res) != 1 || res[0].Value != 21 {
		t.Errorf("series count before stale = %v, want 21", res)
	}
}

// flakyProxy answers 500 to the first failN remote writes and forwards the
// rest to Prometheus.
type flakyProxy struct {
	failN   int32
	calls   atomic.Int32
	proxied atomic.Int32
	target  http.Handler
	mu      sync.Mutex
	headers http.Header
}

func (f *flakyProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := f.calls.Add(1)
	f.mu.Lock()
	f.headers = r.Header.Clone()
	f.mu.Unlock()
	if n <= f.failN {
		http.Error(w, "boom: storage unavailable, try later", http.StatusInternalServerError)
		return
	}
	f.target.ServeHTTP(w, r)
	f.proxied.Add(1)
}

func TestRealPrometheusRemoteEndFailsThenRecovers(t *testing.T) {
	prom := promtest.Start(t)
	target, _ := url.Parse(prom.URL)
	proxy := &flakyProxy{failN: 3, target: httputil.NewSingleHostReverseProxy(target)}
	srv := newLoopbackServer(t, proxy)

	var logs syncbuf.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	cfg, err := ParseConfig(nil, nil,
		"url="+srv+"/api/v1/write,pushInterval=50ms,username=alice,password=s3cr3t-pw,headers.X-Scope-OrgID=team-a")
	if err != nil {
		t.Fatal(err)
	}
	out, err := New(cfg, logger)
	if err != nil {
		t.Fatal(err)
	}
	if err := out.Start(); err != nil {
		t.Fatal(err)
	}
	reg := metrics.NewRegistry()
	iters := reg.MustNewMetric("iterations", metrics.Counter)
	tags := metrics.NewTagSet(map[string]string{"scenario": "flaky"})
	t0 := time.Now().Add(-5 * time.Second).Truncate(time.Millisecond)
	total := 0.0
	n := 0
	add := func() {
		n++
		total += float64(n)
		out.AddMetricSamples([]metrics.Samples{{{Metric: iters, Tags: tags, Time: t0.Add(time.Duration(n) * time.Millisecond), Value: float64(n)}}})
	}
	// Keep adding while the remote end fails; the output keeps aggregating.
	for proxy.calls.Load() < 3 {
		add()
		time.Sleep(10 * time.Millisecond)
		if n > 2000 {
			t.Fatalf("the output made only %d calls", proxy.calls.Load())
		}
	}
	add()
	waitFor(t, 30*time.Second, "a push to land after recovery", func() bool { return proxy.proxied.Load() >= 1 })
	add()
	if err := out.Stop(); err != nil {
		t.Fatalf("Stop after failures returned %v; a failing remote end must not fail the run", err)
	}
	st := out.Stats()
	if st.FailedPushes != 3 || st.Pushes < 4 {
		t.Errorf("stats = %+v, want 3 failed pushes and at least 4 in all", st)
	}
	expectSeries(t, prom, `k6_iterations_total`, t0.Add(time.Minute), map[string]string{"scenario": "flaky"}, total)

	l := logs.String()
	if !strings.Contains(l, "500") || !strings.Contains(l, "boom: storage unavailable") {
		t.Errorf("logs do not show the status and body of the failure:\n%s", l)
	}
	if strings.Contains(l, "s3cr3t-pw") {
		t.Errorf("logs leak the password:\n%s", l)
	}
	proxy.mu.Lock()
	h := proxy.headers
	proxy.mu.Unlock()
	for k, want := range map[string]string{
		"Content-Encoding":                  "snappy",
		"Content-Type":                      "application/x-protobuf",
		"X-Prometheus-Remote-Write-Version": "0.1.0",
		"X-Scope-Orgid":                     "team-a",
	} {
		if got := h.Get(k); got != want {
			t.Errorf("header %s = %q, want %q", k, got, want)
		}
	}
	if u, p, ok := (&http.Request{Header: h}).BasicAuth(); !ok || u != "alice" || p != "s3cr3t-pw" {
		t.Errorf("basic auth = %q %q %v", u, p, ok)
	}
}

// newLoopbackServer serves h on 127.0.0.1 until the test ends.
func newLoopbackServer(t *testing.T, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}
