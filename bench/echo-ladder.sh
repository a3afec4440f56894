#!/usr/bin/env bash
# Pinned echo ladder: the generator's own ceiling in echo streams per core,
# with a lab that does not share its core. bench/echo.sh runs it after its
# own ladder (PINNED=0 skips it); it also runs alone:
#
#   bash bench/echo-ladder.sh                         # 100, 200, ... streams
#   PIN_START=200 PIN_STEP=50 PIN_MAX_STEPS=6 bash bench/echo-ladder.sh
#
# It creates two network namespaces, one for `cdeload lab` and one for the
# generator, joined by a veth pair, and pins each side to its own core with
# taskset (LAB_CPU, GEN_CPU). The lab only listens on loopback addresses,
# so the two namespaces talk over loopback addresses routed through the
# veth pair (route_localnet): the lab's namespace owns 127.77.0.2, the
# generator's 127.77.0.3; neither namespace has any other interface or
# route, so no packet can leave them. The tailnet's direct UDP path works
# as on one loopback (the STUN server sees the generator as 127.77.0.3).
#
# At each step of PIN_START, PIN_START+PIN_STEP, ... (at most PIN_MAX_STEPS
# steps, PIN_TIME_LIMIT seconds in all) it runs PIN_REPS pairs of the
# baseline (A) and cdeload (B), alternately, as bench/echo.sh does, and
# stops once both have missed ticks (or failed) at a step. A program's
# ceiling is the largest count below its first step with a missed tick or
# an error; streams per core = ceiling / the generator's cores. A row whose
# lab core was >= 90% busy is marked LAB: there the lab, not the
# generator, may have set the limit.
#
# Needs root (ip netns, veth), taskset and two CPUs; exits 3 when it cannot
# run here. It removes its namespaces (and with them the veth pair) and
# stops only the processes it started, by PID, on exit, error or signal.
set -euo pipefail
cd "$(dirname "$0")/.."

PIN_START="${PIN_START:-100}"
PIN_STEP="${PIN_STEP:-100}"
PIN_MAX_STEPS="${PIN_MAX_STEPS:-8}"
PIN_REPS="${PIN_REPS:-1}"
PIN_WORKSPACES="${PIN_WORKSPACES:-200}"
PIN_TIME_LIMIT="${PIN_TIME_LIMIT:-1800}"
DURATION="${DURATION:-15}"
BYTES="${BYTES:-128}"
INTERVAL_MS="${INTERVAL_MS:-100}"
# One core, shared with whatever else runs there, connects slower than two:
# more settle time per stream than echo.sh's 12 ms.
SETTLE_PER_STREAM_MS="${SETTLE_PER_STREAM_MS:-40}"
LAB_CPU="${LAB_CPU:-0}"
GEN_CPU="${GEN_CPU:-1}"
for v in PIN_START PIN_STEP PIN_MAX_STEPS PIN_REPS PIN_WORKSPACES PIN_TIME_LIMIT DURATION BYTES INTERVAL_MS SETTLE_PER_STREAM_MS; do
  [[ "${!v}" =~ ^[1-9][0-9]*$ ]] || { echo "$v=${!v}: want a positive integer" >&2; exit 2; }
done
for v in LAB_CPU GEN_CPU; do
  [[ "${!v}" =~ ^[0-9]+$ ]] || { echo "$v=${!v}: want one CPU number (0 .. $(( $(nproc --all) - 1 )))" >&2; exit 2; }
done
[[ "$LAB_CPU" != "$GEN_CPU" ]] || { echo "LAB_CPU and GEN_CPU are both $LAB_CPU: want two different CPUs" >&2; exit 2; }
for tool in jq curl awk pgrep /usr/bin/time; do
  command -v "$tool" >/dev/null || { echo "bench/echo-ladder.sh needs $tool" >&2; exit 2; }
done
skip() { echo "pinned ladder skipped: $*" >&2; exit 3; }
(( EUID == 0 )) || skip "needs root for ip netns and a veth pair"
command -v ip >/dev/null || skip "needs ip (iproute2)"
command -v taskset >/dev/null || skip "needs taskset (util-linux)"
for c in "$LAB_CPU" "$GEN_CPU"; do
  taskset -c "$c" true 2>/dev/null || skip "CPU $c is not usable here (LAB_CPU, GEN_CPU; this process may use: $(taskset -cp $$ | sed 's/.*: //'))"
done

