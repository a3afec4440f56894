// Package options holds k6's test options: their JSON and CLI/env forms,
// the consolidation of the config tiers (config file < script < env < CLI),
// the derivation of the "default" scenario from the shortcuts, defaults,
// and validation.
package options

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/cdeload/cdeload/engine/lib"
)

// Options are k6's test-wide options. A nil pointer or nil slice/map means
// "not set in this tier"; Consolidate fills the defaults.
type Options struct {
	VUs                      *int64            `json:"vus,omitempty"`
	Duration                 *Duration         `json:"duration,omitempty"`
	Iterations               *int64            `json:"iterations,omitempty"`
	Stages                   []Stage           `json:"stages,omitempty"`
	Scenarios                Scenarios         `json:"scenarios,omitempty"`
	ExecutionSegment         *string           `json:"executionSegment,omitempty"`
	ExecutionSegmentSequence *string           `json:"executionSegmentSequence,omitempty"`
	Paused                   *bool             `json:"paused,omitempty"`
	NoSetup                  *bool             `json:"noSetup,omitempty"`
	NoTeardown               *bool             `json:"noTeardown,omitempty"`
	SetupTimeout             *Duration         `json:"setupTimeout,omitempty"`
	TeardownTimeout          *Duration         `json:"teardownTimeout,omitempty"`
	HandleSummaryTimeout     *Duration         `json:"handleSummaryTimeout,omitempty"`
	MinIterationDuration     *Duration         `json:"minIterationDuration,omitempty"`
	Throw                    *bool             `json:"throw,omitempty"`
	Tags                     map[string]string `json:"tags,omitempty"`
	SystemTags               []string          `json:"systemTags,omitempty"`
	SummaryTrendStats        []string          `json:"summaryTrendStats,omitempty"`
	SummaryTimeUnit          *string           `json:"summaryTimeUnit,omitempty"`
	NoThresholds             *bool             `json:"-"`

	// k6/http's options that the CLI and K6_* variables also set; k6/http
	// reads them from the consolidated options.
	UserAgent             *string `json:"userAgent,omitempty"`
	InsecureSkipTLSVerify *bool   `json:"insecureSkipTLSVerify,omitempty"`
	Batch                 *int64  `json:"batch,omitempty"`
	BatchPerHost          *int64  `json:"batchPerHost,omitempty"`
	MaxRedirects          *int64  `json:"maxRedirects,omitempty"`
	NoConnectionReuse     *bool   `json:"noConnectionReuse,omitempty"`
	NoVUConnectionReuse   *bool   `json:"noVUConnectionReuse,omitempty"`
	DiscardResponseBodies *bool   `json:"discardResponseBodies,omitempty"`

	// Thresholds are kept as given: metric selector → JSON array of
	// threshold strings or {threshold, abortOnFail, delayAbortEval}
	// objects. The metrics engine parses them.
	Thresholds map[string]json.RawMessage `json:"thresholds,omitempty"`
}

// DefaultSystemTags are the system tags enabled unless systemTags is set.
var DefaultSystemTags = []string{
	"proto", "subproto", "status", "method", "url", "name", "group", "check", "error", "error_code",
	"tls_version", "scenario", "service", "expected_response",
}

// DefaultSummaryTrendStats are the trend columns unless summaryTrendStats is set.
var DefaultSummaryTrendStats = []string{"avg", "min", "med", "max", "p(90)", "p(95)"}

// Default timeouts.
const (
	DefaultSetupTimeout         = 60 * time.Second
	DefaultTeardownTimeout      = 60 * time.Second
	DefaultHandleSummaryTimeout = 120 * time.Second
)

// ignoredOptions are k6 options a script may set that cdeload accepts and
// does not act on.
var ignoredOptions = map[string]bool{
	"rps": true, "tlsCipherSuites": true, "dns": true, "blacklistIPs": true, "blockHostnames": true, "httpDebug": true,
	"noCookiesReset": true, "consoleOutput": true, "localIPs": true, "ext": true, "cloud": true,
	"metricSamplesBufferSize": true, "noUsageReport": true, "linger": true, "compatibilityMode": true,
	"includeSystemEnvVars": true, "browser": true, "traces": true,
}

