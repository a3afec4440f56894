// Package lab runs an embedded CDE on loopback: a tailnet control server
// with DERP and STUN (lab/tailnetlab), simulated workspaces reachable over
// SSH on that tailnet (lab/workspaces), and a small HTTP API through which
// other processes start and stop workspaces and fetch their addresses and
// SSH credentials. The Coder API simulator (lab/codersim) mounts on the same
// HTTP server through [Lab.Handle].
//
// HTTP API (JSON; unknown fields are rejected):
//
//	GET    /lab/v1/info                 {controlURL, authKey, user, privateKeyPEM, hostKey}
//	POST   /lab/v1/workspaces {"name"}  201 Workspace (409 if the name is taken)
//	GET    /lab/v1/workspaces           {"workspaces": [Workspace...]}
//	GET    /lab/v1/workspaces/{name}    Workspace
//	DELETE /lab/v1/workspaces/{name}    204; ?crash=true kills it abruptly
//
// where Workspace is {name, address, sshAddress, user, privateKeyPEM,
// hostKey, knownHosts}.
package lab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"time"

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
	// Logf receives diagnostic logs; nil discards them.
	Logf func(format string, args ...any)
}

// Lab is a running embedded CDE.
type Lab struct {
	// Tailnet is the control, DERP and STUN side.
	Tailnet *tailnetlab.Lab
	// Workspaces owns the simulated workspaces.
	Workspaces *workspaces.Manager

	mux  *http.ServeMux
	ln   net.Listener
	http *http.Server
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
	l := &Lab{Tailnet: tl, Workspaces: mgr, mux: http.NewServeMux(), ln: ln}
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

// Close stops the HTTP API, every workspace and the tailnet servers.
func (l *Lab) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	errs := []error{l.http.Shutdown(ctx), l.Workspaces.Close(), l.Tailnet.Close()}
	if errors.Is(errs[0], context.DeadlineExceeded) {
		errs[0] = l.http.Close()
	}
	return errors.Join(errs...)
}
