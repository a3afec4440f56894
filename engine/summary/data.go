// Package summary renders the end-of-test results: the text summary in
// k6's compact (and full) layout, the legacy --summary-export JSON, and the
// data object handed to a script's handleSummary(data), plus writing what
// handleSummary returns.
package summary

import (
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/cdeload/cdeload/engine/metrics"
	"github.com/cdeload/cdeload/engine/thresholds"
)

// Modes of --summary-mode.
const (
	ModeCompact  = "compact"
	ModeFull     = "full"
	ModeDisabled = "disabled"
)

// Options are the summary-related options of a run.
type Options struct {
	// Mode is compact (default), full or disabled.
	Mode string
	// TrendStats is summaryTrendStats; empty means avg, min, med, max,
	// p(90), p(95).
	TrendStats []string
	// TimeUnit is summaryTimeUnit: "" (automatic), "s", "ms" or "us".
	TimeUnit string
	NoColor  bool
	// IsStdOutTTY and IsStdErrTTY are reported to handleSummary.
	IsStdOutTTY, IsStdErrTTY bool
}

// Validate checks the options strictly.
func (o Options) Validate() error {
	switch o.Mode {
	case "", ModeCompact, ModeFull, ModeDisabled:
	default:
		return fmt.Errorf("invalid summary mode %q: allowed are compact, full, disabled", o.Mode)
	}
	switch o.TimeUnit {
	case "", "s", "ms", "us":
	default:
		return fmt.Errorf("invalid summaryTimeUnit %q: allowed are s, ms, us (or empty for automatic)", o.TimeUnit)
	}
	if err := metrics.ValidateTrendStats(o.TrendStats); err != nil {
		return err
	}
	return nil
}

// trendStats returns the configured trend stats or the default.
func (o Options) trendStats() []string {
	if len(o.TrendStats) == 0 {
		return metrics.DefaultTrendStats()
	}
	return o.TrendStats
}

// Data is everything the end of a test reports. The metrics engine builds
// it; the renderers in this package only read it.
type Data struct {
	// Metrics are the observed metrics and submetrics, sorted by name (a
	// submetric sorts right after its parent).
	Metrics []*Metric
	// RootGroup holds the checks and groups of the script; in full mode
	// groups also carry their own metrics.
	RootGroup *Group
	// Scenarios carry per-scenario metrics in full mode.
	Scenarios []*Scenario
	// ThresholdResults are all thresholds, in config order.
	ThresholdResults []thresholds.Result
	TestRunDuration  time.Duration
	SetupData        json.RawMessage
	Options          Options
}

// Metric is one metric or submetric with its aggregated values.
type Metric struct {
	// Name is the metric name, or the full submetric key such as
	// `traffic_rtt{transport:ssh}`.
	Name string
	// Parent is the metric name of a submetric; empty for a metric.
	Parent string
	// Filter is the tag filter of a submetric.
	Filter   *metrics.TagSet
	Type     metrics.MetricType
	Contains metrics.ValueType
	// Values: Counter count, rate (absent at time 0); Gauge value, min,
	// max; Rate rate, passes, fails; Trend one entry per trend stat.
	Values map[string]float64
	// Thresholds are the thresholds configured on this exact key.
	Thresholds []thresholds.Result
	// NoData is set when the metric got no sample (it is listed for its
	// thresholds): the text summary shows "no data", not zeros.
	NoData bool
}

// Check is the pass/fail count of one check in one group.
type Check struct {
	Name, Path, ID string
	Passes, Fails  uint64
}

// Group is a group() of the script; the root group has an empty name and
// path.
type Group struct {
	Name, Path, ID string
	Groups         []*Group
	Checks         []*Check
	// Metrics are the samples tagged with exactly this group (full mode).
	Metrics []*Metric
}

// Scenario holds the metrics of one scenario (full mode).
type Scenario struct {
	Name    string
	Metrics []*Metric
}

// GroupID returns k6's id of a group or check path: the hex MD5 of the
// path.
func GroupID(path string) string {
	sum := md5.Sum([]byte(path))
	return hex.EncodeToString(sum[:])
}

// NewGroup returns an empty group at path ("" is the root, "::a::b" a
// nested group).
func NewGroup(path string) *Group {
	name := path
	if i := strings.LastIndex(path, "::"); i >= 0 {
		name = path[i+2:]
	}
	return &Group{Name: name, Path: path, ID: GroupID(path)}
}

// NewCheck returns a check named name in the group at groupPath.
func NewCheck(groupPath, name string, passes, fails uint64) *Check {
	p := groupPath + "::" + name
	return &Check{Name: name, Path: p, ID: GroupID(p), Passes: passes, Fails: fails}
}

// Find returns the group at path under g, creating missing groups on the
// way ("::a::b" makes a, then b inside a).
func (g *Group) Find(path string) *Group {
	if path == g.Path {
		return g
	}
	rest, ok := strings.CutPrefix(path, g.Path+"::")
	if !ok {
		return nil
	}
	name, _, _ := strings.Cut(rest, "::")
	childPath := g.Path + "::" + name
	i := slices.IndexFunc(g.Groups, func(c *Group) bool { return c.Path == childPath })
	var child *Group
	if i < 0 {
		child = NewGroup(childPath)
		g.Groups = append(g.Groups, child)
	} else {
		child = g.Groups[i]
	}
	return child.Find(path)
}

// Walk calls fn for g and every group below it, depth first.
func (g *Group) Walk(fn func(*Group)) {
	fn(g)
	for _, c := range g.Groups {
		c.Walk(fn)
	}
}

// metric returns the metric named name, or nil.
func (d *Data) metric(name string) *Metric {
	for _, m := range d.Metrics {
		if m.Name == name {
			return m
		}
	}
	return nil
}
