# echo-common.sh: what bench/echo.sh and bench/echo-ladder.sh share, sourced
# after they set WORK (a work directory), DURATION, BYTES, INTERVAL_MS and
# the cdeload and baseline binaries in $WORK. It defines stop_pid, the /proc
# readers, start_lab and run_one (one run of the baseline or cdeload
# against the lab, with CPU samples of the generator, the lab, the machine
# and the cores in CORES).
#
# Knobs the including script may set before calling run_one / start_lab:
#   GEN_WRAP, LAB_WRAP  arrays prefixed to the generator's / lab's command
#                       (e.g. ip netns exec NS taskset -c 1); each must exec
#                       its command, so the PID is the program's.
#   CORES               CPU numbers whose busy share the samples record.
#   LAB_LISTEN          the lab's listen address (default 127.0.0.1:0).
#   SETTLE_BASE_S, SETTLE_PER_STREAM_MS  the time from the dials to the
#                       first stream's slot: base + per stream (3 s, 12 ms).
# It sets LAB_PID, LAB_URL and nws (workspaces) in start_lab, and RUN_PID /
# SAMPLER_PID while a run is in progress (for the caller's cleanup trap).

GEN_WRAP=("${GEN_WRAP[@]}")
LAB_WRAP=("${LAB_WRAP[@]}")
CORES="${CORES:-}"
LAB_PID=""
RUN_PID=""
SAMPLER_PID=""
# DIE_WITH_PARENT: the programs get SIGTERM when the process that started
# them dies, even by SIGKILL or a signal the script could not trap (the lab
# and the generator must never outlive the benchmark).
DIE_WITH_PARENT=()
command -v setpriv >/dev/null && DIE_WITH_PARENT=(setpriv --pdeathsig TERM)
TCK="$(getconf CLK_TCK)"
NCPU="$(nproc)"

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

# stop_started: stops the sampler, the benchmark program in progress and
# the lab, each by its PID.
stop_started() {
  [[ -n "$SAMPLER_PID" ]] && stop_pid "$SAMPLER_PID"
  if [[ -n "$RUN_PID" ]]; then
    # RUN_PID is /usr/bin/time; its child is the benchmark program.
    for c in $(pgrep -P "$RUN_PID" 2>/dev/null); do stop_pid "$c"; done
    stop_pid "$RUN_PID"
  fi
  [[ -n "$LAB_PID" ]] && stop_pid "$LAB_PID"
  SAMPLER_PID="" RUN_PID="" LAB_PID=""
}

# cpu_ticks PID: user+system CPU ticks of a live process.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
# busy_ticks: CPU ticks spent busy by the whole machine.
busy_ticks() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8 + $9}' /proc/stat; }
# busy_total_ticks: busy ticks and all ticks (idle and iowait included) of
# the machine, then of each core in CORES, from one read: a ratio of deltas
# is a busy share, free of the sampler's own delays on a saturated machine.
busy_total_ticks() {
  awk -v cores=" $CORES " '
    /^cpu[0-9]* / {
      b = $2 + $3 + $4 + $7 + $8 + $9; a = b + $5 + $6
      if ($1 == "cpu") { tot = b " " a; next }
      n = substr($1, 4)
      if (index(cores, " " n " ")) per[n] = b " " a
    }
    END {
      out = tot
      k = split(cores, cs, " ")
      for (i = 1; i <= k; i++) out = out " " (cs[i] in per ? per[cs[i]] : "0 0")
      print out
    }' /proc/stat
}

# sample_cpu TIMEPID: prints "seconds genTicks labTicks busy total
# [coreBusy coreTotal]..." every 0.5 s while TIMEPID (/usr/bin/time) runs;
# gen is its child, the benchmark program.
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
# of the machine, and the whole machine, then the busy share of each core
# in CORES, in a window inside the echo phase: it ends 2 s before the last
# sample and spans DURATION - 5 s (the phase ends shortly before the
# program exits, for both programs).
steady_cores() {
  awk -v span="$((DURATION > 6 ? DURATION - 5 : 1))" -v tck="$TCK" -v ncpu="$NCPU" -v ncores="$(wc -w <<<"$CORES")" '
    { t[NR] = $1; g[NR] = $2; l[NR] = $3; b[NR] = $4; a[NR] = $5
      for (i = 0; i < ncores; i++) { cb[NR, i] = $(6 + 2 * i); ca[NR, i] = $(7 + 2 * i) } }
    END {
      nulls = "null null null null"
      for (i = 0; i < ncores; i++) nulls = nulls " null"
      if (NR < 2) { print nulls; exit }
      e = NR; while (e > 1 && t[NR] - t[e] < 2) e--
      s = e; while (s > 1 && t[e] - t[s] < span) s--
      dt = t[e] - t[s]
      if (dt <= 0) { print nulls; exit }
      gc = (g[e] - g[s]) / tck / dt; lc = (l[e] - l[s]) / tck / dt
      bc = (a[e] > a[s]) ? (b[e] - b[s]) / (a[e] - a[s]) * ncpu : (b[e] - b[s]) / tck / dt
      out = sprintf("%.3f %.3f %.3f %.3f", gc, lc, bc - gc - lc, bc)
      for (i = 0; i < ncores; i++)
        out = out " " ((ca[e, i] > ca[s, i]) ? sprintf("%.3f", (cb[e, i] - cb[s, i]) / (ca[e, i] - ca[s, i])) : "null")
      print out
    }' "$1"
}

