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

// Executor names.
const (
	SharedIterations    = "shared-iterations"
	PerVUIterations     = "per-vu-iterations"
	ConstantVUs         = "constant-vus"
	RampingVUs          = "ramping-vus"
	ConstantArrivalRate = "constant-arrival-rate"
	RampingArrivalRate  = "ramping-arrival-rate"
)

// Executors lists the supported executor names.
var Executors = []string{SharedIterations, PerVUIterations, ConstantVUs, RampingVUs, ConstantArrivalRate, RampingArrivalRate}

// DefaultScenarioName is the name of the scenario made from shortcuts.
const DefaultScenarioName = "default"

// Stage is one step of a ramping executor: reach Target (VUs or iterations
// per timeUnit) linearly over Duration.
type Stage struct {
	Duration Duration `json:"duration"`
	Target   int64    `json:"target"`
}

// UnmarshalJSON decodes a stage strictly: both fields are required.
func (s *Stage) UnmarshalJSON(b []byte) error {
	var raw struct {
		Duration *Duration `json:"duration"`
		Target   *int64    `json:"target"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&raw); err != nil {
		return fmt.Errorf("stage %s: %w (allowed fields: duration, target)", b, err)
	}
	if raw.Duration == nil {
		return fmt.Errorf("stage %s: missing \"duration\"", b)
	}
	if raw.Target == nil {
		return fmt.Errorf("stage %s: missing \"target\"", b)
	}
	*s = Stage{Duration: *raw.Duration, Target: *raw.Target}
	return nil
}

// ParseStage parses the CLI form "DURATION[:TARGET]" (target defaults to 0).
func ParseStage(s string) (Stage, error) {
	durS, targetS, hasTarget := strings.Cut(s, ":")
	d, err := ParseDuration(durS)
	if err != nil {
		return Stage{}, fmt.Errorf("stage %q: %w", s, err)
	}
	st := Stage{Duration: Duration(d)}
	if hasTarget {
		var t int64
		if _, err := fmt.Sscanf(targetS, "%d", &t); err != nil || fmt.Sprint(t) != targetS {
			return Stage{}, fmt.Errorf("stage %q: target %q is not an integer", s, targetS)
		}
		st.Target = t
	}
	return st, nil
}

// Scenario is one entry of options.scenarios: an executor with its fields.
// Only the fields of its executor are meaningful; Set records which fields
// the user gave.
type Scenario struct {
	Name         string
	Executor     string
	StartTime    Duration
	GracefulStop Duration
	Env          map[string]string
	Exec         string
	Tags         map[string]string
	// Options is the scenario's "options" object (browser options in k6);
	// kept as given.
	Options json.RawMessage

	VUs              int64
	Iterations       int64
	MaxDuration      Duration
	Duration         Duration
	StartVUs         int64
	Stages           []Stage
	GracefulRampDown Duration
	Rate             int64
	StartRate        int64
	TimeUnit         Duration
	PreAllocatedVUs  int64
	MaxVUs           int64

	// Set holds the JSON names of the fields the user gave.
	Set map[string]bool
}

// ExecName returns the exported function the scenario calls.
func (s *Scenario) ExecName() string {
	if s.Exec == "" {
		return "default"
	}
	return s.Exec
}

var commonFields = []string{"executor", "startTime", "gracefulStop", "env", "exec", "tags", "options"}

var executorFields = map[string][]string{
	SharedIterations:    {"vus", "iterations", "maxDuration"},
	PerVUIterations:     {"vus", "iterations", "maxDuration"},
	ConstantVUs:         {"vus", "duration"},
	RampingVUs:          {"startVUs", "stages", "gracefulRampDown"},
	ConstantArrivalRate: {"rate", "timeUnit", "duration", "preAllocatedVUs", "maxVUs"},
	RampingArrivalRate:  {"startRate", "timeUnit", "stages", "preAllocatedVUs", "maxVUs"},
}

func (s *Scenario) field(name string) any {
	switch name {
	case "executor":
		return &s.Executor
	case "startTime":
		return &s.StartTime
	case "gracefulStop":
		return &s.GracefulStop
	case "env":
		return &s.Env
	case "exec":
		return &s.Exec
	case "tags":
		return &s.Tags
	case "options":
		return &s.Options
	case "vus":
		return &s.VUs
	case "iterations":
		return &s.Iterations
	case "maxDuration":
		return &s.MaxDuration
	case "duration":
		return &s.Duration
	case "startVUs":
		return &s.StartVUs
	case "stages":
		return &s.Stages
	case "gracefulRampDown":
		return &s.GracefulRampDown
	case "rate":
		return &s.Rate
	case "startRate":
		return &s.StartRate
	case "timeUnit":
		return &s.TimeUnit
	case "preAllocatedVUs":
		return &s.PreAllocatedVUs
	case "maxVUs":
		return &s.MaxVUs
	}
	return nil
}

var scenarioNameRE = regexp.MustCompile(`^[0-9a-zA-Z_-]+$`)

// DecodeScenario decodes one scenario strictly: the executor must be known
// and every field must belong to it. Errors carry exit code 104.
func DecodeScenario(name string, b []byte) (*Scenario, error) {
	if !scenarioNameRE.MatchString(name) {
		return nil, lib.Errorf(lib.ExitInvalidConfig, "scenario name %q is invalid: it may only contain letters, digits, '_' and '-'", name)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, lib.Errorf(lib.ExitInvalidConfig, "scenario %q: must be an object: %w", name, err)
	}
	s := &Scenario{Name: name, Set: map[string]bool{}}
	exRaw, ok := raw["executor"]
	if !ok {
		return nil, lib.Errorf(lib.ExitInvalidConfig, "scenario %q: missing \"executor\" (one of %s)", name, strings.Join(Executors, ", "))
	}
	if err := json.Unmarshal(exRaw, &s.Executor); err != nil {
		return nil, lib.Errorf(lib.ExitInvalidConfig, "scenario %q: \"executor\" must be a string: %w", name, err)
	}
	own, ok := executorFields[s.Executor]
	if !ok {
		if s.Executor == "externally-controlled" {
			return nil, lib.Errorf(lib.ExitInvalidConfig, "scenario %q: executor \"externally-controlled\" is not supported (it was removed in k6 v2); use one of %s", name, strings.Join(Executors, ", "))
		}
		return nil, lib.Errorf(lib.ExitInvalidConfig, "scenario %q: unknown executor %q, expected one of %s", name, s.Executor, strings.Join(Executors, ", "))
	}
	allowed := map[string]bool{}
	for _, f := range commonFields {
		allowed[f] = true
	}
	for _, f := range own {
		allowed[f] = true
	}
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !allowed[k] {
			return nil, lib.Errorf(lib.ExitInvalidConfig, "scenario %q: unknown field %q for executor %q (allowed: %s)",
				name, k, s.Executor, strings.Join(append(append([]string(nil), commonFields...), own...), ", "))
		}
		if string(raw[k]) == "null" {
			continue
		}
		if err := json.Unmarshal(raw[k], s.field(k)); err != nil {
			return nil, lib.Errorf(lib.ExitInvalidConfig, "scenario %q: field %q has an invalid value %s: %w", name, k, raw[k], err)
		}
		s.Set[k] = true
	}
	s.applyDefaults()
	return s, nil
}

func (s *Scenario) applyDefaults() {
	def := func(name string, apply func()) {
		if !s.Set[name] {
			apply()
		}
	}
	def("gracefulStop", func() { s.GracefulStop = Duration(30 * time.Second) })
	switch s.Executor {
	case SharedIterations, PerVUIterations:
		def("vus", func() { s.VUs = 1 })
		def("iterations", func() { s.Iterations = 1 })
		def("maxDuration", func() { s.MaxDuration = Duration(10 * time.Minute) })
	case ConstantVUs:
		def("vus", func() { s.VUs = 1 })
	case RampingVUs:
		def("startVUs", func() { s.StartVUs = 1 })
		def("gracefulRampDown", func() { s.GracefulRampDown = Duration(30 * time.Second) })
	case ConstantArrivalRate, RampingArrivalRate:
		def("timeUnit", func() { s.TimeUnit = Duration(time.Second) })
		def("maxVUs", func() { s.MaxVUs = s.PreAllocatedVUs })
	}
}

// Validate checks the scenario's fields against its executor's rules. The
// error names the scenario, the field, the value and what is allowed, and
// carries exit code 104.
func (s *Scenario) Validate() error {
	bad := func(field string, value any, rule string) error {
		return lib.Errorf(lib.ExitInvalidConfig, "scenario %q (%s): %s is %v, but %s", s.Name, s.Executor, field, value, rule)
	}
	missing := func(field string) error {
		return lib.Errorf(lib.ExitInvalidConfig, "scenario %q (%s): the required field %s is missing", s.Name, s.Executor, field)
	}
	if s.StartTime < 0 {
		return bad("startTime", s.StartTime, "it must be at least 0s")
	}
	if s.GracefulStop < 0 {
		return bad("gracefulStop", s.GracefulStop, "it must be at least 0s")
	}
	for k := range s.Env {
		if !envNameRE.MatchString(k) {
			return bad("env key", fmt.Sprintf("%q", k), "env names must match "+envNameRE.String())
		}
	}
	switch s.Executor {
	case SharedIterations, PerVUIterations:
		if s.VUs <= 0 {
			return bad("vus", s.VUs, "it must be greater than 0")
		}
		if s.Iterations <= 0 {
			return bad("iterations", s.Iterations, "it must be greater than 0")
		}
		if s.Executor == SharedIterations && s.Iterations < s.VUs {
			return bad("iterations", s.Iterations, fmt.Sprintf("it must be at least the number of vus (%d)", s.VUs))
		}
		if s.MaxDuration.D() < time.Second {
			return bad("maxDuration", s.MaxDuration, "it must be at least 1s")
		}
	case ConstantVUs:
		if s.VUs <= 0 {
			return bad("vus", s.VUs, "it must be greater than 0")
		}
		if !s.Set["duration"] {
			return missing("duration")
		}
		if s.Duration.D() < time.Second {
			return bad("duration", s.Duration, "it must be at least 1s")
		}
	case RampingVUs:
		if s.StartVUs < 0 {
			return bad("startVUs", s.StartVUs, "it must be at least 0")
		}
		if s.GracefulRampDown < 0 {
			return bad("gracefulRampDown", s.GracefulRampDown, "it must be at least 0s")
		}
		if err := s.validateStages("VUs"); err != nil {
			return err
		}
		maxT := s.StartVUs
		for _, st := range s.Stages {
			maxT = max(maxT, st.Target)
		}
		if maxT <= 0 {
			return bad("the largest of startVUs and the stage targets", maxT, "it must be greater than 0")
		}
	case ConstantArrivalRate:
		if !s.Set["rate"] {
			return missing("rate")
		}
		if s.Rate <= 0 {
			return bad("rate", s.Rate, "it must be greater than 0")
		}
		if s.TimeUnit <= 0 {
			return bad("timeUnit", s.TimeUnit, "it must be greater than 0")
		}
		if !s.Set["duration"] {
			return missing("duration")
		}
		if s.Duration.D() < time.Second {
			return bad("duration", s.Duration, "it must be at least 1s")
		}
		if err := s.validatePool(); err != nil {
			return err
		}
	case RampingArrivalRate:
		if s.StartRate < 0 {
			return bad("startRate", s.StartRate, "it must be at least 0")
		}
		if s.TimeUnit <= 0 {
			return bad("timeUnit", s.TimeUnit, "it must be greater than 0")
		}
		if err := s.validateStages("rate"); err != nil {
			return err
		}
		if err := s.validatePool(); err != nil {
			return err
		}
	}
	return nil
}

func (s *Scenario) validateStages(what string) error {
	if len(s.Stages) == 0 {
		return lib.Errorf(lib.ExitInvalidConfig, "scenario %q (%s): stages is empty, but at least one stage {duration, target} is required", s.Name, s.Executor)
	}
	for i, st := range s.Stages {
		if st.Duration < 0 {
			return lib.Errorf(lib.ExitInvalidConfig, "scenario %q (%s): stages[%d].duration is %s, but it must be at least 0s", s.Name, s.Executor, i, st.Duration)
		}
		if st.Target < 0 {
			return lib.Errorf(lib.ExitInvalidConfig, "scenario %q (%s): stages[%d].target is %d, but a target %s must be at least 0", s.Name, s.Executor, i, st.Target, what)
		}
	}
	return nil
}

func (s *Scenario) validatePool() error {
	if !s.Set["preAllocatedVUs"] {
		return lib.Errorf(lib.ExitInvalidConfig, "scenario %q (%s): the required field preAllocatedVUs is missing", s.Name, s.Executor)
	}
	if s.PreAllocatedVUs < 0 {
		return lib.Errorf(lib.ExitInvalidConfig, "scenario %q (%s): preAllocatedVUs is %d, but it must be at least 0", s.Name, s.Executor, s.PreAllocatedVUs)
	}
	if s.MaxVUs < s.PreAllocatedVUs {
		return lib.Errorf(lib.ExitInvalidConfig, "scenario %q (%s): maxVUs is %d, but it must be at least preAllocatedVUs (%d)", s.Name, s.Executor, s.MaxVUs, s.PreAllocatedVUs)
	}
	if s.MaxVUs <= 0 {
		return lib.Errorf(lib.ExitInvalidConfig, "scenario %q (%s): maxVUs is %d, but it must be greater than 0", s.Name, s.Executor, s.MaxVUs)
	}
	return nil
}

// StagesDuration is the sum of the stage durations.
func (s *Scenario) StagesDuration() time.Duration {
	var d time.Duration
	for _, st := range s.Stages {
		d += st.Duration.D()
	}
	return d
}

// RegularDuration is how long the executor starts new iterations: its
// duration, maxDuration or the sum of its stages.
func (s *Scenario) RegularDuration() time.Duration {
	switch s.Executor {
	case SharedIterations, PerVUIterations:
		return s.MaxDuration.D()
	case ConstantVUs, ConstantArrivalRate:
		return s.Duration.D()
	case RampingVUs, RampingArrivalRate:
		return s.StagesDuration()
	}
	return 0
}

// MaxDurationWithGrace is RegularDuration plus gracefulStop: the moment,
// relative to the scenario's start, when running iterations are cut off.
func (s *Scenario) MaxDurationWithGrace() time.Duration {
	return s.RegularDuration() + s.GracefulStop.D()
}

// MarshalJSON writes the scenario with its executor's fields only.
func (s *Scenario) MarshalJSON() ([]byte, error) {
	m := map[string]any{
		"executor":     s.Executor,
		"startTime":    s.StartTime,
		"gracefulStop": s.GracefulStop,
		"exec":         s.ExecName(),
	}
	if s.Env != nil {
		m["env"] = s.Env
	}
	if s.Tags != nil {
		m["tags"] = s.Tags
	}
	if len(s.Options) > 0 {
		m["options"] = s.Options
	}
	for _, f := range executorFields[s.Executor] {
		switch f {
		case "stages":
			if s.Stages == nil {
				m[f] = []Stage{}
				continue
			}
		}
		m[f] = s.field(f)
	}
	return json.Marshal(m)
}

// Scenarios maps scenario names to their configuration.
type Scenarios map[string]*Scenario

// UnmarshalJSON decodes every scenario strictly.
func (sc *Scenarios) UnmarshalJSON(b []byte) error {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return lib.Errorf(lib.ExitInvalidConfig, "scenarios must be an object of name: {executor, ...}: %w", err)
	}
	out := make(Scenarios, len(raw))
	for name, r := range raw {
		s, err := DecodeScenario(name, r)
		if err != nil {
			return err
		}
		out[name] = s
	}
	*sc = out
	return nil
}

// Sorted returns the scenarios ordered by start time, then name.
func (sc Scenarios) Sorted() []*Scenario {
	out := make([]*Scenario, 0, len(sc))
	for _, s := range sc {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].StartTime != out[j].StartTime {
			return out[i].StartTime < out[j].StartTime
		}
		return out[i].Name < out[j].Name
	})
	return out
}
