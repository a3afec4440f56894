#!/usr/bin/env bash
# Workspace benchmark: how fast cdeload's Coder client creates workspaces
# and how much client memory each workspace in flight costs, first against
# the in-memory Coder simulator (workspace/coder's benchmarks), then against
# the full lab, where every workspace is a tailnet node with an SSH server
# (bench/workspaces), served by `cdeload lab` in another process so its
# memory is not counted as the client's.
#
#   bash bench/workspaces.sh
#   N=200 INFLIGHT=64 PARALLELISM=32 bash bench/workspaces.sh
#
# Knobs (environment): N (workspaces created against the lab, default 120),
# INFLIGHT (workspaces in flight for the memory figure, default 32; each is
# a tailnet node of ~5 MB in the lab process), PARALLELISM (the lab's
# concurrent workspace starts, default 32), KEEP=1 keeps the work directory.
#
# Targets: >= 50 workspaces/s against the lab with build latency 0, and
# < 100 KB of client memory per workspace in flight.
#
# Everything listens on 127.0.0.1; the lab and the client share this
# machine's cores.
set -euo pipefail
cd "$(dirname "$0")/.."

N="${N:-120}"
INFLIGHT="${INFLIGHT:-32}"
PARALLELISM="${PARALLELISM:-32}"
for v in N INFLIGHT PARALLELISM; do
  [[ "${!v}" =~ ^[1-9][0-9]*$ ]] || { echo "$v=${!v}: want a positive integer" >&2; exit 2; }
done

WORK="$(mktemp -d "${TMPDIR:-/tmp}/cdeload-ws-bench.XXXXXX")"
LAB_PID=""

# stop_lab: SIGINT the lab we started (it stops every workspace), up to 60 s,
# then SIGKILL (only this PID).
stop_lab() {
  [[ -n "$LAB_PID" ]] || return 0
  kill -INT "$LAB_PID" 2>/dev/null || true
  for _ in $(seq 600); do
    kill -0 "$LAB_PID" 2>/dev/null || { wait "$LAB_PID" 2>/dev/null || true; LAB_PID=""; return 0; }
    sleep 0.1
  done
  kill -KILL "$LAB_PID" 2>/dev/null || true
  wait "$LAB_PID" 2>/dev/null || true
  LAB_PID=""
}
cleanup() {
  stop_lab
  [[ "${KEEP:-}" == 1 ]] && echo "work directory: $WORK" || rm -rf "$WORK"
}
trap cleanup EXIT

# start_lab ARGS...: starts `cdeload lab` and exports its variables.
start_lab() {
  "$WORK/cdeload" lab --listen 127.0.0.1:0 --parallelism "$PARALLELISM" "$@" >"$WORK/lab.out" 2>"$WORK/lab.err" &
  LAB_PID=$!
  for _ in $(seq 300); do
    grep -q '^# serving' "$WORK/lab.out" && break
    kill -0 "$LAB_PID" 2>/dev/null || { cat "$WORK/lab.err" >&2; exit 1; }
    sleep 0.1
  done
  grep -q '^# serving' "$WORK/lab.out" || { echo "cdeload lab did not start" >&2; exit 1; }
  eval "$(grep '^export CODER_' "$WORK/lab.out")"
}

# metric FILE UNIT: the value reported with UNIT in go test -bench output.
metric() { awk -v u="$2" '{ for (i = 2; i <= NF; i++) if ($i == u) v = $(i-1) } END { print v }' "$1"; }

echo "building cdeload and the benchmarks ..."
go build -o "$WORK/cdeload" ./cmd/cdeload
go test -c -o "$WORK/coder.test" ./workspace/coder
go test -c -o "$WORK/lab.test" ./bench/workspaces

echo "1/3 in-memory Coder simulator (workspace/coder) ..."
"$WORK/coder.test" -test.run '^$' -test.bench 'BenchmarkCreateReady' -test.benchtime 1000x \
  | tee "$WORK/mem.txt" | grep '^Benchmark' || true
"$WORK/coder.test" -test.run '^$' -test.bench 'BenchmarkMemoryPerWorkspaceInFlight' -test.benchtime 1x \
  | tee -a "$WORK/mem.txt" | grep '^Benchmark' || true

echo "2/3 the lab, build latency 0, $N workspaces ..."
start_lab
"$WORK/lab.test" -test.run '^$' -test.bench 'BenchmarkLabCreateReady' -test.benchtime "${N}x" \
  | tee "$WORK/lab.txt" | grep '^Benchmark' || true
stop_lab

echo "3/3 the lab, builds kept running, $INFLIGHT workspaces in flight ..."
start_lab --build-latency 1h
INFLIGHT="$INFLIGHT" "$WORK/lab.test" -test.run '^$' -test.bench 'BenchmarkLabMemoryPerWorkspaceInFlight' \
  -test.benchtime 1x | tee "$WORK/labmem.txt" | grep '^Benchmark' || true
stop_lab

mem_rate="$(grep '^BenchmarkCreateReady' "$WORK/mem.txt" | head -1 > "$WORK/m1" && metric "$WORK/m1" workspaces/s)"
mem_bytes="$(grep '^BenchmarkMemoryPerWorkspaceInFlight' "$WORK/mem.txt" | head -1 > "$WORK/m2" && metric "$WORK/m2" bytes/workspace)"
lab_rate="$(metric "$WORK/lab.txt" workspaces/s)"
lab_ratio="$(metric "$WORK/lab.txt" ratio_lab_to_mem)"
lab_bytes="$(metric "$WORK/labmem.txt" bytes/workspace)"

echo
printf '%-44s %14s %10s\n' "figure" "value" "target"
printf '%-44s %14s %10s\n' "create+ready, in-memory simulator (ws/s)" "${mem_rate:-?}" ""
printf '%-44s %14s %10s\n' "create+ready, lab with tailnet (ws/s)" "${lab_rate:-?}" ">= 50"
printf '%-44s %14s %10s\n' "  lab / in-memory (same process baseline)" "${lab_ratio:-?}" ""
printf '%-44s %14s %10s\n' "client bytes/workspace in flight, simulator" "${mem_bytes:-?}" "< 102400"
printf '%-44s %14s %10s\n' "client bytes/workspace in flight, lab" "${lab_bytes:-?}" "< 102400"
