package cdeload

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cdeload/cdeload/engine/metrics"
	"github.com/cdeload/cdeload/tailnet"
)

// Metric names (a contract: thresholds and dashboards use them).
const (
	mWorkspaceBuild        = "workspace_build_duration"
	mWorkspaceAgentConnect = "workspace_agent_connect_duration"
	mWorkspaceReady        = "workspace_ready_duration"
	mWorkspaceDelete       = "workspace_delete_duration"
	mWorkspaceFailed       = "workspace_failed"
	mTailnetUp             = "tailnet_up_duration"
	mTailnetDial           = "tailnet_dial_duration"
	mSSHConnect            = "ssh_connect_duration"
	mTrafficRTT            = "traffic_rtt"
	mTrafficBytesSent      = "traffic_bytes_sent"
	mTrafficBytesReceived  = "traffic_bytes_received"
	mTrafficTicksMissed    = "traffic_ticks_missed"
	mTrafficErrors         = "traffic_errors"
)

// flushInterval is how often echo streams send their batched samples. Each
// batch is a channel send that wakes the engine's sample pump: at 100 ms
// that was one wake-up per frame of a 10 frames/s stream, the largest part
// of the module's cost per echo frame (bench/echo.sh profiles); at 1 s a
// batch carries ten frames and outputs still see the samples within their
// own (1 s and longer) flush periods.
const flushInterval = time.Second

// metricSet holds the module's metrics in one run's registry.
type metricSet struct {
	byName map[string]*metrics.Metric

	workspaceBuild, workspaceAgentConnect, workspaceReady, workspaceDelete, workspaceFailed *metrics.Metric
	tailnetUp, tailnetDial, sshConnect                                                      *metrics.Metric
	rtt, bytesSent, bytesReceived, ticksMissed, trafficErrors                               *metrics.Metric
	dataSent, dataReceived                                                                  *metrics.Metric
}

// registerMetrics registers the module's metrics (or finds them, for the
// second and later VUs) in reg.
func registerMetrics(reg *metrics.Registry, builtin *metrics.Builtin) (*metricSet, error) {
	if reg == nil {
		return nil, errors.New("the host gave the module no metric registry")
	}
	s := &metricSet{byName: map[string]*metrics.Metric{}}
	var errs []error
	add := func(dst **metrics.Metric, name string, typ metrics.MetricType, vt metrics.ValueType) {
		m, err := reg.NewMetric(name, typ, vt)
		if err != nil {
			errs = append(errs, err)
			return
		}
		*dst = m
		s.byName[name] = m
	}
	add(&s.workspaceBuild, mWorkspaceBuild, metrics.Trend, metrics.Time)
	add(&s.workspaceAgentConnect, mWorkspaceAgentConnect, metrics.Trend, metrics.Time)
	add(&s.workspaceReady, mWorkspaceReady, metrics.Trend, metrics.Time)
	add(&s.workspaceDelete, mWorkspaceDelete, metrics.Trend, metrics.Time)
	add(&s.workspaceFailed, mWorkspaceFailed, metrics.Rate, metrics.Default)
	add(new(*metrics.Metric), mPodSchedule, metrics.Trend, metrics.Time) // module_kube.go
	add(new(*metrics.Metric), mPodStart, metrics.Trend, metrics.Time)
	add(new(*metrics.Metric), mPodsPending, metrics.Gauge, metrics.Default)
	add(&s.tailnetUp, mTailnetUp, metrics.Trend, metrics.Time)
	add(&s.tailnetDial, mTailnetDial, metrics.Trend, metrics.Time)
	add(&s.sshConnect, mSSHConnect, metrics.Trend, metrics.Time)
	add(&s.rtt, mTrafficRTT, metrics.Trend, metrics.Time)
	add(&s.bytesSent, mTrafficBytesSent, metrics.Counter, metrics.Data)
	add(&s.bytesReceived, mTrafficBytesReceived, metrics.Counter, metrics.Data)
	add(&s.ticksMissed, mTrafficTicksMissed, metrics.Counter, metrics.Default)
	add(&s.trafficErrors, mTrafficErrors, metrics.Counter, metrics.Default)
	if builtin != nil && builtin.DataSent != nil && builtin.DataReceived != nil {
		s.dataSent, s.dataReceived = builtin.DataSent, builtin.DataReceived
	} else {
		add(&s.dataSent, "data_sent", metrics.Counter, metrics.Data)
		add(&s.dataReceived, "data_received", metrics.Counter, metrics.Data)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("register the k6/x/cdeload metrics: %w", err)
	}
	return s, nil
}

