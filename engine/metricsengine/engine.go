// Package metricsengine is the run's own results aggregator. It receives
// every sample like any output, aggregates per metric and per submetric
// (one per threshold key with a tag filter), counts checks per group, and
// optionally aggregates per group and per scenario for the full summary.
// It evaluates thresholds while samples keep arriving and builds the
// end-of-test summary data.
package metricsengine

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/cdeload/cdeload/engine/lib"
	"github.com/cdeload/cdeload/engine/metrics"
	"github.com/cdeload/cdeload/engine/output"
	"github.com/cdeload/cdeload/engine/summary"
	"github.com/cdeload/cdeload/engine/thresholds"
)

// Options configure an Engine.
type Options struct {
	// Thresholds is the parsed and validated options.thresholds (see
	// thresholds.Load); nil means none.
	Thresholds *thresholds.Config
	// NoThresholds (--no-thresholds) ignores Thresholds entirely: no
	// submetrics, nothing observed, nothing evaluated.
	NoThresholds bool
	// PerGroupAndScenario aggregates every metric per group tag and per
	// scenario tag as well, for --summary-mode=full. It costs memory
	// (Trend values are kept once more per group and per scenario).
	PerGroupAndScenario bool
	// ExpectedResponse adds the submetric
	// http_req_duration{expected_response:true} to the summary when the
	// metric exists, as k6 does while the expected_response system tag
	// is enabled.
	ExpectedResponse bool
	// FlushInterval is how often buffered samples are aggregated after
	// Start; 50ms when zero.
	FlushInterval time.Duration
}

// maxQueued is the number of buffered samples beyond which
// AddMetricSamples aggregates inline instead of waiting for the flusher.
const maxQueued = 1 << 16

// maxRoutes bounds each metric's cache of per-tag-set routes.
const maxRoutes = 1 << 14

// Engine aggregates samples. It is an output.Output; all methods are safe
// for concurrent use.
type Engine struct {
	reg  *metrics.Registry
	opts Options

	qmu    sync.Mutex
	queue  []metrics.Samples
	queued int

	mu        sync.Mutex
	byMetric  map[*metrics.Metric]*metricState
	byName    map[string]*metricState
	ordered   []*metricState // creation order
	keySinks  []metrics.Sink // per thresholds config entry
	th        *thresholds.State
	checks    map[checkKey]*checkCount
	checkList []*checkCount
	groups    []string // group paths seen, in order
	groupSeen map[string]bool
	perGroup  map[string]*sinkSet // group path -> sinks
	perScen   map[string]*sinkSet // scenario -> sinks
	scenOrder []string

	stopOnce sync.Once
	stop     chan struct{}
	done     chan struct{}
	started  bool
}

var _ output.Output = (*Engine)(nil)

type checkKey struct{ group, name string }

type checkCount struct {
	group, name   string
	passes, fails uint64
}

// sinkSet holds one sink per metric, in first-seen order.
type sinkSet struct {
	sinks map[*metrics.Metric]metrics.Sink
	order []*metrics.Metric
}

func (s *sinkSet) get(m *metrics.Metric) metrics.Sink {
	if sk, ok := s.sinks[m]; ok {
		return sk
	}
	sk := metrics.NewSink(m.Type)
	s.sinks[m] = sk
	s.order = append(s.order, m)
	return sk
}

type subState struct {
	key    string
	filter *metrics.TagSet
	sink   metrics.Sink
}

type metricState struct {
	metric   *metrics.Metric // nil until the metric is known
	name     string
	sink     metrics.Sink
	subs     []*subState
	observed bool // has thresholds: shown even when empty
	isChecks bool
	isGroup  bool

	lastTags  *metrics.TagSet
	lastRoute *route
	routes    map[string]*route
}

// route is what a sample of one metric with one tag set feeds besides the
// metric's own sink; computed once per tag set.
type route struct {
	extra []metrics.Sink
	check *checkCount
}

