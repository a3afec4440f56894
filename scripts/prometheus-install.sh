#!/usr/bin/env bash
# Installs the Prometheus server binary used by the prometheus-rw output's
# integration test (engine/output/prometheusrw). Idempotent: does nothing
# when /usr/bin/prometheus already exists. Needs root (or sudo) on Debian or
# Ubuntu. The package's service is not started here: the test starts its own
# Prometheus on a free loopback port.
set -euo pipefail

if [ -x /usr/bin/prometheus ]; then
	echo "prometheus already installed: $(/usr/bin/prometheus --version 2>&1 | head -n1)"
	exit 0
fi

SUDO=""
if [ "$(id -u)" != "0" ]; then
	SUDO="sudo"
fi

export DEBIAN_FRONTEND=noninteractive
# On hosts with systemd the package may start its own service on :9090; the
# test does not use it.
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends prometheus

/usr/bin/prometheus --version 2>&1 | head -n1