// emitter sends samples with the VU's tags and metadata as they were when
// a JS method was called (State.Tags may only be read on the VU
// goroutine; samples are sent from the goroutines doing the work). A zero
// emitter drops everything.
type emitter struct {
	ctx  context.Context
	ch   chan<- metrics.Samples
	tags *metrics.TagSet
	meta map[string]string
	ms   *metricSet
}

// emitter captures the VU's current tags and metadata plus meta. It must
// be called on the VU goroutine; ctx is the call's VU context.
func (mi *instance) emitter(ctx context.Context, meta map[string]string) *emitter {
	st := mi.vu.State()
	if st == nil || mi.metrics == nil || st.Samples == nil {
		return &emitter{ctx: ctx}
	}
	tags, md := st.Tags()
	if len(meta) > 0 {
		merged := make(map[string]string, len(md)+len(meta))
		for k, v := range md {
			merged[k] = v
		}
		for k, v := range meta {
			if v != "" {
				merged[k] = v
			}
		}
		md = merged
	}
	return &emitter{ctx: ctx, ch: st.Samples, tags: tags, meta: md, ms: mi.metrics}
}

// sample builds one sample of m with the captured tags plus the tag pairs
// in extra (key, value, key, value...).
func (e *emitter) sample(m *metrics.Metric, value float64, extra ...string) metrics.Sample {
	tags := e.tags
	for i := 0; i+1 < len(extra); i += 2 {
		tags = tags.With(extra[i], extra[i+1])
	}
	return metrics.Sample{Metric: m, Tags: tags, Time: time.Now(), Value: value, Metadata: e.meta}
}

// push sends samples unless the call's context is done.
func (e *emitter) push(samples ...metrics.Sample) {
	if e.ch == nil || len(samples) == 0 {
		return
	}
	metrics.PushIfNotDone(e.ctx, e.ch, samples...)
}

// emit sends one sample of the metric picked by m.
func (e *emitter) emit(m func(*metricSet) *metrics.Metric, value float64, extra ...string) {
	if e.ms == nil {
		return
	}
	e.push(e.sample(m(e.ms), value, extra...))
}

// dataSamples returns the data_sent / data_received samples for the bytes
// moved through c since the last report (none when nothing moved).
func (e *emitter) dataSamples(c *connCounter) []metrics.Sample {
	if e.ms == nil || c == nil {
		return nil
	}
	sent, recv := c.deltas()
	var out []metrics.Sample
	if sent > 0 {
		out = append(out, e.sample(e.ms.dataSent, float64(sent)))
	}
	if recv > 0 {
		out = append(out, e.sample(e.ms.dataReceived, float64(recv)))
	}
	return out
}

// connCounter counts the bytes of a tailnet connection and reports them
// as deltas, each byte exactly once.
type connCounter struct {
	*tailnet.CountingConn
	sentReported, recvReported atomic.Int64
}

func newConnCounter(c net.Conn) *connCounter {
	return &connCounter{CountingConn: tailnet.NewCountingConn(c)}
}

func (c *connCounter) deltas() (sent, recv int64) {
	s, r := c.BytesSent(), c.BytesReceived()
	return s - c.sentReported.Swap(s), r - c.recvReported.Swap(r)
}

// streamRecorder is the sshtraffic.Observer of one echo stream: it
// collects RTT samples and counter increments and sends them in one batch
// once flushInterval has passed since the last batch (checked at each of
// the stream's events, so a stream costs no goroutine or timer of its
// own), and everything left when the stream finishes.
type streamRecorder struct {
	e    *emitter
	tags *metrics.TagSet // the emitter's tags plus transport=ssh|terminal
	conn *connCounter

	mu        sync.Mutex
	buf       []metrics.Sample
	lastFlush time.Time
	finished  bool

	sent, recv, missed, errs atomic.Int64
}

// batchExtra is the most samples send appends to a batch: four traffic
// counters and data_sent / data_received.
const batchExtra = 6

