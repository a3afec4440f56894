package summary

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/cdeload/cdeload/engine/metrics"
	"github.com/cdeload/cdeload/engine/thresholds"
)

var metricTypes = map[string]metrics.MetricType{
	"counter": metrics.Counter, "gauge": metrics.Gauge, "rate": metrics.Rate, "trend": metrics.Trend,
}

var valueTypes = map[string]metrics.ValueType{
	"default": metrics.Default, "time": metrics.Time, "data": metrics.Data,
}

type inGroup struct {
	Name   string     `json:"name"`
	Path   string     `json:"path"`
	Groups []*inGroup `json:"groups"`
	Checks []struct {
		Name   string `json:"name"`
		Passes uint64 `json:"passes"`
		Fails  uint64 `json:"fails"`
	} `json:"checks"`
}

func (g *inGroup) toGroup() *Group {
	out := NewGroup(g.Path)
	out.Name = g.Name
	for _, c := range g.Checks {
		out.Checks = append(out.Checks, NewCheck(g.Path, c.Name, c.Passes, c.Fails))
	}
	for _, c := range g.Groups {
		if c != nil {
			out.Groups = append(out.Groups, c.toGroup())
		}
	}
	return out
}

// DataFromHandleSummary reads back the handleSummary data object (as
// produced by HandleSummaryData, possibly modified by the script), so that
// a textSummary(data, options) helper can render it with Text. Threshold
// values are taken from the metric's values when the method has a value
// there (e.g. p(95) of a trend whose stats include it).
func DataFromHandleSummary(raw json.RawMessage) (*Data, error) {
	var in struct {
		Metrics map[string]struct {
			Type       string                       `json:"type"`
			Contains   string                       `json:"contains"`
			Values     map[string]float64           `json:"values"`
			Thresholds map[string]struct{ Ok bool } `json:"thresholds"`
		} `json:"metrics"`
		RootGroup *inGroup `json:"root_group"`
		Options   struct {
			SummaryTrendStats []string `json:"summaryTrendStats"`
			SummaryTimeUnit   string   `json:"summaryTimeUnit"`
			NoColor           bool     `json:"noColor"`
		} `json:"options"`
		State struct {
			IsStdOutTTY       bool    `json:"isStdOutTTY"`
			IsStdErrTTY       bool    `json:"isStdErrTTY"`
			TestRunDurationMs float64 `json:"testRunDurationMs"`
		} `json:"state"`
		SetupData json.RawMessage `json:"setup_data"`
	}
	if err := json.Unmarshal(raw, &in); err != nil {
		return nil, fmt.Errorf("reading summary data: %w", err)
	}
	d := &Data{
		TestRunDuration: time.Duration(in.State.TestRunDurationMs * float64(time.Millisecond)),
		SetupData:       in.SetupData,
		Options: Options{TrendStats: in.Options.SummaryTrendStats, TimeUnit: in.Options.SummaryTimeUnit,
			NoColor: in.Options.NoColor, IsStdOutTTY: in.State.IsStdOutTTY, IsStdErrTTY: in.State.IsStdErrTTY},
	}
	names := make([]string, 0, len(in.Metrics))
	for n := range in.Metrics {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		im := in.Metrics[name]
		mt, ok := metricTypes[im.Type]
		if !ok {
			return nil, fmt.Errorf("summary data: metric %q has type %q; expected counter, gauge, rate or trend", name, im.Type)
		}
		m := &Metric{Name: name, Type: mt, Contains: valueTypes[im.Contains], Values: im.Values}
		if strings.Contains(name, "{") {
			parent, filter, err := metrics.ParseMetricKey(name)
			if err != nil {
				return nil, fmt.Errorf("summary data: %w", err)
			}
			m.Parent, m.Filter = parent, filter
		}
		srcs := make([]string, 0, len(im.Thresholds))
		for src := range im.Thresholds {
			srcs = append(srcs, src)
		}
		sort.Strings(srcs)
		for _, src := range srcs {
			e, err := thresholds.ParseExpr(src)
			if err != nil {
				return nil, fmt.Errorf("summary data: threshold %q of %q: %w", src, name, err)
			}
			v, has := im.Values[e.MethodName()]
			r := thresholds.Result{Key: name, Threshold: &thresholds.Threshold{Source: src, Expr: e},
				Evaluated: true, Ok: im.Thresholds[src].Ok, Observed: v, HasValue: has}
			m.Thresholds = append(m.Thresholds, r)
			d.ThresholdResults = append(d.ThresholdResults, r)
		}
		d.Metrics = append(d.Metrics, m)
	}
	sort.SliceStable(d.Metrics, func(i, j int) bool {
		pi, pj := parentName(d.Metrics[i]), parentName(d.Metrics[j])
		if pi != pj {
			return pi < pj
		}
		return d.Metrics[i].Parent == "" && d.Metrics[j].Parent != ""
	})
	if in.RootGroup != nil {
		d.RootGroup = in.RootGroup.toGroup()
	}
	return d, nil
}
