#!/usr/bin/env bash
# Fault run: examples/scale.js against a `cdeload lab` whose Coder simulator
# injects API errors, rate limits, failed builds and crashing agents, cut
# short by SIGINT at a random moment, several times. Each run must end in
# bounded time with exit 105 (aborted by the signal) or 99 (thresholds
# crossed) and leave nothing in the lab.
#
#   bash bench/faults.sh
#   RUNS=2 WORKSPACES=10 bash bench/faults.sh
#
# Knobs (environment): RUNS (default 5), WORKSPACES (default 30), TRAFFIC
# (echo duration per workspace, default 60s), SIGNAL_MIN / SIGNAL_MAX
# (seconds after the start between which SIGINT is sent, default 5 and 60),
# EXIT_BOUND (seconds a run may take to exit after the signal before it is
# reported as hung and killed, default 300), FAULTS (the lab's fault flags),
# KEEP=1 keeps the work directory (logs, JSON results).
#
# Printed per run: when the signal was sent, the exit code, the time from
# the signal to the exit, what `cdeload cleanup --all --dry-run` still finds
# in the lab, and workspace_failed by op (failures/operations).
#
# Everything listens on 127.0.0.1; the lab and the client share this
# machine's cores, so times are only comparable within one invocation.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS="${RUNS:-5}"
WORKSPACES="${WORKSPACES:-30}"
TRAFFIC="${TRAFFIC:-60s}"
SIGNAL_MIN="${SIGNAL_MIN:-5}"
SIGNAL_MAX="${SIGNAL_MAX:-60}"
EXIT_BOUND="${EXIT_BOUND:-300}"
FAULTS="${FAULTS:---api-error-rate 0.2 --rate-limit 5 --build-failure-rate 0.3 --agent-crash-after 20s}"
for v in RUNS WORKSPACES SIGNAL_MIN SIGNAL_MAX EXIT_BOUND; do
  [[ "${!v}" =~ ^[0-9]+$ ]] || { echo "$v=${!v}: want a non-negative integer" >&2; exit 2; }
done
((SIGNAL_MAX >= SIGNAL_MIN)) || { echo "SIGNAL_MAX must be >= SIGNAL_MIN" >&2; exit 2; }

WORK="$(mktemp -d "${TMPDIR:-/tmp}/cdeload-faults.XXXXXX")"
LAB_PID=""
RUN_PID=""

# stop PID: SIGINT, up to 60 s, then SIGKILL (only that PID).
stop() {
  local pid="$1"
  [[ -n "$pid" ]] || return 0
  kill -INT "$pid" 2>/dev/null || true
  for _ in $(seq 600); do
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
cleanup() {
  [[ -n "$RUN_PID" ]] && { kill -KILL "$RUN_PID" 2>/dev/null || true; wait "$RUN_PID" 2>/dev/null || true; }
  stop "$LAB_PID"
  [[ "${KEEP:-}" == 1 ]] && echo "work directory: $WORK" || rm -rf "$WORK"
}
trap cleanup EXIT

echo "building cdeload ..."
go build -o "$WORK/cdeload" ./cmd/cdeload

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

# rates FILE: workspace_failed by op from a JSON result file.
rates() {
  python3 - "$1" <<'EOF'
import json, sys, collections
n, f = collections.Counter(), collections.Counter()
with open(sys.argv[1]) as fh:
    for line in fh:
        try:
            p = json.loads(line)
        except ValueError:
            continue
        if p.get("type") != "Point" or p.get("metric") != "workspace_failed":
            continue
        op = p["data"]["tags"].get("op", "?")
        n[op] += 1
        f[op] += p["data"]["value"]
print(" ".join(f"{op}={int(f[op])}/{n[op]}" for op in sorted(n)) or "-")
EOF
}

printf '%-4s %-9s %-5s %-13s %-32s %s\n' run signal exit exit-after leftovers "workspace_failed by op"
for i in $(seq "$RUNS"); do
  # shellcheck disable=SC2086 # FAULTS is a list of flags
  "$WORK/cdeload" lab --listen 127.0.0.1:0 --seed "$i" $FAULTS >"$WORK/lab$i.out" 2>"$WORK/lab$i.err" &
  LAB_PID=$!
  for _ in $(seq 300); do
    grep -q '^# serving' "$WORK/lab$i.out" 2>/dev/null && break
    kill -0 "$LAB_PID" 2>/dev/null || { cat "$WORK/lab$i.err" >&2; exit 1; }
    sleep 0.1
  done
  grep -q '^# serving' "$WORK/lab$i.out" || { echo "cdeload lab did not start" >&2; exit 1; }
  (
    eval "$(grep '^export ' "$WORK/lab$i.out")"
    exec "$WORK/cdeload" run -q -e WORKSPACES="$WORKSPACES" -e TRAFFIC_DURATION="$TRAFFIC" \
      --out json="$WORK/run$i.json" examples/scale.js >"$WORK/run$i.out" 2>"$WORK/run$i.err"
  ) &
  RUN_PID=$!
  began=$(now)
  at=$((SIGNAL_MIN + RANDOM % (SIGNAL_MAX - SIGNAL_MIN + 1)))
  code=""
  for _ in $(seq $((at * 10))); do
    kill -0 "$RUN_PID" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$RUN_PID" 2>/dev/null; then
    sent=$(now)
    kill -INT "$RUN_PID"
    signal="$(secs "$began" "$sent")s"
    for _ in $(seq $((EXIT_BOUND * 10))); do
      kill -0 "$RUN_PID" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$RUN_PID" 2>/dev/null; then
      kill -KILL "$RUN_PID" 2>/dev/null || true
      code="HUNG"
    fi
    after="$(secs "$sent" "$(now)")s"
  else
    signal="(ended)"
    after="-"
  fi
  set +e
  wait "$RUN_PID"
  rc=$?
  set -e
  RUN_PID=""
  [[ -n "$code" ]] || code=$rc
  left="$(
    eval "$(grep '^export CODER_' "$WORK/lab$i.out")"
    "$WORK/cdeload" cleanup --all --dry-run 2>&1 | tail -1 | sed -E 's/.*: ([0-9]+ workspaces? and [0-9]+ users?) would.*/\1/'
  )"
  printf '%-4s %-9s %-5s %-13s %-32s %s\n' "$i" "$signal" "$code" "$after" "$left" "$(rates "$WORK/run$i.json")"
  stop "$LAB_PID"
  LAB_PID=""
done
