#!/usr/bin/env bash
# Echo benchmark: how many concurrent echo streams (128 B every 100 ms) one
# load generator sustains with traffic_ticks_missed = 0, and what cdeload's
# generator costs per echo frame against a plain Go program doing the same
# echo over the same tailnet (the ratio is the overhead of the engine). See
# bench/README.md.
#
# The stable figure is CPU per 1000 frames (from /proc deltas in the steady
# echo phase) of the generator A (baseline), B (cdeload) and the lab: a
# ratio of CPU times holds on a shared machine. RTT is printed with the
# machine's busy share next to it, and rows where the machine's cores were
# busy >= 90% are marked saturated: their RTT measures queueing, not cdeload.
#
# It builds cdeload and bench/echo/baseline, starts `cdeload lab` in another
# process (loopback only) with enough workspaces, then at each stream count of
# the ladder runs baseline (A) and cdeload (B) alternately, A B A B ..., on
# the same workspaces and tailnet, and prints a table.
#
#   bash bench/echo.sh                          # ladder 50 100 200 500, 2 A/B pairs each
#   LADDER="100 500" REPS=1 DURATION=20 bash bench/echo.sh
#
# Knobs (environment): LADDER (stream counts), REPS (A/B pairs per count),
# DURATION (echo seconds per run), WORKSPACES (lab workspaces; default the
# largest count: stream i goes to workspace i mod WORKSPACES, so fewer
# workspaces means several streams, each its own SSH connection, per
# workspace), BYTES, INTERVAL_MS, KEEP=1 keeps the work directory,
# PROFILE=1 writes a CPU profile (pprof) of each run's steady phase to the
# work directory (implies KEEP=1; `go tool pprof -top WORK/cdeload-N-1.pprof`),
# TRACE=1 an execution trace of it (`go tool trace WORK/cdeload-N-1.trace`).
#
# Then, unless PINNED=0, it runs bench/echo-ladder.sh: the same A/B pairs
# with the lab and the generator each in its own network namespace and on
# its own core, stepping the stream count up to the generator's ceiling in
# streams per core (needs root; skipped with a message otherwise; its knobs
# are PIN_* there).
#
# Everything listens on 127.0.0.1. In this first part the lab and the
# generator share this machine's cores: the table reports the CPU seconds of each, and of every
# other process, during each run.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"

LADDER="${LADDER:-50 100 200 500}"
REPS="${REPS:-2}"
DURATION="${DURATION:-15}"
BYTES="${BYTES:-128}"
INTERVAL_MS="${INTERVAL_MS:-100}"
max_n=0
for n in $LADDER; do
  [[ "$n" =~ ^[1-9][0-9]*$ ]] || { echo "LADDER: $n is not a positive integer" >&2; exit 2; }
  (( n > max_n )) && max_n=$n
done
WORKSPACES="${WORKSPACES:-$max_n}"
for v in REPS DURATION WORKSPACES BYTES INTERVAL_MS; do
  [[ "${!v}" =~ ^[1-9][0-9]*$ ]] || { echo "$v=${!v}: want a positive integer" >&2; exit 2; }
done
for tool in jq curl awk pgrep /usr/bin/time; do
  command -v "$tool" >/dev/null || { echo "bench/echo.sh needs $tool" >&2; exit 2; }
done

WORK="$(mktemp -d "${TMPDIR:-/tmp}/cdeload-echo-bench.XXXXXX")"
source bench/lib/echo-common.sh

