package webdashboard

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"github.com/cdeload/cdeload/engine/metrics"
	"github.com/cdeload/cdeload/engine/thresholds"
)

// maxBuckets bounds the time series: past it, pairs of buckets merge and
// the bucket width doubles, so a long run costs the same memory (and the
// same report size) as a short one.
const maxBuckets = 600

// bucket aggregates the samples of one time slice.
type bucket struct {
	vus, vusSet       float64 // last vus value, 1 when set
	iterations        float64
	creations         float64 // creations requested (ready sample's start)
	ready, failed     float64
	readyDur          hist
	rtt               map[string]*hist // per transport
	bytesSent, bytesR float64
	ticksMissed       float64
	trafficErrors     float64
	podsPending       float64 // highest workspace_pods_pending sample
	podsPendingSet    float64 // 1 when sampled
}

func (b *bucket) merge(o *bucket) {
	if o.vusSet > 0 {
		b.vus, b.vusSet = o.vus, 1
	}
	b.iterations += o.iterations
	b.creations += o.creations
	b.ready += o.ready
	b.failed += o.failed
	b.readyDur.merge(&o.readyDur)
	for tr, h := range o.rtt {
		b.rttOf(tr).merge(h)
	}
	b.bytesSent += o.bytesSent
	b.bytesR += o.bytesR
	b.ticksMissed += o.ticksMissed
	b.trafficErrors += o.trafficErrors
	if o.podsPendingSet > 0 {
		b.podsPending, b.podsPendingSet = max(b.podsPending, o.podsPending), 1
	}
}

func (b *bucket) rttOf(transport string) *hist {
	if b.rtt == nil {
		b.rtt = map[string]*hist{}
	}
	h := b.rtt[transport]
	if h == nil {
		h = &hist{}
		b.rtt[transport] = h
	}
	return h
}

// wsRecord is what the samples tell about one workspace: the time of each
// phase (zero when not seen).
type wsRecord struct {
	name, vu, iter string
	requested      time.Time
	requestedExact bool // from workspace_ready_duration, not estimated from the build
	built          time.Time
	agent          time.Time
	ready          time.Time
	trafficFirst   time.Time
	trafficLast    time.Time
	deleteStart    time.Time
	deleted        time.Time
	failed         time.Time
	failOp         string
	failReason     string
	order          int

	// The Kubernetes pod's phases: created, scheduled, containers ready.
	podCreated, podScheduled, podReady time.Time
}

// threshold is one threshold expression and the samples it reads.
type threshold struct {
	key, source string
	metricName  string
	filter      *metrics.TagSet
	expr        thresholds.Expr
	parseErr    error
}

// aggregator turns samples into what the page shows. It is fed by one
// goroutine (the flusher) and read under mu by the renderer.
type aggregator struct {
	start   time.Time
	width   time.Duration
	buckets []bucket

	workspaces map[string]*wsRecord
	failures   map[string]int // reason → count
	scenarios  map[string]float64
	totals     struct {
		iterations, ready, failed, checksPass, checksFail, ticksMissed, trafficErrors, bytesSent, bytesR float64
		readyDur                                                                                         hist
		rtt                                                                                              map[string]*hist
	}
	transports []string
	unnamed    int
	podsSeen   bool      // a workspace_pods_pending sample came
	lastRecord *wsRecord // the record found last (a cache)
	last       time.Time

	thresholds []*threshold
	sinks      map[string]metrics.Sink // per threshold key
}

func newAggregator(start time.Time) *aggregator {
	a := &aggregator{start: start, width: time.Second, workspaces: map[string]*wsRecord{},
		failures: map[string]int{}, scenarios: map[string]float64{}, sinks: map[string]metrics.Sink{}}
	a.totals.rtt = map[string]*hist{}
	return a
}

// setThresholds records the run's thresholds (key → expressions).
func (a *aggregator) setThresholds(src map[string][]string) {
	keys := make([]string, 0, len(src))
	for k := range src {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		name, filter, kerr := metrics.ParseMetricKey(k)
		for _, s := range src[k] {
			e, err := thresholds.ParseExpr(s)
			if kerr != nil {
				err = kerr
			}
			a.thresholds = append(a.thresholds, &threshold{key: k, source: s, metricName: name, filter: filter, expr: e, parseErr: err})
		}
	}
}

