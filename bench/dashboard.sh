#!/usr/bin/env bash
# CPU cost of the web dashboard (engine/output/webdashboard), two ways:
#  1. the same lab run of examples/scale.js with and without the dashboard,
#     PAIRS pairs in alternating order (without/with, then with/without),
#     comparing the cdeload process's CPU time (user + system). The "with"
#     runs keep a page open on the live stream, refreshed every PERIOD (1s:
#     ten times k6's default), and write the HTML report;
#  2. the dashboard's own work measured by Go benchmarks (aggregation per
#     sample, one page render), applied to the run's sample count and
#     updates: an estimate that the noise of a shared machine does not blur.
# Usage: bash bench/dashboard.sh   (WORKSPACES, TRAFFIC_DURATION, PAIRS, PERIOD)
set -euo pipefail
cd "$(dirname "$0")/.."

workspaces=${WORKSPACES:-20}
traffic=${TRAFFIC_DURATION:-30s}
pairs=${PAIRS:-3}
period=${PERIOD:-1s}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go build -o "$tmp/cdeload" ./cmd/cdeload
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

# cpu runs one scale.js run and prints its CPU seconds (user + system).
cpu() {
	local TIMEFORMAT='%3U %3S'
	local t
	t=$( { time "$tmp/cdeload" run --quiet --summary-trend-stats 'count,avg' --summary-export "$tmp/summary.json" \
		-e WORKSPACES="$workspaces" -e TRAFFIC_DURATION="$traffic" examples/scale.js > "$tmp/run.log" 2>&1; } 2>&1 )
	awk '{ printf "%.3f\n", $1 + $2 }' <<< "$t"
}

# watch follows the live stream as a browser would, until the run ends.
watch() {
	for _ in $(seq 1 100); do
		curl -sf -o /dev/null "http://127.0.0.1:$port/" && break
		sleep 0.2
	done
	curl -sN "http://127.0.0.1:$port/events" > "$tmp/events" 2>/dev/null || true
}

with_dashboard() {
	watch &
	local watcher=$!
	K6_WEB_DASHBOARD=true K6_WEB_DASHBOARD_PORT=$port K6_WEB_DASHBOARD_PERIOD=$period \
		K6_WEB_DASHBOARD_EXPORT="$tmp/report.html" cpu
	wait "$watcher" || true
}

ratios=()
for i in $(seq 1 "$pairs"); do
	if (( i % 2 )); then
		a=$(cpu)
		b=$(with_dashboard)
	else
		b=$(with_dashboard)
		a=$(cpu)
	fi
	updates=$(grep -c '^event: update' "$tmp/events" || true)
	r=$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.3f", b / a }')
	ratios+=("$r")
	echo "pair $i: without ${a}s CPU, with ${b}s CPU, ratio $r (the page got $updates updates)"
done
median=$(printf '%s\n' "${ratios[@]}" | sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }')

# Samples of one run: three per echo tick (RTT, bytes sent, received) plus
# the phase and iteration samples, which are few.
rtt=$(python3 -c 'import json,sys; print(int(json.load(open(sys.argv[1]))["metrics"]["traffic_rtt"]["count"]))' "$tmp/summary.json")
samples=$(( 3 * rtt + 10 * workspaces ))
renders=$(( updates + 2 ))

go test -run '^$' -bench 'BenchmarkAggregate|BenchmarkRender' -benchtime 1s ./engine/output/webdashboard > "$tmp/bench.txt"
agg=$(awk '/^BenchmarkAggregate/ { for (i = 2; i <= NF; i++) if ($i == "ns/sample") print $(i-1) }' "$tmp/bench.txt")
render=$(awk '/^BenchmarkRender/ { print $3 }' "$tmp/bench.txt")

awk -v m="$median" -v w="$workspaces" -v d="$traffic" -v p="$period" -v s="$samples" -v agg="$agg" \
	-v u="$renders" -v rn="$render" -v a="$a" 'BEGIN {
	printf "\nweb dashboard, %d workspaces, %s of traffic each, page updated every %s (2 shared cores):\n", w, d, p
	printf "  measured: median CPU ratio with/without %.3f (%+.1f%%) over the pairs above; noisy on a shared machine\n", m, 100 * (m - 1)
	est = s * agg + u * rn
	printf "  estimated: %d samples x %.0f ns + %d renders x %.2f ms = %.1f ms of %.2f s run CPU = %.2f%%\n", s, agg, u, rn / 1e6, est / 1e6, a, 100 * est / 1e9 / a
	printf "  (render cost from a 100-workspace, 10-minute page, an upper bound for this run)\n"
}'