# start_lab WORKSPACES: starts `cdeload lab` (through LAB_WRAP) and waits
# up to 300 s for it; writes $WORK/hosts.json and sets LAB_PID, LAB_URL,
# CDELOAD_LAB_TOKEN (exported) and nws.
start_lab() {
  local ws="$1" t0=$SECONDS
  echo "starting cdeload lab with $ws workspaces (another process${LAB_WRAP[*]:+: ${LAB_WRAP[*]}}) ..." >&2
  "${LAB_WRAP[@]}" "${DIE_WITH_PARENT[@]}" "$WORK/cdeload" lab --listen "${LAB_LISTEN:-127.0.0.1:0}" --workspaces "$ws" >"$WORK/lab.out" 2>"$WORK/lab.err" &
  LAB_PID=$!
  until grep -q '^# serving' "$WORK/lab.out" 2>/dev/null; do
    if ! kill -0 "$LAB_PID" 2>/dev/null; then
      echo "cdeload lab exited during start-up:" >&2
      tail -20 "$WORK/lab.err" >&2
      return 1
    fi
    if (( SECONDS - t0 > 300 )); then
      echo "cdeload lab not ready after 300 s" >&2
      return 1
    fi
    sleep 0.5
  done
  LAB_URL="$(sed -n 's/^export CDELOAD_LAB_URL=//p' "$WORK/lab.out")"
  # The lab's info (its secrets) needs its token, for the baseline and cdeload.
  CDELOAD_LAB_TOKEN="$(sed -n 's/^export CDELOAD_LAB_TOKEN=//p' "$WORK/lab.out")"
  export CDELOAD_LAB_TOKEN
  "${GEN_WRAP[@]}" curl -fsS "$LAB_URL/lab/v1/workspaces" | jq -c '[.workspaces | sort_by(.name)[] | .address]' >"$WORK/hosts.json"
  nws="$(jq length "$WORK/hosts.json")"
  echo "lab ready at $LAB_URL: $nws workspaces in $((SECONDS - t0)) s (RSS $(awk '/VmRSS/ {printf "%d MB", $2/1024}' /proc/$LAB_PID/status))" >&2
}

