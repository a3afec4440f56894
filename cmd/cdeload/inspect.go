package main

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/cdeload/cdeload/engine/executor"
	"github.com/cdeload/cdeload/engine/metrics"
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
	cfgPath := f.config
	if cfgPath == "" {
		cfgPath = s.env["K6_CONFIG"]
	}
	cf, err := loadConfigFile(cfgPath)
	if err != nil {
		return fail(log, err)
	}
	env, err := f.scriptEnv(s.env)
	if err != nil {
		return fail(log, err)
	}
	src, err := openSource(s, f.fs.Arg(0), f.scriptType)
	if err != nil {
		return fail(log, err)
	}
	env = src.env(env)
	reg := metrics.NewRegistry()
	script, err := loadScript(ctx, s, src, env, reg, metrics.RegisterBuiltin(reg), log, nil, f.verbose)
	if err != nil {
		return fail(log, err)
	}
	scriptOpts := src.options(script)
	var out any = json.RawMessage(scriptOpts)
	if len(scriptOpts) == 0 {
		out = map[string]any{}
	}
	if f.executionRequirements {
		opts, err := consolidate(log, f, cf, scriptOpts, s.env)
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
