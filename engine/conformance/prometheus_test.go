package conformance

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/cdeload/cdeload/engine/output/prometheusrw/promtest"
)

func TestPrometheusRemoteWriteEndToEnd(t *testing.T) {
	t.Parallel()
	prom := promtest.Start(t)
	testid := fmt.Sprintf("conformance-%d", time.Now().UnixNano())
	r := cdeload(t, []string{
		"K6_PROMETHEUS_RW_SERVER_URL=" + prom.URL + "/api/v1/write",
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
		res := prom.Query(t, "sum(k6_iterations_total"+sel+")")
		if len(res) == 1 && res[0].Value == 20 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("k6_iterations_total for testid %s: %v, want 20\nprometheus log:\n%s\n%s", testid, res, prom.Log(), r)
		}
		time.Sleep(100 * time.Millisecond)
	}

	it := prom.One(t, "k6_iterations_total"+sel)
	if it.Labels["testid"] != testid || it.Labels["scenario"] != "load" {
		t.Errorf("k6_iterations_total labels = %v, want testid=%s scenario=load", it.Labels, testid)
	}

	// Checks: one series per check, each a cumulative ratio.
	if v := prom.One(t, `k6_checks_rate{check="always",testid="`+testid+`"}`).Value; v != 1 {
		t.Errorf(`k6_checks_rate{check="always"} = %v, want 1`, v)
	}
	if v := prom.One(t, `k6_checks_rate{check="even only",testid="`+testid+`"}`).Value; v != 0.5 {
		t.Errorf(`k6_checks_rate{check="even only"} = %v, want 0.5`, v)
	}
	if v := prom.One(t, "k6_prom_bytes_total"+sel).Value; v != 200 {
		t.Errorf("k6_prom_bytes_total = %v, want 200", v)
	}
	if v := prom.One(t, "k6_prom_good_rate"+sel).Value; v != 0.75 {
		t.Errorf("k6_prom_good_rate = %v, want 0.75", v)
	}

	// Time trends are in seconds: iterations sleep 0.1s.
	if v := prom.One(t, "k6_iteration_duration_p95"+sel).Value; v < 0.09 || v > 2 {
		t.Errorf("k6_iteration_duration_p95 = %v s, want about 0.1 s", v)
	}
	// prom_rtt took 100..119 ms, one value per iteration.
	wantTrend := map[string]float64{
		"min": 0.100, "max": 0.119, "avg": 0.1095, "count": 20,
		"p95": 0.11805, // i = 0.95·19 = 18.05 → 118 + 0.05 ms
		"p99": 0.11881, // i = 0.99·19 = 18.81 → 118 + 0.81 ms
	}
	for stat, want := range wantTrend {
		if v := prom.One(t, "k6_prom_rtt_"+stat+sel).Value; math.Abs(v-want) > 1e-9 {
			t.Errorf("k6_prom_rtt_%s = %v, want %v", stat, v, want)
		}
	}
	// Only the configured stats are sent.
	if res := prom.Query(t, "k6_prom_rtt_med"+sel); len(res) != 0 {
		t.Errorf("k6_prom_rtt_med was sent although not in the trend stats: %v", res)
	}

	// No high-cardinality labels on any series of the run.
	all := prom.Query(t, sel)
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