// bucketAt returns the bucket of time t, growing (and coarsening) the
// series as needed.
func (a *aggregator) bucketAt(t time.Time) *bucket {
	off := t.Sub(a.start)
	if off < 0 {
		off = 0
	}
	i := int(off / a.width)
	for i >= maxBuckets {
		a.coarsen()
		i = int(off / a.width)
	}
	if i >= len(a.buckets) {
		a.buckets = append(a.buckets, make([]bucket, i+1-len(a.buckets))...)
	}
	return &a.buckets[i]
}

// coarsen merges pairs of buckets and doubles the width.
func (a *aggregator) coarsen() {
	n := (len(a.buckets) + 1) / 2
	out := make([]bucket, n)
	for i := range a.buckets {
		out[i/2].merge(&a.buckets[i])
	}
	a.buckets = out
	a.width *= 2
}

func (a *aggregator) record(name string, s *metrics.Sample) *wsRecord {
	// Samples come in runs of one workspace (an echo stream's batch).
	if r := a.lastRecord; r != nil && r.name == name {
		return r
	}
	r := a.workspaces[name]
	defer func() { a.lastRecord = r }()
	if r == nil {
		r = &wsRecord{name: name, order: len(a.workspaces)}
		a.workspaces[name] = r
	}
	if r.vu == "" {
		r.vu, r.iter = s.Metadata["vu"], s.Metadata["iter"]
	}
	return r
}

// add aggregates one batch of samples.
func (a *aggregator) add(batches []metrics.Samples) {
	for _, batch := range batches {
		for i := range batch {
			a.addSample(&batch[i])
		}
	}
}

func ms(v float64) time.Duration { return time.Duration(v * float64(time.Millisecond)) }

