package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"

	"github.com/spf13/pflag"

	"github.com/cdeload/cdeload/engine/js"
	"github.com/cdeload/cdeload/engine/lib"
	"github.com/cdeload/cdeload/engine/metrics"
	"github.com/cdeload/cdeload/engine/modules"
	"github.com/cdeload/cdeload/engine/options"
	"github.com/cdeload/cdeload/engine/output"
	"github.com/cdeload/cdeload/engine/output/webdashboard"
	"github.com/cdeload/cdeload/engine/run"
)

// runContext is everything `run` prepared before the test starts; the
// results wiring (results.go) reads it.
type runContext struct {
	io         *stdio
	flags      *runFlags
	log        *slog.Logger
	scriptPath string
	src        *testSource
	api        *restAPI
	script     *js.Script
	runner     *js.Runner
	opts       options.Options
	placement  *options.Placement // nil without --execution-segment
	registry   *metrics.Registry
	builtin    *metrics.Builtin
	runTags    *metrics.TagSet
	outputs    []output.Output
	config     *configFile
	env        map[string]string
	summary    string // compact, full or disabled
}

func runCommand(ctx context.Context, s *stdio, args []string) int {
	f := newRunFlags("run")
	if code, done := parseFlags(s, f, args, "run [flags] script.js"); done {
		return code
	}
	log := newLogger(s.errOut, f.verbose)
	rc, err := prepareRun(ctx, s, f, log)
	if err != nil {
		return fail(log, err)
	}
	// The REST API serves from before VU init until exit.
	if rc.api, err = startAPI(rc); err != nil {
		if cerr := modules.CloseAll(); cerr != nil {
			log.Warn(cerr.Error())
		}
		return fail(log, err)
	}
	defer rc.api.close(rc)
	return executeRun(ctx, rc)
}

// parseFlags parses args; done is true when the command must return code.
// --help prints the usage on stdout (exit 0), as k6 does; a bad flag or
// value is logged as k6 words it ("unknown flag: --x", "invalid argument
// ...") with a hint, and exits 255 (k6's code for any other error).
func parseFlags(s *stdio, f *runFlags, args []string, use string) (int, bool) {
	f.fs.SetOutput(s.errOut)
	f.fs.Usage = func() {
		fmt.Fprintf(s.out, "Usage: %s %s\n\nFlags:\n%s", s.binaryName(), use, f.fs.FlagUsages())
	}
	if err := f.fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return 0, true
		}
		return flagError(s, f.fs.Name(), err), true
	}
	if f.fs.NArg() != 1 {
		return flagError(s, f.fs.Name(), fmt.Errorf("accepts 1 arg(s) (the script), received %d", f.fs.NArg())), true
	}
	return 0, false
}

// flagError logs a command-line error of cmd with a pointer to its help
// and returns k6's exit code for it (255).
func flagError(s *stdio, cmd string, err error) int {
	log := newLogger(s.errOut, false)
	msg := err.Error()
	if flag, ok := strings.CutPrefix(msg, "unknown flag: "); ok && k6OnlyFlags[strings.SplitN(flag, "=", 2)[0]] {
		msg += " (a k6 flag that cdeload does not support)"
	}
	log.Error(msg)
	if cmd != "" {
		cmd += " "
	}
	fmt.Fprintf(s.errOut, "Run '%s %s--help' for usage.\n", s.binaryName(), cmd)
	return int(lib.ExitUnknown)
}

// k6OnlyFlags are k6 flags that cdeload does not have; an error naming one
// says so, rather than suggesting a typo.
var k6OnlyFlags = map[string]bool{
	"--http-debug": true, "--rps": true, "--blacklist-ip": true, "--block-hostnames": true, "--dns": true,
	"--local-ips": true, "--new-machine-readable-summary": true,
	"--traces-output": true, "--profiling-enabled": true, "--log-output": true, "--features": true,
	"--secret-source": true, "--no-archive-upload": true, "--tls-version": true,
}

// fail logs err and returns its exit code.
func fail(log *slog.Logger, err error) int {
	code := lib.ExitCodeOf(err)
	log.Error(err.Error())
	return int(code)
}

// loadScript parses the test source (a script, stdin or an archive) with
// the given run tags.
func loadScript(ctx context.Context, s *stdio, src *testSource, env map[string]string, reg *metrics.Registry,
	b *metrics.Builtin, log *slog.Logger, tags *metrics.TagSet, verbose bool) (*js.Script, error) {
	cfg := js.Config{Env: env, Registry: reg, Builtin: b, Logger: log, Console: s.errOut, RunTags: tags, Debug: verbose}
	src.jsConfig(&cfg)
	return js.Parse(ctx, cfg)
}