// moduleOptions are read by k6/http from the script's options (through
// modules.State.Options); the consolidation passes them by.
var moduleOptions = map[string]bool{
	"tlsVersion": true, "tlsAuth": true, "hosts": true,
}

var knownOptions = func() map[string]func(*Options) any {
	return map[string]func(*Options) any{
		"vus":                      func(o *Options) any { return &o.VUs },
		"duration":                 func(o *Options) any { return &o.Duration },
		"iterations":               func(o *Options) any { return &o.Iterations },
		"stages":                   func(o *Options) any { return &o.Stages },
		"scenarios":                func(o *Options) any { return &o.Scenarios },
		"executionSegment":         func(o *Options) any { return &o.ExecutionSegment },
		"executionSegmentSequence": func(o *Options) any { return &o.ExecutionSegmentSequence },
		"paused":                   func(o *Options) any { return &o.Paused },
		"noSetup":                  func(o *Options) any { return &o.NoSetup },
		"noTeardown":               func(o *Options) any { return &o.NoTeardown },
		"setupTimeout":             func(o *Options) any { return &o.SetupTimeout },
		"teardownTimeout":          func(o *Options) any { return &o.TeardownTimeout },
		"handleSummaryTimeout":     func(o *Options) any { return &o.HandleSummaryTimeout },
		"minIterationDuration":     func(o *Options) any { return &o.MinIterationDuration },
		"throw":                    func(o *Options) any { return &o.Throw },
		"tags":                     func(o *Options) any { return &o.Tags },
		"systemTags":               func(o *Options) any { return &o.SystemTags },
		"summaryTrendStats":        func(o *Options) any { return &o.SummaryTrendStats },
		"summaryTimeUnit":          func(o *Options) any { return &o.SummaryTimeUnit },
		"thresholds":               func(o *Options) any { return &o.Thresholds },
		"userAgent":                func(o *Options) any { return &o.UserAgent },
		"insecureSkipTLSVerify":    func(o *Options) any { return &o.InsecureSkipTLSVerify },
		"batch":                    func(o *Options) any { return &o.Batch },
		"batchPerHost":             func(o *Options) any { return &o.BatchPerHost },
		"maxRedirects":             func(o *Options) any { return &o.MaxRedirects },
		"noConnectionReuse":        func(o *Options) any { return &o.NoConnectionReuse },
		"noVUConnectionReuse":      func(o *Options) any { return &o.NoVUConnectionReuse },
		"discardResponseBodies":    func(o *Options) any { return &o.DiscardResponseBodies },
	}
}()

// Parse decodes an options object (the script's `options` export or the
// options part of a config file). Unknown top-level keys are not errors (k6
// warns about them): they are returned as warnings. A bad value, or any
// problem inside scenarios, is an error with exit code 104 that names the
// key.
func Parse(b []byte) (Options, []string, error) {
	var o Options
	b = bytes.TrimSpace(b)
	if len(b) == 0 || string(b) == "null" {
		return o, nil, nil
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return o, nil, lib.Errorf(lib.ExitInvalidConfig, "options must be an object: %w", err)
	}
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var warnings []string
	for _, k := range keys {
		ptr, ok := knownOptions[k]
		if !ok {
			if moduleOptions[k] {
				continue
			}
			if ignoredOptions[k] {
				warnings = append(warnings, fmt.Sprintf("option %q is not supported by cdeload and is ignored", k))
			} else {
				warnings = append(warnings, fmt.Sprintf("unknown option %q is ignored", k))
			}
			continue
		}
		if string(raw[k]) == "null" {
			continue
		}
		if err := json.Unmarshal(raw[k], ptr(&o)); err != nil {
			if lib.ExitCodeOf(err) == lib.ExitInvalidConfig {
				return o, nil, err
			}
			return o, nil, lib.Errorf(lib.ExitInvalidConfig, "option %q has an invalid value %s: %w", k, raw[k], err)
		}
	}
	if err := o.validateValues(); err != nil {
		return o, nil, err
	}
	return o, warnings, nil
}

