#!/usr/bin/env bash
# Kubernetes benchmark: API requests cdeload sends per workspace (counted at
# its client and from the API server's apiserver_request_total, before and
# after N create/ready/delete lifecycles through the Pod provider with the
# lab kubelet), and the shared informer's heap and steady-state CPU for N
# pods. Against $CDELOAD_TEST_KUBECONFIG, else an API server this script
# starts with scripts/k8s-testenv.sh (own state directory and ports) and stops.
#
#   bash bench/kube.sh
#   BENCH_N=200 bash bench/kube.sh
#
# Targets: ≤ 3 requests per workspace besides the shared watch, at 1000
# workspaces; ≤ 20 MB and ≤ 5% of one core for 1000 pods.
set -euo pipefail
cd "$(dirname "$0")/.."
export BENCH_N="${BENCH_N:-1000}"
[[ "$BENCH_N" =~ ^[1-9][0-9]*$ ]] || { echo "BENCH_N=$BENCH_N: want a positive integer" >&2; exit 2; }
if [[ -z "${CDELOAD_TEST_KUBECONFIG:-}" ]]; then
  export K8S_COMPONENTS="etcd kube-apiserver kube-controller-manager"
  export K8S_STATE_DIR="${TMPDIR:-/tmp}/cdeload-bench-k8s" K8S_PORT_BASE=17000
  bash scripts/k8s-testenv.sh build
  bash scripts/k8s-testenv.sh start
  trap 'bash scripts/k8s-testenv.sh stop' EXIT
  export CDELOAD_TEST_KUBECONFIG="$K8S_STATE_DIR/kubeconfig"
fi
go test -run '^$' -bench . -benchtime 1x -timeout 30m ./bench/kube
