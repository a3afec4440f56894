package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/cdeload/cdeload/engine/modules"
	"github.com/cdeload/cdeload/workspace"
	"github.com/cdeload/cdeload/workspace/coder"
)

// cleanupCommand is the "cleanup" subcommand: Coder's `scaletest cleanup`
// for what a cdeload run left behind.
func cleanupCommand(ctx context.Context, s *stdio, args []string) int {
	fs := pflag.NewFlagSet("cleanup", pflag.ContinueOnError)
	fs.SetOutput(s.errOut)
	fs.Usage = func() {
		fmt.Fprintln(s.errOut, "Usage: cdeload cleanup (--run-id ID | --all) [flags]\n\n"+
			"Removes the workspaces and scaletest users a run left on the Coder deployment at\n"+
			"CODER_URL (authenticated with CODER_SESSION_TOKEN, an owner's): those of run ID\n"+
			"(as printed when a run was stopped before its cleanup ended), or with --all every\n"+
			"workspace and user whose name starts with scaletest-, as Coder's `scaletest\n"+
			"cleanup` does. Workspaces go first (active builds are cancelled), then users.\n\nFlags:")
		fs.PrintDefaults()
	}
	runID := fs.String("run-id", "", "remove the resources of this run id (scaletest-<id>-*, scaletest-<id>c<k>-*)")
	all := fs.Bool("all", false, "remove every scaletest- workspace and user, of any run")
	dryRun := fs.Bool("dry-run", false, "list what would be removed, remove nothing")
	concurrency := fs.Int("concurrency", coder.DefaultCleanupConcurrency, "removals requested at once")
	timeout := fs.Duration("timeout", 30*time.Minute, "give up after this long")
	requestTimeout := fs.Duration("request-timeout", coder.DefaultRequestTimeout, "bound of each HTTP request to Coder")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(s.errOut, "cdeload cleanup: %v\n", err)
		return 2
	}
	fail := func(format string, a ...any) int {
		fmt.Fprintf(s.errOut, "cdeload cleanup: "+format+"\n", a...)
		return 2
	}
	switch {
	case fs.NArg() > 0:
		return fail("unexpected argument %q", fs.Arg(0))
	case *runID == "" && !*all:
		return fail("say what to remove: --run-id ID (one run) or --all (every scaletest- resource)")
	case *runID != "" && *all:
		return fail("--run-id and --all: give one of them")
	case *concurrency < 1:
		return fail("--concurrency %d: must be at least 1", *concurrency)
	case *timeout <= 0 || *requestTimeout <= 0:
		return fail("--timeout and --request-timeout must be positive")
	}
	if *runID != "" {
		if _, err := workspace.NewNamer(*runID); err != nil {
			return fail("--run-id: %v", err)
		}
	}
	url, token := s.env["CODER_URL"], s.env["CODER_SESSION_TOKEN"]
	if url == "" || token == "" {
		return fail("set CODER_URL and CODER_SESSION_TOKEN (an owner's session token) to the deployment to clean up")
	}
	p, err := coder.NewProvider(coder.Config{URL: url, Token: token, CleanupConcurrency: *concurrency,
		Client: coder.ClientOptions{RequestTimeout: *requestTimeout, BypassRateLimit: true}})
	if err != nil {
		return fail("%v", err)
	}
	defer p.Close()

	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	var match func(string) bool
	what := "every scaletest- resource"
	if *runID != "" {
		id := *runID
		match = func(name string) bool { return workspace.BelongsToRun(name, id) }
		what = "run " + id
	}
	found, err := p.FindScaletest(ctx, workspace.ScaletestPrefix+*runID, match)
	if err != nil {
		fmt.Fprintf(s.errOut, "cdeload cleanup: %v\n", err)
		return 1
	}
	nws, nusers := countKinds(found)
	for _, e := range found {
		fmt.Fprintln(s.out, describeEntry(e))
	}
	if *dryRun {
		fmt.Fprintf(s.out, "%s: %s would be removed from %s (dry run: nothing removed)\n", what, plural(nws, nusers), url)
		return 0
	}
	for _, e := range found {
		p.Ledger().Record(e)
	}
	cerr := p.Cleanup(ctx)
	lw, lu := countKinds(p.Ledger().Entries())
	fmt.Fprintf(s.out, "%s: removed %s from %s\n", what, plural(nws-lw, nusers-lu), url)
	if cerr != nil {
		fmt.Fprintf(s.errOut, "cdeload cleanup: %s left: %v\n", plural(lw, lu), cerr)
		return 1
	}
	return 0
}

func countKinds(es []workspace.Entry) (workspaces, users int) {
	for _, e := range es {
		if e.Kind == workspace.KindWorkspace {
			workspaces++
		} else {
			users++
		}
	}
	return workspaces, users
}

func describeEntry(e workspace.Entry) string {
	if e.Kind == workspace.KindWorkspace && e.Owner != "" {
		return fmt.Sprintf("workspace %s (owner %s)", e.Name, e.Owner)
	}
	return e.Kind + " " + e.Name
}

func plural(workspaces, users int) string {
	ws, us := "workspaces", "users"
	if workspaces == 1 {
		ws = "workspace"
	}
	if users == 1 {
		us = "user"
	}
	return fmt.Sprintf("%d %s and %d %s", workspaces, ws, users, us)
}

// leftoverReporter is a registered module that can say what a run leaves
// behind when a second signal stops it at once (see RootModule.Leftovers).
type leftoverReporter interface {
	Leftovers() string
}

// reportLeftovers prints what every registered module says the run leaves
// behind, with the commands that remove it.
func reportLeftovers(w io.Writer) {
	for _, name := range modules.Names() {
		m, _ := modules.Lookup(name)
		if r, ok := m.(leftoverReporter); ok {
			if s := strings.TrimSpace(r.Leftovers()); s != "" {
				fmt.Fprintln(w, s)
			}
		}
	}
}