func (a *aggregator) addSample(s *metrics.Sample) {
	if s.Metric == nil {
		return
	}
	if s.Time.After(a.last) {
		a.last = s.Time
	}
	for _, th := range a.thresholds {
		if th.parseErr != nil || th.metricName != s.Metric.Name || (th.filter != nil && !metrics.Matches(s.Tags, th.filter)) {
			continue
		}
		sk := a.sinks[th.key]
		if sk == nil {
			sk = metrics.NewSink(s.Metric.Type)
			a.sinks[th.key] = sk
		}
		// A key with several expressions shares one sink: add once.
		if th == a.firstThreshold(th.key) {
			sk.Add(*s)
		}
	}
	b := a.bucketAt(s.Time)
	ws := s.Metadata["workspace"]
	switch s.Metric.Name {
	case "vus":
		b.vus, b.vusSet = s.Value, 1
	case "iterations":
		b.iterations += s.Value
		a.totals.iterations += s.Value
		sc, _ := s.Tags.Get("scenario")
		a.scenarios[sc] += s.Value
	case "checks":
		if s.Value != 0 {
			a.totals.checksPass++
		} else {
			a.totals.checksFail++
		}
	case "workspace_build_duration":
		if ws != "" {
			r := a.record(ws, s)
			r.built = s.Time
			if r.requested.IsZero() {
				r.requested = s.Time.Add(-ms(s.Value))
			}
		}
	case "workspace_agent_connect_duration":
		if ws != "" {
			a.record(ws, s).agent = s.Time
		}
	case "workspace_ready_duration":
		b.ready++
		b.readyDur.add(s.Value)
		a.totals.ready++
		a.totals.readyDur.add(s.Value)
		req := s.Time.Add(-ms(s.Value))
		a.bucketAt(req).creations++
		if ws != "" {
			r := a.record(ws, s)
			r.ready, r.requested, r.requestedExact = s.Time, req, true
		}
	case "workspace_pod_schedule_duration":
		if ws != "" {
			r := a.record(ws, s)
			r.podScheduled = phaseEnd(s)
			r.podCreated = r.podScheduled.Add(-ms(s.Value))
		}
	case "workspace_pod_start_duration":
		if ws != "" {
			r := a.record(ws, s)
			r.podReady = phaseEnd(s)
			if r.podScheduled.IsZero() {
				r.podScheduled = r.podReady.Add(-ms(s.Value))
			}
		}
	case "workspace_pods_pending":
		a.podsSeen = true
		if b.podsPendingSet == 0 || s.Value > b.podsPending {
			b.podsPending, b.podsPendingSet = s.Value, 1
		}
	case "workspace_delete_duration":
		if ws != "" {
			r := a.record(ws, s)
			r.deleted, r.deleteStart = s.Time, s.Time.Add(-ms(s.Value))
		}
	case "workspace_failed":
		if s.Value == 0 {
			return
		}
		b.failed++
		a.totals.failed++
		reason := s.Metadata["error"]
		if reason == "" {
			reason = "(no reason reported)"
		}
		op := s.Metadata["op"]
		if op != "" {
			reason = op + ": " + reason
		}
		a.failures[reason]++
		r := a.failedRecord(ws, s)
		if r.failed.IsZero() {
			r.failed, r.failOp, r.failReason = s.Time, op, reason
		}
	case "traffic_rtt":
		tr, _ := s.Tags.Get("transport")
		if tr == "" {
			tr = "(none)"
		}
		if _, ok := a.totals.rtt[tr]; !ok {
			a.totals.rtt[tr] = &hist{}
			a.transports = append(a.transports, tr)
			slices.Sort(a.transports)
		}
		a.totals.rtt[tr].add(s.Value)
		b.rttOf(tr).add(s.Value)
		a.traffic(ws, s)
	case "traffic_bytes_sent":
		b.bytesSent += s.Value
		a.totals.bytesSent += s.Value
		a.traffic(ws, s)
	case "traffic_bytes_received":
		b.bytesR += s.Value
		a.totals.bytesR += s.Value
		a.traffic(ws, s)
	case "traffic_ticks_missed":
		b.ticksMissed += s.Value
		a.totals.ticksMissed += s.Value
	case "traffic_errors":
		b.trafficErrors += s.Value
		a.totals.trafficErrors += s.Value
	}
}

// phaseEnd is when the phase a pod phase sample measures ended: its
// phase_end metadata (the samples go out later, once the workspace is
// ready), else the sample's time.
func phaseEnd(s *metrics.Sample) time.Time {
	if t, err := time.Parse(time.RFC3339Nano, s.Metadata["phase_end"]); err == nil {
		return t
	}
	return s.Time
}

func (a *aggregator) firstThreshold(key string) *threshold {
	for _, th := range a.thresholds {
		if th.key == key {
			return th
		}
	}
	return nil
}

func (a *aggregator) traffic(ws string, s *metrics.Sample) {
	if ws == "" {
		return
	}
	r := a.record(ws, s)
	if r.trafficFirst.IsZero() || s.Time.Before(r.trafficFirst) {
		r.trafficFirst = s.Time
	}
	if s.Time.After(r.trafficLast) {
		r.trafficLast = s.Time
	}
}

// failedRecord finds the workspace a failure belongs to: the one named in
// its metadata, else the latest not-ready workspace of the same VU
// iteration, else a new row named after the VU and iteration (a create
// that failed before the workspace had a name).
func (a *aggregator) failedRecord(ws string, s *metrics.Sample) *wsRecord {
	if ws != "" {
		return a.record(ws, s)
	}
	vu, iter := s.Metadata["vu"], s.Metadata["iter"]
	var best *wsRecord
	for _, r := range a.workspaces {
		if r.vu == vu && r.iter == iter && r.ready.IsZero() && r.failed.IsZero() && (best == nil || r.order > best.order) {
			best = r
		}
	}
	if best != nil {
		return best
	}
	a.unnamed++
	name := fmt.Sprintf("(unnamed %d: VU %s, iteration %s)", a.unnamed, cmp.Or(vu, "?"), cmp.Or(iter, "?"))
	r := a.record(name, s)
	r.requested = s.Time
	return r
}
