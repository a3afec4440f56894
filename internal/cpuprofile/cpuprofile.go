// Package cpuprofile writes a CPU profile, or an execution trace, of a time
// window of a process, for benchmarks that must look at a steady phase
// (bench/echo.sh) and not start-up or connection storms.
package cpuprofile

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"strings"
	"time"
)

// EnvVar names the CPU profile variable StartFromEnv reads: "PATH"
// profiles from start to stop; "PATH@DELAY+LENGTH" (Go durations, e.g.
// "/tmp/b.pprof@8s+10s") profiles LENGTH starting DELAY after
// StartFromEnv.
const EnvVar = "CDELOAD_CPUPROFILE"

// TraceEnvVar names the execution trace variable StartFromEnv reads, with
// the same syntax as EnvVar (`go tool trace PATH`; its scheduler latency
// profile shows how long runnable goroutines waited for a thread).
const TraceEnvVar = "CDELOAD_TRACE"

// recorder starts and stops one kind of recording into w.
type recorder struct {
	env   string
	start func(w io.Writer) error
	stop  func()
}

// AllocEnvVar names the allocation profile variable StartFromEnv reads,
// with the same syntax as EnvVar: PATH.start gets the heap profile at the
// window's start and PATH the one at its end, so that
// `go tool pprof -sample_index=alloc_space -base PATH.start PATH` shows what
// the window allocated.
const AllocEnvVar = "CDELOAD_ALLOCPROFILE"

var recorders = []recorder{
	{env: EnvVar, start: pprof.StartCPUProfile, stop: pprof.StopCPUProfile},
	{env: TraceEnvVar, start: trace.Start, stop: trace.Stop},
	allocRecorder(),
}

// allocRecorder writes the heap profile (with its allocation counts) at the
// window's start to PATH.start and at its end to PATH.
func allocRecorder() recorder {
	var out *os.File
	snapshot := func(w io.Writer) error {
		runtime.GC() // the profile is as of the last collection
		return pprof.Lookup("allocs").WriteTo(w, 0)
	}
	return recorder{
		env: AllocEnvVar,
		start: func(w io.Writer) error {
			f, ok := w.(*os.File)
			if !ok {
				return errors.New("allocation profile: not a file")
			}
			first, err := os.Create(f.Name() + ".start")
			if err != nil {
				return err
			}
			defer first.Close()
			out = f
			return snapshot(first)
		},
		stop: func() {
			if err := snapshot(out); err != nil {
				fmt.Fprintf(os.Stderr, "%s: %v\n", AllocEnvVar, err)
			}
		},
	}
}

// StartFromEnv starts the recordings EnvVar, TraceEnvVar and AllocEnvVar
// ask for and returns the function that ends them (a no-op when all are
// unset).
// Errors name the variable and value.
func StartFromEnv() (stop func(), err error) {
	var stops []func()
	stopAll := func() {
		for _, s := range stops {
			s()
		}
	}
	for _, r := range recorders {
		s, err := startWindow(r)
		if err != nil {
			stopAll()
			return nil, err
		}
		stops = append(stops, s)
	}
	return stopAll, nil
}

// startWindow starts r for the window its variable names.
func startWindow(r recorder) (stop func(), err error) {
	spec := os.Getenv(r.env)
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
			return nil, fmt.Errorf("%s=%q: want PATH or PATH@DELAY+LENGTH with Go durations, e.g. /tmp/p.out@8s+10s", r.env, spec)
		}
	}
	if path == "" {
		return nil, errors.New(r.env + ": empty path")
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", r.env, err)
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
		if err := r.start(f); err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", r.env, err)
			return
		}
		defer r.stop()
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
