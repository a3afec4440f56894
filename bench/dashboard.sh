#!/usr/bin/env bash
# CPU cost of the web dashboard (engine/output/webdashboard): the same lab
# run of examples/scale.js with and without it, alternated PAIRS times,
# comparing the cdeload process's CPU time (user + system). The "with" runs
# keep a page open on the live stream (refreshed every PERIOD, 1s: ten
# times k6's default) and write the HTML report, so they pay for
# aggregation, rendering and the export.
# Usage: bash bench/dashboard.sh   (WORKSPACES, TRAFFIC_DURATION, PAIRS, PERIOD)
set -euo pipefail
cd "$(dirname "$0")/.."

workspaces=${WORKSPACES:-20}
traffic=${TRAFFIC_DURATION:-30s}
pairs=${PAIRS:-2}
period=${PERIOD:-1s}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go build -o "$tmp/cdeload" ./cmd/cdeload
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

# cpu runs one scale.js run and prints its CPU seconds (user + system).
cpu() {
	local TIMEFORMAT='%3U %3S'
	local t
	t=$( { time "$tmp/cdeload" run --quiet --no-summary -e WORKSPACES="$workspaces" -e TRAFFIC_DURATION="$traffic" \
		examples/scale.js > "$tmp/run.log" 2>&1; } 2>&1 )
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

without=0
with=0
for i in $(seq 1 "$pairs"); do
	a=$(cpu)
	watch &
	watcher=$!
	b=$(K6_WEB_DASHBOARD=true K6_WEB_DASHBOARD_PORT=$port K6_WEB_DASHBOARD_PERIOD=$period \
		K6_WEB_DASHBOARD_EXPORT="$tmp/report.html" cpu)
	wait "$watcher" || true
	updates=$(grep -c '^event: update' "$tmp/events" || true)
	echo "pair $i: without ${a}s CPU, with ${b}s CPU (page got $updates updates, report $(stat -c %s "$tmp/report.html") bytes)"
	without=$(awk -v x="$without" -v y="$a" 'BEGIN { print x + y }')
	with=$(awk -v x="$with" -v y="$b" 'BEGIN { print x + y }')
done
awk -v a="$without" -v b="$with" -v w="$workspaces" -v d="$traffic" -v p="$period" 'BEGIN {
	printf "\nweb dashboard, %d workspaces, %s of traffic each, page refreshed every %s (2 shared cores: noisy):\n", w, d, p
	printf "  CPU without %.2fs, with %.2fs: ratio %.3f (%+.1f%%)\n", a, b, b / a, 100 * (b / a - 1)
}'