// consolidate merges the options (mergeOptions) and scales the scenarios
// to the execution segment.
func consolidate(log *slog.Logger, f *runFlags, cf *configFile, scriptOpts json.RawMessage, sysEnv map[string]string) (options.Options, error) {
	opts, _, err := consolidatePlaced(log, f, cf, scriptOpts, sysEnv)
	return opts, err
}

// consolidatePlaced is consolidate that also returns where the instance
// sits in the segmented test (nil without an execution segment).
func consolidatePlaced(log *slog.Logger, f *runFlags, cf *configFile, scriptOpts json.RawMessage, sysEnv map[string]string) (options.Options, *options.Placement, error) {
	opts, err := mergeOptions(log, f, cf, scriptOpts, sysEnv)
	if err != nil {
		return options.Options{}, nil, err
	}
	if opts.ExecutionSegment == nil {
		return opts, nil, nil
	}
	seg, err := options.ParseSegment(*opts.ExecutionSegment)
	if err != nil {
		return options.Options{}, nil, lib.Errorf(lib.ExitInvalidConfig, "execution segment: %w", err)
	}
	var seq []*big.Rat
	if opts.ExecutionSegmentSequence != nil {
		if seq, err = options.ParseSegmentSequence(*opts.ExecutionSegmentSequence); err != nil {
			return options.Options{}, nil, lib.Errorf(lib.ExitInvalidConfig, "execution segment sequence: %w", err)
		}
	}
	p, err := options.NewPlacement(seg, seq, opts.Scenarios)
	if err != nil {
		return options.Options{}, nil, lib.Errorf(lib.ExitInvalidConfig, "execution segment: %w", err)
	}
	opts.Scenarios = seg.ScaleScenarios(opts.Scenarios)
	return opts, p, nil
}

// mergeOptions merges config file < script (or archive) < K6_* env < CLI
// flags; the scenarios are not scaled to the execution segment.
func mergeOptions(log *slog.Logger, f *runFlags, cf *configFile, scriptOpts json.RawMessage, sysEnv map[string]string) (options.Options, error) {
	so, warns, err := options.Parse(scriptOpts)
	if err != nil {
		return options.Options{}, fmt.Errorf("script options: %w", err)
	}
	for _, w := range append(cf.Warnings, warns...) {
		log.Warn(w)
	}
	eo, err := options.FromEnv(sysEnv)
	if err != nil {
		return options.Options{}, err
	}
	co, err := f.cliOptions()
	if err != nil {
		return options.Options{}, err
	}
	opts, warns, err := options.Consolidate(
		options.Tier{Name: "config file", Options: cf.Options},
		options.Tier{Name: "script", Options: so},
		options.Tier{Name: "env", Options: eo},
		options.Tier{Name: "cli", Options: co},
	)
	if err != nil {
		return options.Options{}, err
	}
	for _, w := range warns {
		log.Warn(w)
	}
	return opts, nil
}

// preTags are the run tags known before the script is parsed.
func preTags(f *runFlags, cf *configFile, sysEnv map[string]string) map[string]string {
	tags := cf.Options.Tags
	if eo, err := options.FromEnv(sysEnv); err == nil && eo.Tags != nil {
		tags = eo.Tags
	}
	if co, err := f.cliOptions(); err == nil && co.Tags != nil {
		tags = co.Tags
	}
	return tags
}

func prepareRun(ctx context.Context, s *stdio, f *runFlags, log *slog.Logger) (*runContext, error) {
	rc := &runContext{io: s, flags: f, log: log, scriptPath: f.fs.Arg(0)}
	cfgPath := f.config
	if cfgPath == "" {
		cfgPath = s.env["K6_CONFIG"]
	}
	cf, err := loadConfigFile(cfgPath)
	if err != nil {
		return nil, err
	}
	rc.config = cf
	if rc.summary, err = f.summaryModeValue(s.env); err != nil {
		return nil, err
	}
	if rc.env, err = f.scriptEnv(s.env); err != nil {
		return nil, err
	}
	if rc.src, err = openSource(s, rc.scriptPath, f.scriptType); err != nil {
		return nil, err
	}
	rc.env = rc.src.env(rc.env)
	if _, err := f.cliOptions(); err != nil {
		return nil, err
	}
	rc.registry = metrics.NewRegistry()
	rc.builtin = metrics.RegisterBuiltin(rc.registry)
	tags := preTags(f, cf, s.env)
	rc.script, err = loadScript(ctx, s, rc.src, rc.env, rc.registry, rc.builtin, log, metrics.NewTagSet(tags), f.verbose)
	if err != nil {
		return nil, err
	}
	if rc.opts, rc.placement, err = consolidatePlaced(log, f, cf, rc.src.options(rc.script), s.env); err != nil {
		return nil, err
	}
	if !sameTags(tags, rc.opts.Tags) {
		// The script's options.tags decide the run tags: parse again so
		// that every VU tags its samples with them.
		rc.registry = metrics.NewRegistry()
		rc.builtin = metrics.RegisterBuiltin(rc.registry)
		rc.script, err = loadScript(ctx, s, rc.src, rc.env, rc.registry, rc.builtin, log, metrics.NewTagSet(rc.opts.Tags), f.verbose)
		if err != nil {
			return nil, err
		}
	}
	rc.runTags = metrics.NewTagSet(rc.opts.Tags)
	for _, o := range webdashboard.WithEnv(f.outputs(s.env, cf.Out), s.env) {
		typ, arg, _ := strings.Cut(o, "=")
		out, err := output.New(typ, output.Params{Arg: arg, Env: s.env, ConfigJSON: cf.Collectors[typ], Logger: log,
			Stdout: s.out, Stderr: s.errOut, RunTags: rc.runTags})
		if err != nil {
			return nil, fmt.Errorf("output %q: %w", o, err)
		}
		rc.outputs = append(rc.outputs, out)
	}
	return rc, nil
}

