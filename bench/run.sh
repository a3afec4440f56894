#!/usr/bin/env bash
# Runs every benchmark script under bench/ in turn and prints their figures.
# Each script compares against a baseline measured in the same run, since
# the machines are shared and absolute numbers drift.
set -euo pipefail
cd "$(dirname "$0")"
for s in engine.sh k6http.sh output.sh workspaces.sh echo.sh kube.sh; do
	if [ -f "$s" ]; then
		echo "=== bench/$s"
		bash "$s"
	fi
done