// New returns an engine for the metrics of reg. Threshold keys are bound
// to their metrics by name; a metric registered later is bound at its
// first sample.
func New(reg *metrics.Registry, opts Options) (*Engine, error) {
	if reg == nil {
		return nil, fmt.Errorf("metricsengine: nil metric registry")
	}
	if opts.FlushInterval <= 0 {
		opts.FlushInterval = 50 * time.Millisecond
	}
	if opts.NoThresholds {
		opts.Thresholds = nil
	}
	e := &Engine{
		reg: reg, opts: opts,
		byMetric:  map[*metrics.Metric]*metricState{},
		byName:    map[string]*metricState{},
		checks:    map[checkKey]*checkCount{},
		groupSeen: map[string]bool{},
		perGroup:  map[string]*sinkSet{},
		perScen:   map[string]*sinkSet{},
		stop:      make(chan struct{}),
		done:      make(chan struct{}),
	}
	cfg := opts.Thresholds
	e.th = thresholds.NewState(cfg)
	if cfg != nil {
		for _, mt := range cfg.Metrics {
			ms := e.stateByName(mt.Metric)
			if ms.sink == nil {
				m := reg.Get(mt.Metric)
				if m == nil {
					return nil, lib.Errorf(lib.ExitInvalidConfig, "invalid threshold on %q: metric %q is not defined", mt.Key, mt.Metric)
				}
				e.bind(ms, m)
			}
			ms.observed = true
			if mt.Filter == nil {
				e.keySinks = append(e.keySinks, ms.sink)
				continue
			}
			sub := &subState{key: mt.Key, filter: mt.Filter, sink: metrics.NewSink(ms.metric.Type)}
			ms.subs = append(ms.subs, sub)
			e.keySinks = append(e.keySinks, sub.sink)
		}
	}
	if opts.ExpectedResponse {
		e.addExpectedResponse(reg)
	}
	return e, nil
}

// expectedResponseKey is the submetric k6 shows for successful requests.
const expectedResponseKey = "http_req_duration{expected_response:true}"

func (e *Engine) addExpectedResponse(reg *metrics.Registry) {
	m := reg.Get("http_req_duration")
	if m == nil {
		return
	}
	ms := e.stateByName(m.Name)
	if ms.sink == nil {
		e.bind(ms, m)
	}
	for _, sub := range ms.subs {
		if sub.key == expectedResponseKey {
			return
		}
	}
	_, filter, err := metrics.ParseMetricKey(expectedResponseKey)
	if err != nil {
		return
	}
	ms.subs = append(ms.subs, &subState{key: expectedResponseKey, filter: filter, sink: metrics.NewSink(m.Type)})
}

func (e *Engine) stateByName(name string) *metricState {
	ms, ok := e.byName[name]
	if !ok {
		ms = &metricState{name: name, routes: map[string]*route{}}
		e.byName[name] = ms
		e.ordered = append(e.ordered, ms)
	}
	return ms
}

func (e *Engine) bind(ms *metricState, m *metrics.Metric) {
	ms.metric = m
	ms.sink = metrics.NewSink(m.Type)
	ms.isChecks = m.Name == "checks" && m.Type == metrics.Rate
	ms.isGroup = m.Name == "group_duration"
	e.byMetric[m] = ms
}

// Description names the engine; it is internal and not meant for the
// banner's output list.
func (e *Engine) Description() string { return "metrics engine (thresholds and summary)" }

// Start begins aggregating buffered samples every FlushInterval.
func (e *Engine) Start() error {
	e.qmu.Lock()
	if e.started {
		e.qmu.Unlock()
		return fmt.Errorf("metricsengine: already started")
	}
	e.started = true
	e.qmu.Unlock()
	go func() {
		defer close(e.done)
		t := time.NewTicker(e.opts.FlushInterval)
		defer t.Stop()
		for {
			select {
			case <-e.stop:
				return
			case <-t.C:
				e.Flush()
			}
		}
	}()
	return nil
}

