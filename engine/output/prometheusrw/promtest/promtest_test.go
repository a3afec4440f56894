package promtest_test

import (
	"strings"
	"testing"
	"time"

	"github.com/cdeload/cdeload/engine/output/prometheusrw/promtest"
)

func TestStartAndQuery(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Prometheus server")
	}
	prom := promtest.Start(t)
	if !strings.HasPrefix(prom.URL, "http://127.0.0.1:") {
		t.Fatalf("URL = %q, want a loopback address", prom.URL)
	}
	if v := prom.One(t, "vector(42)").Value; v != 42 {
		t.Errorf("vector(42) = %v", v)
	}
	at := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	res := prom.QueryAt(t, `label_replace(vector(time()), "k", "v", "", "")`, at)
	if len(res) != 1 || res[0].Value != float64(at.Unix()) || res[0].Labels["k"] != "v" {
		t.Errorf("vector(time()) at %v = %v, want one series k=v value %d", at, res, at.Unix())
	}
}
