package workspace

import "time"

// Phase names reported to Observer.OnPhase.
const (
	// PhaseBuild is build job queued → job succeeded.
	PhaseBuild = "build"
	// PhaseAgentConnect is build succeeded → every agent connected.
	PhaseAgentConnect = "agent_connect"
	// PhaseReady is create request → workspace usable. It ends a successful
	// create (OpCreate) or start (OpStart).
	PhaseReady = "ready"
	// PhaseDelete is delete request → workspace gone. It ends a successful
	// OpDelete.
	PhaseDelete = "delete"
	// PhaseStop is stop request → stop build succeeded. It ends a successful
	// OpStop.
	PhaseStop = "stop"
)

// Operation names reported to Observer.OnFailure.
const (
	// OpCreate covers Create and WaitReady.
	OpCreate = "create"
	// OpStart covers Start.
	OpStart = "start"
	// OpStop covers Stop.
	OpStop = "stop"
	// OpDelete covers Delete.
	OpDelete = "delete"
	// OpCleanup covers one resource removed by Cleanup.
	OpCleanup = "cleanup"
)

// Observer receives phase timings and failures. Every lifecycle operation
// ends with exactly one terminal event: a successful create or start with
// OnPhase(PhaseReady), a delete with OnPhase(PhaseDelete), a stop with
// OnPhase(PhaseStop), and a failure with OnFailure. A rate of failed
// operations is therefore failures / (failures + terminal phases).
// Implementations must be safe for concurrent use.
type Observer interface {
	// OnPhase reports that phase took d for workspace ws.
	OnPhase(phase string, d time.Duration, ws Workspace)
	// OnFailure reports that operation op failed with err.
	OnFailure(op string, err error)
}

// NopObserver discards every event.
type NopObserver struct{}

// OnPhase implements Observer.
func (NopObserver) OnPhase(string, time.Duration, Workspace) {}

// OnFailure implements Observer.
func (NopObserver) OnFailure(string, error) {}

// MetricName returns the cdeload metric a phase is reported as
// (workspace_build_duration, …), or "" for phases without a metric.
func MetricName(phase string) string {
	switch phase {
	case PhaseBuild:
		return "workspace_build_duration"
	case PhaseAgentConnect:
		return "workspace_agent_connect_duration"
	case PhaseReady:
		return "workspace_ready_duration"
	case PhaseDelete:
		return "workspace_delete_duration"
	}
	return ""
}

// IsTerminalPhase reports whether phase ends a lifecycle operation
// successfully (see Observer).
func IsTerminalPhase(phase string) bool {
	return phase == PhaseReady || phase == PhaseDelete || phase == PhaseStop
}

// FailedMetricName is the Rate metric of failed lifecycle operations.
const FailedMetricName = "workspace_failed"
