#!/usr/bin/env bash
# Benchmarks of the prometheus-rw output (engine/output/prometheusrw):
# the cost of AddMetricSamples (the VU-side hand-off) against a baseline of
# appending the same batch to a slice in the same run, the aggregation cost
# per sample, and the sustained samples/s through hand-off + aggregation.
# Usage: bash bench/output.sh   (BENCHTIME=... to change the run length)
set -euo pipefail
cd "$(dirname "$0")/.."

pkg=./engine/output/prometheusrw
out=$(mktemp)
trap 'rm -f "$out"' EXIT

# Fixed iteration counts keep the run short: the hand-off benchmark leaves
# its samples for the aggregator, which Stop then drains.
go test -run '^$' -bench 'BenchmarkHandOff' -benchtime "${BENCHTIME:-300000x}" "$pkg" | tee "$out"
go test -run '^$' -bench 'BenchmarkAggregate|BenchmarkThroughput' -benchtime "${BENCHTIME:-1s}" "$pkg" | tee -a "$out"

awk '
function metric(line, unit,   n, i, f) {
	n = split(line, f, /[ \t]+/)
	for (i = 2; i <= n; i++) if (f[i] == unit) return f[i-1]
	return ""
}
/^BenchmarkHandOff\/baseline_append/ { base = metric($0, "ns/sample") }
/^BenchmarkHandOff\/AddMetricSamples/ { add = metric($0, "ns/sample") }
/^BenchmarkAggregate/ { agg = metric($0, "ns/sample") }
/^BenchmarkThroughput/ { thr = metric($0, "samples/s"); thrns = metric($0, "ns/sample") }
END {
	print ""
	print "prometheus-rw output figures (batches of 100 samples, 16 series, 2 cores shared):"
	printf "  baseline: append batch to a slice      %8.3f ns/sample\n", base
	printf "  AddMetricSamples (VU-side hand-off)    %8.3f ns/sample  (%.1fx the baseline, %.0f M samples/s)\n", add, add / base, 1000 / add
	printf "  aggregation alone (one goroutine)      %8.3f ns/sample  (%.1f M samples/s)\n", agg, 1000 / agg
	printf "  sustained hand-off + aggregation       %8.3f ns/sample  (%.1f M samples/s, 4 producers)\n", thrns, thr / 1e6
}' "$out"
