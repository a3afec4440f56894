package summary

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/cdeload/cdeload/engine/metrics"
	"github.com/cdeload/cdeload/engine/thresholds"
)

// Section names of the text summary, in the order they are printed. k6's
// own categories (HTTP, GRPC, WEBSOCKET, BROWSER, EXECUTION, NETWORK,
// CUSTOM) are kept; cdeload's domain metrics get a section per domain
// (WORKSPACE, TAILNET, SSH, TRAFFIC) because a CDE run has many of them
// and one CUSTOM block would bury the latency a reader looks for.
var sectionOrder = []string{"CUSTOM", "WORKSPACE", "TAILNET", "SSH", "TRAFFIC",
	"HTTP", "GRPC", "WEBSOCKET", "BROWSER", "EXECUTION", "NETWORK"}

// Section returns the summary section of a metric name ("" = hidden).
func Section(name string, mode string) string {
	switch name {
	case "checks", "group_duration":
		return ""
	case "vus", "vus_max", "iterations", "iteration_duration", "dropped_iterations":
		return "EXECUTION"
	case "http_req_blocked", "http_req_connecting", "http_req_receiving",
		"http_req_sending", "http_req_tls_handshaking", "http_req_waiting":
		if mode != ModeFull {
			return ""
		}
		return "HTTP"
	}
	prefixes := []struct{ p, s string }{
		{"data_", "NETWORK"}, {"http_", "HTTP"}, {"grpc_", "GRPC"}, {"ws_", "WEBSOCKET"},
		{"browser_", "BROWSER"}, {"workspace_", "WORKSPACE"}, {"tailnet_", "TAILNET"},
		{"ssh_", "SSH"}, {"traffic_", "TRAFFIC"},
	}
	for _, p := range prefixes {
		if strings.HasPrefix(name, p.p) {
			return p.s
		}
	}
	return "CUSTOM"
}

// entry is one line of the summary before alignment: either raw text or
// a metric line whose name is padded with dots and columns aligned.
type entry struct {
	raw    string
	metric bool
	indent int
	name   string
	trend  bool
	cols   []string
	// free columns do not count for the column widths.
	free bool
}

type textBuilder struct {
	d       *Data
	opts    Options
	entries []entry
}

func (b *textBuilder) rawf(format string, args ...any) {
	b.entries = append(b.entries, entry{raw: fmt.Sprintf(format, args...)})
}

func (b *textBuilder) blank() {
	if n := len(b.entries); n > 0 && !b.entries[n-1].metric && b.entries[n-1].raw == "" {
		return
	}
	b.entries = append(b.entries, entry{})
}

func (b *textBuilder) color(code, s string) string {
	if b.opts.NoColor {
		return s
	}
	return "\x1b[" + code + "m" + s + "\x1b[0m"
}

func (b *textBuilder) ok(pass bool) string {
	if pass {
		return b.color("32", "✓")
	}
	return b.color("31", "✗")
}

// Text renders the end-of-test summary as k6's compact (or full) layout.
func Text(d *Data) string {
	var sb strings.Builder
	_ = WriteText(&sb, d)
	return sb.String()
}

// WriteText writes the text summary to w.
func WriteText(w io.Writer, d *Data) error {
	b := &textBuilder{d: d, opts: d.Options}
	b.build()
	_, err := io.WriteString(w, b.render())
	if err != nil {
		return fmt.Errorf("writing the end-of-test summary: %w", err)
	}
	return nil
}

func (b *textBuilder) build() {
	b.blank()
	b.thresholds()
	b.rawf("  %s", b.color("1", "█ TOTAL RESULTS"))
	b.blank()
	b.checks(4, b.allChecks(), true)
	b.metricSections(4, b.d.Metrics)
	if b.opts.Mode == ModeFull && b.d.RootGroup != nil {
		for _, g := range b.d.RootGroup.Groups {
			b.group(g, 2)
		}
		for _, sc := range b.d.Scenarios {
			b.blank()
			b.rawf("  %s", b.color("1", "█ SCENARIO: "+sc.Name))
			b.blank()
			b.metricSections(4, sc.Metrics)
		}
	}
	b.verdict()
}

