#!/usr/bin/env bash
# Installs Debian's chromium for the web dashboard's browser tests
# (engine/output/webdashboard): they start it headless themselves, on a
# fresh profile, and load only pages served on 127.0.0.1 or local files.
# Idempotent: does nothing when chromium is already on PATH. Needs root (or
# sudo) on Debian or Ubuntu.
set -euo pipefail

if command -v chromium > /dev/null 2>&1; then
	echo "chromium already installed: $(chromium --version 2>/dev/null | head -n1)"
	exit 0
fi

SUDO=""
if [ "$(id -u)" != "0" ]; then
	SUDO="sudo"
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends chromium fonts-dejavu-core

chromium --version 2>/dev/null | head -n1
