package thresholds

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/cdeload/cdeload/engine/lib"
	"github.com/cdeload/cdeload/engine/metrics"
)

// Threshold is one configured threshold of a metric or submetric.
type Threshold struct {
	// Source is the expression as the user wrote it; it names the
	// threshold in the summary and in JSON exports.
	Source string
	Expr   Expr
	// AbortOnFail stops the run as soon as the threshold fails during the
	// run, once DelayAbortEval of test time has passed.
	AbortOnFail    bool
	DelayAbortEval time.Duration
}

// MetricThresholds are the thresholds configured under one key of
// options.thresholds.
type MetricThresholds struct {
	// Key is the key as written: a metric name, or a submetric such as
	// `traffic_rtt{transport:ssh}`.
	Key string
	// Metric is the metric name part of Key.
	Metric string
	// Filter is the submetric tag filter; nil for a whole metric.
	Filter     *metrics.TagSet
	Thresholds []*Threshold
}

// Config is a parsed options.thresholds object, sorted by key.
type Config struct {
	Metrics []*MetricThresholds
}

// Len returns the number of thresholds over all keys.
func (c *Config) Len() int {
	if c == nil {
		return 0
	}
	n := 0
	for _, m := range c.Metrics {
		n += len(m.Thresholds)
	}
	return n
}

// ParseConfig parses the raw JSON of options.thresholds:
//
//	{ "metric{tag:value}": ["p(95)<200", {"threshold": "rate<0.01", "abortOnFail": true, "delayAbortEval": "10s"}] }
//
// Errors carry exit code 104 (invalid config) and name the key and the
// threshold. An empty or null input gives an empty config.
func ParseConfig(raw json.RawMessage) (*Config, error) {
	cfg := &Config{}
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return cfg, nil
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil {
		return nil, lib.Errorf(lib.ExitInvalidConfig, "invalid options.thresholds: expected an object of metric name to a list of thresholds: %w", err)
	}
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, key := range keys {
		mt, err := parseMetricEntry(key, obj[key])
		if err != nil {
			return nil, lib.WithExitCode(lib.ExitInvalidConfig, err)
		}
		cfg.Metrics = append(cfg.Metrics, mt)
	}
	return cfg, nil
}

func parseMetricEntry(key string, raw json.RawMessage) (*MetricThresholds, error) {
	name, filter, err := metrics.ParseMetricKey(key)
	if err != nil {
		return nil, fmt.Errorf("invalid options.thresholds key: %w", err)
	}
	mt := &MetricThresholds{Key: key, Metric: name, Filter: filter}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, fmt.Errorf("invalid thresholds for %q: expected a list such as [\"p(95)<200\"] or [{\"threshold\": \"p(95)<200\", \"abortOnFail\": true}], got %s", key, raw)
	}
	for i, item := range items {
		th, err := parseThreshold(item)
		if err != nil {
			return nil, fmt.Errorf("invalid threshold #%d of %q: %w", i+1, key, err)
		}
		mt.Thresholds = append(mt.Thresholds, th)
	}
	return mt, nil
}

func parseThreshold(raw json.RawMessage) (*Threshold, error) {
	raw = bytes.TrimSpace(raw)
	th := &Threshold{}
	switch {
	case len(raw) > 0 && raw[0] == '"':
		if err := json.Unmarshal(raw, &th.Source); err != nil {
			return nil, err
		}
	case len(raw) > 0 && raw[0] == '{':
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(raw, &obj); err != nil {
			return nil, err
		}
		keys := make([]string, 0, len(obj))
		for k := range obj {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			v := obj[k]
			switch k {
			case "threshold":
				if err := json.Unmarshal(v, &th.Source); err != nil {
					return nil, fmt.Errorf("key \"threshold\" must be a string such as \"p(95)<200\", got %s", v)
				}
			case "abortOnFail":
				if err := json.Unmarshal(v, &th.AbortOnFail); err != nil {
					return nil, fmt.Errorf("key \"abortOnFail\" must be true or false, got %s", v)
				}
			case "delayAbortEval":
				d, err := parseDuration(v)
				if err != nil {
					return nil, fmt.Errorf("key \"delayAbortEval\": %w", err)
				}
				th.DelayAbortEval = d
			default:
				return nil, fmt.Errorf("unknown key %q: allowed keys are threshold, abortOnFail, delayAbortEval", k)
			}
		}
		if _, ok := obj["threshold"]; !ok {
			return nil, errors.New("missing key \"threshold\" (the expression, such as \"p(95)<200\")")
		}
	default:
		return nil, fmt.Errorf("expected a string such as \"p(95)<200\" or an object {threshold, abortOnFail, delayAbortEval}, got %s", raw)
	}
	e, err := ParseExpr(th.Source)
	if err != nil {
		return nil, err
	}
	th.Expr = e
	return th, nil
}

