package webdashboard

import (
	"fmt"
	"html"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// line is one series of a chart: a value per bucket, NaN where there is
// none.
type line struct {
	name, class string
	ys          []float64
}

// chartSize is the SVG coordinate space of every chart.
const (
	chartW, chartH = 640.0, 200.0
	padL, padR     = 56.0, 10.0
	padT, padB     = 10.0, 22.0
)

// writeChart writes a server-rendered SVG line chart with its legend.
// total, when not empty, is shown and kept in data-total (what a reader
// checks against the end-of-test summary).
func writeChart(w *strings.Builder, id, title, unit string, width time.Duration, lines []line, total string) {
	n := 0
	ymax := 0.0
	for _, l := range lines {
		n = max(n, len(l.ys))
		for _, y := range l.ys {
			if !math.IsNaN(y) && y > ymax {
				ymax = y
			}
		}
	}
	if ymax <= 0 {
		ymax = 1
	}
	ymax = niceCeil(ymax)
	fmt.Fprintf(w, `<figure class="chart" id="%s" data-total="%s" data-bucket-seconds="%s"><figcaption>%s`,
		id, html.EscapeString(total), strconv.FormatFloat(width.Seconds(), 'f', -1, 64), html.EscapeString(title))
	if total != "" {
		fmt.Fprintf(w, ` <span class="total">total %s</span>`, html.EscapeString(total))
	}
	fmt.Fprintf(w, `</figcaption><svg viewBox="0 0 %g %g" role="img" aria-label="%s">`, chartW, chartH, html.EscapeString(title+" over time, in "+unit))
	plotW, plotH := chartW-padL-padR, chartH-padT-padB
	for i := 0; i <= 4; i++ {
		y := padT + plotH*float64(i)/4
		fmt.Fprintf(w, `<line class="grid" x1="%g" x2="%g" y1="%.1f" y2="%.1f"/>`, padL, chartW-padR, y, y)
		fmt.Fprintf(w, `<text class="ylab" x="%g" y="%.1f">%s</text>`, padL-4, y+4, fmtNum(ymax*float64(4-i)/4))
	}
	span := time.Duration(max(n, 1)) * width
	for i := 0; i <= 4; i++ {
		x := padL + plotW*float64(i)/4
		anchor := "middle"
		switch i {
		case 0:
			anchor = "start"
		case 4:
			anchor = "end"
		}
		fmt.Fprintf(w, `<text class="xlab" x="%.1f" y="%g" text-anchor="%s">%s</text>`, x, chartH-6, anchor, fmtTick(span*time.Duration(i)/4, span))
	}
	xOf := func(i int) float64 {
		if n <= 1 {
			return padL
		}
		return padL + plotW*float64(i)/float64(n-1)
	}
	for _, l := range lines {
		points, sum := 0, 0.0
		var seg []byte // "x,y x,y ..." of the current run of points
		flush := func() {
			if len(seg) > 0 {
				w.WriteString(`<polyline points="`)
				w.Write(seg[:len(seg)-1])
				w.WriteString(`"/>`)
				seg = seg[:0]
			}
		}
		fmt.Fprintf(w, `<g class="series %s" data-series="%s"`, l.class, html.EscapeString(l.name))
		for _, y := range l.ys {
			if math.IsNaN(y) {
				continue
			}
			points++
			sum += y
		}
		fmt.Fprintf(w, ` data-points="%d" data-sum="%s">`, points, strconv.FormatFloat(sum, 'f', -1, 64))
		for i, y := range l.ys {
			if math.IsNaN(y) {
				flush()
				continue
			}
			seg = strconv.AppendFloat(seg, xOf(i), 'f', 1, 64)
			seg = append(seg, ',')
			seg = strconv.AppendFloat(seg, padT+plotH*(1-y/ymax), 'f', 1, 64)
			seg = append(seg, ' ')
		}
		flush()
		if points == 1 {
			for i, y := range l.ys {
				if !math.IsNaN(y) {
					fmt.Fprintf(w, `<circle r="2.5" cx="%.1f" cy="%.1f"/>`, xOf(i), padT+plotH*(1-y/ymax))
				}
			}
		}
		w.WriteString(`</g>`)
	}
	w.WriteString(`</svg><ul class="legend">`)
	for _, l := range lines {
		fmt.Fprintf(w, `<li class="%s">%s</li>`, l.class, html.EscapeString(l.name))
	}
	fmt.Fprintf(w, `</ul><p class="unit">%s per %s bucket</p></figure>`, html.EscapeString(unit), width)
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

func fmtNum(v float64) string {
	switch {
	case v == 0:
		return "0"
	case math.Abs(v) >= 1e9:
		return strconv.FormatFloat(v/1e9, 'f', -1, 64) + "G"
	case math.Abs(v) >= 1e6:
		return strconv.FormatFloat(v/1e6, 'f', -1, 64) + "M"
	case math.Abs(v) >= 1e4:
		return strconv.FormatFloat(v/1e3, 'f', -1, 64) + "k"
	case math.Abs(v) >= 100:
		return strconv.FormatFloat(math.Round(v), 'f', -1, 64)
	default:
		return strconv.FormatFloat(v, 'g', 3, 64)
	}
}

func fmtElapsed(d time.Duration) string {
	s := int(d.Round(time.Second) / time.Second)
	return fmt.Sprintf("%d:%02d", s/60, s%60)
}

// fmtTick labels a time axis tick: seconds with a decimal on short spans,
// m:ss otherwise.
func fmtTick(d, span time.Duration) string {
	if span < 30*time.Second {
		return strconv.FormatFloat(d.Seconds(), 'f', 1, 64) + "s"
	}
	return fmtElapsed(d)
}

// pageState is what a render needs besides the aggregates.
type pageState struct {
	now      time.Time
	live     bool
	finished bool
}

// render writes the dashboard body (everything the live page replaces on
// each update) to w. The caller holds the aggregator's lock.
func (a *aggregator) render(w *strings.Builder, st pageState) {
	end := a.last
	if st.now.After(end) && !st.finished {
		end = st.now
	}
	elapsed := end.Sub(a.start)
	status := "running"
	if st.finished {
		status = "finished"
	}
	fmt.Fprintf(w, `<header><h1>cdeload</h1><p class="status" data-status="%s">%s · started %s · elapsed %s</p></header>`,
		status, status, a.start.UTC().Format("2006-01-02 15:04:05 UTC"), fmtElapsed(elapsed))

	nws := len(a.workspaces)
	w.WriteString(`<section class="tiles">`)
	tile := func(id, label string, v float64) {
		fmt.Fprintf(w, `<div class="tile" id="tile-%s"><span class="v" data-value="%s">%s</span><span class="l">%s</span></div>`,
			id, strconv.FormatFloat(v, 'f', -1, 64), fmtNum(v), label)
	}
	lastVUs := 0.0
	for i := len(a.buckets) - 1; i >= 0; i-- {
		if a.buckets[i].vusSet > 0 {
			lastVUs = a.buckets[i].vus
			break
		}
	}
	tile("vus", "VUs", lastVUs)
	tile("iterations", "iterations", a.totals.iterations)
	tile("workspaces", "workspaces seen", float64(nws))
	tile("ready", "workspaces ready", a.totals.ready)
	tile("failed", "workspace failures", a.totals.failed)
	tile("ticks-missed", "ticks missed", a.totals.ticksMissed)
	tile("traffic-errors", "traffic errors", a.totals.trafficErrors)
	tile("checks-failed", "checks failed", a.totals.checksFail)
	w.WriteString(`</section>`)

	a.renderThresholds(w, elapsed)
	a.renderScenarios(w)

	sec := a.width.Seconds()
	nb := len(a.buckets)
	col := func(f func(b *bucket) float64) []float64 {
		ys := make([]float64, nb)
		for i := range a.buckets {
			ys[i] = f(&a.buckets[i])
		}
		return ys
	}
	nan := math.NaN()
	w.WriteString(`<section class="charts"><h2>Run</h2>`)
	writeChart(w, "chart-vus", "VUs", "VUs", a.width, []line{{name: "vus", class: "c1", ys: carryVUs(a.buckets)}}, "")
	writeChart(w, "chart-iterations", "Iterations per second", "iterations/s", a.width,
		[]line{{name: "iterations/s", class: "c1", ys: col(func(b *bucket) float64 { return b.iterations / sec })}},
		fmtCount(a.totals.iterations))
	w.WriteString(`<h2>Workspaces</h2>`)
	inflight := []line{{name: "in flight", class: "c1", ys: a.inFlight(end)}}
	if a.podsSeen {
		inflight = append(inflight, line{name: "pods pending", class: "c3", ys: col(func(b *bucket) float64 {
			if b.podsPendingSet == 0 {
				return nan
			}
			return b.podsPending
		})})
	}
	writeChart(w, "chart-inflight", "Creations in flight", "workspaces", a.width, inflight, "")
	writeChart(w, "chart-ready", "Workspaces ready and failed per second", "workspaces/s", a.width, []line{
		{name: "ready/s", class: "c2", ys: col(func(b *bucket) float64 { return b.ready / sec })},
		{name: "failed/s", class: "c4", ys: col(func(b *bucket) float64 { return b.failed / sec })},
	}, fmtCount(a.totals.ready))
	// percentiles returns the p50, p95 and p99 lines of the histograms h
	// picks from each bucket (one pass over each histogram).
	percentiles := func(h func(b *bucket) *hist) []line {
		ls := []line{{name: "p50", class: "c1"}, {name: "p95", class: "c3"}, {name: "p99", class: "c4"}}
		for i := range ls {
			ls[i].ys = make([]float64, nb)
		}
		for j := range a.buckets {
			v, ok := h(&a.buckets[j]).quantiles(0.5, 0.95, 0.99)
			for i := range ls {
				ls[i].ys[j] = nan
				if ok {
					ls[i].ys[j] = v[i]
				}
			}
		}
		return ls
	}
	writeChart(w, "chart-ready-duration", "workspace_ready_duration percentiles", "ms", a.width,
		percentiles(func(b *bucket) *hist { return &b.readyDur }), fmtCount(float64(a.totals.readyDur.count)))
	a.renderFailures(w)
	w.WriteString(`<h2>Traffic</h2>`)
	for _, tr := range a.transports {
		writeChart(w, "chart-rtt-"+tr, "traffic_rtt percentiles, transport "+tr, "ms", a.width,
			percentiles(func(b *bucket) *hist { return b.rtt[tr] }), fmtCount(float64(a.totals.rtt[tr].count)))
	}
	writeChart(w, "chart-bytes", "Traffic bytes per second", "bytes/s", a.width, []line{
		{name: "sent", class: "c1", ys: col(func(b *bucket) float64 { return b.bytesSent / sec })},
		{name: "received", class: "c2", ys: col(func(b *bucket) float64 { return b.bytesR / sec })},
	}, fmtCount(a.totals.bytesSent))
	writeChart(w, "chart-missed", "Missed ticks and traffic errors", "count", a.width, []line{
		{name: "ticks missed", class: "c3", ys: col(func(b *bucket) float64 { return b.ticksMissed })},
		{name: "errors", class: "c4", ys: col(func(b *bucket) float64 { return b.trafficErrors })},
	}, fmtCount(a.totals.ticksMissed+a.totals.trafficErrors))
	w.WriteString(`</section>`)
	a.renderTimeline(w, end)
}

func fmtCount(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

// carryVUs repeats the last known VU count over buckets without a sample.
func carryVUs(bs []bucket) []float64 {
	ys := make([]float64, len(bs))
	cur := math.NaN()
	for i := range bs {
		if bs[i].vusSet > 0 {
			cur = bs[i].vus
		}
		ys[i] = cur
	}
	return ys
}

// inFlight counts, per bucket, the workspaces requested and not yet ready
// (nor failed): a workspace is known from its first phase sample on.
func (a *aggregator) inFlight(end time.Time) []float64 {
	ys := make([]float64, len(a.buckets))
	for _, r := range a.workspaces {
		if r.requested.IsZero() {
			continue
		}
		stop := r.ready
		if stop.IsZero() {
			stop = r.failed
		}
		if stop.IsZero() {
			stop = end
		}
		from := int(r.requested.Sub(a.start) / a.width)
		to := int(stop.Sub(a.start) / a.width)
		for i := max(from, 0); i <= to && i < len(ys); i++ {
			ys[i]++
		}
	}
	return ys
}

func (a *aggregator) renderThresholds(w *strings.Builder, elapsed time.Duration) {
	w.WriteString(`<section class="thresholds"><h2>Thresholds</h2>`)
	if len(a.thresholds) == 0 {
		w.WriteString(`<p>The script sets no thresholds.</p></section>`)
		return
	}
	w.WriteString(`<table><thead><tr><th>metric</th><th>threshold</th><th>observed</th><th>state</th></tr></thead><tbody>`)
	for _, th := range a.thresholds {
		state, obs := "no data", "–"
		switch sk := a.sinks[th.key]; {
		case th.parseErr != nil:
			state = "invalid"
		case sk == nil || sk.IsEmpty():
		default:
			if v, ok := th.expr.Observe(sk, elapsed); ok {
				obs = fmtNum(v)
				if th.expr.Compare(v) {
					state = "passing"
				} else {
					state = "failing"
				}
			}
		}
		cls := strings.ReplaceAll(state, " ", "-")
		fmt.Fprintf(w, `<tr class="th-%s" data-state="%s"><td>%s</td><td><code>%s</code></td><td>%s</td><td>%s</td></tr>`,
			cls, state, html.EscapeString(th.key), html.EscapeString(th.source), obs, state)
	}
	w.WriteString(`</tbody></table></section>`)
}

func (a *aggregator) renderScenarios(w *strings.Builder) {
	w.WriteString(`<section class="scenarios"><h2>Scenarios</h2><table><thead><tr><th>scenario</th><th>iterations completed</th></tr></thead><tbody>`)
	names := make([]string, 0, len(a.scenarios))
	for n := range a.scenarios {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		fmt.Fprintf(w, `<tr><td>%s</td><td data-iterations="%s">%s</td></tr>`, html.EscapeString(n), fmtCount(a.scenarios[n]), fmtCount(a.scenarios[n]))
	}
	w.WriteString(`</tbody></table></section>`)
}

func (a *aggregator) renderFailures(w *strings.Builder) {
	w.WriteString(`<div class="failures"><h3>Failures by reason</h3>`)
	if len(a.failures) == 0 {
		w.WriteString(`<p>No workspace operation failed.</p></div>`)
		return
	}
	reasons := make([]string, 0, len(a.failures))
	for r := range a.failures {
		reasons = append(reasons, r)
	}
	slices.SortFunc(reasons, func(x, y string) int {
		if c := a.failures[y] - a.failures[x]; c != 0 {
			return c
		}
		return strings.Compare(x, y)
	})
	w.WriteString(`<table><thead><tr><th>count</th><th>reason</th></tr></thead><tbody>`)
	for _, r := range reasons {
		fmt.Fprintf(w, `<tr><td>%d</td><td>%s</td></tr>`, a.failures[r], html.EscapeString(r))
	}
	w.WriteString(`</tbody></table></div>`)
}

// phaseEvents are the timeline's events in lifecycle order.
var phaseEvents = []string{"requested", "built", "agent-connected", "ready", "traffic-start", "traffic-end", "delete-start", "deleted"}

func (r *wsRecord) events() []time.Time {
	return []time.Time{r.requested, r.built, r.agent, r.ready, r.trafficFirst, r.trafficLast, r.deleteStart, r.deleted}
}

// podEvents are the Kubernetes pod's events, drawn in a lane of their own
// (they overlap the build and the agent's connection).
var podEvents = []string{"pod-created", "pod-scheduled", "pod-ready"}

func (r *wsRecord) podEvents() []time.Time {
	return []time.Time{r.podCreated, r.podScheduled, r.podReady}
}

// segment is a phase between two events (indexes in an event list).
type segment struct {
	from, to     int
	class, label string
}

// podSegments are the pod's phases, between podEvents.
var podSegments = []segment{
	{0, 1, "pod p-pod-sched", "pod scheduling"},
	{1, 2, "pod p-pod-start", "pod starting"},
}

// segments between consecutive events, with the phase each one is.
var segmentPhases = []segment{
	{0, 1, "p-build", "building"},
	{1, 2, "p-agent", "agent connecting"},
	{2, 3, "p-start", "starting"},
	{3, 4, "p-idle", "ready, no traffic"},
	{4, 5, "p-traffic", "traffic"},
	{5, 6, "p-idle", "ready, no traffic"},
	{6, 7, "p-delete", "deleting"},
}

func (a *aggregator) renderTimeline(w *strings.Builder, end time.Time) {
	rows := make([]*wsRecord, 0, len(a.workspaces))
	for _, r := range a.workspaces {
		rows = append(rows, r)
	}
	first := func(r *wsRecord) time.Time {
		for _, t := range r.events() {
			if !t.IsZero() {
				return t
			}
		}
		if !r.podCreated.IsZero() {
			return r.podCreated
		}
		return r.failed
	}
	slices.SortFunc(rows, func(x, y *wsRecord) int {
		if c := first(x).Compare(first(y)); c != 0 {
			return c
		}
		return strings.Compare(x.name, y.name)
	})
	total := end.Sub(a.start)
	if total <= 0 {
		total = time.Second
	}
	pct := func(t time.Time) float64 {
		return math.Max(0, math.Min(100, 100*float64(t.Sub(a.start))/float64(total)))
	}
	// Long timelines lay out and paint only the rows on screen.
	many := ""
	if len(rows) > 200 {
		many = " many"
	}
	fmt.Fprintf(w, `<section class="timeline"><h2>Workspaces timeline</h2><p class="legend-phases">`+
		`<span class="p-build">building</span> <span class="p-agent">agent connecting</span> <span class="p-start">starting</span> `+
		`<span class="p-pod-sched">pod scheduling</span> <span class="p-pod-start">pod starting</span> `+
		`<span class="p-idle">ready</span> <span class="p-traffic">traffic</span> <span class="p-delete">deleting</span> `+
		`<span class="p-failed">✕ failed</span> · 0:00 to %s</p><ol class="rows%s" data-rows="%d">`, fmtElapsed(total), many, len(rows))
	for _, r := range rows {
		ev, pev := r.events(), r.podEvents()
		w.WriteString(`<li class="ws-row`)
		if !r.failed.IsZero() {
			w.WriteString(` failed`)
		}
		fmt.Fprintf(w, `" data-workspace="%s"`, html.EscapeString(r.name))
		for i, t := range ev {
			if !t.IsZero() {
				fmt.Fprintf(w, ` data-%s="%d"`, phaseEvents[i], t.Sub(a.start).Milliseconds())
			}
		}
		for i, t := range pev {
			if !t.IsZero() {
				fmt.Fprintf(w, ` data-%s="%d"`, podEvents[i], t.Sub(a.start).Milliseconds())
			}
		}
		if !r.failed.IsZero() {
			fmt.Fprintf(w, ` data-failed="%d"`, r.failed.Sub(a.start).Milliseconds())
		}
		var desc []string
		for i, t := range ev {
			if !t.IsZero() {
				desc = append(desc, strings.ReplaceAll(phaseEvents[i], "-", " ")+" "+fmtSecs(t.Sub(a.start)))
			}
		}
		for i, t := range pev {
			if !t.IsZero() {
				desc = append(desc, strings.ReplaceAll(podEvents[i], "-", " ")+" "+fmtSecs(t.Sub(a.start)))
			}
		}
		fmt.Fprintf(w, `><span class="ws-name">%s</span><div class="track" role="img" aria-label="%s">`,
			html.EscapeString(r.name), html.EscapeString(r.name+": "+strings.Join(desc, ", ")))
		writeSegments := func(segs []segment, ev []time.Time) {
			for _, sp := range segs {
				from, to := ev[sp.from], ev[sp.to]
				if from.IsZero() || to.IsZero() || to.Before(from) {
					continue
				}
				fmt.Fprintf(w, `<i class="seg %s" style="left:%.2f%%;width:%.2f%%" title="%s %s"></i>`,
					sp.class, pct(from), math.Max(0.15, pct(to)-pct(from)), sp.label, fmtSecs(to.Sub(from)))
			}
		}
		writeSegments(segmentPhases, ev)
		writeSegments(podSegments, pev) // drawn over the lower edge of the others
		if !r.failed.IsZero() {
			fmt.Fprintf(w, `<b class="fail-mark" style="left:%.2f%%" title="%s">✕</b>`, pct(r.failed), html.EscapeString(r.failReason))
		}
		w.WriteString(`</div>`)
		if !r.failed.IsZero() {
			fmt.Fprintf(w, `<span class="ws-note">failed: %s</span>`, html.EscapeString(r.failReason))
		}
		w.WriteString(`</li>`)
	}
	w.WriteString(`</ol></section>`)
}

func fmtSecs(d time.Duration) string { return strconv.FormatFloat(d.Seconds(), 'f', 1, 64) + "s" }

// writePage writes a whole HTML page around body: the live page (which
// replaces the body on every server-sent update) or the report.
func writePage(out io.Writer, body string, live bool) error {
	var b strings.Builder
	b.WriteString(`<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><link rel="icon" href="data:,">`)
	if live {
		b.WriteString(`<title>cdeload live dashboard</title>`)
	} else {
		b.WriteString(`<title>cdeload report</title>`)
	}
	b.WriteString(`<style>` + pageCSS + `</style></head><body>`)
	b.WriteString(`<label class="filter">Find a workspace <input id="ws-filter" type="search" placeholder="name"></label><main id="dash">`)
	b.WriteString(body)
	b.WriteString(`</main><script>` + filterJS)
	if live {
		b.WriteString(liveJS)
	}
	b.WriteString(`</script></body></html>`)
	_, err := io.WriteString(out, b.String())
	return err
}

// filterJS hides the timeline rows whose name does not contain the text
// of the filter box.
const filterJS = `function applyFilter(){var q=document.getElementById('ws-filter').value.toLowerCase();` +
	`document.querySelectorAll('.ws-row').forEach(function(r){r.hidden=q!==''&&r.dataset.workspace.toLowerCase().indexOf(q)<0;});}` +
	`document.getElementById('ws-filter').addEventListener('input',applyFilter);`

// liveJS replaces the dashboard with each update the server sends.
const liveJS = `var es=new EventSource('events');` +
	`es.addEventListener('update',function(e){document.getElementById('dash').innerHTML=e.data;applyFilter();});` +
	`es.addEventListener('done',function(e){document.getElementById('dash').innerHTML=e.data;applyFilter();es.close();});`

const pageCSS = `body{font:14px/1.4 system-ui,sans-serif;margin:0 16px 32px;color:#1d2430;background:#fafbfc}
header{display:flex;align-items:baseline;gap:16px}h1{font-size:20px;margin:12px 0}h2{font-size:16px;margin:20px 0 8px;width:100%}h3{font-size:14px}
.status{color:#555}.filter{position:fixed;top:8px;right:16px;background:#fff;padding:4px 8px;border:1px solid #ccd;border-radius:4px;z-index:2}
.tiles{display:flex;flex-wrap:wrap;gap:8px}.tile{background:#fff;border:1px solid #dde;border-radius:6px;padding:8px 12px;min-width:110px}
.tile .v{display:block;font-size:22px;font-weight:600}.tile .l{color:#666;font-size:12px}
table{border-collapse:collapse;background:#fff}td,th{border:1px solid #dde;padding:3px 8px;text-align:left}
.th-passing td:last-child{color:#1a7f37;font-weight:600}.th-failing td:last-child{color:#cf222e;font-weight:600}
.charts{display:flex;flex-wrap:wrap;gap:12px}.chart{margin:0;background:#fff;border:1px solid #dde;border-radius:6px;padding:8px;width:640px;max-width:100%}
.chart figcaption{font-weight:600}.chart .total{font-weight:400;color:#555;margin-left:8px}.chart svg{width:100%;height:auto}
.grid{stroke:#eee}.ylab{font-size:10px;text-anchor:end;fill:#666}.xlab{font-size:10px;fill:#666}
.series polyline{fill:none;stroke-width:1.6}.unit{font-size:11px;color:#777;margin:0}
.legend{list-style:none;padding:0;margin:2px 0;display:flex;gap:12px;font-size:12px}.legend li:before{content:"";display:inline-block;width:10px;height:3px;margin-right:4px;vertical-align:middle;background:currentColor}
.c1{color:#0969da;stroke:#0969da;fill:#0969da}.c2{color:#1a7f37;stroke:#1a7f37;fill:#1a7f37}.c3{color:#bf8700;stroke:#bf8700;fill:#bf8700}.c4{color:#cf222e;stroke:#cf222e;fill:#cf222e}
.failures{width:100%}
.rows{list-style:none;padding:0;margin:0}.ws-row{display:grid;grid-template-columns:220px 1fr;align-items:center;border-bottom:1px solid #eef;min-height:16px}
.rows.many .ws-row{content-visibility:auto;contain-intrinsic-size:auto 17px}@media print{.rows.many .ws-row{content-visibility:visible}}
.ws-name{font:12px ui-monospace,monospace;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.track{position:relative;height:12px;background:#f0f2f5}.seg{position:absolute;top:0;bottom:0;display:block}
.fail-mark{position:absolute;top:-3px;color:#cf222e;font-size:13px;transform:translateX(-50%)}.ws-note{grid-column:2;font-size:11px;color:#cf222e}
.p-build{background:#8250df}.p-agent{background:#bf8700}.p-start{background:#0969da}.p-idle{background:#afb8c1}.p-traffic{background:#1a7f37}.p-delete{background:#57606a}.p-failed{color:#cf222e}
.seg.pod{top:auto;height:5px;box-shadow:0 -1px #fff}.p-pod-sched{background:#e85aad}.p-pod-start{background:#0f8b8d}
.legend-phases span{display:inline-block;padding:0 6px;color:#fff;border-radius:3px;font-size:12px}.legend-phases .p-failed{color:#cf222e}
`
