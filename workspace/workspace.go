// Package workspace defines the lifecycle of a cloud development environment
// workspace independently of the system that provides it: the Provider
// interface, the phases whose timings are reported to an Observer, scaletest
// naming, and the cleanup ledger that records every resource created so it
// can be removed even after an aborted run.
package workspace

import (
	"context"
	"time"
)

// Agent is one agent of a workspace (a process inside the workspace that the
// control plane talks to).
type Agent struct {
	// ID is the provider's identifier of the agent.
	ID string `json:"id"`
	// Name is the agent's name in the template (for example "main").
	Name string `json:"name"`
}

// Workspace describes a workspace known to a provider.
type Workspace struct {
	// ID is the provider's identifier of the workspace.
	ID string `json:"id"`
	// Name is the workspace name (scaletest-<runid>-<n> when created by cdeload).
	Name string `json:"name"`
	// Owner is the username of the owner.
	Owner string `json:"owner"`
	// OwnerID is the provider's identifier of the owner.
	OwnerID string `json:"owner_id,omitempty"`
	// Template is the template name the workspace was created from.
	Template string `json:"template,omitempty"`
	// Address is the tailnet address of the first agent (for SSH), if known.
	Address string `json:"address,omitempty"`
	// Agents lists the agents of the latest build.
	Agents []Agent `json:"agents,omitempty"`
	// BuildID is the identifier of the latest build the client knows about.
	BuildID string `json:"build_id,omitempty"`
	// Status is the workspace's status after its latest build as the
	// provider reports it (Coder: running, stopped, starting, failed…), if
	// known.
	Status string `json:"status,omitempty"`
	// RequestedAt is when the create request was sent (zero if not created by
	// this process); WaitReady measures the ready phase from it.
	RequestedAt time.Time `json:"requested_at,omitzero"`
	// Timings holds the phase durations measured so far.
	Timings Timings `json:"timings,omitzero"`
}

// AgentID returns the ID of the first agent, or "" when there is none.
func (w Workspace) AgentID() string {
	if len(w.Agents) == 0 {
		return ""
	}
	return w.Agents[0].ID
}

// Timings holds the duration of each lifecycle phase of a workspace. A zero
// value means the phase was not measured.
type Timings struct {
	// Build is build job queued → job succeeded.
	Build time.Duration `json:"build,omitempty"`
	// AgentConnect is build succeeded → every agent connected (and ready).
	AgentConnect time.Duration `json:"agent_connect,omitempty"`
	// Ready is create request → workspace usable.
	Ready time.Duration `json:"ready,omitempty"`
	// Delete is delete request → workspace gone.
	Delete time.Duration `json:"delete,omitempty"`
}

// CreateRequest asks a provider for a new workspace.
type CreateRequest struct {
	// Template is the template name (required).
	Template string
	// Parameters are template parameter values by name; parameters not given
	// take the template's defaults.
	Parameters map[string]string
	// Name overrides the generated scaletest name (optional).
	Name string
}

// Provider creates and manages workspaces. Every method takes the context
// first; implementations must be safe for concurrent use.
type Provider interface {
	// Create requests a new workspace and returns as soon as the provider has
	// accepted it (the build may still be running).
	Create(ctx context.Context, req CreateRequest) (Workspace, error)
	// WaitReady waits until the workspace's build succeeded and every agent is
	// connected, and returns the workspace with agents and timings filled in.
	WaitReady(ctx context.Context, ws Workspace) (Workspace, error)
	// Stop stops a running workspace and waits for the stop to finish.
	Stop(ctx context.Context, ws Workspace) error
	// Start starts a stopped workspace and waits until it is ready again.
	Start(ctx context.Context, ws Workspace) (Workspace, error)
	// Delete deletes the workspace (cancelling an active build first) and
	// waits until it is gone. Deleting a workspace that is already gone is
	// not an error.
	Delete(ctx context.Context, ws Workspace) error
	// List returns the workspaces created by this provider's run that still
	// exist.
	List(ctx context.Context) ([]Workspace, error)
	// Cleanup removes every workspace and user recorded in the provider's
	// ledger, workspaces first. It is idempotent.
	Cleanup(ctx context.Context) error
}
