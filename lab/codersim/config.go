package codersim

import (
	"fmt"
	"time"

	"github.com/cdeload/cdeload/lab/tailnetlab"
)

// Latency is a duration drawn as Fixed plus a uniform jitter in [0, Jitter).
type Latency struct {
	Fixed  time.Duration
	Jitter time.Duration
}

// Faults are the fault knobs of the simulator. They can be changed while it
// runs (Server.SetFaults). Random draws come from the seeded generator, so a
// sequential test sees the same faults on every run.
type Faults struct {
	// BuildQueue is how long a build job stays "pending".
	BuildQueue Latency
	// Build is how long a build job stays "running".
	Build Latency
	// BuildFailureRate is the probability (0–1) that a start build fails.
	BuildFailureRate float64
	// AgentConnect is machine up → agent "connected": after a start build's
	// job succeeds, the workspace machine starts (Backend.StartWorkspace) and
	// its agent dials in this long after the machine is up.
	AgentConnect Latency
	// AgentReady is agent connected → lifecycle "ready".
	AgentReady Latency
	// AgentNeverConnectsRate is the probability (0–1) that an agent stays
	// "connecting" (then "timeout" after AgentConnectionTimeout).
	AgentNeverConnectsRate float64
	// AgentCrashAfter, if positive, disconnects every agent that long after
	// it became ready; a backend that implements AgentEvents is told at that
	// moment, so its machine can die with the agent.
	AgentCrashAfter time.Duration
	// APIErrorRate is the probability (0–1) that an authenticated API
	// request (websockets excluded) fails with 500 before being processed.
	APIErrorRate float64
	// RateLimit, if positive, is the number of requests per second allowed
	// per user and endpoint (path), as coderd keys its limit per minute;
	// beyond it the answer is 429 with Retry-After. Owners that
	// send X-Coder-Bypass-Ratelimit: true are not limited unless
	// IgnoreBypassHeader is set.
	RateLimit int
	// IgnoreBypassHeader applies RateLimit even to owners that ask to bypass.
	IgnoreBypassHeader bool
}

func (f Faults) validate() error {
	for name, r := range map[string]float64{
		"build failure rate": f.BuildFailureRate, "agent never connects rate": f.AgentNeverConnectsRate,
		"API error rate": f.APIErrorRate,
	} {
		if r < 0 || r > 1 {
			return fmt.Errorf("codersim: %s %v: must be between 0 and 1", name, r)
		}
	}
	for name, l := range map[string]Latency{
		"build queue latency": f.BuildQueue, "build latency": f.Build,
		"agent connect latency": f.AgentConnect, "agent ready latency": f.AgentReady,
	} {
		if l.Fixed < 0 || l.Jitter < 0 {
			return fmt.Errorf("codersim: %s %+v: must not be negative", name, l)
		}
	}
	if f.AgentCrashAfter < 0 || f.RateLimit < 0 {
		return fmt.Errorf("codersim: agent crash after %v / rate limit %d: must not be negative", f.AgentCrashAfter, f.RateLimit)
	}
	return nil
}

// TemplateSpec describes a template the simulator serves.
type TemplateSpec struct {
	// Name is the template name.
	Name string
	// DisplayName is shown in the UI.
	DisplayName string
	// Parameters are the active version's rich parameters.
	Parameters []Parameter
	// Agents are the agent names of a started workspace (default ["main"]).
	Agents []string
}

// Config configures a Server.
type Config struct {
	// Addr is the listen address (default 127.0.0.1:0). It must be a
	// loopback address.
	Addr string
	// Seed seeds the fault generator.
	Seed uint64
	// Backend runs the workspace machines (default: NewMemBackend()).
	Backend Backend
	// AdminUsername, AdminEmail and AdminPassword describe the first user, an
	// owner (defaults admin, admin@coder.local, a random password).
	AdminUsername, AdminEmail, AdminPassword string
	// Templates served in the default organization (default: Kubernetes()).
	Templates []TemplateSpec
	// AgentConnectionTimeout is how long an agent may stay "connecting"
	// before its status is "timeout" (default 120s, Coder's default).
	AgentConnectionTimeout time.Duration
	// Version is reported by /api/v2/buildinfo (default "v2.99.0-codersim").
	Version string
	// Faults are the initial fault knobs.
	Faults Faults
	// Tailnet, if set, is the lab tailnet the backend's agents are on (each
	// holding its Coder address there, see tailnetlab.Lab.AssignAddress):
	// the simulator then serves Coder's tailnet endpoints (connection info,
	// the coordination websocket, the DERP relay on /derp) and bridges
	// clients to the agents (see coordinate.go).
	Tailnet *tailnetlab.Lab
	// DisableDirectConnections is reported in the connection info: clients
	// then relay through DERP only.
	DisableDirectConnections bool
	// Logf receives diagnostic logs, such as a workspace machine that failed
	// to start; nil logs through the standard library's log package.
	Logf func(format string, args ...any)
}

// Kubernetes returns a template modelled on Coder's example Kubernetes
// template: cpu and memory chosen from options, home_disk_size a number
// between 1 and 99999.
func Kubernetes() TemplateSpec {
	one, most := int32(1), int32(99999)
	opts := func(unit string, values ...string) []ParameterOption {
		var o []ParameterOption
		for _, v := range values {
			o = append(o, ParameterOption{Name: v + " " + unit, Value: v})
		}
		return o
	}
	return TemplateSpec{
		Name:        "kubernetes",
		DisplayName: "Kubernetes (Deployment)",
		Agents:      []string{"main"},
		Parameters: []Parameter{
			{Name: "cpu", DisplayName: "CPU", Description: "CPU cores of the workspace", Type: "string",
				FormType: "radio", Mutable: true, DefaultValue: "2", Options: opts("Cores", "2", "4", "6", "8")},
			{Name: "memory", DisplayName: "Memory", Description: "Memory of the workspace in GB", Type: "string",
				FormType: "radio", Mutable: true, DefaultValue: "2", Options: opts("GB", "2", "4", "6", "8")},
			{Name: "home_disk_size", DisplayName: "Home disk size", Description: "Size of the home volume in GB",
				Type: "number", FormType: "input", DefaultValue: "10", ValidationMin: &one, ValidationMax: &most,
				ValidationMonotonic: "increasing", ValidationError: "Value must be between 1 and 99999."},
		},
	}
}