// Stop stops the background flusher and aggregates what is buffered.
func (e *Engine) Stop() error {
	e.stopOnce.Do(func() {
		close(e.stop)
		e.qmu.Lock()
		started := e.started
		e.qmu.Unlock()
		if started {
			<-e.done
		}
	})
	e.Flush()
	return nil
}

// AddMetricSamples buffers the batches; they belong to the engine from now
// on. When a lot is buffered it aggregates inline, which bounds memory.
func (e *Engine) AddMetricSamples(batches []metrics.Samples) {
	n := 0
	for _, b := range batches {
		n += len(b)
	}
	if n == 0 {
		return
	}
	e.qmu.Lock()
	e.queue = append(e.queue, batches...)
	e.queued += n
	full := e.queued >= maxQueued
	e.qmu.Unlock()
	if full {
		e.Flush()
	}
}

// Flush aggregates every buffered sample now. The aggregation lock is
// taken before the queue is emptied, so batches are aggregated in the
// order they arrived even when several goroutines flush.
func (e *Engine) Flush() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.qmu.Lock()
	q := e.queue
	e.queue, e.queued = nil, 0
	e.qmu.Unlock()
	for _, batch := range q {
		e.ingest(batch)
	}
}

// ingest aggregates one batch; e.mu is held.
func (e *Engine) ingest(batch metrics.Samples) {
	var last *metrics.Metric
	var ms *metricState
	for i := range batch {
		s := &batch[i]
		if s.Metric == nil || s.Value != s.Value { // no metric, or NaN
			continue
		}
		if s.Metric != last {
			last = s.Metric
			ms = e.byMetric[last]
			if ms == nil {
				ms = e.stateByName(last.Name)
				if ms.metric != nil && ms.metric != last {
					// Same name from another registry: keep them apart.
					ms = &metricState{name: last.Name, routes: map[string]*route{}}
					e.ordered = append(e.ordered, ms)
				}
				e.bind(ms, last)
			}
		}
		ms.sink.Add(*s)
		if len(ms.subs) == 0 && !ms.isChecks && !ms.isGroup && !e.opts.PerGroupAndScenario {
			continue
		}
		r := ms.lastRoute
		if s.Tags != ms.lastTags || r == nil {
			r = e.routeFor(ms, s.Tags)
			ms.lastTags, ms.lastRoute = s.Tags, r
		}
		for _, sk := range r.extra {
			sk.Add(*s)
		}
		if r.check != nil {
			if s.Value != 0 {
				r.check.passes++
			} else {
				r.check.fails++
			}
		}
	}
}

func (e *Engine) routeFor(ms *metricState, tags *metrics.TagSet) *route {
	id := tags.ID()
	if r, ok := ms.routes[id]; ok {
		return r
	}
	r := &route{}
	for _, sub := range ms.subs {
		if tags.Contains(sub.filter) {
			r.extra = append(r.extra, sub.sink)
		}
	}
	group, _ := tags.Get("group")
	if ms.isChecks {
		name, _ := tags.Get("check")
		k := checkKey{group, name}
		c := e.checks[k]
		if c == nil {
			c = &checkCount{group: group, name: name}
			e.checks[k] = c
			e.checkList = append(e.checkList, c)
		}
		r.check = c
	}
	if (ms.isChecks || ms.isGroup) && group != "" && !e.groupSeen[group] {
		e.groupSeen[group] = true
		e.groups = append(e.groups, group)
	}
	if e.opts.PerGroupAndScenario {
		if group != "" {
			r.extra = append(r.extra, e.sinkSetFor(e.perGroup, group, nil).get(ms.metric))
		}
		if sc, ok := tags.Get("scenario"); ok && sc != "" {
			r.extra = append(r.extra, e.sinkSetFor(e.perScen, sc, &e.scenOrder).get(ms.metric))
		}
	}
	if len(ms.routes) >= maxRoutes {
		clear(ms.routes)
	}
	ms.routes[id] = r
	return r
}

