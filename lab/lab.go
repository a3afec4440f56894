// Package lab runs an embedded CDE on loopback: a tailnet control server
// with DERP and STUN (lab/tailnetlab), simulated workspaces reachable over
// SSH on that tailnet (lab/workspaces), a Coder API simulator (lab/codersim)
// whose workspaces are those simulated workspaces (lab/coderbackend), and a
// small HTTP API through which other processes start and stop workspaces and
// fetch their addresses and SSH credentials.
//
// The Coder API (/api/v2/...) is served on the same HTTP server, so the
// lab's URL is also its CODER_URL ([Lab.CoderURL]); the admin's session
// token is [Lab.CoderToken]. Coder workspaces are reachable over the lab's
// tailnet at their agent's address, with the lab's SSH credentials, and,
// like a real Coder's, through the simulator's tailnet endpoints
// (connection info, coordination, /derp): each agent's node also holds its
// Coder address and serves SSH without credentials on tailnet port 1.
//
// HTTP API (JSON; unknown fields are rejected):
//
//	GET    /lab/v1/info                 Info; needs the lab's token (401 without)
//	POST   /lab/v1/workspaces {"name"}  201 Workspace (409 if the name is taken)
//	GET    /lab/v1/workspaces           {"workspaces": [Workspace...]}
//	GET    /lab/v1/workspaces/{name}    Workspace
//	DELETE /lab/v1/workspaces/{name}    204; ?crash=true kills it abruptly
//	GET    /lab/v1/coder/agents/{id}    CoderAgent (404 if no such running agent)
//
// where Info is {controlURL, authKey, user, privateKeyPEM, hostKey,
// coderURL, coderSessionToken} and Workspace is {name, address, sshAddress,
// user, privateKeyPEM, hostKey, knownHosts}. The lab's token ([Lab.Token],
// or its Coder session token) goes in "Authorization: Bearer <token>" or
// "Coder-Session-Token: <token>"; without it, workspaces come without
// privateKeyPEM, so that other users of the machine learn no secret.
package lab

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/cdeload/cdeload/lab/coderbackend"
	"github.com/cdeload/cdeload/lab/codersim"
	"github.com/cdeload/cdeload/lab/tailnetlab"
	"github.com/cdeload/cdeload/lab/workspaces"
)

// Config configures a lab.
type Config struct {
	// Listen is the address of the lab's HTTP API. Empty means
	// "127.0.0.1:0". Only loopback addresses are accepted; the tailnet
	// servers bind to the same IP.
	Listen string
	// Workspaces is how many workspaces to start up front, named
	// ws-000, ws-001, ...
	Workspaces int
	// Parallelism bounds concurrent workspace starts and stops (0 means
	// workspaces.DefaultParallelism).
	Parallelism int
	// FullMesh makes every tailnet node see every other (default
	// hub-and-spoke: workspaces see only load generators).
	FullMesh bool
	// NoCoder disables the Coder API simulator (it runs by default).
	NoCoder bool
	// Coder configures the Coder API simulator.
	Coder CoderConfig
	// Kubernetes, if set, runs the workspaces as pods of a real API server.
	Kubernetes *KubernetesConfig
	// Logf receives diagnostic logs; nil discards them.
	Logf func(format string, args ...any)
}

// CoderConfig configures the lab's Coder API simulator.
type CoderConfig struct {
	// Faults are the simulator's fault knobs (see codersim.Faults). With
	// AgentCrashAfter the workspace itself crashes too: its tailnet node and
	// SSH server die abruptly when the fault disconnects its agent
	// (AgentCrashAfter after the agent became ready).
	Faults codersim.Faults
	// Seed seeds the fault generator.
	Seed uint64
	// DisableDirectConnections makes the simulator's Coder clients relay
	// through DERP only (as a deployment with CODER_BLOCK_DIRECT does).
	DisableDirectConnections bool
}

// Lab is a running embedded CDE.
type Lab struct {
	// Tailnet is the control, DERP and STUN side.
	Tailnet *tailnetlab.Lab
	// Workspaces owns the simulated workspaces.
	Workspaces *workspaces.Manager

	token   string // required by GET /lab/v1/info
	mux     *http.ServeMux
	ln      net.Listener
	http    *http.Server
	coder   *codersim.Server      // nil with NoCoder
	backend *coderbackend.Backend // nil with NoCoder
	kube    *kubeLab              // nil without Config.Kubernetes
}

// ListenHost validates a loopback listen address and returns its IP.
func ListenHost(listen string) (netip.Addr, error) {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("lab: listen address %q: %w", listen, err)
	}
	if host == "localhost" {
		host = "127.0.0.1"
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || !ip.IsLoopback() || !ip.Is4() {
		return netip.Addr{}, fmt.Errorf("lab: listen address %q: only IPv4 loopback addresses (127.0.0.0/8) are allowed", listen)
	}
	return ip, nil
}