# run_one KIND N REP: runs one benchmark program (through GEN_WRAP) and
# writes $WORK/KIND-N-REP.row.json (its own figures plus CPU of the
# generator, the lab and everything else, and the busy share of CORES).
run_one() {
  local kind="$1" n="$2" rep="$3"
  local base="$WORK/$kind-$n-$rep"
  # Every stream must be connected before the schedule starts: the
  # connection storm costs ~10 ms per stream on two idle cores; leave room
  # (SETTLE_BASE_S + SETTLE_PER_STREAM_MS per stream; late starts in the
  # output say when that was not enough).
  local settle=$(( ${SETTLE_BASE_S:-3} + (n * ${SETTLE_PER_STREAM_MS:-12} + 999) / 1000 ))
  local lab0 busy0 lab1 busy1 t0 t1
  # PROFILE=1 / TRACE=1 / ALLOCS=1: the steady window, roughly (both programs start
  # their schedule about SETTLE after they start dialing).
  local window="@$((settle + 3))s+$((DURATION > 6 ? DURATION - 5 : 1))s"
  local profile="" trace="" allocs=""
  [[ "${PROFILE:-0}" == 1 ]] && profile="$base.pprof$window"
  [[ "${TRACE:-0}" == 1 ]] && trace="$base.trace$window"
  [[ "${ALLOCS:-0}" == 1 ]] && allocs="$base.allocs$window"
  lab0=$(cpu_ticks "$LAB_PID"); busy0=$(busy_ticks); t0=$(date +%s.%N)
  if [[ "$kind" == baseline ]]; then
    CDELOAD_CPUPROFILE="$profile" CDELOAD_TRACE="$trace" CDELOAD_ALLOCPROFILE="$allocs" "${GEN_WRAP[@]}" "${DIE_WITH_PARENT[@]}" /usr/bin/time -f '%U %S %e %M' -o "$base.time" \
      "${DIE_WITH_PARENT[@]}" "$WORK/baseline" --lab "$LAB_URL" --streams "$n" --workspaces "$nws" --bytes "$BYTES" \
      --interval "${INTERVAL_MS}ms" --duration "${DURATION}s" --settle "${settle}s" --out "$base.prog.json" \
      >"$base.log" 2>&1 &
  else
    CDELOAD_CPUPROFILE="$profile" CDELOAD_TRACE="$trace" CDELOAD_ALLOCPROFILE="$allocs" CDELOAD_LAB_URL="$LAB_URL" "${GEN_WRAP[@]}" "${DIE_WITH_PARENT[@]}" /usr/bin/time -f '%U %S %e %M' -o "$base.time" \
      "${DIE_WITH_PARENT[@]}" "$WORK/cdeload" run -q --no-usage-report -e STREAMS="$n" -e BYTES="$BYTES" -e INTERVAL_MS="$INTERVAL_MS" \
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
  local u s e rss
  read -r u s e rss < <(tail -n 1 "$base.time") || { u=0; s=0; e=0; rss=0; }
  local steady gcores lcores ocores bcores
  steady="$(steady_cores "$base.cpu")"
  read -r gcores lcores ocores bcores _ <<<"$steady"
  local coreshare
  coreshare="$(awk -v cores="$CORES" '{ k = split(cores, cs, " "); printf "{"; for (i = 1; i <= k; i++) printf "%s\"%s\": %s", (i > 1 ? ", " : ""), cs[i], $(4 + i); print "}" }' <<<"$steady")"
  jq -c --arg kind "$kind" --argjson n "$n" --argjson rep "$rep" --argjson rc "$rc" --argjson u "$u" --argjson s "$s" --argjson e "$e" \
    --argjson rss "$rss" --argjson tck "$TCK" --argjson lab "$((lab1 - lab0))" --argjson busy "$((busy1 - busy0))" \
    --argjson gcores "$gcores" --argjson lcores "$lcores" --argjson ocores "$ocores" --argjson bcores "$bcores" \
    --argjson ncpu "$NCPU" --argjson dur "$DURATION" --argjson coreBusy "$coreshare" \
    --argjson wall "$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", b - a}')" \
    '. + {kind: $kind, streams: $n, rep: $rep, exit: $rc, genCPU: ($u + $s), genWall: $e, genRSSMB: ($rss / 1024),
          labCPU: ($lab / $tck), otherCPU: ((($busy - $lab) / $tck) - ($u + $s)), runWall: $wall,
          genCores: $gcores, labCores: $lcores, otherCores: $ocores, busyCores: $bcores, coreBusy: $coreBusy}
      | .fps = (if (.framesReceived // 0) > 0 then .framesReceived / $dur else null end)
      | .genMsPer1k = (if .fps != null and $gcores != null then $gcores / .fps * 1e6 else null end)
      | .labMsPer1k = (if .fps != null and $lcores != null then $lcores / .fps * 1e6 else null end)
      | .busyShare = (if $bcores != null then $bcores / $ncpu else null end)
      | .saturated = (.busyShare != null and .busyShare >= 0.9)' \
    "$base.prog.json" >"$base.row.json"
  jq -r 'def f(x): if x == null then "?" else (x * 100 | round / 100 | tostring) end;
    "  \(.kind) n=\(.streams // "?"): frames/s=\(f(.fps)) missed=\(.ticksMissed // "?") errors=\(.errors // "?") late starts=\(.lateStarts // "?") up=\(f(.tailnetUpMs))ms CPU ms per 1000 frames: gen=\(f(.genMsPer1k)) lab=\(f(.labMsPer1k)); machine busy \(f(.busyShare * 100))%\(if .saturated then " SATURATED" else "" end)\(if (.coreBusy | length) > 0 then " cores busy " + ([.coreBusy | to_entries[] | "cpu\(.key)=\(f(.value * 100))%"] | join(" ")) else "" end) p50=\(f(.rtt.p50)) p95=\(f(.rtt.p95))"' "$base.row.json" >&2
}
