#!/usr/bin/env bash
# Lab cost benchmark: what a standalone `cdeload lab` costs per workspace
# (RSS) and per echo frame (CPU), for a baseline build (default: the `main`
# branch) against this tree, in the same run. See bench/README.md.
#
# For each build it starts `cdeload lab --workspaces WORKSPACES` (loopback),
# waits IDLE seconds, reads its RSS, then runs the plain-Go echo generator
# (bench/echo/baseline, built from this tree, the same for both labs):
# STREAMS streams of BYTES every INTERVAL_MS for DURATION seconds, reads the
# lab's CPU ticks (/proc) over the steady part of the echo phase and its RSS
# at the end, and stops the lab. CPU per 1000 frames = lab CPU in the window
# / frames per second in it; a ratio of CPU times holds on a shared machine,
# wall-clock figures do not.
#
#   bash bench/labcost.sh                             # 500 workspaces, 300 streams (3000 frames/s)
#   WORKSPACES=100 STREAMS=100 DURATION=20 bash bench/labcost.sh
#   BASE=HEAD~3 REPS=2 PROFILE=1 bash bench/labcost.sh
#
# Knobs (environment): BASE (git ref of the baseline, default main),
# WORKSPACES, STREAMS, BYTES, INTERVAL_MS, DURATION, IDLE, REPS (lab starts
# per build, alternating base/new), PROFILE=1 (CPU profile of the window and
# a heap profile at its end, per run, in the work directory; implies KEEP=1),
# KEEP=1 keeps the work directory.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"

BASE="${BASE:-main}"
WORKSPACES="${WORKSPACES:-500}"
STREAMS="${STREAMS:-300}"
BYTES="${BYTES:-128}"
INTERVAL_MS="${INTERVAL_MS:-100}"
DURATION="${DURATION:-40}"
IDLE="${IDLE:-10}"
REPS="${REPS:-1}"
for v in WORKSPACES STREAMS BYTES INTERVAL_MS DURATION IDLE REPS; do
  [[ "${!v}" =~ ^[1-9][0-9]*$ ]] || { echo "$v=${!v}: want a positive integer" >&2; exit 2; }
done
(( DURATION >= 15 )) || { echo "DURATION=$DURATION: want >= 15 (the CPU window is DURATION - 8 s)" >&2; exit 2; }
for tool in jq curl awk git go; do
  command -v "$tool" >/dev/null || { echo "bench/labcost.sh needs $tool" >&2; exit 2; }
done
git rev-parse --verify -q "$BASE^{commit}" >/dev/null || { echo "BASE=$BASE: not a git commit" >&2; exit 2; }
[[ "${PROFILE:-0}" == 1 ]] && KEEP=1

WORK="$(mktemp -d "${TMPDIR:-/tmp}/cdeload-labcost.XXXXXX")"
LAB_PID=""
GEN_PID=""
# stop_pid PID: SIGTERM, up to 30 s to exit, then SIGKILL (only this PID).
stop_pid() {
  local pid="$1"
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 300); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
}
cleanup() {
  local rc=$?
  [[ -n "$GEN_PID" ]] && stop_pid "$GEN_PID"
  [[ -n "$LAB_PID" ]] && stop_pid "$LAB_PID"
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

# Both builds get the same pprof endpoint (LABCOST_PPROF) through an
# overlay file, whatever their own code has.
echo "building the baseline ($BASE = $(git rev-parse --short "$BASE")), this tree and the generator ..." >&2
mkdir -p "$WORK/base-src"
git archive "$BASE" | tar -x -C "$WORK/base-src"
overlay() {
  jq -n --arg dst "$1/cmd/cdeload/zz_labcost_pprof.go" --arg src "$ROOT/bench/labcost/pprof.go.in" \
    '{Replace: {($dst): $src}}' >"$2"
}
overlay "$WORK/base-src" "$WORK/base-overlay.json"
overlay "$ROOT" "$WORK/new-overlay.json"
(cd "$WORK/base-src" && go build -overlay "$WORK/base-overlay.json" -o "$WORK/cdeload-base" ./cmd/cdeload)
go build -overlay "$WORK/new-overlay.json" -o "$WORK/cdeload-new" ./cmd/cdeload
go build -o "$WORK/gen" ./bench/echo/baseline

TCK="$(getconf CLK_TCK)"
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
hwm_kb() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null || echo 0; }

