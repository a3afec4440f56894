package prometheusrw

import (
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang/snappy"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/cdeload/cdeload/engine/metrics"
	"github.com/cdeload/cdeload/engine/output"
)

// decodedSeries is one TimeSeries of a decoded WriteRequest.
type decodedSeries struct {
	labels  [][2]string
	samples [][2]float64 // value, timestamp ms
}

func (d decodedSeries) name() string {
	for _, l := range d.labels {
		if l[0] == "__name__" {
			return l[1]
		}
	}
	return ""
}

// decodeWriteRequest is an independent protobuf decoder for the test.
func decodeWriteRequest(t *testing.T, b []byte) []decodedSeries {
	t.Helper()
	var out []decodedSeries
	fields := func(b []byte, fn func(num protowire.Number, typ protowire.Type, v []byte, u uint64)) {
		for len(b) > 0 {
			num, typ, n := protowire.ConsumeTag(b)
			if n < 0 {
				t.Fatalf("bad tag: %v", protowire.ParseError(n))
			}
			b = b[n:]
			switch typ {
			case protowire.BytesType:
				v, n := protowire.ConsumeBytes(b)
				if n < 0 {
					t.Fatal("bad bytes")
				}
				fn(num, typ, v, 0)
				b = b[n:]
			case protowire.VarintType:
				v, n := protowire.ConsumeVarint(b)
				fn(num, typ, nil, v)
				b = b[n:]
			case protowire.Fixed64Type:
				v, n := protowire.ConsumeFixed64(b)
				fn(num, typ, nil, v)
				b = b[n:]
			default:
				t.Fatalf("unexpected wire type %v", typ)
			}
		}
	}
	fields(b, func(num protowire.Number, _ protowire.Type, ts []byte, _ uint64) {
		if num != 1 {
			t.Fatalf("WriteRequest field %d", num)
		}
		var s decodedSeries
		fields(ts, func(num protowire.Number, _ protowire.Type, v []byte, _ uint64) {
			switch num {
			case 1:
				var l [2]string
				fields(v, func(num protowire.Number, _ protowire.Type, v []byte, _ uint64) { l[num-1] = string(v) })
				s.labels = append(s.labels, l)
			case 2:
				var smp [2]float64
				fields(v, func(num protowire.Number, _ protowire.Type, _ []byte, u uint64) {
					if num == 1 {
						smp[0] = math.Float64frombits(u)
					} else {
						smp[1] = float64(int64(u))
					}
				})
				s.samples = append(s.samples, smp)
			default:
				t.Fatalf("TimeSeries field %d", num)
			}
		})
		out = append(out, s)
	})
	return out
}

// recorder is a loopback remote-write receiver that decodes requests.
type recorder struct {
	t       *testing.T
	mu      sync.Mutex
	reqs    [][]decodedSeries
	block   chan struct{} // when non-nil, requests wait on it
	arrived chan struct{}
}

func (r *recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if r.arrived != nil {
		select {
		case r.arrived <- struct{}{}:
		default:
		}
	}
	if r.block != nil {
		<-r.block
	}
	body, _ := io.ReadAll(req.Body)
	raw, err := snappy.Decode(nil, body)
	if err != nil {
		http.Error(w, "bad snappy", http.StatusBadRequest)
		return
	}
	dec := decodeWriteRequest(r.t, raw)
	r.mu.Lock()
	r.reqs = append(r.reqs, dec)
	r.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (r *recorder) requests() [][]decodedSeries {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.reqs)
}

func newTestOutput(t *testing.T, url string, extra string) *Output {
	t.Helper()
	cfg, err := ParseConfig(nil, nil, "url="+url+",pushInterval=20ms"+extra)
	if err != nil {
		t.Fatal(err)
	}
	o, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := o.Start(); err != nil {
		t.Fatal(err)
	}
	return o
}

