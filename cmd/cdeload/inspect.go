package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"

	"github.com/cdeload/cdeload/engine/executor"
	"github.com/cdeload/cdeload/engine/js"
)

// inspectCommand prints the script's options as JSON on stdout; with
// --execution-requirements, the consolidated options plus maxVUs and
// totalDuration of the execution plan. Logs go to stderr only.
func inspectCommand(ctx context.Context, s *stdio, args []string) int {
	f := newRunFlags("inspect")
	if code, done := parseFlags(s, f, args, "inspect [--execution-requirements] [flags] script.js"); done {
		return code
	}
	log := newLogger(s.errOut, f.verbose)
	p, err := parseScript(ctx, s, f, log)
	if err != nil {
		return fail(log, err)
	}
	scriptOpts := p.src.options(p.script)
	var out any = json.RawMessage(scriptOpts)
	if len(scriptOpts) == 0 {
		out = map[string]any{}
	}
	if f.executionRequirements {
		opts, err := consolidate(log, f, p.config, scriptOpts, s.env)
		if err != nil {
			return fail(log, err)
		}
		plan := executor.NewPlan(opts.Scenarios)
		var m map[string]any
		if err := json.Unmarshal(opts.JSON(), &m); err != nil {
			return fail(log, fmt.Errorf("encoding options: %w", err))
		}
		m["totalDuration"] = plan.TotalDuration.String()
		m["maxVUs"] = plan.MaxPossibleVUs
		out = m
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return fail(log, fmt.Errorf("encoding options: %w", err))
	}
	fmt.Fprintln(s.out, string(b))
	return 0
}

// parsedScript is a script parsed once, as VU 0, with what it was parsed
// from.
type parsedScript struct {
	config *configFile       // --config, else $K6_CONFIG
	src    *testSource       // the script or archive
	env    map[string]string // the script's __ENV
	script *js.Script
}

// parseScript loads the config file and the -e environment, opens the
// script or archive named on the command line and parses it once; inspect
// and archive both start this way.
func parseScript(ctx context.Context, s *stdio, f *runFlags, log *slog.Logger) (*parsedScript, error) {
	cfgPath := f.config
	if cfgPath == "" {
		cfgPath = s.env["K6_CONFIG"]
	}
	cf, err := loadConfigFile(cfgPath)
	if err != nil {
		return nil, err
	}
	env, err := f.scriptEnv(s.env)
	if err != nil {
		return nil, err
	}
	src, err := openSource(s, f.fs.Arg(0), f.scriptType)
	if err != nil {
		return nil, err
	}
	env = src.env(env)
	script, err := loadScript(ctx, s, src, env, nil, nil, log, nil, f.verbose)
	if err != nil {
		return nil, err
	}
	return &parsedScript{config: cf, src: src, env: env, script: script}, nil
}
