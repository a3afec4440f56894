// Package lib is the contract between the engine's parts: the JS runner
// (engine/js) that makes VUs from a script, and the executors and scheduler
// (engine/executor, engine/run) that drive them.
package lib

import (
	"context"
	"encoding/json"
	"time"

	"github.com/cdeload/cdeload/engine/metrics"
)

// Runner makes VUs from a parsed script and runs its lifecycle functions.
// It is created once per run, after VU 0 has parsed the script.
type Runner interface {
	// NewVU makes a VU: a fresh runtime that has run the script's init
	// code with __VU = idLocal. Safe to call from many goroutines.
	NewVU(ctx context.Context, idLocal, idGlobal uint64, samples chan<- metrics.Samples) (InitializedVU, error)
	// Setup runs setup() if exported and returns its JSON result (nil if
	// not exported).
	Setup(ctx context.Context, samples chan<- metrics.Samples) (json.RawMessage, error)
	// Teardown runs teardown(data) if exported.
	Teardown(ctx context.Context, samples chan<- metrics.Samples, setupData json.RawMessage) error
	// IsExecutable reports whether name is an exported function.
	IsExecutable(name string) bool
	// SetSetupData hands the setup result to VUs made after the call.
	SetSetupData(data json.RawMessage)
}

// InitializedVU is a VU that ran its init code and waits to be activated by
// an executor.
type InitializedVU interface {
	ID() uint64
	IDGlobal() uint64
	// Activate binds the VU to a scenario until p.RunContext is done; the
	// VU then calls p.Deactivate and may be activated again.
	Activate(p *ActivationParams) ActiveVU
}

// ActiveVU runs iterations of its scenario's exec function.
type ActiveVU interface {
	// RunOnce runs one iteration. It returns an error only for an
	// iteration that did not complete; see IterationError and the
	// ExitCode errors in errors.go.
	RunOnce() error
}

// ActivationParams binds a VU to a scenario.
type ActivationParams struct {
	// RunContext ends the activation (hard stop of the executor).
	RunContext context.Context
	// Exec is the exported function to call; "default" when empty.
	Exec     string
	Scenario *ScenarioState
	// Env is the scenario's env, overlaid on __ENV.
	Env map[string]string
	// Tags are the scenario's tags plus scenario=<name>.
	Tags map[string]string
	// Deactivate is called once when RunContext is done.
	Deactivate func(InitializedVU)
	// NextIteration returns the iteration numbers of the next iteration
	// in this scenario: in this instance and in the whole test.
	NextIteration func() (inInstance, inTest uint64)
}

// ScenarioState is what k6/execution's `scenario` reports.
type ScenarioState struct {
	Name      string
	Executor  string
	StartTime time.Time
	// Progress returns the scenario's progress, 0..1.
	Progress func() float64
}

// TestControl is what scripts can do to the whole run through k6/execution.
type TestControl interface {
	// Abort stops the run now; the exit code is 108.
	Abort(reason string)
	// Fail marks the run as failed; it goes on and exits with 110.
	Fail(reason string)
	// Instance returns the counters of k6/execution's `instance`.
	Instance() InstanceStats
	// Options returns the consolidated options as a JSON object.
	Options() json.RawMessage
}

// LocatedAborter is a TestControl that also records where the script
// called exec.test.abort(), for the error's log line.
type LocatedAborter interface {
	AbortAt(reason, location string)
}

// InstanceStats is k6/execution's `instance` object.
type InstanceStats struct {
	CurrentTestRunDuration time.Duration
	IterationsCompleted    uint64
	IterationsInterrupted  uint64
	VUsActive              int64
	VUsInitialized         int64
}