WORK="$(mktemp -d "${TMPDIR:-/tmp}/cdeload-echo-ladder.XXXXXX")"
# Names unique to this run: other runs may have namespaces of their own.
NS_LAB="cdeload-lab-$$"
NS_GEN="cdeload-gen-$$"
VETH_LAB="cdlab$$"
VETH_GEN="cdgen$$"
LAB_IP=127.77.0.2
GEN_IP=127.77.0.3
NS_MADE=()

GEN_WRAP=(ip netns exec "$NS_GEN" taskset -c "$GEN_CPU")
LAB_WRAP=(ip netns exec "$NS_LAB" taskset -c "$LAB_CPU")
CORES="$LAB_CPU $GEN_CPU"
LAB_LISTEN="$LAB_IP:0"
source bench/lib/echo-common.sh

cleanup() {
  local rc=$?
  stop_started
  wait 2>/dev/null || true
  # Deleting a namespace deletes the veth end inside it, and so the pair.
  for ns in "${NS_MADE[@]}"; do ip netns del "$ns" 2>/dev/null || echo "could not delete network namespace $ns" >&2; done
  if [[ "${KEEP:-0}" == 1 || ( $rc -ne 0 && $rc -ne 3 ) ]]; then
    echo "work directory kept: $WORK" >&2
  else
    rm -rf "$WORK"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# in_ns NS CMD...: runs CMD in network namespace NS.
in_ns() { local ns="$1"; shift; ip netns exec "$ns" "$@"; }

# make_namespaces: the two namespaces, the veth pair between them, and the
# loopback addresses routed over it.
make_namespaces() {
  ip netns add "$NS_LAB" && NS_MADE+=("$NS_LAB")
  ip netns add "$NS_GEN" && NS_MADE+=("$NS_GEN")
  ip link add "$VETH_LAB" type veth peer name "$VETH_GEN"
  ip link set "$VETH_LAB" netns "$NS_LAB"
  ip link set "$VETH_GEN" netns "$NS_GEN"
  local ns dev own peer
  for ns in "$NS_LAB" "$NS_GEN"; do
    if [[ "$ns" == "$NS_LAB" ]]; then dev=$VETH_LAB own=$LAB_IP peer=$GEN_IP; else dev=$VETH_GEN own=$GEN_IP peer=$LAB_IP; fi
    in_ns "$ns" ip link set lo up
    # Loopback-range packets may cross the veth (otherwise dropped as martians).
    in_ns "$ns" sysctl -qw net.ipv4.conf.all.route_localnet=1 "net.ipv4.conf.$dev.route_localnet=1"
    in_ns "$ns" ip addr add "$own/32" dev "$dev"
    in_ns "$ns" ip link set "$dev" up
    # 127.0.0.0/8 is all local by default: keep 127.0.0.1 and this side's
    # own address local, and reach the other side's over the veth.
    in_ns "$ns" ip route del local 127.0.0.0/8 dev lo table local
    in_ns "$ns" ip route replace local 127.0.0.1 dev lo table local
    in_ns "$ns" ip route add "$peer/32" dev "$dev" src "$own"
  done
}

# A run killed with SIGKILL could not delete its namespaces: delete those
# of earlier runs of this script whose process is gone.
for ns in $(ip netns list | awk '{print $1}' | grep -E '^cdeload-(lab|gen)-[0-9]+$' || true); do
  if ! kill -0 "${ns##*-}" 2>/dev/null; then
    echo "deleting network namespace $ns of an earlier run (process ${ns##*-} is gone)" >&2
    ip netns del "$ns" || true
  fi
done

echo "building cdeload and the baseline ..." >&2
go build -o "$WORK/cdeload" ./cmd/cdeload
go build -o "$WORK/baseline" ./bench/echo/baseline

[[ "${PROFILE:-0}" == 1 || "${TRACE:-0}" == 1 || "${ALLOCS:-0}" == 1 ]] && KEEP=1
make_namespaces
echo "namespaces $NS_LAB (lab, $LAB_IP, CPU $LAB_CPU) and $NS_GEN (generator, $GEN_IP, CPU $GEN_CPU)" >&2
start_lab "$PIN_WORKSPACES"

t_start=$SECONDS
a_ok=1 b_ok=1
n=$PIN_START
for step in $(seq "$PIN_MAX_STEPS"); do
  if (( SECONDS - t_start > PIN_TIME_LIMIT )); then
    echo "PIN_TIME_LIMIT ($PIN_TIME_LIMIT s) reached: ladder ends before $n streams" >&2
    break
  fi
  for rep in $(seq "$PIN_REPS"); do
    echo "pinned: streams=$n pair $rep/$PIN_REPS (step $step/$PIN_MAX_STEPS)" >&2
    run_one baseline "$n" "$rep"
    run_one cdeload "$n" "$rep"
  done
  ok() { jq -s --arg k "$1" --argjson n "$n" 'map(select(.kind == $k and .streams == $n)) | length > 0 and all(.[]; .ticksMissed == 0 and .errors == 0 and .exit == 0)' "$WORK"/*.row.json; }
  [[ "$(ok baseline)" == true ]] || a_ok=0
  [[ "$(ok cdeload)" == true ]] || b_ok=0
  (( a_ok || b_ok )) || break
  n=$((n + PIN_STEP))
done

ncores=1
jq -s -r --arg ws "$nws" --arg dur "$DURATION" --arg bytes "$BYTES" --arg iv "$INTERVAL_MS" \
  --arg labcpu "$LAB_CPU" --arg gencpu "$GEN_CPU" --argjson ncores "$ncores" '
  def f(x): if x == null then "-" else (x * 100 | round / 100 | tostring) end;
  def pct(x): if x == null then "-" else (x * 100 | round | tostring) + "%" end;
  def pad(w): tostring as $s | ([range(0; w - ($s | length))] | map(" ") | join("")) + $s;
  def ok: .ticksMissed == 0 and .errors == 0 and .exit == 0;
  # ceiling: the largest count below the first count with a failed run.
  def ceiling(k): (map(select(.kind == k)) | group_by(.streams) | map({n: .[0].streams, ok: all(.[]; ok)})) as $steps
    | ([ $steps[] | select(.ok | not) | .n ] | min) as $fail
    | [ $steps[] | select(.ok and ($fail == null or .n < $fail)) | .n ] | max;
  . as $rows |
  "pinned ladder: lab on CPU \($labcpu), generator on CPU \($gencpu), each in its own network namespace; \($ws) lab workspaces;",
  "echo streams: \($bytes) B every \($iv) ms for \($dur) s; A = plain Go baseline, B = cdeload, run alternately at each step.",
  "late = streams whose connection was not up by their start slot (the connection storm ran into the echo phase);",
  "gen core / lab core = busy share of that CPU (every process on it); LAB = lab core >= 90% busy (the lab may have set the limit).",
  "",
  ([ "streams", "pair", "prog", "fps", "missed", "err", "late", "gen cores", "ms/1k", "lab ms/1k", "gen core", "lab core", "LAB", "p50", "p95" ] | map(pad(9)) | join(" ")),
  ($rows | sort_by(.streams, .rep, .kind)[] |
    [ .streams, .rep, (if .kind == "baseline" then "A" else "B" end), f(.fps), .ticksMissed // "?", .errors // "?", .lateStarts // "?",
      f(.genCores), f(.genMsPer1k), f(.labMsPer1k), pct(.coreBusy[$gencpu]), pct(.coreBusy[$labcpu]),
      (if (.coreBusy[$labcpu] // 0) >= 0.9 then "LAB" else "no" end), f(.rtt.p50), f(.rtt.p95) ] | map(pad(9)) | join(" ")),
  "",
  (ceiling("baseline") as $a | ceiling("cdeload") as $b |
   def ceil(c): if c then "\(c) streams = \(c / $ncores) streams per core" else "below the first step" end;
   "ceiling (largest step with 0 missed ticks and 0 errors): A \(ceil($a)); B \(ceil($b))" +
   (if $a and $b then "; B/A \(f($b / $a))" else "" end)),
  ([ "baseline", "cdeload" ][] as $k |
    ([ $rows[] | select(.kind == $k and ((ok) | not)) | .streams ] | min) as $fail |
    ([ $rows[] | select(.kind == $k and .streams == $fail) | .lateStarts // 0 ] | add // 0) as $late |
    if $fail != null and $late > 0 then
      "note: \(if $k == "baseline" then "A" else "B" end) had \($late) late starts at \($fail) streams: its connection storm ran into the echo phase (raise SETTLE_PER_STREAM_MS)." else empty end),
  (if ([ $rows[] | select((.coreBusy[$labcpu] // 0) >= 0.9) ] | length) > 0 then
    "note: the lab core was >= 90% busy in rows marked LAB: a ceiling there may be the lab'"'"'s, not the generator'"'"'s." else empty end)
' "$WORK"/*.row.json