// Start starts the lab. ctx bounds the start-up, including pre-started
// workspaces.
func Start(ctx context.Context, cfg Config) (*Lab, error) {
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	if cfg.Workspaces < 0 {
		return nil, fmt.Errorf("lab: Workspaces %d: must be >= 0", cfg.Workspaces)
	}
	ip, err := ListenHost(cfg.Listen)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("lab: listen on %s: %w", cfg.Listen, err)
	}
	tl, err := tailnetlab.Start(ctx, tailnetlab.Config{Host: ip.String(), FullMesh: cfg.FullMesh, Logf: cfg.Logf})
	if err != nil {
		ln.Close()
		return nil, err
	}
	creds, err := workspaces.NewCredentials()
	if err != nil {
		ln.Close()
		tl.Close()
		return nil, err
	}
	mgr, err := workspaces.NewManager(workspaces.Config{
		ControlURL: tl.ControlURL(), AuthKey: tl.AuthKey(), Credentials: creds, Logf: cfg.Logf,
	}, cfg.Parallelism)
	if err != nil {
		ln.Close()
		tl.Close()
		return nil, err
	}
	l := &Lab{Tailnet: tl, Workspaces: mgr, mux: http.NewServeMux(), ln: ln, token: "cdeload-lab-" + rand.Text()}
	if cfg.Kubernetes != nil {
		if err := l.startKubernetes(ctx, cfg.Kubernetes); err != nil {
			ln.Close()
			mgr.Close()
			tl.Close()
			return nil, err
		}
	}
	if !cfg.NoCoder {
		if err := l.startCoder(ip, cfg); err != nil {
			l.kube.close()
			ln.Close()
			mgr.Close()
			tl.Close()
			return nil, err
		}
	}
	l.routes()
	l.http = &http.Server{Handler: l.mux, ReadHeaderTimeout: 10 * time.Second}
	go l.http.Serve(ln)

	if cfg.Workspaces > 0 {
		specs := make([]workspaces.WorkspaceSpec, cfg.Workspaces)
		for i := range specs {
			specs[i].Name = fmt.Sprintf("ws-%03d", i)
		}
		if _, err := mgr.StartMany(ctx, specs); err != nil {
			l.Close()
			return nil, fmt.Errorf("lab: pre-start %d workspaces: %w", cfg.Workspaces, err)
		}
	}
	return l, nil
}

// startCoder starts the Coder API simulator with a backend of simulated
// tailnet workspaces and mounts it on the lab's HTTP server.
func (l *Lab) startCoder(ip netip.Addr, cfg Config) error {
	be, err := coderbackend.New(coderbackend.Config{
		Workspaces: l.Workspaces, ControlURL: l.Tailnet.ControlURL(), AuthKey: l.Tailnet.AuthKey(), Logf: cfg.Logf,
		AssignAddress: l.Tailnet.AssignAddress,
	})
	if err != nil {
		return fmt.Errorf("lab: Coder backend: %w", err)
	}
	var simBackend codersim.Backend = be
	if l.kube != nil {
		if simBackend, err = l.kube.coderBackend(be); err != nil {
			be.Close()
			return err
		}
	}
	sim, err := codersim.New(codersim.Config{Addr: netip.AddrPortFrom(ip, 0).String(), Seed: cfg.Coder.Seed,
		Backend: simBackend, Faults: cfg.Coder.Faults, Tailnet: l.Tailnet,
		DisableDirectConnections: cfg.Coder.DisableDirectConnections})
	if err != nil {
		l.kube.close()
		be.Close()
		return fmt.Errorf("lab: Coder simulator: %w", err)
	}
	l.coder, l.backend = sim, be
	l.mux.Handle("/api/", sim.Handler())
	l.mux.Handle("/derp", sim.Handler()) // Coder's embedded DERP relay
	l.mux.Handle("/derp/", sim.Handler())
	return nil
}

// Coder is the Coder API simulator, or nil when the lab runs without it.
func (l *Lab) Coder() *codersim.Server { return l.coder }

// CoderBackend runs the Coder simulator's workspaces, or is nil when the
// lab runs without the simulator.
func (l *Lab) CoderBackend() *coderbackend.Backend { return l.backend }

// CoderURL is the Coder API's base URL (CODER_URL): the lab's own URL, or
// "" when the lab runs without the simulator.
func (l *Lab) CoderURL() string {
	if l.coder == nil {
		return ""
	}
	return l.URL()
}

// CoderToken is the session token of the Coder simulator's first user, an
// owner (CODER_SESSION_TOKEN), or "" without the simulator.
func (l *Lab) CoderToken() string {
	if l.coder == nil {
		return ""
	}
	return l.coder.AdminToken
}

// Token is the lab's API token (CDELOAD_LAB_TOKEN), which GET /lab/v1/info
// requires; the Coder session token is accepted as well.
func (l *Lab) Token() string { return l.token }

// authorized reports whether r carries the lab's token or its Coder
// session token.
func (l *Lab) authorized(r *http.Request) bool {
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		got = r.Header.Get("Coder-Session-Token")
	}
	if got == "" {
		return false
	}
	same := func(want string) bool {
		return want != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
	}
	return same(l.token) || same(l.CoderToken())
}

// ControlURL is the tailnet control server's URL (TS_CONTROL_URL).
func (l *Lab) ControlURL() string { return l.Tailnet.ControlURL() }

// AuthKey is the tailnet auth key (TS_AUTHKEY).
func (l *Lab) AuthKey() string { return l.Tailnet.AuthKey() }

// Credentials are the workspaces' SSH credentials.
func (l *Lab) Credentials() *workspaces.Credentials { return l.Workspaces.Credentials() }

// URL is the base URL of the lab's HTTP API.
func (l *Lab) URL() string { return "http://" + l.ln.Addr().String() }

// Handle adds a route to the lab's HTTP server (for the Coder simulator).
func (l *Lab) Handle(pattern string, h http.Handler) { l.mux.Handle(pattern, h) }

// Close stops the HTTP API, the Coder simulator, every workspace and the
// tailnet servers.
func (l *Lab) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	errs := []error{l.http.Shutdown(ctx)}
	if errors.Is(errs[0], context.DeadlineExceeded) {
		errs[0] = l.http.Close()
	}
	if l.coder != nil {
		errs = append(errs, l.coder.Close(), l.backend.Close())
	}
	errs = append(errs, l.kube.close())
	errs = append(errs, l.Workspaces.Close(), l.Tailnet.Close())
	return errors.Join(errs...)
}
