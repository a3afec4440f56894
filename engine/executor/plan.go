// Package executor runs k6 scenarios: the six executors (shared-iterations,
// per-vu-iterations, constant-vus, ramping-vus, constant-arrival-rate,
// ramping-arrival-rate), the VU pool they share, the execution plan that
// sizes it, and the scheduler that starts every scenario at its startTime.
package executor

import (
	"fmt"
	"sort"
	"time"

	"github.com/cdeload/cdeload/engine/options"
)

// Step is a point of an execution plan: from Offset on, PlannedVUs VUs are
// needed, plus up to MaxUnplannedVUs that arrival-rate executors may
// initialise during the run.
type Step struct {
	Offset          time.Duration
	PlannedVUs      int64
	MaxUnplannedVUs int64
}

// ScenarioSteps returns the execution requirements of one scenario,
// relative to its own start (startTime not included). The last step has
// zero VUs at the scenario's end including gracefulStop.
func ScenarioSteps(sc *options.Scenario) []Step {
	end := sc.MaxDurationWithGrace()
	switch sc.Executor {
	case options.SharedIterations, options.PerVUIterations, options.ConstantVUs:
		return []Step{{0, sc.VUs, 0}, {end, 0, 0}}
	case options.ConstantArrivalRate, options.RampingArrivalRate:
		return []Step{{0, sc.PreAllocatedVUs, sc.MaxVUs - sc.PreAllocatedVUs}, {end, 0, 0}}
	case options.RampingVUs:
		return rampingVUsPlan(sc)
	}
	return nil
}

// rampingVUsPlan reserves, at every moment, the VUs that may still be
// finishing an iteration within gracefulRampDown after being ramped down.
func rampingVUsPlan(sc *options.Scenario) []Step {
	raw := rampingVUSteps(sc.StartVUs, sc.Stages)
	regular := sc.StagesDuration()
	grd := sc.GracefulRampDown.D()
	// Candidate moments: every raw change and every change shifted by grd.
	times := map[time.Duration]bool{}
	for _, s := range raw {
		times[s.Offset] = true
		if t := s.Offset + grd; t < regular {
			times[t] = true
		}
	}
	sorted := make([]time.Duration, 0, len(times))
	for t := range times {
		sorted = append(sorted, t)
	}
	sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
	valueAt := func(t time.Duration) int64 {
		v := int64(0)
		for _, s := range raw {
			if s.Offset > t {
				break
			}
			v = s.PlannedVUs
		}
		return v
	}
	var out []Step
	for _, t := range sorted {
		// The VUs needed at t: the most that were running in [t-grd, t].
		v := valueAt(max(t-grd, 0))
		for _, s := range raw {
			if s.Offset > t-grd && s.Offset <= t {
				v = max(v, s.PlannedVUs)
			}
		}
		if len(out) > 0 && out[len(out)-1].PlannedVUs == v {
			continue
		}
		out = append(out, Step{Offset: t, PlannedVUs: v})
	}
	return append(out, Step{Offset: sc.MaxDurationWithGrace(), PlannedVUs: 0})
}

// rampingVUSteps returns the integer VU count over time of a ramping-vus
// scenario: linear between stage targets, each count reached when the line
// reaches it. Several changes at the same offset keep the last.
func rampingVUSteps(start int64, stages []options.Stage) []Step {
	out := []Step{{Offset: 0, PlannedVUs: start}}
	add := func(off time.Duration, v int64) {
		if last := &out[len(out)-1]; last.Offset == off {
			last.PlannedVUs = v
			return
		}
		out = append(out, Step{Offset: off, PlannedVUs: v})
	}
	cur, t := start, time.Duration(0)
	for _, st := range stages {
		d, to := st.Duration.D(), st.Target
		switch {
		case d == 0:
			if to != cur {
				add(t, to)
			}
		case to > cur:
			for v := cur + 1; v <= to; v++ {
				add(t+time.Duration(float64(d)*float64(v-cur)/float64(to-cur)), v)
			}
		case to < cur:
			for v := cur - 1; v >= to; v-- {
				add(t+time.Duration(float64(d)*float64(cur-v)/float64(cur-to)), v)
			}
		}
		cur = to
		t += d
	}
	return out
}