var (
	envNameRE = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)
	timeUnits = []string{"s", "ms", "us"}
)

func (o *Options) validateValues() error {
	if o.VUs != nil && *o.VUs < 0 {
		return lib.Errorf(lib.ExitInvalidConfig, "option vus is %d, but it must be at least 0", *o.VUs)
	}
	if o.Iterations != nil && *o.Iterations < 0 {
		return lib.Errorf(lib.ExitInvalidConfig, "option iterations is %d, but it must be at least 0", *o.Iterations)
	}
	for name, v := range map[string]*int64{"batch": o.Batch, "batchPerHost": o.BatchPerHost, "maxRedirects": o.MaxRedirects} {
		if v != nil && *v < 0 {
			return lib.Errorf(lib.ExitInvalidConfig, "option %s is %d, but it must be at least 0", name, *v)
		}
	}
	if o.SummaryTimeUnit != nil && *o.SummaryTimeUnit != "" {
		ok := false
		for _, u := range timeUnits {
			ok = ok || u == *o.SummaryTimeUnit
		}
		if !ok {
			return lib.Errorf(lib.ExitInvalidConfig, "option summaryTimeUnit is %q, but it must be one of s, ms, us", *o.SummaryTimeUnit)
		}
	}
	for name, d := range map[string]*Duration{"setupTimeout": o.SetupTimeout, "teardownTimeout": o.TeardownTimeout,
		"handleSummaryTimeout": o.HandleSummaryTimeout, "minIterationDuration": o.MinIterationDuration} {
		if d != nil && *d < 0 {
			return lib.Errorf(lib.ExitInvalidConfig, "option %s is %s, but it must be at least 0s", name, *d)
		}
	}
	if o.ExecutionSegment != nil {
		if _, err := ParseSegment(*o.ExecutionSegment); err != nil {
			return lib.Errorf(lib.ExitInvalidConfig, "option executionSegment: %w", err)
		}
	}
	if o.ExecutionSegmentSequence != nil {
		if _, err := ParseSegmentSequence(*o.ExecutionSegmentSequence); err != nil {
			return lib.Errorf(lib.ExitInvalidConfig, "option executionSegmentSequence: %w", err)
		}
	}
	return nil
}

// applyHTTP overrides o's k6/http options with those h sets.
func (o *Options) applyHTTP(h Options) {
	if h.UserAgent != nil {
		o.UserAgent = h.UserAgent
	}
	if h.InsecureSkipTLSVerify != nil {
		o.InsecureSkipTLSVerify = h.InsecureSkipTLSVerify
	}
	if h.Batch != nil {
		o.Batch = h.Batch
	}
	if h.BatchPerHost != nil {
		o.BatchPerHost = h.BatchPerHost
	}
	if h.MaxRedirects != nil {
		o.MaxRedirects = h.MaxRedirects
	}
	if h.NoConnectionReuse != nil {
		o.NoConnectionReuse = h.NoConnectionReuse
	}
	if h.NoVUConnectionReuse != nil {
		o.NoVUConnectionReuse = h.NoVUConnectionReuse
	}
	if h.DiscardResponseBodies != nil {
		o.DiscardResponseBodies = h.DiscardResponseBodies
	}
}

// hasExecution reports whether the tier sets any of the execution options
// that replace each other between tiers.
func (o *Options) hasExecution() bool {
	return o.Duration != nil || o.Iterations != nil || o.Stages != nil || o.Scenarios != nil
}

