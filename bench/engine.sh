#!/usr/bin/env bash
# Engine benchmarks: the JS runtime (engine/js) and the executors
# (engine/executor). Ratios (x_*) compare against a baseline measured in the
# same process, so they are comparable across machines; absolute ns/op are
# for this machine only.
#
#   bash bench/engine.sh              # default benchtime
#   BENCHTIME=2s bash bench/engine.sh
set -euo pipefail
cd "$(dirname "$0")/.."
BENCHTIME="${BENCHTIME:-1s}"
pkgs=(./engine/executor/)
if go build ./engine/js/ 2>/dev/null; then
  pkgs=(./engine/js/ "${pkgs[@]}")
else
  echo "engine/js does not build; benchmarking the executors only" >&2
fi
out="$(go test -run '^$' -bench . -benchtime "$BENCHTIME" -benchmem "${pkgs[@]}")"
echo "$out"
echo
echo "== summary (custom metrics) =="
echo "$out" | awk '/^Benchmark/ {
  line = $1
  for (i = 2; i < NF; i++) if ($(i+1) ~ /^(ns\/iter|x_[a-z_]+|share_run|dropped|s_wall|ns\/op)$/) line = line "  " $(i+1) "=" $i
  print line
}'
