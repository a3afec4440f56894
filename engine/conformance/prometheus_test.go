package conformance

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// promBinary finds the Prometheus server: $PROMETHEUS_BIN,
// /usr/bin/prometheus, or prometheus on PATH.
func promBinary() string {
	if p := os.Getenv("PROMETHEUS_BIN"); p != "" {
		return p
	}
	if _, err := os.Stat("/usr/bin/prometheus"); err == nil {
		return "/usr/bin/prometheus"
	}
	if p, err := exec.LookPath("prometheus"); err == nil {
		return p
	}
	return ""
}

// promServer is a real Prometheus started by a test, with its
// remote-write receiver on a loopback port.
type promServer struct {
	base string // http://127.0.0.1:port
	log  *syncBuffer
}

// startProm starts Prometheus with --web.enable-remote-write-receiver on a
// free loopback port and no scrape targets. Without the binary it skips
// the test, unless CI is "true", where it fails.
func startProm(t *testing.T) *promServer {
	t.Helper()
	bin := promBinary()
	if bin == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("the prometheus binary is missing and CI=true: install it (scripts/prometheus-install.sh)")
		}
		t.Skip("prometheus binary not found; skipping the real-Prometheus end-to-end test")
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfg, []byte("global:\n  scrape_interval: 1m\nscrape_configs: []\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var lastErr error
	for attempt := range 3 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		logs := &syncBuffer{}
		cmd := exec.Command(bin,
			"--web.enable-remote-write-receiver",
			"--web.listen-address="+addr,
			"--storage.tsdb.path="+filepath.Join(dir, fmt.Sprintf("data%d", attempt)),
			"--config.file="+cfg,
			"--log.level=warn",
		)
		cmd.Stdout, cmd.Stderr = logs, logs
		if err := cmd.Start(); err != nil {
			t.Fatalf("starting %s: %v", bin, err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		proc := cmd.Process
		t.Cleanup(func() {
			// Only the process this test started, by its PID.
			_ = proc.Kill()
			<-exited
		})
		base := "http://" + addr
		if lastErr = promReady(base, exited); lastErr == nil {
			return &promServer{base: base, log: logs}
		}
		_ = proc.Kill()
		t.Logf("prometheus attempt %d: %v\n%s", attempt, lastErr, logs.String())
	}
	t.Fatalf("prometheus did not become ready: %v", lastErr)
	return nil
}

func promReady(base string, exited <-chan error) error {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			return fmt.Errorf("prometheus exited: %v", err)
		default:
		}
		resp, err := http.Get(base + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("%s/-/ready not OK after 60s", base)
}

// promSeries is one series of an instant query.
type promSeries struct {
	Labels map[string]string
	Value  float64
}

// query runs an instant PromQL query now.
func (p *promServer) query(t *testing.T, q string) []promSeries {
	t.Helper()
	resp, err := http.Get(p.base + "/api/v1/query?" + url.Values{"query": {q}}.Encode())
	if err != nil {
		t.Fatalf("query %q: %v", q, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var r struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
				Value  [2]any            `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &r); err != nil || r.Status != "success" {
		t.Fatalf("query %q: %s (%v)", q, body, err)
	}
	out := make([]promSeries, 0, len(r.Data.Result))
	for _, s := range r.Data.Result {
		str, _ := s.Value[1].(string)
		v, err := strconv.ParseFloat(str, 64)
		if err != nil {
			t.Fatalf("query %q: value %v: %v", q, s.Value, err)
		}
		out = append(out, promSeries{Labels: s.Metric, Value: v})
	}
	sort.Slice(out, func(i, j int) bool { return fmt.Sprint(out[i].Labels) < fmt.Sprint(out[j].Labels) })
	return out
}

// one runs q and returns its only series.
func (p *promServer) one(t *testing.T, q string) promSeries {
	t.Helper()
	res := p.query(t, q)
	if len(res) != 1 {
		t.Fatalf("%s: %d series %v, want 1", q, len(res), res)
	}
	return res[0]
}

func TestPrometheusRemoteWriteEndToEnd(t *testing.T) {
	t.Parallel()
	prom := startProm(t)
	testid := fmt.Sprintf("conformance-%d", time.Now().UnixNano())
	r := cdeload(t, []string{
		"K6_PROMETHEUS_RW_SERVER_URL=" + prom.base + "/api/v1/write",
		"K6_PROMETHEUS_RW_PUSH_INTERVAL=1s",
		"K6_PROMETHEUS_RW_TREND_STATS=p(95),p(99),min,max,avg,count",
	}, "run", "-q", "-o", "experimental-prometheus-rw", "--tag", "testid="+testid, "prom_metrics.js")
	if r.code != 0 {
		t.Fatalf("want exit 0, got %s", r)
	}
	sel := fmt.Sprintf(`{testid=%q}`, testid)

	// The last push happens when the output stops, before cdeload exits;
	// Prometheus answers queries on what it accepted right away, but poll
	// briefly in case the last sample is still being committed.
	deadline := time.Now().Add(10 * time.Second)
	for {
		res := prom.query(t, "sum(k6_iterations_total"+sel+")")
		if len(res) == 1 && res[0].Value == 20 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("k6_iterations_total for testid %s: %v, want 20\nprometheus log:\n%s\n%s", testid, res, prom.log.String(), r)
		}
		time.Sleep(100 * time.Millisecond)
	}

	it := prom.one(t, "k6_iterations_total"+sel)
	if it.Labels["testid"] != testid || it.Labels["scenario"] != "load" {
		t.Errorf("k6_iterations_total labels = %v, want testid=%s scenario=load", it.Labels, testid)
	}

	// Checks: one series per check, each a cumulative ratio.
	if v := prom.one(t, `k6_checks_rate{check="always",testid="`+testid+`"}`).Value; v != 1 {
		t.Errorf(`k6_checks_rate{check="always"} = %v, want 1`, v)
	}
	if v := prom.one(t, `k6_checks_rate{check="even only",testid="`+testid+`"}`).Value; v != 0.5 {
		t.Errorf(`k6_checks_rate{check="even only"} = %v, want 0.5`, v)
	}
	if v := prom.one(t, "k6_prom_bytes_total"+sel).Value; v != 200 {
		t.Errorf("k6_prom_bytes_total = %v, want 200", v)
	}
	if v := prom.one(t, "k6_prom_good_rate"+sel).Value; v != 0.75 {
		t.Errorf("k6_prom_good_rate = %v, want 0.75", v)
	}

	// Time trends are in seconds: iterations sleep 0.1s.
	if v := prom.one(t, "k6_iteration_duration_p95"+sel).Value; v < 0.09 || v > 2 {
		t.Errorf("k6_iteration_duration_p95 = %v s, want about 0.1 s", v)
	}
	// prom_rtt took 100..119 ms, one value per iteration.
	wantTrend := map[string]float64{
		"min": 0.100, "max": 0.119, "avg": 0.1095, "count": 20,
		"p95": 0.11805, // i = 0.95·19 = 18.05 → 118 + 0.05 ms
		"p99": 0.11881, // i = 0.99·19 = 18.81 → 118 + 0.81 ms
	}
	for stat, want := range wantTrend {
		if v := prom.one(t, "k6_prom_rtt_"+stat+sel).Value; math.Abs(v-want) > 1e-9 {
			t.Errorf("k6_prom_rtt_%s = %v, want %v", stat, v, want)
		}
	}
	// Only the configured stats are sent.
	if res := prom.query(t, "k6_prom_rtt_med"+sel); len(res) != 0 {
		t.Errorf("k6_prom_rtt_med was sent although not in the trend stats: %v", res)
	}

	// No high-cardinality labels on any series of the run.
	all := prom.query(t, sel)
	if len(all) == 0 {
		t.Fatal("no series for the run")
	}
	names := map[string]bool{}
	for _, s := range all {
		names[s.Labels["__name__"]] = true
		for _, bad := range []string{"vu", "iter"} {
			if _, ok := s.Labels[bad]; ok {
				t.Errorf("series %v has the label %q", s.Labels, bad)
			}
		}
		if !strings.HasPrefix(s.Labels["__name__"], "k6_") {
			t.Errorf("series %v is not prefixed k6_", s.Labels)
		}
	}
	for _, n := range []string{"k6_vus", "k6_vus_max", "k6_iterations_total", "k6_checks_rate", "k6_iteration_duration_p99"} {
		if !names[n] {
			t.Errorf("no %s series (have %v)", n, keysOf(names))
		}
	}
}