cleanup() {
  local rc=$?
  stop_started
  wait 2>/dev/null || true
  if [[ "${KEEP:-0}" == 1 || $rc -ne 0 ]]; then
    echo "work directory kept: $WORK" >&2
  else
    rm -rf "$WORK"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "building cdeload and the baseline ..." >&2
go build -o "$WORK/cdeload" ./cmd/cdeload
go build -o "$WORK/baseline" ./bench/echo/baseline

[[ "${PROFILE:-0}" == 1 || "${TRACE:-0}" == 1 || "${ALLOCS:-0}" == 1 ]] && KEEP=1
start_lab "$WORKSPACES"

bench_t0=$SECONDS
for n in $LADDER; do
  for rep in $(seq "$REPS"); do
    echo "streams=$n pair $rep/$REPS" >&2
    run_one baseline "$n" "$rep"
    run_one cdeload "$n" "$rep"
  done
done
echo "benchmark runs took $((SECONDS - bench_t0)) s" >&2

# The table: one row per A/B pair, then medians per stream count.
jq -s -r --arg ws "$nws" --arg dur "$DURATION" --arg bytes "$BYTES" --arg iv "$INTERVAL_MS" --arg ncpu "$NCPU" '
  def f(x): if x == null then "-" else (x * 100 | round / 100 | tostring) end;
  def r(a; b): if (a == null or b == null or b == 0) then "-" else (a / b * 100 | round / 100 | tostring) end;
  def pct(x): if x == null then "-" else (x * 100 | round | tostring) + "%" end;
  def pad(w): tostring as $s | ([range(0; w - ($s | length))] | map(" ") | join("")) + $s;
  def med: map(select(. != null)) | sort | if length == 0 then null elif length % 2 == 1 then .[length / 2 | floor]
    else (.[length / 2 - 1] + .[length / 2]) / 2 end;
  def ok(x): x.ticksMissed == 0 and x.errors == 0 and x.exit == 0;
  ([ .[] | select(.kind == "baseline") ] | map({key: "\(.streams)/\(.rep)", value: .}) | from_entries) as $A |
  [ .[] | select(.kind == "cdeload") | {a: $A["\(.streams)/\(.rep)"], b: .} | select(.a != null) ]
    | sort_by(.a.streams, .a.rep) as $pairs |
  "echo streams: \($bytes) B every \($iv) ms for \($dur) s, \($ws) lab workspaces (stream i -> workspace i mod \($ws))",
  "A = plain Go baseline, B = cdeload; fps = echo frames received per second; missed = traffic ticks missed; err = connect + stream errors;",
  "CPU ms/1k = CPU milliseconds per 1000 frames in the steady echo phase (/proc deltas): A, B = the generator, lab = the lab process during A/B;",
  "busy = share of the machine'"'"'s \($ncpu) cores busy (every process) during A/B; sat = busy >= 90% in A or B: RTT then measures the machine'"'"'s queueing, not cdeload.",
  "late = streams not connected by their start slot (the connection storm ran into the echo phase: missed ticks there are the storm'"'"'s).",
  "The stable figure is the CPU ratio B/A; RTT (ms, every frame) only next to the busy share.",
  "",
  ([ "streams", "pair", "A fps", "B fps", "A missed", "B missed", "A err", "B err", "late A/B", "A ms/1k", "B ms/1k", "CPU B/A",
     "lab ms/1k", "busy A/B", "sat", "A p50", "B p50", "A p95", "B p95" ] | map(pad(9)) | join(" ")),
  ($pairs[] | [ .a.streams, .a.rep, f(.a.fps), f(.b.fps), .a.ticksMissed, .b.ticksMissed, .a.errors, .b.errors,
      "\(.a.lateStarts // "?")/\(.b.lateStarts // "?")",
      f(.a.genMsPer1k), f(.b.genMsPer1k), r(.b.genMsPer1k; .a.genMsPer1k),
      "\(f(.a.labMsPer1k | if . == null then null else round end))/\(f(.b.labMsPer1k | if . == null then null else round end))",
      "\(pct(.a.busyShare))/\(pct(.b.busyShare))", (if .a.saturated or .b.saturated then "SAT" else "no" end),
      f(.a.rtt.p50), f(.b.rtt.p50), f(.a.rtt.p95), f(.b.rtt.p95) ] | map(pad(9)) | join(" ")),
  "",
  "per stream count (medians over pairs):",
  ([ "streams", "pairs", "0 missed A", "0 missed B", "B 0 where A 0", "A ms/1k", "B ms/1k", "CPU B/A", "lab ms/1k", "saturated" ] | map(pad(13)) | join(" ")),
  ($pairs | group_by(.a.streams)[] |
    [ .[0].a.streams, length,
      (map(select(ok(.a))) | length | tostring) + "/\(length)" ,
      (map(select(ok(.b))) | length | tostring) + "/\(length)",
      (if all(.[]; ok(.a) | not) then "n/a (A missed)" elif all(.[]; (ok(.a) | not) or ok(.b)) then "yes" else "NO" end),
      f(map(.a.genMsPer1k) | med), f(map(.b.genMsPer1k) | med),
      f(map(if .a.genMsPer1k == null or .b.genMsPer1k == null or .a.genMsPer1k == 0 then null else .b.genMsPer1k / .a.genMsPer1k end) | med),
      f(map(.a.labMsPer1k, .b.labMsPer1k) | med),
      "\(map(select(.a.saturated or .b.saturated)) | length)/\(length)" ] | map(pad(13)) | join(" "))
' "$WORK"/*.row.json

# The pinned ladder, in its own process (its own namespaces, lab and trap).
if [[ "${PINNED:-1}" != 0 ]]; then
  stop_started # this part's lab: the pinned ladder starts its own
  echo >&2
  pin_rc=0
  DURATION="$DURATION" BYTES="$BYTES" INTERVAL_MS="$INTERVAL_MS" bash bench/echo-ladder.sh || pin_rc=$?
  (( pin_rc == 3 )) && pin_rc=0 # skipped: it said why
  exit "$pin_rc"
fi
