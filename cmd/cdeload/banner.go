package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"

	"github.com/cdeload/cdeload/engine/executor"
)

// printBanner writes the execution description k6 users know: execution,
// script, output, and the scenarios with their plan.
func printBanner(w io.Writer, rc *runContext) {
	outs := make([]string, 0, len(rc.outputs))
	for _, o := range rc.outputs {
		outs = append(outs, o.Description())
	}
	out := "-"
	if len(outs) > 0 {
		out = strings.Join(outs, ", ")
	}
	plan := executor.NewPlan(rc.opts.Scenarios)
	sc := rc.opts.Scenarios.Sorted()
	noun := "scenario"
	if len(sc) != 1 {
		noun = "scenarios"
	}
	fmt.Fprintf(w, "\n  cdeload %s\n\n", version)
	fmt.Fprintf(w, "     execution: local\n")
	fmt.Fprintf(w, "        script: %s\n", rc.scriptPath)
	fmt.Fprintf(w, "        output: %s\n", out)
	if usesCDEModule(rc) {
		fmt.Fprintf(w, "        target: %s\n", targetDescription(rc.env))
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "     scenarios: (%s) %d %s, %d max VUs, %s max duration (incl. graceful stop):\n",
		segmentShare(rc), len(sc), noun, plan.MaxPossibleVUs, plan.TotalDuration)
	for _, s := range sc {
		fmt.Fprintf(w, "              * %s: %s\n", s.Name, executor.Describe(s))
	}
	fmt.Fprintln(w)
}

func segmentShare(rc *runContext) string {
	if rc.opts.ExecutionSegment == nil {
		return "100.00%"
	}
	seg, err := parseSegment(*rc.opts.ExecutionSegment)
	if err != nil {
		return "100.00%"
	}
	return seg
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// usesCDEModule reports whether the script or one of its modules imports
// k6/x/cdeload (the only thing a target line is about).
func usesCDEModule(rc *runContext) bool {
	if rc.script == nil {
		return false
	}
	for _, src := range rc.script.Files() {
		if bytes.Contains(src, []byte("k6/x/cdeload")) {
			return true
		}
	}
	return false
}

// targetDescription says which CDE the k6/x/cdeload module will use, from
// the same variables it reads (__ENV): a Coder URL, a standalone lab, or
// the embedded lab.
func targetDescription(env map[string]string) string {
	trim := func(u string) string { return strings.TrimRight(u, "/") }
	coderURL, labURL, control := trim(env["CODER_URL"]), trim(env["CDELOAD_LAB_URL"]), env["TS_CONTROL_URL"]
	switch {
	case coderURL != "" && coderURL == labURL:
		return "standalone lab at " + labURL + " (CDELOAD_LAB_URL, CODER_URL)"
	case coderURL != "" && labURL != "":
		return "Coder at " + coderURL + " (CODER_URL); tailnet of the standalone lab at " + labURL + " (CDELOAD_LAB_URL)"
	case coderURL != "":
		return "Coder at " + coderURL + " (CODER_URL)"
	case labURL != "":
		return "standalone lab at " + labURL + " (CDELOAD_LAB_URL)"
	case control != "":
		return "embedded lab, tailnets joined at " + control + " (TS_CONTROL_URL)"
	}
	return "embedded lab, in this process (set CODER_URL or CDELOAD_LAB_URL for another)"
}