func (b *textBuilder) thresholds() {
	if len(b.d.ThresholdResults) == 0 {
		return
	}
	b.rawf("  %s", b.color("1", "█ THRESHOLDS"))
	b.blank()
	last := ""
	for _, r := range b.d.ThresholdResults {
		if r.Key != last {
			if last != "" {
				b.blank()
			}
			b.rawf("    %s", r.Key)
			last = r.Key
		}
		b.rawf("    %s '%s' %s", b.ok(r.Ok), r.Threshold.Source, b.observed(r))
	}
	b.blank()
	b.blank()
}

// observed renders "p(95)=148.21ms" for a threshold result.
func (b *textBuilder) observed(r thresholds.Result) string {
	name := r.Threshold.Expr.MethodName()
	if !r.Evaluated {
		return name + "=n/a (not evaluated)"
	}
	if !r.HasValue {
		return name + "=n/a (no samples)"
	}
	if r.NoData {
		return name + "=no data"
	}
	return name + "=" + b.formatterFor(r.Key)(r.Observed)
}

func (b *textBuilder) formatterFor(key string) func(float64) string {
	for _, m := range b.d.Metrics {
		if m.Name == key {
			return ThresholdFormatter(m.Type, m.Contains, b.opts.TimeUnit)
		}
	}
	return FormatNumber
}

// allChecks merges the checks of every group by name, in first-seen order.
func (b *textBuilder) allChecks() []*Check {
	var out []*Check
	if b.d.RootGroup == nil {
		return nil
	}
	b.d.RootGroup.Walk(func(g *Group) {
		for _, c := range g.Checks {
			i := slices.IndexFunc(out, func(o *Check) bool { return o.Name == c.Name })
			if i < 0 {
				cp := *c
				out = append(out, &cp)
				continue
			}
			out[i].Passes += c.Passes
			out[i].Fails += c.Fails
		}
	})
	return out
}

func (b *textBuilder) checks(indent int, checks []*Check, totals bool) {
	pad := strings.Repeat(" ", indent)
	if totals {
		if m := b.d.metric("checks"); m != nil {
			passes, fails := m.Values["passes"], m.Values["fails"]
			total := passes + fails
			cols := []string{FormatNumber(total)}
			if b.d.TestRunDuration > 0 {
				cols = append(cols, FormatNumber(total/b.d.TestRunDuration.Seconds())+"/s")
			}
			ratio := func(n float64) string {
				if total == 0 {
					return FormatPercent(0)
				}
				return FormatPercent(n / total)
			}
			b.metricLine(indent, "checks_total", false, cols)
			b.metricLine(indent, "checks_succeeded", false, []string{ratio(passes), fmt.Sprintf("%.0f out of %.0f", passes, total)})
			b.metricLine(indent, "checks_failed", false, []string{ratio(fails), fmt.Sprintf("%.0f out of %.0f", fails, total)})
			b.blank()
		}
	}
	if len(checks) == 0 {
		return
	}
	for _, c := range checks {
		b.rawf("%s%s %s", pad, b.ok(c.Fails == 0), c.Name)
		if c.Fails > 0 {
			total := c.Passes + c.Fails
			pct := trimFloat(float64(c.Passes)/float64(total)*100, 2)
			b.rawf("%s  %s", pad, b.color("2", fmt.Sprintf("↳  %s%% — ✓ %d / ✗ %d", pct, c.Passes, c.Fails)))
		}
	}
	b.blank()
}

func (b *textBuilder) metricSections(indent int, ms []*Metric) {
	bySection := map[string][]*Metric{}
	for _, m := range ms {
		sec := Section(parentName(m), b.opts.Mode)
		if sec == "" {
			continue
		}
		bySection[sec] = append(bySection[sec], m)
	}
	pad := strings.Repeat(" ", indent)
	for _, sec := range sectionOrder {
		list := bySection[sec]
		if len(list) == 0 {
			continue
		}
		b.rawf("%s%s", pad, b.color("1", sec))
		for _, m := range list {
			name, in := m.Name, indent
			if m.Parent != "" {
				name, in = FormatSubmetricTagsOf(m), indent+2
			}
			if m.NoData && m.Type != metrics.Counter {
				// No column widths: "no data" must not widen the others.
				b.entries = append(b.entries, entry{metric: true, indent: in, name: name, cols: []string{"no data"}, free: true})
				continue
			}
			b.metricLine(in, name, m.Type == metrics.Trend, b.columns(m))
		}
		b.blank()
	}
}

