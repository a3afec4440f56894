// Package pprofhttp serves Go's net/http/pprof endpoints on a loopback
// address named by an environment variable, so a benchmark can take CPU,
// heap and goroutine profiles of a long-running process (`cdeload lab`)
// at the moment it chooses.
package pprofhttp

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"net/netip"
	"os"
	"time"
)

// EnvVar names the variable ServeFromEnv reads: a loopback "IP:PORT"
// (port 0 picks a free one).
const EnvVar = "CDELOAD_PPROF"

// ServeFromEnv starts the pprof server EnvVar asks for and returns its
// address ("" when unset) and the function that stops it. The address must
// be on loopback; errors name the variable and value.
func ServeFromEnv() (addr string, stop func(), err error) {
	spec := os.Getenv(EnvVar)
	if spec == "" {
		return "", func() {}, nil
	}
	ap, err := netip.ParseAddrPort(spec)
	if err != nil || !ap.Addr().IsLoopback() {
		return "", nil, fmt.Errorf("%s=%q: want a loopback IP:PORT, e.g. 127.0.0.1:6060", EnvVar, spec)
	}
	ln, err := net.Listen("tcp", spec)
	if err != nil {
		return "", nil, fmt.Errorf("%s: %w", EnvVar, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintf(os.Stderr, "%s: %v\n", EnvVar, err)
		}
	}()
	return ln.Addr().String(), func() {
		srv.Close()
		<-done
	}, nil
}
