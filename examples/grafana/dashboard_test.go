// Package grafana_test checks examples/grafana/cdeload.json against a real
// Prometheus fed by cdeload runs of examples/scale.js.
package grafana_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cdeload/cdeload/engine/output/prometheusrw/promtest"
)

type target struct {
	RefID string `json:"refId"`
	Expr  string `json:"expr"`
}

type panel struct {
	ID         int               `json:"id"`
	Type       string            `json:"type"`
	Title      string            `json:"title"`
	Datasource map[string]string `json:"datasource"`
	GridPos    map[string]int    `json:"gridPos"`
	Targets    []target          `json:"targets"`
	Panels     []panel           `json:"panels"`
}

type dashboard struct {
	Title      string  `json:"title"`
	UID        string  `json:"uid"`
	Panels     []panel `json:"panels"`
	Templating struct {
		List []struct {
			Name       string `json:"name"`
			Type       string `json:"type"`
			Definition string `json:"definition"`
		} `json:"list"`
	} `json:"templating"`
}

func load(t *testing.T) dashboard {
	t.Helper()
	raw, err := os.ReadFile("cdeload.json")
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("cdeload.json: %v", err)
	}
	return d
}

func allPanels(ps []panel) []panel {
	var out []panel
	for _, p := range ps {
		out = append(out, p)
		out = append(out, allPanels(p.Panels)...)
	}
	return out
}

// TestDashboardImportable checks what Grafana's import needs from the
// file: a title and uid, unique panel ids with a position, and every query
// on the dashboard's own Prometheus data source variable (no __inputs to
// fill in).
func TestDashboardImportable(t *testing.T) {
	d := load(t)
	if d.Title == "" || d.UID == "" {
		t.Errorf("title %q, uid %q: both are needed", d.Title, d.UID)
	}
	vars := map[string]string{}
	for _, v := range d.Templating.List {
		vars[v.Name] = v.Type
	}
	for _, want := range []string{"datasource", "testid", "scenario"} {
		if _, ok := vars[want]; !ok {
			t.Errorf("no %s variable", want)
		}
	}
	ids := map[int]bool{}
	for _, p := range allPanels(d.Panels) {
		if ids[p.ID] {
			t.Errorf("panel id %d used twice", p.ID)
		}
		ids[p.ID] = true
		if _, ok := p.GridPos["w"]; !ok {
			t.Errorf("panel %q has no gridPos", p.Title)
		}
		if p.Type == "row" {
			continue
		}
		if p.Datasource["uid"] != "${datasource}" {
			t.Errorf("panel %q uses data source %v; want the ${datasource} variable", p.Title, p.Datasource)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			if !strings.Contains(tg.Expr, `testid=~"$testid"`) {
				t.Errorf("panel %q query %s does not filter on $testid", p.Title, tg.RefID)
			}
		}
	}
}

// TestDashboardQueriesReturnData runs examples/scale.js twice into a real
// Prometheus, once with per-stat trend gauges and once with native
// histograms, then runs every query of the dashboard (and its variables)
// with the run's testid: each must return data. Each run is 6 workspaces
// created 2 at a time (--vus 2 --iterations 6, so the default scenario),
// long enough for the counters to change several times: rate() needs two
// samples, and the output sends a series only when it has new samples.
func TestDashboardQueriesReturnData(t *testing.T) {
	if testing.Short() {
		t.Skip("runs two lab scale tests")
	}
	d := load(t)
	prom := promtest.StartWith(t, "--enable-feature=native-histograms")
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "cdeload")
	build := exec.Command("go", "build", "-o", bin, "./cmd/cdeload")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	runs := map[string][]string{
		"stats":  {"K6_PROMETHEUS_RW_TREND_STATS=count,p(50),p(95),p(99)"},
		"native": {"K6_PROMETHEUS_RW_TREND_AS_NATIVE_HISTOGRAM=true"},
	}
	var wg sync.WaitGroup
	errs := make(chan error, len(runs))
	for testid, env := range runs {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, bin, "run", "--quiet", "--tag", "testid="+testid, "-o", "experimental-prometheus-rw",
				"--vus", "2", "--iterations", "6", "-e", "TRAFFIC_DURATION=3s", filepath.Join(root, "examples", "scale.js"))
			cmd.Dir = dir
			cmd.Env = append(append(os.Environ(), "K6_PROMETHEUS_RW_SERVER_URL="+prom.URL+"/api/v1/write",
				"K6_PROMETHEUS_RW_PUSH_INTERVAL=1s"), env...)
			if out, err := cmd.CombinedOutput(); err != nil {
				errs <- fmt.Errorf("run %s: %v\n%s", testid, err, out)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for testid := range runs {
		vars := strings.NewReplacer("$testid", testid, "$scenario", "default", "$__rate_interval", "1m")
		for _, p := range allPanels(d.Panels) {
			for _, tg := range p.Targets {
				form := "both"
				switch tg.RefID[0] {
				case 'S':
					form = "stats"
				case 'N':
					form = "native"
				}
				if form != "both" && form != testid {
					continue
				}
				q := vars.Replace(tg.Expr)
				if !hasData(prom.Query(t, q)) {
					t.Errorf("run %s, panel %q, query %s: no data for\n  %s", testid, p.Title, tg.RefID, q)
				}
			}
		}
		for _, v := range d.Templating.List {
			if v.Type != "query" {
				continue
			}
			values := labelValues(t, prom.URL, vars.Replace(v.Definition))
			want := map[string]string{"testid": testid, "scenario": "default"}[v.Name]
			if !strings.Contains(","+strings.Join(values, ",")+",", ","+want+",") {
				t.Errorf("run %s: variable %s (%s) offers %v; want %q among them", testid, v.Name, v.Definition, values, want)
			}
		}
	}
}

func hasData(series []promtest.Series) bool {
	for _, s := range series {
		if !math.IsNaN(s.Value) && !math.IsInf(s.Value, 0) {
			return true
		}
	}
	return false
}

var labelValuesRE = regexp.MustCompile(`^label_values\((.+), *(\w+)\)$`)

// labelValues answers a Grafana label_values(selector, label) variable
// query with Prometheus's label values API, as Grafana does.
func labelValues(t *testing.T, base, def string) []string {
	t.Helper()
	m := labelValuesRE.FindStringSubmatch(def)
	if m == nil {
		t.Fatalf("variable query %q is not label_values(selector, label)", def)
	}
	resp, err := http.Get(base + "/api/v1/label/" + m[2] + "/values?" + url.Values{"match[]": {m[1]}}.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var r struct {
		Status string   `json:"status"`
		Data   []string `json:"data"`
	}
	if err := json.Unmarshal(body, &r); err != nil || r.Status != "success" {
		t.Fatalf("label values %s: %v %s", def, err, body)
	}
	return r.Data
}
