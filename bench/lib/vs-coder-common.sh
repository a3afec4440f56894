# vs-coder-common.sh: what bench/vs-coder.sh and bench/vs-coder-ssh.sh share,
# sourced after they set NS, DURATION and the work directory's name prefix
# (WORK_PREFIX). It checks the environment, makes $WORK, and defines
# peer_up, peer_down and the /usr/bin/time readers (tv, cpu, rss). A script that
# needs more on exit defines on_exit before sourcing this file.

CODERPEER="${CODERPEER:-$PWD/../shared/coderpeer/coderpeer}"
[[ -x "$CODERPEER" ]] || { echo "coderpeer script not found: set CODERPEER" >&2; exit 2; }
[[ -x /usr/bin/time ]] || { echo "/usr/bin/time is missing (apt-get install time)" >&2; exit 2; }
for n in $NS; do [[ "$n" =~ ^[1-9][0-9]*$ ]] || { echo "NS: $n is not a positive integer" >&2; exit 2; }; done

WORK="$(mktemp -d "${TMPDIR:-/tmp}/$WORK_PREFIX.XXXXXX")"
PEER_DIR=""
# peer_up N: a fresh coderpeer for N workspaces (rate limits off above 20);
# sets its environment (CODER_URL, ...), PEER_DIR, C (its coder binary) and
# T (its template).
peer_up() {
  local extra=()
  [[ "$1" -gt 20 ]] && extra=(CODERPEER_RATE_LIMITS=off)
  env "${extra[@]}" CODERPEER_DIR= "$CODERPEER" up > "$WORK/peer-$1.env" 2> "$WORK/peer-$1.err" || { cat "$WORK/peer-$1.err" >&2; exit 1; }
  eval "$(cat "$WORK/peer-$1.env")"
  PEER_DIR="$CODERPEER_DIR"
  C="$CODERPEER_CODER"
  T="$CODERPEER_TEMPLATE"
}
peer_down() {
  [[ -n "$PEER_DIR" ]] || return 0
  CODERPEER_DIR="$PEER_DIR" "$CODERPEER" down >/dev/null 2>&1 || true
  PEER_DIR=""
}
cleanup() {
  if declare -F on_exit >/dev/null; then on_exit; fi
  peer_down
  [[ "${KEEP:-}" == 1 ]] && echo "work directory: $WORK" >&2 || rm -rf "$WORK"
}
trap cleanup EXIT

# tv NAME FIELD: a field of $WORK/NAME.time (/usr/bin/time -v's report).
tv() { sed -n "s/^\s*$2: //p" "$WORK/$1.time"; }
cpu() { echo "$(tv "$1" 'User time (seconds)') + $(tv "$1" 'System time (seconds)')" | bc; }
rss() { tv "$1" 'Maximum resident set size (kbytes)'; }