// parseDuration reads a k6 duration: a string such as "10s", "1m30s", "1d"
// or a bare number of milliseconds (as a JSON number or a string).
func parseDuration(raw json.RawMessage) (time.Duration, error) {
	const help = "expected a duration such as \"10s\" or \"1m30s\", or a number of milliseconds"
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		var ms float64
		if err := json.Unmarshal(raw, &ms); err != nil {
			return 0, fmt.Errorf("invalid value %s: %s", raw, help)
		}
		s = strconv.FormatFloat(ms, 'f', -1, 64)
	}
	d, err := ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("invalid value %q: %s", s, help)
	}
	return d, nil
}

// ParseDuration parses a k6 duration string: a Go duration, optionally
// starting with whole days ("1d2h"), or a bare number of milliseconds.
// Negative durations are rejected.
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if ms, err := strconv.ParseFloat(s, 64); err == nil {
		if ms < 0 || math.IsNaN(ms) || math.IsInf(ms, 0) {
			return 0, fmt.Errorf("invalid duration %q: must be a non-negative number", s)
		}
		return time.Duration(ms * float64(time.Millisecond)), nil
	}
	var days time.Duration
	if i := strings.IndexByte(s, 'd'); i > 0 {
		n, err := strconv.Atoi(s[:i])
		if err != nil {
			return 0, fmt.Errorf("invalid duration %q", s)
		}
		days = time.Duration(n) * 24 * time.Hour
		s = s[i+1:]
		if s == "" {
			s = "0s"
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q: %w", s, err)
	}
	d += days
	if d < 0 {
		return 0, fmt.Errorf("invalid duration %q: must not be negative", s)
	}
	return d, nil
}

// Validate checks the config against the metric registry, after VU 0 has
// registered the script's custom metrics: every metric must exist and
// every method must suit its type. Errors carry exit code 104.
func (c *Config) Validate(reg *metrics.Registry) error {
	if c == nil {
		return nil
	}
	var errs []error
	for _, mt := range c.Metrics {
		m := reg.Get(mt.Metric)
		if m == nil {
			errs = append(errs, fmt.Errorf("invalid threshold on %q: metric %q is not defined; thresholds may use built-in metrics or custom metrics created in the init context", mt.Key, mt.Metric))
			continue
		}
		for _, th := range mt.Thresholds {
			if !th.Expr.Supported(m.Type) {
				errs = append(errs, fmt.Errorf("invalid threshold %q on %q: unsupported aggregation method %q for a %s metric; allowed: %s",
					th.Source, mt.Key, th.Expr.MethodName(), m.Type, AllowedMethods(m.Type)))
			}
		}
	}
	if len(errs) > 0 {
		return lib.WithExitCode(lib.ExitInvalidConfig, errors.Join(errs...))
	}
	return nil
}

// Warnings returns advice about the config that is not an error: filters
// on the high-cardinality tags vu and iter, which are metadata here and
// never match.
func (c *Config) Warnings() []string {
	var out []string
	if c == nil {
		return nil
	}
	for _, mt := range c.Metrics {
		for _, t := range []string{"vu", "iter"} {
			if _, ok := mt.Filter.Get(t); ok {
				out = append(out, fmt.Sprintf("threshold key %q filters on tag %q: that tag is sample metadata and is not indexed, so this submetric will stay empty", mt.Key, t))
			}
		}
	}
	return out
}

// Load parses and validates options.thresholds for a run. With
// noThresholds (--no-thresholds) problems are only logged and the result
// is nil: nothing is evaluated.
func Load(raw json.RawMessage, reg *metrics.Registry, noThresholds bool, logger *slog.Logger) (*Config, error) {
	cfg, err := ParseConfig(raw)
	if err == nil {
		err = cfg.Validate(reg)
	}
	if noThresholds {
		if err != nil && logger != nil {
			logger.Warn("thresholds are disabled (--no-thresholds) and have errors", "error", err)
		}
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if logger != nil {
		for _, w := range cfg.Warnings() {
			logger.Warn(w)
		}
	}
	return cfg, nil
}

// Sources returns the thresholds as written, per key: the shape
// output.WithThresholds.SetThresholds takes.
func (c *Config) Sources() map[string][]string {
	out := map[string][]string{}
	if c == nil {
		return out
	}
	for _, mt := range c.Metrics {
		for _, th := range mt.Thresholds {
			out[mt.Key] = append(out[mt.Key], th.Source)
		}
	}
	return out
}
