// Command cdeload runs k6-style load test scripts (k6's CLI, options and
// exit codes) with the k6/x/cdeload module built in.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	// The k6/x/cdeload module.
	_ "github.com/cdeload/cdeload"
	// Result outputs (-o json, csv, experimental-prometheus-rw).
	_ "github.com/cdeload/cdeload/engine/output/all"
	"github.com/cdeload/cdeload/internal/cpuprofile"
	"github.com/cdeload/cdeload/internal/pprofhttp"
	"github.com/cdeload/cdeload/tailnet"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "v0.1.0-dev"

// stdio is where a command reads and writes; tests and main share it.
type stdio struct {
	in          io.Reader
	out, errOut io.Writer
	env         map[string]string
	// name is the name the binary was invoked as ("k6" through a link).
	name string
}

// binaryName is the invoked name, "cdeload" when unknown.
func (s *stdio) binaryName() string {
	if s.name == "" {
		return "cdeload"
	}
	return s.name
}

// command is a subcommand of the CLI.
type command struct {
	summary string
	run     func(ctx context.Context, io *stdio, args []string) int
}

// commands returns the subcommands.
func commands() map[string]command {
	return map[string]command{
		"run":     {"run a test script", runCommand},
		"inspect": {"print a script's options (JSON on stdout)", inspectCommand},
		"version": {"print the version", versionCommand},
		"archive": {"pack a script, its options and its files into a tar archive", archiveCommand},
		"lab":     {"serve an embedded CDE (tailnet, DERP, simulated workspaces, Coder API) on loopback", labRun},
		"cleanup": {"remove the Coder workspaces and scaletest users a run left behind", cleanupCommand},
	}
}

func main() {
	env := map[string]string{}
	for _, kv := range os.Environ() {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = v
		}
	}
	stopProfile, err := cpuprofile.StartFromEnv()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	pprofAddr, stopPprof, err := pprofhttp.ServeFromEnv()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	if pprofAddr != "" {
		fmt.Fprintf(os.Stderr, "cdeload: pprof on http://%s/debug/pprof/\n", pprofAddr)
	}
	code := dispatch(context.Background(), &stdio{in: os.Stdin, out: os.Stdout, errOut: os.Stderr, env: env}, os.Args)
	stopProfile()
	stopPprof()
	exit(code)
}

// exit removes the process's temporary tailnet state (left behind by nodes
// an error or a signal kept from closing) and exits with code.
func exit(code int) {
	if err := tailnet.RemoveStateDirs(); err != nil {
		fmt.Fprintf(os.Stderr, "cdeload: %v\n", err)
	}
	os.Exit(code)
}

func dispatch(ctx context.Context, s *stdio, argv []string) int {
	name := filepath.Base(argv[0])
	s.name = name
	global, args, err := splitGlobalFlags(argv[1:])
	cmds := commands()
	if err != nil {
		return flagError(s, "", err)
	}
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(s.out, name, cmds)
		return 0
	}
	if args[0] == "--version" {
		return versionCommand(ctx, s, nil)
	}
	c, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(s.errOut, "%s: unknown command %q\n", name, args[0])
		usage(s.errOut, name, cmds)
		return 255
	}
	return c.run(ctx, s, append(global, args[1:]...))
}

// globalFlags are k6's persistent flags, which k6 accepts before the
// command too (`k6 --quiet run x.js`); the value tells whether the flag
// takes a value.
var globalFlags = map[string]bool{
	"-q": false, "--quiet": false, "-v": false, "--verbose": false, "--no-color": false,
	"-a": true, "--address": true, "-c": true, "--config": true, "--log-format": true,
}

// splitGlobalFlags moves the persistent flags given before the command out
// of args, so that the command parses them as its own flags.
func splitGlobalFlags(args []string) (global, rest []string, err error) {
	for len(args) > 0 && strings.HasPrefix(args[0], "-") && args[0] != "-h" && args[0] != "--help" && args[0] != "--version" {
		flag, _, hasValue := strings.Cut(args[0], "=")
		takesValue, known := globalFlags[flag]
		if !known {
			return nil, nil, fmt.Errorf("unknown flag: %s", args[0])
		}
		global = append(global, args[0])
		args = args[1:]
		if takesValue && !hasValue {
			if len(args) == 0 {
				return nil, nil, fmt.Errorf("flag needs an argument: %s", flag)
			}
			global = append(global, args[0])
			args = args[1:]
		}
	}
	return global, args, nil
}

func usage(w io.Writer, name string, cmds map[string]command) {
	fmt.Fprintf(w, "Usage: %s <command> [flags] [script]\n\nCommands:\n", name)
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, cmds[n].summary)
	}
	fmt.Fprintf(w, "\nRun '%s <command> --help' for the flags of a command.\n", name)
}

func versionCommand(_ context.Context, s *stdio, _ []string) int {
	fmt.Fprintf(s.out, "cdeload %s (k6-compatible; %s)\n", version, goVersion())
	return 0
}
