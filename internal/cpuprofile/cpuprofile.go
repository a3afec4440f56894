// Package cpuprofile writes a CPU profile of a time window of a process,
// for benchmarks that must profile a steady phase (bench/echo.sh) and not
// start-up or connection storms.
package cpuprofile

import (
	"fmt"
	"os"
	"runtime/pprof"
	"strings"
	"time"
)

// EnvVar names the variable StartFromEnv reads: "PATH" profiles from start
// to stop; "PATH@DELAY+LENGTH" (Go durations, e.g. "/tmp/b.pprof@8s+10s")
// profiles LENGTH starting DELAY after StartFromEnv.
const EnvVar = "CDELOAD_CPUPROFILE"

// StartFromEnv starts the profile EnvVar asks for and returns the function
// that ends it (a no-op when unset). Errors name the variable and value.
func StartFromEnv() (stop func(), err error) {
	spec := os.Getenv(EnvVar)
	if spec == "" {
		return func() {}, nil
	}
	path, window, hasWindow := strings.Cut(spec, "@")
	var delay, length time.Duration
	if hasWindow {
		d, l, ok := strings.Cut(window, "+")
		if ok {
			delay, err = time.ParseDuration(d)
			if err == nil {
				length, err = time.ParseDuration(l)
			}
		}
		if !ok || err != nil || delay < 0 || length <= 0 {
			return nil, fmt.Errorf("%s=%q: want PATH or PATH@DELAY+LENGTH with Go durations, e.g. /tmp/p.pprof@8s+10s", EnvVar, spec)
		}
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", EnvVar, err)
	}
	done := make(chan struct{})
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		defer f.Close()
		select {
		case <-time.After(delay):
		case <-done:
			return
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", EnvVar, err)
			return
		}
		defer pprof.StopCPUProfile()
		if hasWindow {
			select {
			case <-time.After(length):
			case <-done:
			}
			return
		}
		<-done
	}()
	return func() {
		close(done)
		<-ended
	}, nil
}
