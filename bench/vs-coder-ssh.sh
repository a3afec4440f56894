#!/usr/bin/env bash
# SSH echo over Coder's tailnet, cdeload against Coder's own scale test, on a
# real coderd (shared/coderpeer: coderd + PostgreSQL + echo provisioner + one
# real `coder agent` per workspace; direct connections blocked, so every
# packet goes through coderd's DERP relay). For each N, on a fresh peer:
#
#   coder exp scaletest create-workspaces (N workspaces scaletest-*, each
#   with a scaletest user; not measured), then on those same workspaces:
#   A  coder exp scaletest workspace-traffic --ssh (measured)
#   B  cdeload run examples/scale.js -e EXISTING=scaletest- with N VUs (one
#      per listed workspace: SSH echo over Coder's tailnet; cdeload creates
#      and deletes nothing) (measured)
#   then coder exp scaletest cleanup (not measured) removes the scaletest-*
#   workspaces and users.
#
# So both measured processes do the same thing: find the workspaces, join
# Coder's tailnet, SSH-echo. With B=create, B is the old comparison instead:
# after A's cleanup, cdeload creates N workspaces of the same template, waits
# for them, echoes and deletes them, all inside the measured process.
#
# By default (TLS=1) both reach coderd through an https:// URL served by
# bench/tlsfront inside the namespace (a TLS front like a production load
# balancer; its CPU is counted for neither side), so both take the
# production path: TLS to coderd and straight to its DERP relay. TLS=0 uses
# the peer's plain http:// URL, where Coder's client speaks plain HTTP to the
# relay and cdeload's node, whose upstream DERP client speaks only TLS, goes
# through a loopback TLS proxy (an extra hop per packet).
#
# Both send 128 B every 100 ms for DURATION seconds per workspace; both run
# inside the peer's network namespace (coderpeer exec), as anything joining
# Coder's tailnet must here. CPU seconds and peak RSS come from
# /usr/bin/time -v of the measured process.
#
#   bash bench/vs-coder-ssh.sh            # N = 5
#   NS="5 20" bash bench/vs-coder-ssh.sh  # N > 20 runs with CODERPEER_RATE_LIMITS=off
#
# Knobs (environment): NS (default "5"), DURATION (seconds, default 30), TLS
# (1 or 0, default 1), B (existing: on A's workspaces, the default; create:
# B creates its own),
# CODERPEER (default ../shared/coderpeer/coderpeer), KEEP=1 keeps the work
# directory. The machine is shared: read the ratios, not the absolute figures.
set -euo pipefail
cd "$(dirname "$0")/.."

NS="${NS:-5}"
DURATION="${DURATION:-30}"
TLS="${TLS:-1}"
[[ "$TLS" == 0 || "$TLS" == 1 ]] || { echo "TLS=$TLS: want 1 (https front) or 0 (plain http)" >&2; exit 2; }
B="${B:-existing}"
[[ "$B" == existing || "$B" == create ]] || { echo "B=$B: want existing (on A's workspaces) or create (B makes its own)" >&2; exit 2; }
WORK_PREFIX=cdeload-vs-coder-ssh
source bench/lib/vs-coder-common.sh

echo "building cdeload..." >&2
go build -o "$WORK/cdeload" ./cmd/cdeload
go build -o "$WORK/tlsfront" ./bench/tlsfront

FRONT_PID=""
front_down() {
  [[ -n "$FRONT_PID" ]] || return 0
  kill "$FRONT_PID" 2>/dev/null || true
  wait "$FRONT_PID" 2>/dev/null || true
  FRONT_PID=""
}
on_exit() { front_down; }

inns() { CODERPEER_DIR="$PEER_DIR" "$CODERPEER" exec "$@"; }

