package main

import (
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
	fmt.Fprintf(w, "        output: %s\n\n", out)
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