func (e *Engine) sinkSetFor(m map[string]*sinkSet, key string, order *[]string) *sinkSet {
	s, ok := m[key]
	if !ok {
		s = &sinkSet{sinks: map[*metrics.Metric]metrics.Sink{}}
		m[key] = s
		if order != nil {
			*order = append(*order, key)
		}
	}
	return s
}

// EvaluateThresholds aggregates what is buffered and evaluates every
// threshold with the rules of mode; elapsed is the test run time so far.
func (e *Engine) EvaluateThresholds(mode thresholds.Mode, elapsed time.Duration) thresholds.Report {
	e.Flush()
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.th.Evaluate(mode, elapsed, func(i int) metrics.Sink { return e.keySinks[i] })
}

// CheckThresholds is the run's periodic (every 2 s) hook: it evaluates
// thresholds and returns an error carrying exit code 99 that names the
// threshold when an abortOnFail threshold requires the run to stop, and
// nil otherwise.
func (e *Engine) CheckThresholds(elapsed time.Duration) error {
	rep := e.EvaluateThresholds(thresholds.Periodic, elapsed)
	if !rep.Abort {
		return nil
	}
	c := rep.AbortCause
	return lib.Errorf(lib.ExitThresholdsFailed, "threshold %q on %s crossed (%s) and has abortOnFail: stopping the test",
		c.Threshold.Source, c.Key, c.Describe(e.formatterFor(c.Key)))
}

// FinalThresholds evaluates thresholds after the last sample. The error
// carries exit code 99 and names every failing threshold; it is nil when
// all pass.
func (e *Engine) FinalThresholds(elapsed time.Duration) (thresholds.Report, error) {
	rep := e.EvaluateThresholds(thresholds.Final, elapsed)
	failed := rep.FailedResults()
	if len(failed) == 0 {
		return rep, nil
	}
	parts := make([]string, 0, len(failed))
	for _, r := range failed {
		parts = append(parts, fmt.Sprintf("%s '%s': %s", r.Key, r.Threshold.Source, r.Describe(e.formatterFor(r.Key))))
	}
	return rep, lib.Errorf(lib.ExitThresholdsFailed, "thresholds crossed: %s", strings.Join(parts, "; "))
}

func (e *Engine) formatterFor(key string) func(float64) string {
	name, _, _ := strings.Cut(key, "{")
	var vt metrics.ValueType
	var mt metrics.MetricType
	if m := e.reg.Get(name); m != nil {
		vt, mt = m.Contains, m.Type
	}
	return summary.ThresholdFormatter(mt, vt, "")
}

// Tainted reports whether any threshold failed at the latest evaluation
// (REST /v1/status "tainted").
func (e *Engine) Tainted() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.th.Tainted()
}

// ObservedMetrics returns the names of the metrics that have samples or
// thresholds, sorted.
func (e *Engine) ObservedMetrics() []string {
	e.Flush()
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []string
	for _, ms := range e.ordered {
		if ms.sink != nil && (ms.observed || !ms.sink.IsEmpty()) {
			out = append(out, ms.name)
		}
	}
	sort.Strings(out)
	return out
}

// Values returns the Format of the sink of a metric or threshold
// submetric key, and false when the key is unknown.
func (e *Engine) Values(key string, elapsed time.Duration) (map[string]float64, bool) {
	e.Flush()
	e.mu.Lock()
	defer e.mu.Unlock()
	name, _, _ := strings.Cut(key, "{")
	ms := e.byName[name]
	if ms == nil || ms.sink == nil {
		return nil, false
	}
	if name == key {
		return ms.sink.Format(elapsed), true
	}
	for _, sub := range ms.subs {
		if sub.key == key {
			return sub.sink.Format(elapsed), true
		}
	}
	return nil, false
}