func TestRequestLabelsSortedAndSanitized(t *testing.T) {
	rec := &recorder{t: t}
	o := newTestOutput(t, newLoopbackServer(t, rec), "")
	reg := metrics.NewRegistry()
	m := reg.MustNewMetric("ws_msgs", metrics.Counter)
	tags := metrics.NewTagSet(map[string]string{"Zeta": "z", "alpha": "a", "my-tag": "x", "empty": ""})
	now := time.Now()
	o.AddMetricSamples([]metrics.Samples{{{Metric: m, Tags: tags, Time: now, Value: 2}}})
	if err := o.Stop(); err != nil {
		t.Fatal(err)
	}
	reqs := rec.requests()
	if len(reqs) != 1 || len(reqs[0]) != 1 {
		t.Fatalf("requests = %v", reqs)
	}
	s := reqs[0][0]
	want := [][2]string{{"Zeta", "z"}, {"__name__", "k6_ws_msgs_total"}, {"alpha", "a"}, {"my_tag", "x"}}
	if !slices.Equal(s.labels, want) {
		t.Errorf("labels = %v, want %v", s.labels, want)
	}
	if len(s.samples) != 1 || s.samples[0] != [2]float64{2, float64(now.UnixMilli())} {
		t.Errorf("samples = %v", s.samples)
	}
}

func TestOnlySeriesWithNewerSamplesAreResent(t *testing.T) {
	rec := &recorder{t: t}
	o := newTestOutput(t, newLoopbackServer(t, rec), "")
	reg := metrics.NewRegistry()
	a := reg.MustNewMetric("aa", metrics.Gauge)
	b := reg.MustNewMetric("bb", metrics.Gauge)
	t0 := time.Now().Truncate(time.Millisecond)
	o.AddMetricSamples([]metrics.Samples{{{Metric: a, Time: t0, Value: 1}, {Metric: b, Time: t0, Value: 1}}})
	waitFor(t, 10*time.Second, "first push", func() bool { return len(rec.requests()) == 1 })
	// Same millisecond for b: not newer, so not re-sent.
	o.AddMetricSamples([]metrics.Samples{{{Metric: a, Time: t0.Add(time.Millisecond), Value: 2}, {Metric: b, Time: t0, Value: 5}}})
	if err := o.Stop(); err != nil {
		t.Fatal(err)
	}
	reqs := rec.requests()
	if len(reqs) != 2 {
		t.Fatalf("got %d requests, want 2", len(reqs))
	}
	if len(reqs[1]) != 1 || reqs[1][0].name() != "k6_aa" || reqs[1][0].samples[0][0] != 2 {
		t.Errorf("second request = %v, want only k6_aa=2", reqs[1])
	}
}

// TestAddMetricSamplesDoesNotBlockOnStuckRemote: with the remote end stuck
// inside a request, VUs can still hand over samples, and Stop delivers the
// cumulative total once the remote end answers again.
func TestAddMetricSamplesDoesNotBlockOnStuckRemote(t *testing.T) {
	rec := &recorder{t: t, block: make(chan struct{}), arrived: make(chan struct{}, 1)}
	url := newLoopbackServer(t, rec)
	o := newTestOutput(t, url, "")
	reg := metrics.NewRegistry()
	c := reg.MustNewMetric("cc", metrics.Counter)
	now := time.Now()
	o.AddMetricSamples([]metrics.Samples{{{Metric: c, Time: now, Value: 1}}})
	select {
	case <-rec.arrived:
	case <-time.After(10 * time.Second):
		t.Fatal("no push arrived")
	}
	// The push is stuck in the handler; 20000 more batches must go through.
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 5000; i++ {
				o.AddMetricSamples([]metrics.Samples{{{Metric: c, Time: now.Add(time.Second), Value: 1}}})
			}
		}()
	}
	wg.Wait()
	waitFor(t, 10*time.Second, "aggregation while the push is stuck", func() bool { return o.Stats().Samples == 20001 })
	close(rec.block)
	if err := o.Stop(); err != nil {
		t.Fatal(err)
	}
	reqs := rec.requests()
	last := reqs[len(reqs)-1]
	if len(last) != 1 || last[0].samples[0][0] != 20001 {
		t.Errorf("last request = %v, want k6_cc_total=20001", last)
	}
}

