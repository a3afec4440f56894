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
# work directory (implies KEEP=1; `go tool pprof -top WORK/cdeload-N-1.pprof`).
#
# Everything listens on 127.0.0.1. The lab and the generator share this
# machine's cores: the table reports the CPU seconds of each, and of every
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
LAB_PID=""
RUN_PID=""
SAMPLER_PID=""

# stop_pid PID: SIGTERM, up to 15 s to exit, then SIGKILL (only this PID).
stop_pid() {
  local pid="$1"
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 150); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
}
cleanup() {
  local rc=$?
  [[ -n "$SAMPLER_PID" ]] && stop_pid "$SAMPLER_PID"
  if [[ -n "$RUN_PID" ]]; then
    # RUN_PID is /usr/bin/time; its child is the benchmark program.
    for c in $(pgrep -P "$RUN_PID" 2>/dev/null); do stop_pid "$c"; done
    stop_pid "$RUN_PID"
  fi
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

echo "building cdeload and the baseline ..." >&2
go build -o "$WORK/cdeload" ./cmd/cdeload
go build -o "$WORK/baseline" ./bench/echo/baseline

TCK="$(getconf CLK_TCK)"
NCPU="$(nproc)"
[[ "${PROFILE:-0}" == 1 ]] && KEEP=1
# cpu_ticks PID: user+system CPU ticks of a live process.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
# busy_ticks: CPU ticks spent busy by the whole machine.
busy_ticks() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8 + $9}' /proc/stat; }
# busy_total_ticks: busy ticks and all ticks (idle and iowait included) of
# the machine, from one read: their ratio of deltas is the busy share, free
# of the sampler's own delays on a saturated machine.
busy_total_ticks() { awk '/^cpu / {b = $2 + $3 + $4 + $7 + $8 + $9; print b, b + $5 + $6}' /proc/stat; }

# sample_cpu TIMEPID: prints "seconds genTicks labTicks busyTicks" every 0.5 s
# while TIMEPID (/usr/bin/time) runs; gen is its child, the benchmark program.
sample_cpu() {
  local tp="$1" gp=""
  while kill -0 "$tp" 2>/dev/null; do
    [[ -z "$gp" ]] && gp="$(pgrep -P "$tp" 2>/dev/null | head -n 1 || true)"
    if [[ -n "$gp" ]] && [[ -r "/proc/$gp/stat" ]]; then
      echo "$(date +%s.%N) $(cpu_ticks "$gp") $(cpu_ticks "$LAB_PID") $(busy_total_ticks)"
    fi
    sleep 0.5
  done
}

# steady_cores FILE: from the samples, the cores used by gen, lab, the rest
# of the machine, and the whole machine, in a window inside the echo phase: it ends 2 s before
# the last sample and spans DURATION - 5 s (the phase ends shortly before
# the program exits, for both programs).
steady_cores() {
  awk -v span="$((DURATION > 6 ? DURATION - 5 : 1))" -v tck="$TCK" -v ncpu="$NCPU" '
    { t[NR] = $1; g[NR] = $2; l[NR] = $3; b[NR] = $4; a[NR] = $5 }
    END {
      if (NR < 2) { print "null null null null"; exit }
      e = NR; while (e > 1 && t[NR] - t[e] < 2) e--
      s = e; while (s > 1 && t[e] - t[s] < span) s--
      dt = t[e] - t[s]
      if (dt <= 0) { print "null null null null"; exit }
      gc = (g[e] - g[s]) / tck / dt; lc = (l[e] - l[s]) / tck / dt
      bc = (a[e] > a[s]) ? (b[e] - b[s]) / (a[e] - a[s]) * ncpu : (b[e] - b[s]) / tck / dt
      printf "%.3f %.3f %.3f %.3f\n", gc, lc, bc - gc - lc, bc
    }' "$1"
}

echo "starting cdeload lab with $WORKSPACES workspaces (another process) ..." >&2
lab_t0=$SECONDS
"$WORK/cdeload" lab --listen 127.0.0.1:0 --workspaces "$WORKSPACES" >"$WORK/lab.out" 2>"$WORK/lab.err" &
LAB_PID=$!
until grep -q '^# serving' "$WORK/lab.out" 2>/dev/null; do
  if ! kill -0 "$LAB_PID" 2>/dev/null; then
    echo "cdeload lab exited during start-up:" >&2
    tail -20 "$WORK/lab.err" >&2
    exit 1
  fi
  if (( SECONDS - lab_t0 > 300 )); then
    echo "cdeload lab not ready after 300 s" >&2
    exit 1
  fi
  sleep 0.5
done
LAB_URL="$(sed -n 's/^export CDELOAD_LAB_URL=//p' "$WORK/lab.out")"
# The lab's info (its secrets) needs its token, for the baseline and cdeload.
CDELOAD_LAB_TOKEN="$(sed -n 's/^export CDELOAD_LAB_TOKEN=//p' "$WORK/lab.out")"
export CDELOAD_LAB_TOKEN
curl -fsS "$LAB_URL/lab/v1/workspaces" | jq -c '[.workspaces | sort_by(.name)[] | .address]' >"$WORK/hosts.json"
nws="$(jq length "$WORK/hosts.json")"
echo "lab ready at $LAB_URL: $nws workspaces in $((SECONDS - lab_t0)) s (RSS $(awk '/VmRSS/ {printf "%d MB", $2/1024}' /proc/$LAB_PID/status))" >&2

