// Package metrics holds the engine's metric model: metric types, the
// registry, tag sets, samples, and the sinks that aggregate them.
package metrics

import (
	"fmt"
	"regexp"
	"sync"
)

// MetricType is the kind of a metric: how its samples are aggregated.
type MetricType int

// The four k6 metric types.
const (
	Counter MetricType = iota
	Gauge
	Trend
	Rate
)

// String returns the lower-case name k6 uses for the type.
func (t MetricType) String() string {
	switch t {
	case Counter:
		return "counter"
	case Gauge:
		return "gauge"
	case Trend:
		return "trend"
	case Rate:
		return "rate"
	}
	return fmt.Sprintf("MetricType(%d)", int(t))
}

// ValueType says what a metric's values measure.
type ValueType int

// Value types: plain numbers, durations in milliseconds, or bytes.
const (
	Default ValueType = iota
	Time
	Data
)

// String returns the lower-case name k6 uses for the value type.
func (v ValueType) String() string {
	switch v {
	case Default:
		return "default"
	case Time:
		return "time"
	case Data:
		return "data"
	}
	return fmt.Sprintf("ValueType(%d)", int(v))
}

// Metric is one registered metric. Metrics are created through a Registry
// and compared by pointer.
type Metric struct {
	Name     string
	Type     MetricType
	Contains ValueType
}

var nameRE = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]{1,128}$`)

// Registry holds every metric of a test run, keyed by name. It is safe for
// concurrent use.
type Registry struct {
	mu      sync.RWMutex
	metrics map[string]*Metric
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{metrics: make(map[string]*Metric)}
}

// NewMetric registers a metric, or returns the existing one when the name is
// already registered with the same type and value type. A different type or
// value type for an existing name, or an invalid name, is an error.
func (r *Registry) NewMetric(name string, typ MetricType, contains ...ValueType) (*Metric, error) {
	if !nameRE.MatchString(name) {
		return nil, fmt.Errorf("invalid metric name %q: it must match %s", name, nameRE)
	}
	vt := Default
	if len(contains) > 0 {
		vt = contains[0]
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if m, ok := r.metrics[name]; ok {
		if m.Type != typ || m.Contains != vt {
			return nil, fmt.Errorf("metric %q already registered as a %s of %s values, not a %s of %s values",
				name, m.Type, m.Contains, typ, vt)
		}
		return m, nil
	}
	m := &Metric{Name: name, Type: typ, Contains: vt}
	r.metrics[name] = m
	return m, nil
}

// MustNewMetric is NewMetric that panics on error; for built-in metrics.
func (r *Registry) MustNewMetric(name string, typ MetricType, contains ...ValueType) *Metric {
	m, err := r.NewMetric(name, typ, contains...)
	if err != nil {
		panic(err)
	}
	return m
}

// Get returns the metric with the given name, or nil.
func (r *Registry) Get(name string) *Metric {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.metrics[name]
}

// All returns every registered metric, in no particular order.
func (r *Registry) All() []*Metric {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]*Metric, 0, len(r.metrics))
	for _, m := range r.metrics {
		out = append(out, m)
	}
	return out
}