printf '%-4s %-9s %10s %12s %12s %14s %s\n' N tool "cpu s" "cpu s/strm" "peak RSS MB" "RSS MB/strm" "result" > "$WORK/table"
for N in $NS; do
  echo "== N=$N: starting a fresh coderpeer..." >&2
  peer_up "$N"
  via=()
  if [[ "$TLS" == 1 ]]; then
    # Not through inns: a backgrounded function is a subshell, and $! would
    # be that subshell, not the front (coderpeer exec execs into it).
    CODERPEER_DIR="$PEER_DIR" "$CODERPEER" exec "$WORK/tlsfront" -target "${CODER_URL#http://}" -cert "$WORK/front.crt" \
      > "$WORK/front-$N.url" 2> "$WORK/front-$N.err" &
    FRONT_PID=$!
    for _ in $(seq 100); do [[ -s "$WORK/front-$N.url" ]] && break; sleep 0.1; done
    [[ -s "$WORK/front-$N.url" ]] || { cat "$WORK/front-$N.err" >&2; exit 1; }
    via=(env "CODER_URL=$(cat "$WORK/front-$N.url")" "SSL_CERT_FILE=$WORK/front.crt")
  fi

  echo "== N=$N: A: create-workspaces, workspace-traffic --ssh ${DURATION}s..." >&2
  "$C" exp scaletest create-workspaces --count "$N" --concurrency "$N" --template "$T" \
    --parameter cpu=2 --parameter memory=2 --parameter home_disk_size=1 --no-cleanup > "$WORK/a-create-$N.out" 2>&1
  inns "${via[@]}" /usr/bin/time -v -o "$WORK/a-$N.time" "$C" exp scaletest workspace-traffic --ssh --template "$T" \
    --concurrency 0 --timeout "${DURATION}s" --bytes-per-tick 128 --tick-interval 100ms \
    --scaletest-prometheus-address 127.0.0.1:0 --scaletest-prometheus-wait 0s \
    --output "json:$WORK/a-$N.json" > "$WORK/a-$N.out" 2>&1 || echo "workspace-traffic failed (see $WORK/a-$N.out)" >&2
  a_res=$(jq -r '"pass \(.total_pass)/\(.total_runs)"' "$WORK/a-$N.json" 2>/dev/null || echo n/a)
  a_cleanup() { "$C" exp scaletest cleanup --cleanup-concurrency "$N" > "$WORK/a-cleanup-$N.out" 2>&1 || echo "cleanup failed" >&2; }

  b_args=()
  if [[ "$B" == existing ]]; then
    echo "== N=$N: B: cdeload run examples/scale.js -e EXISTING=scaletest- (on A's workspaces)..." >&2
    b_args=(-e EXISTING=scaletest-)
  else
    a_cleanup
    echo "== N=$N: B: cdeload run examples/scale.js (creates its own workspaces)..." >&2
  fi
  inns "${via[@]}" /usr/bin/time -v -o "$WORK/b-$N.time" "$WORK/cdeload" run -e "WORKSPACES=$N" -e "TRAFFIC_DURATION=${DURATION}s" \
    -e "TEMPLATE=$T" -e TRANSPORT=ssh "${b_args[@]}" examples/scale.js > "$WORK/b-$N.out" 2>&1 || echo "cdeload run failed (see $WORK/b-$N.out)" >&2
  if [[ "$B" == existing ]]; then
    b_left=$(jq -r '.count' < <(curl -fsS -H "Coder-Session-Token: $CODER_SESSION_TOKEN" "$CODER_URL/api/v2/workspaces?q=name:scaletest-") 2>/dev/null || echo "?")
    [[ "$b_left" == "$N" ]] || echo "after B: $b_left scaletest- workspaces, want A's $N untouched" >&2
    a_cleanup
  fi
  b_missed=$(sed -n 's/^ *traffic_ticks_missed\.*: \([0-9]*\).*/\1/p' "$WORK/b-$N.out")
  b_errs=$(sed -n 's/^ *traffic_errors\.*: \([0-9]*\).*/\1/p' "$WORK/b-$N.out")
  b_rtt=$(sed -n 's/^ *{ transport:ssh }\.*: \(.*\)/\1/p' "$WORK/b-$N.out" | awk '{print $3, $6}')
  b_res="errors ${b_errs:-n/a}, missed ticks ${b_missed:-n/a}, rtt ${b_rtt:-n/a}"
  front_down
  peer_down

  for side in a b; do
    name=$side-$N; tool=coder; res=$a_res
    [[ $side == b ]] && { tool=cdeload; res=$b_res; }
    c=$(cpu "$name"); r=$(rss "$name")
    printf '%-4s %-9s %10.2f %12.3f %12.1f %14.2f %s\n' "$N" "$tool" "$c" "$(echo "$c / $N" | bc -l)" \
      "$(echo "$r / 1024" | bc -l)" "$(echo "$r / 1024 / $N" | bc -l)" "$res" >> "$WORK/table"
  done
  ac=$(cpu a-$N); bc_=$(cpu b-$N); ar=$(rss a-$N); br=$(rss b-$N)
  printf '     ratio cdeload/coder: CPU %.2f×, peak RSS %.2f×\n' "$(echo "$bc_ / $ac" | bc -l)" "$(echo "$br / $ar" | bc -l)" >> "$WORK/table"
done
echo "coderd reached over: $([[ $TLS == 1 ]] && echo "https (bench/tlsfront)" || echo "plain http"); B: $([[ $B == existing ]] && echo "on A's workspaces (EXISTING=scaletest-)" || echo "creates and deletes its own workspaces")"
cat "$WORK/table"
