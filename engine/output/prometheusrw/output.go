// Package prometheusrw is the Prometheus remote-write output
// (-o experimental-prometheus-rw, alias prometheus-rw). It keeps one
// cumulative aggregate per time series (metric + indexed tags) and pushes
// the series that changed every push interval, with k6's series names:
// k6_<name>_total (counter), k6_<name> (gauge), k6_<name>_rate (rate) and
// k6_<name>_<stat> per trend stat, time trends in seconds. With
// trendAsNativeHistogram, each trend series is instead one cumulative
// Prometheus native histogram (schema 3) named k6_<name>_seconds (time,
// in seconds), k6_<name>_bytes (data) or k6_<name>.
package prometheusrw

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/golang/snappy"

	"github.com/cdeload/cdeload/engine/metrics"
	"github.com/cdeload/cdeload/engine/output"
)

// Names under which the output is registered.
const (
	Name      = "experimental-prometheus-rw"
	AliasName = "prometheus-rw"
)

func init() {
	output.Register(Name, newFromParams)
	output.Register(AliasName, newFromParams)
}

func newFromParams(p output.Params) (output.Output, error) {
	cfg, err := ParseConfig(p.ConfigJSON, p.Env, p.Arg)
	if err != nil {
		return nil, err
	}
	return New(cfg, p.Logger)
}

// maxBackoffIntervals caps the retry backoff after failed pushes, in push
// intervals (and at least maxBackoff).
const (
	maxBackoffIntervals = 8
	maxBackoff          = 30 * time.Second
)

// Output is the remote-write output. AddMetricSamples only appends to a
// buffer; a goroutine aggregates and pushes.
type Output struct {
	cfg    Config
	logger *slog.Logger
	client *client
	agg    *aggregator

	mu      sync.Mutex
	pending []metrics.Samples
	spare   []metrics.Samples
	stopped bool

	wake     chan struct{}
	stop     chan struct{}
	done     chan struct{}
	startMu  sync.Mutex
	started  bool
	stopOnce sync.Once

	// Loop-owned push state.
	req        []byte
	compressed []byte
	included   []sent
	failures   int
	nextTry    time.Time

	statsMu sync.Mutex
	stats   Stats
}

// Stats counts what the output did; for tests and diagnostics.
type Stats struct {
	// Pushes and FailedPushes count remote-write requests.
	Pushes, FailedPushes int
	// Series is the number of metric+tags series seen.
	Series int
	// Samples is the number of samples aggregated.
	Samples uint64
	// LastError is the error of the last failed push, if any.
	LastError string
}

// New builds the output from a parsed configuration. logger may be nil.
func New(cfg Config, logger *slog.Logger) (*Output, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	stats := make([]trendStat, 0, len(cfg.TrendStats))
	for _, s := range cfg.TrendStats {
		st, err := parseStat(s)
		if err != nil {
			return nil, fmt.Errorf("prometheus-rw: invalid trend stat %q: %w", s, err)
		}
		stats = append(stats, st)
	}
	c, err := newClient(cfg)
	if err != nil {
		return nil, err
	}
	agg := newAggregator(stats)
	agg.native = cfg.TrendAsNativeHistogram
	return &Output{
		cfg:    cfg,
		logger: logger.With("output", Name),
		client: c,
		agg:    agg,
		wake:   make(chan struct{}, 1),
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
	}, nil
}

// Description names the output and its endpoint (without credentials).
func (o *Output) Description() string {
	return fmt.Sprintf("Prometheus remote write (%s)", o.client.safeURL)
}

// Start starts the aggregating and pushing goroutine.
func (o *Output) Start() error {
	o.startMu.Lock()
	defer o.startMu.Unlock()
	if o.started {
		return errors.New("prometheus-rw: output already started")
	}
	o.started = true
	go o.run()
	return nil
}