// Plan is the merged execution plan of all scenarios of a run.
type Plan struct {
	// Steps are absolute offsets from the start of the run.
	Steps []Step
	// MaxPlannedVUs is how many VUs are initialised before the run.
	MaxPlannedVUs int64
	// MaxPossibleVUs adds the VUs arrival-rate executors may add.
	MaxPossibleVUs int64
	// TotalDuration is the longest startTime + duration + gracefulStop.
	TotalDuration time.Duration
}

// NewPlan merges the scenarios' requirements: VUs are a shared pool, so
// scenarios that do not overlap in time reuse the same VUs.
func NewPlan(sc options.Scenarios) Plan {
	type shifted struct{ steps []Step }
	var all []shifted
	offsets := map[time.Duration]bool{}
	var p Plan
	for _, s := range sc.Sorted() {
		st := ScenarioSteps(s)
		abs := make([]Step, len(st))
		for i, x := range st {
			x.Offset += s.StartTime.D()
			abs[i] = x
			offsets[x.Offset] = true
		}
		all = append(all, shifted{abs})
		p.TotalDuration = max(p.TotalDuration, s.StartTime.D()+s.MaxDurationWithGrace())
	}
	times := make([]time.Duration, 0, len(offsets))
	for t := range offsets {
		times = append(times, t)
	}
	sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
	for _, t := range times {
		var step Step
		step.Offset = t
		for _, s := range all {
			if len(s.steps) == 0 || s.steps[0].Offset > t {
				continue
			}
			var cur Step
			for _, x := range s.steps {
				if x.Offset > t {
					break
				}
				cur = x
			}
			step.PlannedVUs += cur.PlannedVUs
			step.MaxUnplannedVUs += cur.MaxUnplannedVUs
		}
		p.MaxPlannedVUs = max(p.MaxPlannedVUs, step.PlannedVUs)
		p.MaxPossibleVUs = max(p.MaxPossibleVUs, step.PlannedVUs+step.MaxUnplannedVUs)
		p.Steps = append(p.Steps, step)
	}
	return p
}

// Describe returns the one-line description of a scenario that the run
// banner shows.
func Describe(sc *options.Scenario) string {
	var d string
	switch sc.Executor {
	case options.SharedIterations:
		d = fmt.Sprintf("%d iterations shared among %d VUs (maxDuration: %s", sc.Iterations, sc.VUs, sc.MaxDuration)
	case options.PerVUIterations:
		d = fmt.Sprintf("%d iterations for each of %d VUs (maxDuration: %s", sc.Iterations, sc.VUs, sc.MaxDuration)
	case options.ConstantVUs:
		d = fmt.Sprintf("%d looping VUs for %s (", sc.VUs, sc.Duration)
	case options.RampingVUs:
		maxV := sc.StartVUs
		for _, s := range sc.Stages {
			maxV = max(maxV, s.Target)
		}
		d = fmt.Sprintf("Up to %d looping VUs for %s over %d stages (gracefulRampDown: %s", maxV, sc.StagesDuration(), len(sc.Stages), sc.GracefulRampDown)
	case options.ConstantArrivalRate:
		d = fmt.Sprintf("%.2f iterations/s for %s (maxVUs: %d-%d", float64(sc.Rate)*float64(time.Second)/float64(sc.TimeUnit), sc.Duration, sc.PreAllocatedVUs, sc.MaxVUs)
	case options.RampingArrivalRate:
		maxR := sc.StartRate
		for _, s := range sc.Stages {
			maxR = max(maxR, s.Target)
		}
		d = fmt.Sprintf("Up to %.2f iterations/s for %s over %d stages (maxVUs: %d-%d", float64(maxR)*float64(time.Second)/float64(sc.TimeUnit), sc.StagesDuration(), len(sc.Stages), sc.PreAllocatedVUs, sc.MaxVUs)
	}
	if d[len(d)-1] != '(' {
		d += ", "
	}
	if sc.Exec != "" && sc.Exec != "default" {
		d += "exec: " + sc.Exec + ", "
	}
	if sc.StartTime > 0 {
		d += "startTime: " + sc.StartTime.String() + ", "
	}
	return d + "gracefulStop: " + sc.GracefulStop.String() + ")"
}
