package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/cdeload/cdeload/engine/lib"
	"github.com/cdeload/cdeload/engine/metricsengine"
	"github.com/cdeload/cdeload/engine/options"
	"github.com/cdeload/cdeload/engine/output"
	"github.com/cdeload/cdeload/engine/run"
	"github.com/cdeload/cdeload/engine/summary"
	"github.com/cdeload/cdeload/engine/thresholds"
)

// results is the results side of one run: the metrics engine that
// aggregates every sample, evaluates thresholds and builds the summary,
// and what the end of the test does with it.
type results struct {
	rc      *runContext
	engine  *metricsengine.Engine
	summary summary.Options
	// export is the --summary-export path ("" for none).
	export string
}

// attachResults plugs the results side into the run: the metrics engine
// (thresholds, summary) as an extra output and the OnThresholdCheck and
// Finish hooks. It runs after VU 0, so thresholds on the script's custom
// metrics can be validated against the registry. Bad thresholds, trend
// stats or time units are errors with exit code 104.
func attachResults(rc *runContext, cfg *run.Config) error {
	sumOpts, err := summaryOptions(rc)
	if err != nil {
		return err
	}
	noThresholds := options.IsSet(rc.opts.NoThresholds)
	raw, err := thresholdsJSON(rc.opts.Thresholds)
	if err != nil {
		return err
	}
	thr, err := thresholds.Load(raw, rc.registry, noThresholds, rc.log)
	if err != nil {
		return invalidConfig(err)
	}
	eng, err := metricsengine.New(rc.registry, metricsengine.Options{
		Thresholds:          thr,
		NoThresholds:        noThresholds,
		PerGroupAndScenario: sumOpts.Mode == summary.ModeFull,
		ExpectedResponse:    rc.opts.SystemTagEnabled("expected_response"),
	})
	if err != nil {
		return invalidConfig(err)
	}
	if thr != nil && thr.Len() > 0 {
		sources := thr.Sources()
		for _, o := range cfg.Outputs {
			if wt, ok := o.(output.WithThresholds); ok {
				wt.SetThresholds(sources)
			}
		}
		cfg.Hooks.OnThresholdCheck = func(elapsed time.Duration) (bool, string) {
			if err := eng.CheckThresholds(elapsed); err != nil {
				return true, err.Error()
			}
			return false, ""
		}
	}
	cfg.Outputs = append(cfg.Outputs, eng)

	r := &results{rc: rc, engine: eng, summary: sumOpts, export: summaryExportPath(rc)}
	if r.export != "" && sumOpts.Mode == summary.ModeDisabled {
		rc.log.Warn("--summary-export is ignored: the end-of-test summary is disabled (--summary-mode=disabled or --no-summary)",
			"path", r.export)
	}
	cfg.Hooks.Finish = r.finish
	return nil
}

// summaryOptions returns the summary options of the run from the
// consolidated options (summaryTrendStats, summaryTimeUnit: config file,
// script, K6_* env, flags) and --summary-mode, validated strictly.
func summaryOptions(rc *runContext) (summary.Options, error) {
	o := summary.Options{
		Mode:        rc.summary,
		TrendStats:  rc.opts.SummaryTrendStats,
		IsStdOutTTY: isTerminal(rc.io.out),
		IsStdErrTTY: isTerminal(rc.io.errOut),
	}
	if rc.opts.SummaryTimeUnit != nil {
		o.TimeUnit = *rc.opts.SummaryTimeUnit
	}
	noColor, _ := rc.flags.fs.GetBool("no-color")
	_, noColorEnv := rc.io.env["NO_COLOR"]
	o.NoColor = noColor || noColorEnv || !o.IsStdOutTTY
	if err := o.Validate(); err != nil {
		return o, lib.Errorf(lib.ExitInvalidConfig,
			"summary options (--summary-trend-stats / summaryTrendStats, --summary-time-unit / summaryTimeUnit): %w", err)
	}
	if rc.opts.SummaryTrendStats != nil && len(rc.opts.SummaryTrendStats) == 0 {
		return o, lib.Errorf(lib.ExitInvalidConfig,
			"summary options: summaryTrendStats (--summary-trend-stats) is empty; give at least one of avg, min, med, max, count, sum, p(N)")
	}
	return o, nil
}

// summaryExportPath is --summary-export, or K6_SUMMARY_EXPORT when the
// flag is not given.
func summaryExportPath(rc *runContext) string {
	if rc.flags.fs.Changed("summary-export") {
		return rc.flags.summaryExport
	}
	return rc.io.env["K6_SUMMARY_EXPORT"]
}

// thresholdsJSON turns the consolidated options.thresholds back into the
// JSON object thresholds.Load parses; nil when there are none.
func thresholdsJSON(th map[string]json.RawMessage) (json.RawMessage, error) {
	if len(th) == 0 {
		return nil, nil
	}
	b, err := json.Marshal(th)
	if err != nil {
		return nil, lib.Errorf(lib.ExitInvalidConfig, "option thresholds: %w", err)
	}
	return b, nil
}

// invalidConfig gives err exit code 104 unless it already has a code.
func invalidConfig(err error) error {
	if lib.ExitCodeOf(err) != lib.ExitUnknown {
		return err
	}
	return lib.WithExitCode(lib.ExitInvalidConfig, err)
}

// finish is the run's Finish hook: the final threshold evaluation, then
// the end-of-test summary (handleSummary or the text summary) and the
// --summary-export file. It reports whether thresholds failed.
func (r *results) finish(ctx context.Context, res *run.Result) bool {
	log := r.rc.log
	elapsed := res.Duration
	_, thrErr := r.engine.FinalThresholds(elapsed)
	failed := thrErr != nil
	if failed {
		log.Error(thrErr.Error())
	}
	if r.summary.Mode == summary.ModeDisabled {
		return failed
	}
	d := r.engine.Summary(r.summary, elapsed, res.SetupData)
	if !r.handleSummary(ctx, d) {
		if err := summary.WriteText(r.rc.io.out, d); err != nil {
			log.Error("writing the end-of-test summary", "error", err)
		}
	}
	if r.export != "" {
		if err := summary.WriteExport(r.export, d); err != nil {
			log.Error(fmt.Sprintf("writing the summary export (--summary-export) to %s: %v", r.export, err))
		}
	}
	return failed
}

// handleSummary runs the script's handleSummary(data) and writes what it
// returns. It reports whether the summary was handled; when the script
// exports no handleSummary, or it fails, the caller prints the default
// text summary.
func (r *results) handleSummary(ctx context.Context, d *summary.Data) bool {
	runner := r.rc.runner
	if runner == nil || !runner.IsExecutable("handleSummary") {
		return false
	}
	log := r.rc.log
	data, err := summary.HandleSummaryData(d)
	if err != nil {
		log.Error("building the handleSummary() data; printing the default summary instead", "error", err)
		return false
	}
	out, exported, err := runner.HandleSummary(ctx, data)
	if !exported {
		return false
	}
	if err != nil {
		log.Error(fmt.Sprintf("handleSummary() failed; printing the default summary instead: %v", err))
		return false
	}
	dir, _ := os.Getwd()
	if err := summary.WriteResults(out, r.rc.io.out, r.rc.io.errOut, dir); err != nil {
		log.Error(fmt.Sprintf("writing the results of handleSummary(): %v", err))
	}
	return true
}
