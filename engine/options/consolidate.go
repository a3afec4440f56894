package options

import (
	"fmt"
	"strings"
	"time"

	"github.com/cdeload/cdeload/engine/lib"
)

// Tier is one config source. Tiers are applied in order, each overriding
// the ones before: config file, script, environment, CLI.
type Tier struct {
	// Name is used in messages: "config file", "script", "env", "cli".
	Name    string
	Options Options
}

// Consolidate merges the tiers, derives the scenarios from the shortcuts
// (vus, duration, iterations, stages), and validates every scenario. It
// returns the consolidated options (Scenarios always set) and warnings to
// show the user. Errors carry exit code 104.
func Consolidate(tiers ...Tier) (Options, []string, error) {
	var (
		merged   Options
		warnings []string
		vusTier  = -1
		scenTier = -1
	)
	for i, t := range tiers {
		if err := checkSameTier(t); err != nil {
			return Options{}, nil, err
		}
		if t.Options.hasExecution() {
			if merged.Scenarios != nil && scenTier >= 0 {
				warnings = append(warnings, fmt.Sprintf("%q level configuration overrode scenarios configuration entirely", t.Name))
			}
			scenTier = -1
			if t.Options.Scenarios != nil {
				scenTier = i
			}
		}
		if t.Options.VUs != nil {
			vusTier = i
		}
		merged = merged.Apply(t.Options)
	}
	sc, warn, err := deriveScenarios(merged, vusTier, scenTier)
	if err != nil {
		return Options{}, nil, err
	}
	if warn != "" {
		warnings = append(warnings, warn)
	}
	merged.Scenarios = sc
	for _, s := range sc.Sorted() {
		if err := s.Validate(); err != nil {
			return Options{}, nil, err
		}
	}
	return merged, warnings, nil
}

func checkSameTier(t Tier) error {
	o := t.Options
	set := []string{}
	if o.Iterations != nil {
		set = append(set, "iterations")
	}
	if o.Duration != nil {
		set = append(set, "duration")
	}
	if o.Stages != nil {
		set = append(set, "stages")
	}
	if o.Scenarios != nil {
		set = append(set, "scenarios")
	}
	bad := func(a, b string) error {
		return lib.Errorf(lib.ExitInvalidConfig,
			"%s configuration sets both %q and %q; use only one of them (iterations with duration is allowed)", t.Name, a, b)
	}
	has := func(n string) bool {
		for _, s := range set {
			if s == n {
				return true
			}
		}
		return false
	}
	for _, pair := range [][2]string{{"iterations", "stages"}, {"iterations", "scenarios"}, {"duration", "stages"},
		{"duration", "scenarios"}, {"stages", "scenarios"}} {
		if has(pair[0]) && has(pair[1]) {
			return bad(pair[0], pair[1])
		}
	}
	return nil
}

func deriveScenarios(o Options, vusTier, scenTier int) (Scenarios, string, error) {
	vus := int64(1)
	if o.VUs != nil {
		vus = *o.VUs
	}
	base := func(executor string) *Scenario {
		return &Scenario{Name: DefaultScenarioName, Executor: executor, Set: map[string]bool{}}
	}
	switch {
	case o.Iterations != nil:
		s := base(SharedIterations)
		s.VUs, s.Iterations = vus, *o.Iterations
		s.Set["vus"], s.Set["iterations"] = true, true
		if o.Duration != nil {
			s.MaxDuration = *o.Duration
			s.Set["maxDuration"] = true
		}
		s.applyDefaults()
		return Scenarios{s.Name: s}, "", nil
	case o.Duration != nil:
		if *o.Duration <= 0 {
			return nil, "", lib.Errorf(lib.ExitInvalidConfig, "option duration is %s, but it must be greater than 0 (it makes a constant-vus scenario)", *o.Duration)
		}
		s := base(ConstantVUs)
		s.VUs, s.Duration = vus, *o.Duration
		s.Set["vus"], s.Set["duration"] = true, true
		s.applyDefaults()
		return Scenarios{s.Name: s}, "", nil
	case o.Stages != nil:
		s := base(RampingVUs)
		s.StartVUs = vus
		s.Set["startVUs"], s.Set["stages"] = true, true
		for _, st := range o.Stages {
			if st.Duration > 0 || st.Target > 0 || len(o.Stages) == 1 {
				s.Stages = append(s.Stages, st)
			}
		}
		s.applyDefaults()
		return Scenarios{s.Name: s}, "", nil
	case o.Scenarios != nil && !(o.VUs != nil && vusTier > scenTier):
		if len(o.Scenarios) == 0 {
			return nil, "", lib.Errorf(lib.ExitInvalidConfig, "scenarios is empty: define at least one scenario or remove the option")
		}
		return o.Scenarios, "", nil
	case o.VUs != nil:
		if vus <= 0 {
			return nil, "", lib.Errorf(lib.ExitInvalidConfig, "option vus is %d, but it must be greater than 0", vus)
		}
		s := base(SharedIterations)
		s.VUs, s.Iterations = vus, vus
		s.Set["vus"], s.Set["iterations"] = true, true
		s.applyDefaults()
		warn := ""
		if o.Scenarios != nil {
			names := make([]string, 0, len(o.Scenarios))
			for _, sc := range o.Scenarios.Sorted() {
				names = append(names, sc.Name)
			}
			warn = fmt.Sprintf("vus=%d without duration, iterations or stages runs %d iterations shared among %d VUs and replaces the scenarios (%s)",
				vus, vus, vus, strings.Join(names, ", "))
		}
		return Scenarios{s.Name: s}, warn, nil
	default:
		s := base(PerVUIterations)
		s.applyDefaults()
		return Scenarios{s.Name: s}, "", nil
	}
}

// MaxDurationOf returns the longest startTime + duration + gracefulStop of
// the scenarios: the most a run's executors can take.
func MaxDurationOf(sc Scenarios) time.Duration {
	var d time.Duration
	for _, s := range sc {
		d = max(d, s.StartTime.D()+s.MaxDurationWithGrace())
	}
	return d
}