func TestStaleMarkersBitPattern(t *testing.T) {
	rec := &recorder{t: t}
	o := newTestOutput(t, newLoopbackServer(t, rec), ",staleMarkers=true")
	reg := metrics.NewRegistry()
	tr := reg.MustNewMetric("dd", metrics.Trend, metrics.Time)
	future := time.Now().Add(time.Hour).Truncate(time.Millisecond)
	o.AddMetricSamples([]metrics.Samples{{{Metric: tr, Time: future, Value: 1}}})
	if err := o.Stop(); err != nil {
		t.Fatal(err)
	}
	reqs := rec.requests()
	stale := reqs[len(reqs)-1]
	if len(stale) != 1 || stale[0].name() != "k6_dd_p99" {
		t.Fatalf("stale request = %v", stale)
	}
	v, ts := stale[0].samples[0][0], stale[0].samples[0][1]
	if math.Float64bits(v) != 0x7ff0000000000002 {
		t.Errorf("stale value bits = %#x", math.Float64bits(v))
	}
	if ts != float64(future.UnixMilli()+1) {
		t.Errorf("stale timestamp = %v, want 1ms after the newest sample %v", ts, future.UnixMilli())
	}
}

func TestParseStatNames(t *testing.T) {
	for in, want := range map[string]string{
		"p(95)": "p95", "p(99.9)": "p999", "p(0)": "p0", "p(100)": "p100",
		"avg": "avg", "min": "min", "max": "max", "med": "med", "count": "count", "sum": "sum",
	} {
		st, err := parseStat(in)
		if err != nil || st.suffix != want {
			t.Errorf("parseStat(%q) = %q, %v; want %q", in, st.suffix, err, want)
		}
	}
	for _, bad := range []string{"p(-1)", "p(100.1)", "p(NaN)", "p95", "p()", "mean", ""} {
		if _, err := parseStat(bad); err == nil {
			t.Errorf("parseStat(%q) accepted", bad)
		}
	}
}

// TestTrendMatchesSortedPercentile feeds random values in several rounds
// (forcing sort-and-merge) and compares with k6's formula on a fully sorted
// copy.
func TestTrendMatchesSortedPercentile(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	tr := trendAgg{keep: true}
	var all []float64
	var scratch []float64
	for round := 0; round < 20; round++ {
		for i := 0; i < rng.IntN(200); i++ {
			v := rng.NormFloat64() * 100
			tr.add(v)
			all = append(all, v)
		}
		tr.sort(&scratch)
		ref := slices.Clone(all)
		slices.Sort(ref)
		if !slices.Equal(tr.values, ref) {
			t.Fatalf("round %d: values not sorted like the reference", round)
		}
		for _, p := range []float64{0, 1, 50, 90, 95, 99, 99.9, 100} {
			got := tr.stat(trendStat{kind: statPercentile, p: p})
			want := naivePercentile(ref, p)
			if !approx(got, want) {
				t.Errorf("p(%v) = %v, want %v", p, got, want)
			}
		}
	}
}

func naivePercentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	idx := p / 100 * float64(len(sorted)-1)
	lo := int(idx)
	if lo+1 >= len(sorted) {
		return sorted[lo]
	}
	return sorted[lo] + (idx-float64(lo))*(sorted[lo+1]-sorted[lo])
}

func TestDescriptionHidesPassword(t *testing.T) {
	cfg, err := ParseConfig(nil, nil, "url=http://bob:hunter2@127.0.0.1:9/api/v1/write")
	if err != nil {
		t.Fatal(err)
	}
	o, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if d := o.Description(); d != "Prometheus remote write (http://bob:xxxxx@127.0.0.1:9/api/v1/write)" {
		t.Errorf("Description() = %q", d)
	}
	_ = o.Stop() // never started
}