// Apply returns o overridden by every option that h sets. If h sets any of
// duration, iterations, stages or scenarios, all four are taken from h (k6's
// rule: a higher tier replaces the execution configuration entirely).
func (o Options) Apply(h Options) Options {
	if h.hasExecution() {
		o.Duration, o.Iterations, o.Stages, o.Scenarios = h.Duration, h.Iterations, h.Stages, h.Scenarios
	}
	if h.VUs != nil {
		o.VUs = h.VUs
	}
	if h.ExecutionSegment != nil {
		o.ExecutionSegment = h.ExecutionSegment
	}
	if h.ExecutionSegmentSequence != nil {
		o.ExecutionSegmentSequence = h.ExecutionSegmentSequence
	}
	if h.Paused != nil {
		o.Paused = h.Paused
	}
	if h.NoSetup != nil {
		o.NoSetup = h.NoSetup
	}
	if h.NoTeardown != nil {
		o.NoTeardown = h.NoTeardown
	}
	if h.SetupTimeout != nil {
		o.SetupTimeout = h.SetupTimeout
	}
	if h.TeardownTimeout != nil {
		o.TeardownTimeout = h.TeardownTimeout
	}
	if h.HandleSummaryTimeout != nil {
		o.HandleSummaryTimeout = h.HandleSummaryTimeout
	}
	if h.MinIterationDuration != nil {
		o.MinIterationDuration = h.MinIterationDuration
	}
	if h.Throw != nil {
		o.Throw = h.Throw
	}
	if h.Tags != nil {
		o.Tags = h.Tags
	}
	if h.SystemTags != nil {
		o.SystemTags = h.SystemTags
	}
	if h.SummaryTrendStats != nil {
		o.SummaryTrendStats = h.SummaryTrendStats
	}
	if h.SummaryTimeUnit != nil {
		o.SummaryTimeUnit = h.SummaryTimeUnit
	}
	if h.NoThresholds != nil {
		o.NoThresholds = h.NoThresholds
	}
	if h.Thresholds != nil {
		o.Thresholds = h.Thresholds
	}
	o.applyHTTP(h)
	return o
}

// Value accessors for consolidated options (they return the default when
// the option is unset).

// SetupTimeoutOrDefault returns setupTimeout (default 60s).
func (o *Options) SetupTimeoutOrDefault() time.Duration {
	return durOr(o.SetupTimeout, DefaultSetupTimeout)
}

// TeardownTimeoutOrDefault returns teardownTimeout (default 60s).
func (o *Options) TeardownTimeoutOrDefault() time.Duration {
	return durOr(o.TeardownTimeout, DefaultTeardownTimeout)
}

// HandleSummaryTimeoutOrDefault returns handleSummaryTimeout (default 120s).
func (o *Options) HandleSummaryTimeoutOrDefault() time.Duration {
	return durOr(o.HandleSummaryTimeout, DefaultHandleSummaryTimeout)
}

// MinIterationDurationOrZero returns minIterationDuration (default 0).
func (o *Options) MinIterationDurationOrZero() time.Duration { return durOr(o.MinIterationDuration, 0) }

// IsSet reports whether a boolean option is set to true.
func IsSet(b *bool) bool { return b != nil && *b }

// SystemTagEnabled reports whether the system tag name is enabled.
func (o *Options) SystemTagEnabled(name string) bool {
	tags := o.SystemTags
	if tags == nil {
		tags = DefaultSystemTags
	}
	for _, t := range tags {
		if t == name {
			return true
		}
	}
	return false
}

func durOr(d *Duration, def time.Duration) time.Duration {
	if d == nil {
		return def
	}
	return d.D()
}

// JSON returns the options as a JSON object (scenarios included), as
// k6/execution's test.options and `inspect` show them.
func (o *Options) JSON() json.RawMessage {
	b, err := json.Marshal(o)
	if err != nil {
		return json.RawMessage("{}")
	}
	return b
}

// Int64 returns a pointer to v.
func Int64(v int64) *int64 { return &v }

// Bool returns a pointer to v.
func Bool(v bool) *bool { return &v }

// Str returns a pointer to v.
func Str(v string) *string { return &v }

// Dur returns a pointer to v as a Duration.
func Dur(v time.Duration) *Duration { d := Duration(v); return &d }

// parseKV parses "k=v" pairs for tags and env.
func parseKV(s string) (string, string, error) {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return "", "", fmt.Errorf("%q is not of the form NAME=VALUE", s)
	}
	return k, v, nil
}
