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
)

func init() {
	extraCommands["lab"] = command{
		summary: "serve an embedded CDE (tailnet, DERP, simulated workspaces) on loopback",
		run: func(ctx context.Context, s *stdio, args []string) int {
			return labCommandContext(ctx, args, s.out, s.errOut)
		},
	}
}

// labCommand runs "cdeload lab": an embedded CDE on loopback, served until
// SIGINT or SIGTERM. It returns the process exit code.
func labCommand(args []string, stdout, stderr io.Writer) int {
	return labCommandContext(context.Background(), args, stdout, stderr)
}

// labCommandContext is labCommand that also stops when ctx ends.
func labCommandContext(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("lab", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: cdeload lab [flags]\n\nRuns a tailnet control server, DERP/STUN relay and simulated workspaces on\nloopback, prints shell exports for them, and serves until interrupted.\n\nFlags:")
		fs.PrintDefaults()
	}
	listen := fs.String("listen", "127.0.0.1:0", "address of the lab HTTP API (loopback only)")
	n := fs.Int("workspaces", 0, "number of workspaces to start up front (ws-000, ws-001, ...)")
	par := fs.Int("parallelism", 0, "concurrent workspace starts/stops (0 = default)")
	fullMesh := fs.Bool("full-mesh", false, "let workspaces see each other (default: hub-and-spoke)")
	keyFile := fs.String("key-file", "", "write the SSH client key here (default: a temporary file)")
	verbose := fs.BoolP("verbose", "v", false, "log control, DERP and node diagnostics to stderr")
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
	cfg := lab.Config{Listen: *listen, Workspaces: *n, Parallelism: *par, FullMesh: *fullMesh}
	if *verbose {
		cfg.Logf = log.New(stderr, "", log.LstdFlags).Printf
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := lab.Serve(ctx, cfg, lab.ServeOptions{KeyFile: *keyFile}, stdout); err != nil {
		fmt.Fprintf(stderr, "cdeload lab: %v\n", err)
		return 1
	}
	return 0
}
