// Package egressguard catches stray HTTP(S) egress in tests: it runs a
// loopback proxy that refuses and records every request, and points
// HTTP_PROXY / HTTPS_PROXY at it. Requests to loopback addresses bypass
// proxies (Go's and tailscale's proxy logic never proxy loopback), so any
// request the proxy sees was headed off the machine.
package egressguard

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"sync"
)

// Guard is a running recording proxy.
type Guard struct {
	srv *http.Server
	ln  net.Listener

	mu   sync.Mutex
	seen []string
}

// Start starts the proxy on 127.0.0.1 and sets HTTP_PROXY, HTTPS_PROXY
// (and their lower-case forms) to it, with NO_PROXY cleared. Call it in
// TestMain before any other code reads the proxy environment.
func Start() (*Guard, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("egressguard: listen: %w", err)
	}
	g := &Guard{ln: ln}
	g.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		target := r.Host
		if r.Method != http.MethodConnect && r.URL != nil && r.URL.Host != "" {
			target = r.URL.String()
		}
		g.mu.Lock()
		g.seen = append(g.seen, r.Method+" "+target)
		g.mu.Unlock()
		http.Error(w, "egress refused by test guard", http.StatusForbidden)
	})}
	go g.srv.Serve(ln)
	u := "http://" + ln.Addr().String()
	for _, k := range []string{"HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"} {
		os.Setenv(k, u)
	}
	for _, k := range []string{"NO_PROXY", "no_proxy"} {
		os.Unsetenv(k)
	}
	return g, nil
}

// Requests returns every request the proxy has refused ("METHOD target").
func (g *Guard) Requests() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.seen...)
}

// Close stops the proxy.
func (g *Guard) Close() error { return g.srv.Close() }

// Run starts a guard, calls run (typically a TestMain's m.Run, or a
// function that sets up, runs the tests and tears down) and returns run's
// exit code, or 1 if the guard recorded any request, or 2 if the guard
// could not start. Failures are reported on stderr. Use it in TestMain as
//
//	func TestMain(m *testing.M) { os.Exit(egressguard.Run(m.Run)) }
func Run(run func() int) int {
	g, err := Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	defer g.Close()
	code := run()
	if reqs := g.Requests(); len(reqs) > 0 {
		fmt.Fprintf(os.Stderr, "FAIL: stray egress through the guard proxy: %q\n", reqs)
		code = 1
	}
	return code
}
