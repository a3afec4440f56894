package thresholds

import (
	"fmt"
	"math"
	"time"

	"github.com/cdeload/cdeload/engine/metrics"
)

// Mode says which evaluation rules apply.
type Mode int

const (
	// Periodic is the evaluation every 2 s during the run: empty sinks are
	// skipped (their thresholds keep their previous result) and
	// abortOnFail may stop the run.
	Periodic Mode = iota
	// Final is the evaluation after the last sample: empty sinks are
	// evaluated too (an empty Counter counts 0, an empty Trend or Gauge
	// reads 0, a Rate without samples passes).
	Final
)

// Result is the latest outcome of one threshold.
type Result struct {
	// Key is the metric or submetric key the threshold is configured on.
	Key       string
	Threshold *Threshold
	// Evaluated is false until the threshold was evaluated once.
	Evaluated bool
	Ok        bool
	// Observed is the value the method read; valid when HasValue.
	Observed float64
	// HasValue is false when the sink had nothing to read (a Rate
	// without samples, a Counter rate at time 0): such a threshold passes.
	HasValue bool
	// NoData is set when a Trend or Gauge sink had no samples at the
	// evaluation: it still reads 0 (k6's rule), but it observed nothing
	// and reports say so. An empty Counter's count of 0 is data.
	NoData bool
}

// Miss returns by how much the observed value is on the wrong side of the
// limit: positive when the threshold fails, 0 when it passes.
func (r Result) Miss() float64 {
	if r.Ok || !r.HasValue {
		return 0
	}
	return math.Abs(r.Observed - r.Threshold.Expr.Limit)
}

// Describe renders the outcome for people, formatting values with format
// (e.g. "312.4ms"): "p(95)=312.4ms" when it passes, and
// "p(95)=312.4ms, 62.4ms over the limit of 250ms" when it fails.
func (r Result) Describe(format func(float64) string) string {
	e := r.Threshold.Expr
	name := e.MethodName()
	if !r.HasValue {
		return name + "=n/a (no samples)"
	}
	obs := name + "=" + format(r.Observed)
	if r.NoData {
		obs = name + "=no data"
		if !r.Ok {
			obs += " (read as 0)"
		}
	}
	if r.Ok {
		return obs
	}
	limit := format(e.Limit)
	miss := r.Miss()
	switch e.Op {
	case Less, LessEq:
		if miss == 0 {
			return fmt.Sprintf("%s, not below the limit of %s", obs, limit)
		}
		return fmt.Sprintf("%s, %s over the limit of %s", obs, format(miss), limit)
	case Greater, GreaterEq:
		if miss == 0 {
			return fmt.Sprintf("%s, not above the limit of %s", obs, limit)
		}
		return fmt.Sprintf("%s, %s under the limit of %s", obs, format(miss), limit)
	case Eq, StrictEq:
		return fmt.Sprintf("%s, %s away from the required %s", obs, format(miss), limit)
	default:
		return fmt.Sprintf("%s, equal to the excluded value %s", obs, limit)
	}
}

// Report is the outcome of one evaluation.
type Report struct {
	// Results holds every threshold, in config order.
	Results []Result
	// Abort is set by a periodic evaluation when an abortOnFail threshold
	// failed after its delayAbortEval; AbortCause is that threshold.
	Abort      bool
	AbortCause *Result
}

// Failed reports whether any threshold failed.
func (r Report) Failed() bool {
	for _, res := range r.Results {
		if !res.Ok {
			return true
		}
	}
	return false
}

// FailedResults returns the failing thresholds, in config order.
func (r Report) FailedResults() []Result {
	var out []Result
	for _, res := range r.Results {
		if !res.Ok {
			out = append(out, res)
		}
	}
	return out
}

// State holds the latest result of every threshold of a config across
// evaluations. It is not safe for concurrent use; the metrics engine
// serialises calls.
type State struct {
	cfg     *Config
	results []Result
	// owner[i] is the index in cfg.Metrics of results[i].
	owner []int
}

// NewState returns the evaluation state of cfg (nil means no thresholds);
// every threshold starts as passing and not yet evaluated.
func NewState(cfg *Config) *State {
	s := &State{cfg: cfg}
	if cfg == nil {
		return s
	}
	for i, mt := range cfg.Metrics {
		for _, th := range mt.Thresholds {
			s.results = append(s.results, Result{Key: mt.Key, Threshold: th, Ok: true})
			s.owner = append(s.owner, i)
		}
	}
	return s
}

// Config returns the config the state evaluates.
func (s *State) Config() *Config { return s.cfg }

// Evaluate checks every threshold against the sink of its key;
// sinkOf(i) returns the sink of cfg.Metrics[i]. elapsed is the test run
// time so far: it is the duration of Counter rates and the clock of
// delayAbortEval.
func (s *State) Evaluate(mode Mode, elapsed time.Duration, sinkOf func(i int) metrics.Sink) Report {
	rep := Report{}
	abortAt := -1
	for i := range s.results {
		r := &s.results[i]
		sink := sinkOf(s.owner[i])
		if sink == nil || (mode == Periodic && sink.IsEmpty()) {
			continue
		}
		v, ok := r.Threshold.Expr.Observe(sink, elapsed)
		r.Evaluated = true
		_, counter := sink.(*metrics.CounterSink) // an empty Counter counted 0: that is data
		r.Observed, r.HasValue, r.NoData = v, ok, sink.IsEmpty() && !counter
		r.Ok = !ok || r.Threshold.Expr.Compare(v)
		if mode == Periodic && !r.Ok && abortAt < 0 && r.Threshold.AbortOnFail && elapsed > r.Threshold.DelayAbortEval {
			abortAt = i
		}
	}
	rep.Results = append([]Result(nil), s.results...)
	if abortAt >= 0 {
		rep.Abort = true
		rep.AbortCause = &rep.Results[abortAt]
	}
	return rep
}

// Results returns a copy of the latest results.
func (s *State) Results() []Result { return append([]Result(nil), s.results...) }

// Tainted reports whether any threshold is failing now.
func (s *State) Tainted() bool {
	for _, r := range s.results {
		if !r.Ok {
			return true
		}
	}
	return false
}
