#!/usr/bin/env bash
# k6 modules benchmarks (issue 12): in one process each,
#  - k6/http GETs from 2×GOMAXPROCS VUs against a loopback Go server, as a
#    ratio of a plain Go net/http client at the same concurrency against the
#    same server (the two alternate in rounds; target ≥ 0.5);
#  - heap per VU with k6/http imported at 1000 VUs (target ≤ 1 MB), next to
#    a script importing nothing;
#  - what a 10 MB SharedArray costs in total at 100 VUs (target ≤ 12 MB).
#
#   bash bench/k6http.sh
#   REQUESTS=60000 bash bench/k6http.sh
set -euo pipefail
cd "$(dirname "$0")/.."
REQUESTS="${REQUESTS:-30000}"
out="$(go test -run '^$' -bench 'BenchmarkHTTPGet$' -benchtime "${REQUESTS}x" ./engine/js/
go test -run '^$' -bench 'BenchmarkHTTPVUMemory$|BenchmarkSharedArrayMemory$' -benchtime 1x ./engine/js/)"
echo "$out" | grep '^Benchmark'
echo
echo "$out" | awk '
/^BenchmarkHTTPGet/ { for (i = 2; i < NF; i++) if ($(i+1) == "x-plain-go") r = $i
  printf "k6/http req/s over plain net/http: %.2f (target >= 0.50) %s\n", r, (r >= 0.5 ? "ok" : "BELOW TARGET") }
/^BenchmarkHTTPVUMemory/ { for (i = 2; i < NF; i++) if ($(i+1) == "bytes/VU-k6http") m = $i
  printf "heap per VU with k6/http at 1000 VUs: %.0f KB (target <= 1024 KB) %s\n", m / 1024, (m <= 1048576 ? "ok" : "ABOVE TARGET") }
/^BenchmarkSharedArrayMemory/ { for (i = 2; i < NF; i++) if ($(i+1) == "MB-sharedarray") s = $i
  printf "10 MB SharedArray at 100 VUs: %.1f MB in total (target <= 12 MB) %s\n", s, (s <= 12 ? "ok" : "ABOVE TARGET") }'