// AddMetricSamples hands samples to the output's goroutine; it never
// blocks on the network or on aggregation.
func (o *Output) AddMetricSamples(batches []metrics.Samples) {
	if len(batches) == 0 {
		return
	}
	o.mu.Lock()
	if !o.stopped {
		o.pending = append(o.pending, batches...)
	}
	o.mu.Unlock()
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

// Stop aggregates what is buffered, pushes it, sends stale markers when
// enabled, and stops the goroutine. A failing remote end is logged, not
// returned: it must not fail the test.
func (o *Output) Stop() error {
	o.startMu.Lock()
	started := o.started
	o.startMu.Unlock()
	o.stopOnce.Do(func() {
		close(o.stop)
		if !started {
			close(o.done)
		}
	})
	<-o.done
	return nil
}

// Stats returns a snapshot of the output's counters.
func (o *Output) Stats() Stats {
	o.statsMu.Lock()
	defer o.statsMu.Unlock()
	return o.stats
}

type pushResult struct {
	err  error
	took time.Duration
}

func (o *Output) run() {
	defer close(o.done)
	ticker := time.NewTicker(o.cfg.PushInterval)
	defer ticker.Stop()
	var inflight chan pushResult
	for {
		select {
		case <-o.wake:
			o.drain(false)
		case <-ticker.C:
			o.drain(false)
			if inflight != nil {
				o.logger.Warn("the previous remote write is still running; pushing later",
					"push_interval", o.cfg.PushInterval)
				continue
			}
			if time.Now().Before(o.nextTry) {
				continue
			}
			if body := o.buildBody(); body != nil {
				inflight = make(chan pushResult, 1)
				go func(ch chan<- pushResult) {
					start := time.Now()
					err := o.client.push(context.Background(), body)
					ch <- pushResult{err: err, took: time.Since(start)}
				}(inflight)
			}
		case r := <-inflight:
			inflight = nil
			o.handleResult(r)
		case <-o.stop:
			o.drain(true)
			if inflight != nil {
				o.handleResult(<-inflight)
			}
			o.finalPush()
			return
		}
	}
}

// drain aggregates the buffered samples.
func (o *Output) drain(final bool) {
	o.mu.Lock()
	batch := o.pending
	o.pending = o.spare[:0]
	if final {
		o.stopped = true
	}
	o.mu.Unlock()
	var n uint64
	for _, samples := range batch {
		for i := range samples {
			o.agg.add(&samples[i])
		}
		n += uint64(len(samples))
	}
	clear(batch) // drop references to the samples
	o.mu.Lock()
	o.spare = batch[:0]
	o.mu.Unlock()
	if n > 0 {
		o.statsMu.Lock()
		o.stats.Samples += n
		o.stats.Series = len(o.agg.order)
		o.statsMu.Unlock()
	}
}

// buildBody encodes and compresses the changed series, or returns nil when
// nothing changed. The returned slice is owned by the caller until the
// next call.
func (o *Output) buildBody() []byte {
	o.req, o.included = o.agg.build(o.req, o.included)
	if len(o.included) == 0 {
		return nil
	}
	o.compressed = snappy.Encode(o.compressed[:cap(o.compressed)], o.req)
	return o.compressed
}

func (o *Output) handleResult(r pushResult) {
	o.statsMu.Lock()
	o.stats.Pushes++
	if r.err != nil {
		o.stats.FailedPushes++
		o.stats.LastError = r.err.Error()
	}
	o.statsMu.Unlock()
	if r.err != nil {
		o.failures++
		backoff := o.cfg.PushInterval << min(o.failures-1, 10)
		limit := max(o.cfg.PushInterval*maxBackoffIntervals, maxBackoff)
		backoff = min(backoff, limit)
		o.nextTry = time.Now().Add(backoff)
		o.logger.Error("remote write failed; the series will be sent again",
			"error", r.err, "series", len(o.included), "retry_in", backoff, "failures", o.failures)
		return
	}
	if o.failures > 0 {
		o.logger.Info("remote write recovered", "after_failures", o.failures)
	}
	o.failures = 0
	o.nextTry = time.Time{}
	markSent(o.included)
	if r.took > o.cfg.PushInterval {
		o.logger.Warn("remote write took longer than the push interval; consider a longer interval",
			"took", r.took, "push_interval", o.cfg.PushInterval)
	}
}

// finalPush pushes what changed since the last push and then the stale
// markers, ignoring the backoff.
func (o *Output) finalPush() {
	if body := o.buildBody(); body != nil {
		start := time.Now()
		err := o.client.push(context.Background(), body)
		o.handleResult(pushResult{err: err, took: time.Since(start)})
		if err != nil {
			o.logger.Error("final remote write failed: the last values of the run were not sent", "error", err)
		}
	}
	if o.agg.dropped > 0 {
		o.logger.Warn("samples with non-finite values were not sent", "count", o.agg.dropped)
	}
	if !o.cfg.StaleMarkers || len(o.agg.order) == 0 {
		return
	}
	o.req = o.agg.buildStale(o.req, time.Now().UnixMilli())
	o.compressed = snappy.Encode(o.compressed[:cap(o.compressed)], o.req)
	start := time.Now()
	err := o.client.push(context.Background(), o.compressed)
	o.included = o.included[:0]
	o.handleResult(pushResult{err: err, took: time.Since(start)})
	if err != nil {
		o.logger.Error("sending stale markers failed", "error", err)
	}
}
