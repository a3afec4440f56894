#!/usr/bin/env bash
# cdeload side by side with Coder's own scale test against a real coderd
# (shared/coderpeer: coderd + PostgreSQL + echo provisioner + one real
# `coder agent` per workspace, on loopback). For each N it starts a fresh
# peer and runs, on the same template with the same parameters and traffic
# (128 B every 100 ms for DURATION seconds through the web terminal):
#
#   A  coder exp scaletest create-workspaces + workspace-traffic + cleanup
#   B  cdeload run examples/scale.js (create, web-terminal echo, delete, cleanup)
#
# and prints one table. Time to all ready is measured the same way for both:
# a poller asks the API every 250 ms which scaletest- workspaces have a
# connected, ready agent, and notes when N distinct ones have been seen,
# counted from the start of the tool's first command.
# CPU seconds and peak RSS come from /usr/bin/time -v (summed CPU, largest
# RSS over Coder's three commands).
#
#   bash bench/vs-coder.sh              # N = 5 and 20
#   NS="5 20 50" bash bench/vs-coder.sh # N > 20 runs with CODERPEER_RATE_LIMITS=off
#
# Knobs (environment): NS (workspace counts, default "5 20"), DURATION
# (traffic seconds, default 30), CODERPEER (the peer script, default
# ../shared/coderpeer/coderpeer), KEEP=1 keeps the work directory.
# The machine is shared: read the ratios, not the absolute figures.
set -euo pipefail
cd "$(dirname "$0")/.."

NS="${NS:-5 20}"
DURATION="${DURATION:-30}"
POLL_PID=""
stop_poll() { [[ -z "$POLL_PID" ]] || { kill "$POLL_PID" 2>/dev/null || true; wait "$POLL_PID" 2>/dev/null || true; POLL_PID=""; }; }
on_exit() { stop_poll; }
WORK_PREFIX=cdeload-vs-coder
source bench/lib/vs-coder-common.sh

echo "building cdeload..." >&2
go build -o "$WORK/cdeload" ./cmd/cdeload

# api PATH: GET on the peer with the owner's token (bypassing rate limits).
api() { curl -sf -H "Coder-Session-Token: $CODER_SESSION_TOKEN" -H "X-Coder-Bypass-Ratelimit: true" "$CODER_URL$1"; }