func sameTags(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func executeRun(parent context.Context, rc *runContext) int {
	s, f := rc.io, rc.flags
	if !f.quiet {
		printBanner(s.out, rc)
	}
	ctx, cancel := context.WithCancelCause(parent)
	defer cancel(nil)
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	var phase atomic.Int32 // the run.Status the run is in
	var lingering atomic.Bool
	go func() {
		select {
		case sig := <-sigs:
			rc.log.Warn(signalMessage(run.Status(phase.Load()), lingering.Load()), "signal", sig.String())
			cancel(lib.Errorf(lib.ExitExternalAbort, "test run aborted by signal %s", sig))
		case <-parent.Done():
			return
		}
		select {
		case sig := <-sigs:
			rc.log.Error("stopped immediately by a second signal", "signal", sig.String())
			reportLeftovers(s.errOut)
			exit(int(lib.ExitExternalAbort))
		case <-parent.Done():
		}
	}()

	cfg := run.Config{
		Options:   rc.opts,
		Placement: rc.placement,
		Registry:  rc.registry,
		Builtin:   rc.builtin,
		RunTags:   rc.runTags,
		Outputs:   rc.outputs,
		Logger:    rc.log,
		NewRunner: func(ctl lib.TestControl) (lib.Runner, error) {
			r, err := rc.script.NewRunner(js.RunnerConfig{Control: ctl,
				SetupTimeout:         rc.opts.SetupTimeoutOrDefault(),
				TeardownTimeout:      rc.opts.TeardownTimeoutOrDefault(),
				HandleSummaryTimeout: rc.opts.HandleSummaryTimeoutOrDefault()})
			if err != nil {
				return nil, err
			}
			rc.runner = r
			return r, nil
		},
	}
	prog := newProgress(s, f.quiet)
	cfg.Hooks.OnExecution = prog.attach
	if err := attachResults(rc, &cfg); err != nil {
		return fail(rc.log, err)
	}
	// The final progress frame comes before the summary: drawn after it,
	// a live frame's cursor-up would overwrite the summary's last lines.
	finish := cfg.Hooks.Finish
	cfg.Hooks.Finish = func(ctx context.Context, res *run.Result) bool {
		prog.stop()
		return finish(ctx, res)
	}
	if rc.api != nil {
		rc.api.install(&cfg)
	}
	prevStatus := cfg.Hooks.OnStatus
	cfg.Hooks.OnStatus = func(st run.Status) {
		phase.Store(int32(st))
		if prevStatus != nil {
			prevStatus(st)
		}
	}
	res, err := run.Run(ctx, cfg)
	prog.stop()
	if res.Duration > 0 && res.Complete == 0 {
		rc.log.Warn("No script iterations fully finished, consider making the test duration longer")
	}
	// Modules' shared resources (the embedded lab, shared tailnet nodes)
	// outlive VUs; release them once teardown and the summary are done.
	if cerr := modules.CloseAll(); cerr != nil {
		rc.log.Warn(cerr.Error())
	}
	if f.linger {
		lingering.Store(true)
		rc.log.Info("the test is done; lingering until interrupted (--linger)")
		select {
		case <-ctx.Done():
		case <-parent.Done():
		}
	}
	if err != nil {
		rc.log.Error(err.Error())
	}
	return int(res.ExitCode)
}

// signalMessage is what the first SIGINT/SIGTERM logs, by the phase the
// run is in: it says what happens next and never promises a teardown that
// already ran.
func signalMessage(phase run.Status, lingering bool) string {
	switch {
	case lingering:
		return "the test is done; stopping the lingering process (--linger)"
	case phase < run.StatusTeardown:
		return "stopping the test run; teardown runs now, send the signal again to stop immediately"
	case phase == run.StatusTeardown:
		return "stopping the test run; teardown is running and finishes first, send the signal again to stop immediately"
	default:
		return "the test is done; writing the end-of-test summary, send the signal again to stop immediately"
	}
}