// FormatSubmetricTagsOf renders a submetric's filter as "{ k:v }".
func FormatSubmetricTagsOf(m *Metric) string {
	if m.Filter != nil {
		return metrics.FormatSubmetricTags(m.Filter)
	}
	if i := strings.IndexByte(m.Name, '{'); i >= 0 {
		return "{ " + strings.TrimSuffix(m.Name[i+1:], "}") + " }"
	}
	return m.Name
}

func parentName(m *Metric) string {
	if m.Parent != "" {
		return m.Parent
	}
	return m.Name
}

func (b *textBuilder) metricLine(indent int, name string, trend bool, cols []string) {
	b.entries = append(b.entries, entry{metric: true, indent: indent, name: name, trend: trend, cols: cols})
}

// columns renders a metric's values as summary columns.
func (b *textBuilder) columns(m *Metric) []string {
	f := func(v float64) string { return FormatValue(v, m.Contains, b.opts.TimeUnit) }
	v := m.Values
	switch m.Type {
	case metrics.Counter:
		cols := []string{f(v["count"])}
		if r, ok := v["rate"]; ok {
			cols = append(cols, f(r)+"/s")
		}
		return cols
	case metrics.Gauge:
		return []string{f(v["value"]), "min=" + f(v["min"]), "max=" + f(v["max"])}
	case metrics.Rate:
		p, fl := v["passes"], v["fails"]
		return []string{FormatPercent(v["rate"]), fmt.Sprintf("%.0f out of %.0f", p, p+fl)}
	}
	stats := b.opts.trendStats()
	cols := make([]string, 0, len(stats))
	for _, st := range stats {
		val, ok := v[st]
		s := "n/a"
		if ok {
			if st == "count" {
				s = FormatNumber(val)
			} else {
				s = f(val)
			}
		}
		cols = append(cols, st+"="+s)
	}
	return cols
}

func (b *textBuilder) group(g *Group, indent int) {
	pad := strings.Repeat(" ", indent)
	b.blank()
	b.rawf("%s%s", pad, b.color("1", "█ GROUP: "+g.Name))
	b.blank()
	b.checks(indent+2, g.Checks, false)
	b.metricSections(indent+2, g.Metrics)
	for _, c := range g.Groups {
		b.group(c, indent+2)
	}
}

// verdict states plainly which thresholds failed and by how much.
func (b *textBuilder) verdict() {
	var failed []thresholds.Result
	for _, r := range b.d.ThresholdResults {
		if !r.Ok {
			failed = append(failed, r)
		}
	}
	if len(failed) == 0 {
		return
	}
	b.blank()
	b.rawf("  %s", b.color("31", fmt.Sprintf("✗ %d of %d thresholds crossed:", len(failed), len(b.d.ThresholdResults))))
	for _, r := range failed {
		b.rawf("    %s '%s': %s", r.Key, r.Threshold.Source, r.Describe(b.formatterFor(r.Key)))
	}
	b.blank()
}

func (b *textBuilder) render() string {
	nameW := 0
	var trendW, otherW []int
	widen := func(ws []int, cols []string) []int {
		for i, c := range cols {
			if i >= len(ws) {
				ws = append(ws, 0)
			}
			ws[i] = max(ws[i], utf8.RuneCountInString(c))
		}
		return ws
	}
	for _, e := range b.entries {
		if !e.metric {
			continue
		}
		nameW = max(nameW, e.indent+utf8.RuneCountInString(e.name))
		if e.free {
			continue
		}
		if e.trend {
			trendW = widen(trendW, e.cols)
		} else {
			otherW = widen(otherW, e.cols)
		}
	}
	nameW += 3
	var sb strings.Builder
	for _, e := range b.entries {
		if !e.metric {
			sb.WriteString(e.raw)
			sb.WriteByte('\n')
			continue
		}
		sb.WriteString(strings.Repeat(" ", e.indent))
		sb.WriteString(e.name)
		sb.WriteString(b.color("2", strings.Repeat(".", nameW-e.indent-utf8.RuneCountInString(e.name))))
		sb.WriteString(": ")
		ws := otherW
		if e.trend {
			ws = trendW
		}
		for i, c := range e.cols {
			if i > 0 {
				sb.WriteByte(' ')
			}
			sb.WriteString(b.color("36", c))
			if i < len(e.cols)-1 {
				sb.WriteString(strings.Repeat(" ", ws[i]-utf8.RuneCountInString(c)))
			}
		}
		sb.WriteByte('\n')
	}
	return sb.String()
}