# run_one KIND REP: one lab start, idle RSS, echo phase; writes $WORK/KIND-REP.json.
run_one() {
  local kind="$1" rep="$2" base="$WORK/$1-$2"
  local port; port="$(free_port)"
  local t0=$SECONDS
  LABCOST_PPROF="127.0.0.1:$port" "$WORK/cdeload-$kind" lab --listen 127.0.0.1:0 --workspaces "$WORKSPACES" \
    >"$base.lab.out" 2>"$base.lab.err" &
  LAB_PID=$!
  until grep -q '^# serving' "$base.lab.out" 2>/dev/null; do
    kill -0 "$LAB_PID" 2>/dev/null || { echo "$kind lab exited during start-up:" >&2; tail -5 "$base.lab.err" >&2; exit 1; }
    (( SECONDS - t0 < 600 )) || { echo "$kind lab not ready after 600 s" >&2; exit 1; }
    sleep 0.5
  done
  local startS=$((SECONDS - t0))
  local hwmStart; hwmStart="$(hwm_kb "$LAB_PID")"
  sleep "$IDLE"
  local idle0 idle1 rssIdle
  idle0="$(cpu_ticks "$LAB_PID")"; sleep 5; idle1="$(cpu_ticks "$LAB_PID")"
  rssIdle="$(rss_kb "$LAB_PID")"
  local url token
  url="$(sed -n 's/^export CDELOAD_LAB_URL=//p' "$base.lab.out")"
  token="$(sed -n 's/^export CDELOAD_LAB_TOKEN=//p' "$base.lab.out")"
  local settle=$(( 3 + (STREAMS * 12 + 999) / 1000 ))
  CDELOAD_LAB_TOKEN="$token" "$WORK/gen" --lab "$url" --streams "$STREAMS" --bytes "$BYTES" \
    --interval "${INTERVAL_MS}ms" --duration "${DURATION}s" --settle "${settle}s" --out "$base.gen.json" \
    >"$base.gen.log" 2>&1 &
  GEN_PID=$!
  # The window: from 5 s into the echo phase to 3 s before its end.
  sleep $((settle + 5))
  local win=$((DURATION - 8)) c0 c1 w0 w1 prof_pid=""
  if [[ "${PROFILE:-0}" == 1 ]]; then
    curl -fsS -o "$base.cpu.pprof" "http://127.0.0.1:$port/debug/pprof/profile?seconds=$win" &
    prof_pid=$!
  fi
  c0="$(cpu_ticks "$LAB_PID")"; w0="$(date +%s.%N)"
  sleep "$win"
  c1="$(cpu_ticks "$LAB_PID")"; w1="$(date +%s.%N)"
  local rssLoad; rssLoad="$(rss_kb "$LAB_PID")"
  if [[ "${PROFILE:-0}" == 1 ]]; then
    wait "$prof_pid" 2>/dev/null || true
    curl -fsS -o "$base.heap.pprof" "http://127.0.0.1:$port/debug/pprof/heap" || true
    curl -fsS -o "$base.goroutine.txt" "http://127.0.0.1:$port/debug/pprof/goroutine?debug=1" || true
  fi
  local grc=0
  wait "$GEN_PID" || grc=$?
  GEN_PID=""
  local rssEnd hwm; rssEnd="$(rss_kb "$LAB_PID")"; hwm="$(hwm_kb "$LAB_PID")"
  stop_pid "$LAB_PID"; LAB_PID=""
  [[ -s "$base.gen.json" ]] || { echo "generator failed (exit $grc):" >&2; tail -5 "$base.gen.log" >&2; echo '{}' >"$base.gen.json"; }
  jq -c --arg kind "$kind" --argjson rep "$rep" --argjson ws "$WORKSPACES" --argjson dur "$DURATION" \
    --argjson startS "$startS" --argjson rssIdle "$rssIdle" --argjson rssLoad "$rssLoad" --argjson rssEnd "$rssEnd" \
    --argjson hwm "$hwm" --argjson hwmStart "$hwmStart" --argjson tck "$TCK" \
    --argjson idle "$((idle1 - idle0))" --argjson cpu "$((c1 - c0))" \
    --argjson wall "$(awk -v a="$w0" -v b="$w1" 'BEGIN {printf "%.3f", b - a}')" \
    '{kind: $kind, rep: $rep, startS: $startS,
      frames: (.framesReceived // 0), missed: (.ticksMissed // null), errors: (.errors // null),
      fps: ((.framesReceived // 0) / $dur),
      rssIdleMBperWS: ($rssIdle / 1024 / $ws), rssLoadMBperWS: ($rssLoad / 1024 / $ws),
      rssEndMB: ($rssEnd / 1024), hwmStartMB: ($hwmStart / 1024), hwmMB: ($hwm / 1024),
      idleCores: ($idle / $tck / 5), labCores: ($cpu / $tck / $wall)}
     | .msPer1k = (if .fps > 0 then .labCores / .fps * 1e6 else null end)' "$base.gen.json" >"$base.row.json"
  jq -r 'def f(x): if x == null then "?" else (x * 1000 | round / 1000 | tostring) end;
    "  \(.kind) #\(.rep): started in \(.startS) s; RSS/ws idle \(f(.rssIdleMBperWS)) MB, under load \(f(.rssLoadMBperWS)) MB; frames/s \(f(.fps)) (missed \(.missed), errors \(.errors)); lab \(f(.labCores)) cores = \(f(.msPer1k)) CPU ms per 1000 frames"' \
    "$base.row.json" >&2
}

for rep in $(seq "$REPS"); do
  echo "rep $rep/$REPS: baseline lab ..." >&2
  run_one base "$rep"
  echo "rep $rep/$REPS: new lab ..." >&2
  run_one new "$rep"
done

jq -s -r --arg ws "$WORKSPACES" --arg n "$STREAMS" --arg b "$BYTES" --arg iv "$INTERVAL_MS" --arg d "$DURATION" \
  --arg base "$BASE" --arg nproc "$(nproc)" --arg load "$(cut -d' ' -f1-3 /proc/loadavg)" '
  def med: map(select(. != null)) | sort | if length == 0 then null elif length % 2 == 1 then .[length / 2 | floor]
    else (.[length / 2 - 1] + .[length / 2]) / 2 end;
  def f(x): if x == null then "-" else (x * 1000 | round / 1000 | tostring) end;
  def pad(w): tostring as $s | ([range(0; w - ($s | length))] | map(" ") | join("")) + $s;
  (map(select(.kind == "base"))) as $A | (map(select(.kind == "new"))) as $B |
  def row(name; k): [name, f($A | map(.[k]) | med), f($B | map(.[k]) | med),
    (($A | map(.[k]) | med) as $a | ($B | map(.[k]) | med) as $b |
      if $a == null or $b == null or $a == 0 then "-" else f($b / $a) end)] | map(pad(14)) | join(" ");
  "lab cost: \($ws) workspaces, \($n) echo streams of \($b) B every \($iv) ms for \($d) s (plain-Go generator); base = \($base), new = this tree",
  "medians over \($A | length) lab start(s) each; CPU from /proc ticks; \($nproc) cores shared, load average at the end \($load)",
  "",
  ([ "", "base", "new", "new/base" ] | map(pad(14)) | join(" ")),
  row("RSS MB/ws idle"; "rssIdleMBperWS"),
  row("RSS MB/ws load"; "rssLoadMBperWS"),
  row("peak RSS MB"; "hwmMB"),
  row("ms/1k frames"; "msPer1k"),
  row("lab cores"; "labCores"),
  row("frames/s"; "fps"),
  row("idle cores"; "idleCores"),
  row("start s"; "startS")
' "$WORK"/*.row.json