// Summary builds the end-of-test data from what was aggregated and the
// latest threshold results; call FinalThresholds first. elapsed is the
// test run duration.
func (e *Engine) Summary(opts summary.Options, elapsed time.Duration, setupData json.RawMessage) *summary.Data {
	e.Flush()
	e.mu.Lock()
	defer e.mu.Unlock()
	stats := opts.TrendStats
	if len(stats) == 0 {
		stats = metrics.DefaultTrendStats()
	}
	d := &summary.Data{
		TestRunDuration:  elapsed,
		SetupData:        setupData,
		Options:          opts,
		ThresholdResults: e.th.Results(),
	}
	byKey := map[string][]thresholds.Result{}
	for _, r := range d.ThresholdResults {
		byKey[r.Key] = append(byKey[r.Key], r)
	}
	for _, ms := range e.ordered {
		if ms.sink == nil || (!ms.observed && ms.sink.IsEmpty()) {
			continue
		}
		d.Metrics = append(d.Metrics, &summary.Metric{
			Name: ms.name, Type: ms.metric.Type, Contains: ms.metric.Contains,
			Values: values(ms.sink, ms.metric.Type, elapsed, stats), Thresholds: byKey[ms.name],
			NoData: ms.sink.IsEmpty(),
		})
		for _, sub := range ms.subs {
			d.Metrics = append(d.Metrics, &summary.Metric{
				Name: sub.key, Parent: ms.name, Filter: sub.filter,
				Type: ms.metric.Type, Contains: ms.metric.Contains,
				Values: values(sub.sink, ms.metric.Type, elapsed, stats), Thresholds: byKey[sub.key],
				NoData: sub.sink.IsEmpty(),
			})
		}
	}
	sortMetrics(d.Metrics)

	root := summary.NewGroup("")
	for _, g := range e.groups {
		root.Find(g)
	}
	for _, c := range e.checkList {
		g := root.Find(c.group)
		if g == nil {
			g = root
		}
		g.Checks = append(g.Checks, summary.NewCheck(g.Path, c.name, c.passes, c.fails))
	}
	if e.opts.PerGroupAndScenario {
		for _, path := range e.groups {
			g := root.Find(path)
			if set := e.perGroup[path]; g != nil && set != nil {
				g.Metrics = setMetrics(set, elapsed, stats)
			}
		}
		for _, name := range e.scenOrder {
			d.Scenarios = append(d.Scenarios, &summary.Scenario{Name: name, Metrics: setMetrics(e.perScen[name], elapsed, stats)})
		}
	}
	d.RootGroup = root
	return d
}

func setMetrics(set *sinkSet, elapsed time.Duration, stats []string) []*summary.Metric {
	var out []*summary.Metric
	for _, m := range set.order {
		out = append(out, &summary.Metric{Name: m.Name, Type: m.Type, Contains: m.Contains,
			Values: values(set.sinks[m], m.Type, elapsed, stats)})
	}
	sortMetrics(out)
	return out
}

// sortMetrics sorts by name with each submetric right after its parent.
func sortMetrics(ms []*summary.Metric) {
	sort.SliceStable(ms, func(i, j int) bool {
		pi, pj := parentName(ms[i]), parentName(ms[j])
		if pi != pj {
			return pi < pj
		}
		if (ms[i].Parent == "") != (ms[j].Parent == "") {
			return ms[i].Parent == ""
		}
		return ms[i].Name < ms[j].Name
	})
}

func parentName(m *summary.Metric) string {
	if m.Parent != "" {
		return m.Parent
	}
	return m.Name
}

// values formats a sink for the summary: trends per trend stat, a Rate's
// missing rate as 0.
func values(sink metrics.Sink, t metrics.MetricType, elapsed time.Duration, stats []string) map[string]float64 {
	switch s := sink.(type) {
	case *metrics.TrendSink:
		out := make(map[string]float64, len(stats))
		for _, st := range stats {
			if v, ok := s.Stat(st); ok {
				out[st] = v
			}
		}
		return out
	case *metrics.RateSink:
		out := s.Format(elapsed)
		if _, ok := out["rate"]; !ok {
			out["rate"] = 0
		}
		return out
	}
	return sink.Format(elapsed)
}