# run_one KIND N REP: runs one benchmark program and writes $WORK/KIND-N-REP.json
# (its own figures plus CPU of the generator, the lab and everything else).
run_one() {
  local kind="$1" n="$2" rep="$3"
  local base="$WORK/$kind-$n-$rep"
  # Every stream must be connected before the schedule starts: the
  # connection storm costs ~10 ms per stream here; leave room.
  local settle=$(( 3 + (n * 12 + 999) / 1000 ))
  local lab0 busy0 lab1 busy1 t0 t1
  # PROFILE=1: the steady window, roughly (both programs start their
  # schedule about SETTLE after they start dialing).
  local profile=""
  if [[ "${PROFILE:-0}" == 1 ]]; then
    profile="$base.pprof@$((settle + 3))s+$((DURATION > 6 ? DURATION - 5 : 1))s"
  fi
  lab0=$(cpu_ticks "$LAB_PID"); busy0=$(busy_ticks); t0=$(date +%s.%N)
  if [[ "$kind" == baseline ]]; then
    CDELOAD_CPUPROFILE="$profile" /usr/bin/time -f '%U %S %e %M' -o "$base.time" \
      "$WORK/baseline" --lab "$LAB_URL" --streams "$n" --workspaces "$nws" --bytes "$BYTES" \
      --interval "${INTERVAL_MS}ms" --duration "${DURATION}s" --settle "${settle}s" --out "$base.prog.json" \
      >"$base.log" 2>&1 &
  else
    CDELOAD_CPUPROFILE="$profile" CDELOAD_LAB_URL="$LAB_URL" /usr/bin/time -f '%U %S %e %M' -o "$base.time" \
      "$WORK/cdeload" run -q --no-usage-report -e STREAMS="$n" -e BYTES="$BYTES" -e INTERVAL_MS="$INTERVAL_MS" \
      -e DURATION_S="$DURATION" -e SETTLE_S="$settle" -e HOSTS_FILE="$WORK/hosts.json" -e OUT="$base.prog.json" \
      bench/echo/script.js >"$base.log" 2>&1 &
  fi
  RUN_PID=$!
  # Sample CPU ticks of the generator (time's child), the lab and the whole
  # machine every 0.5 s, to get the steady-state cost of the echo phase.
  sample_cpu "$RUN_PID" >"$base.cpu" &
  SAMPLER_PID=$!
  local rc=0
  wait "$RUN_PID" || rc=$?
  RUN_PID=""
  stop_pid "$SAMPLER_PID"; SAMPLER_PID=""
  t1=$(date +%s.%N); lab1=$(cpu_ticks "$LAB_PID"); busy1=$(busy_ticks)
  if [[ ! -s "$base.prog.json" ]]; then
    echo "$kind with $n streams failed (exit $rc); last lines of $base.log:" >&2
    tail -5 "$base.log" >&2
    echo '{}' >"$base.prog.json"
  fi
  # GNU time writes "Command exited with non-zero status N" first on failure.
  read -r u s e rss < <(tail -n 1 "$base.time") || { u=0; s=0; e=0; rss=0; }
  local gcores lcores ocores bcores
  read -r gcores lcores ocores bcores < <(steady_cores "$base.cpu")
  jq -c --arg kind "$kind" --argjson n "$n" --argjson rep "$rep" --argjson rc "$rc" --argjson u "$u" --argjson s "$s" --argjson e "$e" \
    --argjson rss "$rss" --argjson tck "$TCK" --argjson lab "$((lab1 - lab0))" --argjson busy "$((busy1 - busy0))" \
    --argjson gcores "$gcores" --argjson lcores "$lcores" --argjson ocores "$ocores" --argjson bcores "$bcores" \
    --argjson ncpu "$NCPU" --argjson dur "$DURATION" \
    --argjson wall "$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", b - a}')" \
    '. + {kind: $kind, streams: $n, rep: $rep, exit: $rc, genCPU: ($u + $s), genWall: $e, genRSSMB: ($rss / 1024),
          labCPU: ($lab / $tck), otherCPU: ((($busy - $lab) / $tck) - ($u + $s)), runWall: $wall,
          genCores: $gcores, labCores: $lcores, otherCores: $ocores, busyCores: $bcores}
      | .fps = (if (.framesReceived // 0) > 0 then .framesReceived / $dur else null end)
      | .genMsPer1k = (if .fps != null and $gcores != null then $gcores / .fps * 1e6 else null end)
      | .labMsPer1k = (if .fps != null and $lcores != null then $lcores / .fps * 1e6 else null end)
      | .busyShare = (if $bcores != null then $bcores / $ncpu else null end)
      | .saturated = (.busyShare != null and .busyShare >= 0.9)' \
    "$base.prog.json" >"$base.row.json"
  jq -r 'def f(x): if x == null then "?" else (x * 100 | round / 100 | tostring) end;
    "  \(.kind) n=\(.streams // "?"): frames/s=\(f(.fps)) missed=\(.ticksMissed // "?") errors=\(.errors // "?") CPU ms per 1000 frames: gen=\(f(.genMsPer1k)) lab=\(f(.labMsPer1k)); machine busy \(f(.busyShare * 100))%\(if .saturated then " SATURATED" else "" end) p50=\(f(.rtt.p50)) p95=\(f(.rtt.p95))"' "$base.row.json" >&2
}

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
  "The stable figure is the CPU ratio B/A; RTT (ms, every frame) only next to the busy share.",
  "",
  ([ "streams", "pair", "A fps", "B fps", "A missed", "B missed", "A err", "B err", "A ms/1k", "B ms/1k", "CPU B/A",
     "lab ms/1k", "busy A/B", "sat", "A p50", "B p50", "A p95", "B p95" ] | map(pad(9)) | join(" ")),
  ($pairs[] | [ .a.streams, .a.rep, f(.a.fps), f(.b.fps), .a.ticksMissed, .b.ticksMissed, .a.errors, .b.errors,
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