// startStream starts a recorder for one stream over conn (may be nil).
func (e *emitter) startStream(transport string, conn *connCounter) *streamRecorder {
	return &streamRecorder{e: e, tags: e.tags.With("transport", transport), conn: conn, lastFlush: time.Now()}
}

// OnRTT implements sshtraffic.Observer.
func (r *streamRecorder) OnRTT(d time.Duration, _ uint64) {
	if r.e.ms == nil {
		return
	}
	now := time.Now()
	s := metrics.Sample{Metric: r.e.ms.rtt, Tags: r.tags, Time: now, Value: metrics.D(d), Metadata: r.e.meta}
	r.mu.Lock()
	if r.finished {
		r.mu.Unlock()
		return
	}
	r.buf = append(r.buf, s)
	batch := r.takeIfDue(now)
	r.mu.Unlock()
	r.send(batch, now, false)
}

// OnBytes implements sshtraffic.Observer.
func (r *streamRecorder) OnBytes(sent, received int) {
	r.sent.Add(int64(sent))
	r.recv.Add(int64(received))
	r.maybeFlush()
}

// OnTickMissed implements sshtraffic.Observer.
func (r *streamRecorder) OnTickMissed(n int) {
	r.missed.Add(int64(n))
	r.maybeFlush()
}

// OnError implements sshtraffic.Observer.
func (r *streamRecorder) OnError(error) { r.errs.Add(1) }

// maybeFlush sends a batch when flushInterval has passed since the last.
func (r *streamRecorder) maybeFlush() {
	if r.e.ms == nil {
		return
	}
	now := time.Now()
	r.mu.Lock()
	if r.finished || now.Sub(r.lastFlush) < flushInterval {
		r.mu.Unlock()
		return
	}
	batch := r.takeIfDue(now)
	r.mu.Unlock()
	r.send(batch, now, false)
}

// takeIfDue returns the buffered samples and starts a new batch when
// flushInterval has passed since the last one, nil otherwise. r.mu
// must be held.
func (r *streamRecorder) takeIfDue(now time.Time) (batch []metrics.Sample) {
	if now.Sub(r.lastFlush) < flushInterval {
		return nil
	}
	batch = r.buf
	if batch == nil {
		batch = []metrics.Sample{}
	}
	// The next batch is about as long as this one, plus room for the
	// counter and data samples send appends.
	r.buf = make([]metrics.Sample, 0, len(batch)+batchExtra)
	r.lastFlush = now
	return batch
}

// finish sends everything left, including zero-valued error and
// missed-tick counters so that thresholds on them see the metric. Events
// after finish are dropped.
func (r *streamRecorder) finish() {
	if r.e.ms == nil {
		return
	}
	now := time.Now()
	r.mu.Lock()
	batch := r.buf
	r.buf = nil
	r.finished = true
	r.mu.Unlock()
	r.send(batch, now, true)
}

// send appends the counter samples to batch (nil: no batch is due) and
// pushes it.
func (r *streamRecorder) send(batch []metrics.Sample, now time.Time, final bool) {
	if batch == nil && !final {
		return
	}
	ms := r.e.ms
	counter := func(m *metrics.Metric, v int64, always bool) {
		if v > 0 || always {
			batch = append(batch, metrics.Sample{Metric: m, Tags: r.tags, Time: now, Value: float64(v), Metadata: r.e.meta})
		}
	}
	counter(ms.bytesSent, r.sent.Swap(0), false)
	counter(ms.bytesReceived, r.recv.Swap(0), false)
	counter(ms.ticksMissed, r.missed.Swap(0), final)
	counter(ms.trafficErrors, r.errs.Swap(0), final)
	batch = append(batch, r.e.dataSamples(r.conn)...)
	if final {
		r.e.push(batch...)
		return
	}
	// A periodic batch is sent from the stream's reader or writer: it must
	// not wait for a busy sample pump (that would delay frames and miss
	// ticks), so when the channel is full the batch goes back into the
	// buffer, for the next batch or the final one.
	if len(batch) == 0 || r.e.ch == nil {
		return
	}
	select {
	case r.e.ch <- metrics.Samples(batch):
	case <-r.e.ctx.Done():
	default:
		r.mu.Lock()
		if r.finished {
			r.mu.Unlock()
			r.e.push(batch...) // finish took the buffer already
			return
		}
		r.buf = append(batch, r.buf...)
		r.mu.Unlock()
	}
}