# ready_ids: IDs of scaletest- workspaces whose agents are all connected and ready.
ready_ids() {
  api '/api/v2/workspaces?q=name:scaletest-&limit=500' | jq -r '.workspaces[] | select(.latest_build.transition == "start"
    and ([.latest_build.resources[].agents // [] | .[]] | length > 0)
    and all(.latest_build.resources[].agents // [] | .[]; .status == "connected" and .lifecycle_state == "ready")) | .id'
}

# leftovers: scaletest- workspaces and users the API still lists.
leftovers() {
  local w u
  w=$(api '/api/v2/workspaces?q=name:scaletest-&limit=500' | jq '[.workspaces[] | select(.name | startswith("scaletest-"))] | length')
  u=$(api '/api/v2/users?q=scaletest-&limit=500' | jq '[.users[] | select(.username | startswith("scaletest-"))] | length')
  echo "$((w + u))"
}

# start_poll N OUT: writes to OUT the seconds from now until N distinct
# workspaces have been seen ready (cdeload deletes each workspace at the end
# of its iteration, so all N need not be ready at the same moment).
start_poll() {
  local n=$1 out=$2 t0 seen
  t0=$(date +%s.%N)
  seen="$out.ids"
  : > "$seen"
  ( while :; do
      ready_ids 2>/dev/null >> "$seen" || true
      if [[ $(sort -u "$seen" | wc -l) -ge "$n" ]]; then echo "$(date +%s.%N) - $t0" | bc > "$out"; exit 0; fi
      sleep 0.25
    done ) &
  POLL_PID=$!
}

# timed NAME CMD...: runs CMD under /usr/bin/time -v into $WORK/NAME.{out,time}.
timed() {
  local name=$1; shift
  /usr/bin/time -v -o "$WORK/$name.time" "$@" >"$WORK/$name.out" 2>&1
}
wall() {  # Elapsed (wall clock) time (h:mm:ss or m:ss): seconds
  tv "$1" 'Elapsed (wall clock) time (h:mm:ss or m:ss)' | awk -F: '{ if (NF==3) print $1*3600+$2*60+$3; else print $1*60+$2 }'
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

ROWS=()
for N in $NS; do
  echo "== N=$N: starting a fresh coderpeer..." >&2
  peer_up "$N"
  version=$(api /api/v2/buildinfo | jq -r .version)

  # --- A: Coder's scale test ---
  echo "== N=$N: coder exp scaletest create-workspaces..." >&2
  start_poll "$N" "$WORK/a-ready-$N"
  timed a-create-$N "$C" exp scaletest create-workspaces --count "$N" --concurrency "$N" --template "$T" \
    --parameter cpu=2 --parameter memory=2 --parameter home_disk_size=1 --no-cleanup \
    --output "json:$WORK/a-create-$N.json" || echo "create-workspaces failed (see $WORK/a-create-$N.out)" >&2
  sleep 0.5; stop_poll
  echo "== N=$N: workspace-traffic ${DURATION}s..." >&2
  port=$(free_port)
  ( sleep "$((DURATION + 2))"
    for _ in $(seq 40); do curl -sf "http://127.0.0.1:$port/metrics" > "$WORK/a-metrics-$N.tmp" && mv "$WORK/a-metrics-$N.tmp" "$WORK/a-metrics-$N.txt"; sleep 0.5; done ) &
  scrape=$!
  timed a-traffic-$N "$C" exp scaletest workspace-traffic --template "$T" --concurrency 0 \
    --timeout "${DURATION}s" --bytes-per-tick 128 --tick-interval 100ms \
    --scaletest-prometheus-address "127.0.0.1:$port" --scaletest-prometheus-wait 15s \
    --output "json:$WORK/a-traffic-$N.json" || echo "workspace-traffic failed (see $WORK/a-traffic-$N.out)" >&2
  kill "$scrape" 2>/dev/null || true; wait "$scrape" 2>/dev/null || true
  echo "== N=$N: cleanup..." >&2
  timed a-cleanup-$N "$C" exp scaletest cleanup --cleanup-concurrency "$N" || echo "cleanup failed" >&2
  a_left=$(leftovers)
  a_ready=$(cat "$WORK/a-ready-$N" 2>/dev/null || echo "n/a")
  # The traffic wait (--scaletest-prometheus-wait 15s) is idle time kept for the scrape: not counted.
  a_wall=$(echo "$(wall a-create-$N) + $(wall a-traffic-$N) - 15 + $(wall a-cleanup-$N)" | bc)
  a_cpu=$(echo "$(cpu a-create-$N) + $(cpu a-traffic-$N) + $(cpu a-cleanup-$N)" | bc)
  a_rss=$(printf '%s\n' "$(rss a-create-$N)" "$(rss a-traffic-$N)" "$(rss a-cleanup-$N)" | sort -n | tail -1)
  m="$WORK/a-metrics-$N.txt"
  if [[ -s "$m" ]]; then
    sumof() { awk -v k="$1" 'index($0,k)==1 && $0 !~ /^#/ { s += $NF } END { printf "%.0f", s }' "$m"; }
    a_wr=$(sumof coderd_scaletest_bytes_written_total); a_rd=$(sumof coderd_scaletest_bytes_read_total)
    a_errs=$(( $(sumof coderd_scaletest_read_errors_total) + $(sumof coderd_scaletest_write_errors_total) ))
    a_lat=$(awk '/^coderd_scaletest_read_latency_seconds_sum/ {rs+=$NF} /^coderd_scaletest_read_latency_seconds_count/ {rc+=$NF}
      /^coderd_scaletest_write_latency_seconds_sum/ {ws+=$NF} /^coderd_scaletest_write_latency_seconds_count/ {wc+=$NF}
      END { if (rc>0 && wc>0) printf "read call mean %.1f ms, write call mean %.2f ms", 1000*rs/rc, 1000*ws/wc; else print "n/a" }' "$m")
  else
    a_wr=n/a; a_rd=n/a; a_errs=n/a; a_lat="(metrics not scraped)"
  fi
  a_pass=$(jq -r '"\(.total_pass)/\(.total_runs)"' "$WORK/a-traffic-$N.json" 2>/dev/null || echo n/a)

  # --- B: cdeload ---
  echo "== N=$N: cdeload run examples/scale.js..." >&2
  start_poll "$N" "$WORK/b-ready-$N"
  timed b-run-$N "$WORK/cdeload" run -q -e "WORKSPACES=$N" -e "TRAFFIC_DURATION=${DURATION}s" -e "TEMPLATE=$T" \
    -e TRANSPORT=terminal --summary-export "$WORK/b-$N.json" examples/scale.js || echo "cdeload run exited non-zero (see $WORK/b-run-$N.out)" >&2
  stop_poll
  b_left=$(leftovers)
  b_ready=$(cat "$WORK/b-ready-$N" 2>/dev/null || echo "n/a")
  b_wall=$(wall b-run-$N); b_cpu=$(cpu b-run-$N); b_rss=$(rss b-run-$N)
  s="$WORK/b-$N.json"
  b_wr=$(jq '.metrics.traffic_bytes_sent.count // 0' "$s"); b_rd=$(jq '.metrics.traffic_bytes_received.count // 0' "$s")
  b_errs=$(jq '.metrics.traffic_errors.count // 0' "$s")
  b_lat=$(jq -r '.metrics.traffic_rtt | "frame RTT p50 \(.med|.*10|round/10) ms, p95 \(."p(95)"|.*10|round/10) ms, max \(.max|.*10|round/10) ms"' "$s")
  b_pass=$(jq -r '.metrics.checks | "\(.passes)/\(.passes + .fails) checks"' "$s")

  peer_down
  ROWS+=("$N|$version|$a_ready|$b_ready|$a_wall|$b_wall|$a_cpu|$b_cpu|$a_rss|$b_rss|$a_wr/$a_rd|$b_wr/$b_rd|$a_errs|$b_errs|$a_lat|$b_lat|$a_left|$b_left|$a_pass|$b_pass")
done

ratio() { if [[ "$2" =~ ^[0-9.]+$ && "$1" =~ ^[0-9.]+$ ]] && [[ $(echo "$1 > 0" | bc) == 1 ]]; then printf '%.2f' "$(echo "$2 / $1" | bc -l)"; else echo n/a; fi; }
echo
echo "cdeload vs coder exp scaletest on coderpeer (real coderd, echo provisioner, real agents; ${DURATION}s of 128 B / 100 ms web-terminal traffic per workspace)."
echo "Shared 2-core machine: compare the ratio column (cdeload / Coder), not absolute figures."
echo
printf '| %-34s | %-30s | %-30s | %-8s |\n' "N (coder version)" "coder exp scaletest" "cdeload" "ratio"
printf '|%s|%s|%s|%s|\n' "------------------------------------" "--------------------------------" "--------------------------------" "----------"
for row in "${ROWS[@]}"; do
  IFS='|' read -r N ver ar br aw bw ac bc_ arss brss abytes bbytes aerr berr alat blat aleft bleft apass bpass <<<"$row"
  line() { printf '| %-34s | %-30s | %-30s | %-8s |\n' "$1" "$2" "$3" "$4"; }
  line "N=$N ($ver)" "" "" ""
  line "time until all N ready (s)" "$(printf '%.1f' "$ar" 2>/dev/null || echo "$ar")" "$(printf '%.1f' "$br" 2>/dev/null || echo "$br")" "$(ratio "$ar" "$br")"
  line "total wall time (s)" "$aw" "$bw" "$(ratio "$aw" "$bw")"
  line "generator CPU (s)" "$ac" "$bc_" "$(ratio "$ac" "$bc_")"
  line "generator CPU per workspace (s)" "$(echo "scale=3; $ac / $N" | bc)" "$(echo "scale=3; $bc_ / $N" | bc)" "$(ratio "$ac" "$bc_")"
  line "peak RSS (MB)" "$((arss / 1024))" "$((brss / 1024))" "$(ratio "$arss" "$brss")"
  line "bytes written/read" "$abytes" "$bbytes" ""
  line "traffic errors" "$aerr" "$berr" ""
  line "runs passed" "$apass" "$bpass" ""
  line "leftovers after cleanup" "$aleft" "$bleft" ""
  echo "|   latency, Coder: $alat"
  echo "|   latency, cdeload: $blat"
done
echo
echo "Latency: Coder times each read() and write() call on the terminal (a read blocks until the next chunk arrives);"
echo "cdeload times each frame's full round trip (written, echoed by the PTY, read back and matched by sequence number)."
echo "Coder's wall time is its three commands without the 15 s kept idle for the metrics scrape; cdeload's is one run"
echo "(create, traffic, delete, cleanup). CPU and RSS: /usr/bin/time -v; Coder's CPU summed, RSS the largest of its commands."