func TestRegisteredUnderBothNames(t *testing.T) {
	for _, name := range []string{"experimental-prometheus-rw", "prometheus-rw"} {
		o, err := output.New(name, output.Params{Arg: "url=http://127.0.0.1:9/api/v1/write"})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		_ = o.Stop()
		if _, err := output.New(name, output.Params{Arg: "nope=1"}); err == nil {
			t.Errorf("%s: bad arg accepted", name)
		}
	}
}

// TestTrendSwitchesToBoundedHistogram: past exactLimit values, memory stops
// growing with the number of values and percentiles stay within 0.3%.
func TestTrendSwitchesToBoundedHistogram(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	tr := trendAgg{keep: true}
	var all []float64
	var scratch []float64
	for i := 0; i < 3*exactLimit; i++ {
		v := math.Exp(rng.NormFloat64()*2) * 10 // lognormal latencies
		if i%1000 == 0 {
			v = -v // a few negatives
		}
		if i%777 == 0 {
			v = 0
		}
		tr.add(v)
		all = append(all, v)
	}
	tr.sort(&scratch)
	if tr.hist == nil || tr.values != nil {
		t.Fatal("trend did not switch to the histogram")
	}
	if n := len(tr.hist.pos) + len(tr.hist.neg); n > 20000 {
		t.Errorf("histogram has %d buckets", n)
	}
	slices.Sort(all)
	for _, p := range []float64{0, 1, 25, 50, 90, 95, 99, 99.9, 100} {
		got := tr.stat(trendStat{kind: statPercentile, p: p})
		want := naivePercentile(all, p)
		if math.Abs(got-want) > 0.003*math.Abs(want)+1e-9 {
			t.Errorf("p(%v) = %v, exact %v (%.3f%% off)", p, got, want, 100*math.Abs(got-want)/math.Abs(want))
		}
	}
	if tr.stat(trendStat{kind: statCount}) != float64(len(all)) {
		t.Error("count changed")
	}
}

func TestTLSAndBearerToken(t *testing.T) {
	var mu sync.Mutex
	var auth string
	rec := &recorder{t: t}
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		auth = r.Header.Get("Authorization")
		mu.Unlock()
		rec.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	reg := metrics.NewRegistry()
	m := reg.MustNewMetric("zz", metrics.Gauge)

	// The test server's certificate is self-signed: without
	// insecureSkipTLSVerify every push fails, but the run goes on.
	strict := newTestOutput(t, srv.URL, ",bearerToken=tok-123")
	strict.AddMetricSamples([]metrics.Samples{{{Metric: m, Value: 1}}}) // zero time: pushed at now
	if err := strict.Stop(); err != nil {
		t.Fatal(err)
	}
	if st := strict.Stats(); st.FailedPushes == 0 || !strings.Contains(st.LastError, "certificate") {
		t.Errorf("stats = %+v, want a certificate error", st)
	}

	o := newTestOutput(t, srv.URL, ",bearerToken=tok-123,insecureSkipTLSVerify=true,tlsMinVersion=1.2")
	o.AddMetricSamples([]metrics.Samples{{{Metric: m, Value: 5}}})
	if err := o.Stop(); err != nil {
		t.Fatal(err)
	}
	reqs := rec.requests()
	if len(reqs) != 1 || reqs[0][0].name() != "k6_zz" || reqs[0][0].samples[0][0] != 5 {
		t.Fatalf("requests = %v", reqs)
	}
	mu.Lock()
	defer mu.Unlock()
	if auth != "Bearer tok-123" {
		t.Errorf("Authorization = %q", auth)
	}
}

func TestClientCertificateLoadError(t *testing.T) {
	cfg, err := ParseConfig(nil, map[string]string{
		"K6_PROMETHEUS_RW_CLIENT_CERTIFICATE":     "/nonexistent/c.pem",
		"K6_PROMETHEUS_RW_CLIENT_CERTIFICATE_KEY": "/nonexistent/k.pem",
	}, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := New(cfg, nil); err == nil || !strings.Contains(err.Error(), "/nonexistent/c.pem") {
		t.Errorf("New = %v, want an error naming the certificate file", err)
	}
}
