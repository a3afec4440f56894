package main

import "github.com/cdeload/cdeload/engine/run"

// attachResults plugs the results side into the run: the metrics engine
// (thresholds, summary) as an extra output and the OnThresholdCheck and
// Finish hooks. It is where --no-thresholds, --summary-mode,
// --summary-export and handleSummary are wired; until the metrics engine
// is wired, a run has no thresholds and no summary.
func attachResults(rc *runContext, cfg *run.Config) error {
	return nil
}
