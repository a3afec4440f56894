package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/pflag"

	"github.com/cdeload/cdeload/lab"
	"github.com/cdeload/cdeload/lab/codersim"
)

// labRun is the "lab" subcommand.
func labRun(ctx context.Context, s *stdio, args []string) int {
	return labCommandContext(ctx, args, s.out, s.errOut)
}

func labCommandContext(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("lab", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: cdeload lab [flags]\n\nRuns a tailnet control server, DERP/STUN relay, simulated workspaces and a\nCoder API simulator whose workspaces are those simulated workspaces, on\nloopback; prints shell exports for them (eval them, then `cdeload run`) and\nserves until interrupted, then stops every workspace.\n\nFlags:")
		fs.PrintDefaults()
	}
	listen := fs.String("listen", "127.0.0.1:0", "address of the lab HTTP API (loopback only)")
	n := fs.Int("workspaces", 0, "number of workspaces to start up front (ws-000, ws-001, ...)")
	par := fs.Int("parallelism", 0, "concurrent workspace starts/stops (0 = default)")
	fullMesh := fs.Bool("full-mesh", false, "let workspaces see each other (default: hub-and-spoke)")
	keyFile := fs.String("key-file", "", "write the SSH client key here (default: a temporary file)")
	envFile := fs.String("env-file", "", "once serving, write the shell exports to this file atomically (source it); removed on exit")
	verbose := fs.BoolP("verbose", "v", false, "log control, DERP and node diagnostics to stderr")
	noCoder := fs.Bool("no-coder", false, "do not run the Coder API simulator")
	buildLatency := fs.Duration("build-latency", 0, "Coder: how long a workspace build job runs (e.g. 2s)")
	buildJitter := fs.Duration("build-jitter", 0, "Coder: extra random build time, uniform in [0, jitter)")
	failRate := fs.Float64("build-failure-rate", 0, "Coder: probability (0-1) that a start build fails")
	neverRate := fs.Float64("agent-never-connects-rate", 0, "Coder: probability (0-1) that an agent never connects")
	crashAfter := fs.Duration("agent-crash-after", 0, "Coder: crash every workspace (agent and machine) this long after its agent became ready (0 = never)")
	apiErrRate := fs.Float64("api-error-rate", 0, "Coder: probability (0-1) that an API request fails with 500")
	rateLimit := fs.Int("rate-limit", 0, "Coder: API requests per second allowed per user and endpoint, beyond that 429 (0 = unlimited)")
	seed := fs.Uint64("seed", 0, "Coder: seed of the fault generator (same seed, same faults)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "cdeload lab: %v\n", err)
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "cdeload lab: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if *n < 0 {
		fmt.Fprintf(stderr, "cdeload lab: --workspaces %d: must be >= 0\n", *n)
		return 2
	}
	if _, err := lab.ListenHost(*listen); err != nil {
		fmt.Fprintf(stderr, "cdeload lab: --listen: %v\n", err)
		return 2
	}
	if err := checkLabFaults(fs); err != nil {
		fmt.Fprintf(stderr, "cdeload lab: %v\n", err)
		return 2
	}
	cfg := lab.Config{Listen: *listen, Workspaces: *n, Parallelism: *par, FullMesh: *fullMesh, NoCoder: *noCoder,
		Coder: lab.CoderConfig{Seed: *seed, Faults: codersim.Faults{
			Build:                  codersim.Latency{Fixed: *buildLatency, Jitter: *buildJitter},
			BuildFailureRate:       *failRate,
			AgentNeverConnectsRate: *neverRate,
			AgentCrashAfter:        *crashAfter,
			APIErrorRate:           *apiErrRate,
			RateLimit:              *rateLimit,
		}}}
	if *verbose {
		cfg.Logf = log.New(stderr, "", log.LstdFlags).Printf
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := lab.Serve(ctx, cfg, lab.ServeOptions{KeyFile: *keyFile, EnvFile: *envFile}, stdout); err != nil {
		fmt.Fprintf(stderr, "cdeload lab: %v\n", err)
		return 1
	}
	return 0
}

// checkLabFaults validates the fault flags: rates between 0 and 1,
// durations and the rate limit not negative, and none of them together with
// --no-coder.
func checkLabFaults(fs *pflag.FlagSet) error {
	var err error
	noCoder, _ := fs.GetBool("no-coder")
	fs.Visit(func(f *pflag.Flag) {
		if err != nil {
			return
		}
		switch f.Name {
		case "build-failure-rate", "agent-never-connects-rate", "api-error-rate":
			v, _ := fs.GetFloat64(f.Name)
			if !(v >= 0 && v <= 1) {
				err = fmt.Errorf("--%s %s: must be a probability between 0 and 1", f.Name, f.Value)
			}
		case "build-latency", "build-jitter", "agent-crash-after":
			v, _ := fs.GetDuration(f.Name)
			if v < 0 {
				err = fmt.Errorf("--%s %s: must not be negative", f.Name, f.Value)
			}
		case "rate-limit":
			v, _ := fs.GetInt(f.Name)
			if v < 0 {
				err = fmt.Errorf("--%s %s: must be >= 0 requests per second (0 = unlimited)", f.Name, f.Value)
			}
		default:
			return
		}
		if err == nil && noCoder {
			err = fmt.Errorf("--%s: is a Coder simulator fault and cannot be used with --no-coder", f.Name)
		}
	})
	return err
}
