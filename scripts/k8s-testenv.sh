#!/usr/bin/env bash
# k8s-testenv.sh - cdeload's copy of ../shared/tools/k8s-testenv.sh (prebuilt binaries from ../shared/k8s).
# A REAL Kubernetes API server (etcd + kube-apiserver) on loopback for Go tests,
# built from source through the Go module proxy only (no Docker, no kind, no downloads of
# prebuilt binaries). Optional extras: kube-controller-manager, kube-scheduler (real
# Deployments/ReplicaSets/namespace deletion/scheduling), kwok (fake kubelet: Nodes Ready,
# Pods Running), kubectl matching the server version.
#
#   k8s-testenv.sh build   build the binaries into $K8S_BIN_DIR (skipped when already there)
#   k8s-testenv.sh start   start the processes on 127.0.0.1, wait for /readyz, write kubeconfig+env
#   k8s-testenv.sh smoke   create a namespace and a Pod with curl (and kubectl, if built) and list it
#   k8s-testenv.sh stop    stop what `start` started (by the PIDs it recorded)
#   k8s-testenv.sh all     build + start + smoke
#
# After `start`:  source "$K8S_STATE_DIR/env"   # exports KUBECONFIG, K8S_APISERVER, K8S_ADMIN_TOKEN, ...
#
# Environment knobs (defaults in brackets):
#   K8S_COMPONENTS   ["etcd kube-apiserver"]; add any of: kube-controller-manager kube-scheduler kwok kubectl
#                    ("full" = all six)
#   K8S_VERSION      [v1.37.2]  k8s.io/kubernetes release; staging modules k8s.io/* use v0.37.2
#   ETCD_VERSION     [v3.7.3]   go.etcd.io/etcd/server/v3
#   KWOK_VERSION     [v0.8.0]   sigs.k8s.io/kwok
#   K8S_BIN_DIR      [${XDG_CACHE_HOME:-$HOME/.cache}/k8s-testenv/$K8S_VERSION] (binaries; keep it cached)
#   K8S_PREBUILT_DIR [../../shared/k8s/$K8S_VERSION from this folder: the shared folder CI copies beside
#                    the checkout] prebuilt etcd, kube-apiserver and
#                    kube-controller-manager (xz, SHA256SUMS, VERSIONS): unpacked instead of built
#   K8S_STATE_DIR    [/tmp/k8s-testenv]  (etcd data, certs, logs, pids; wiped by start)
#   K8S_PORT_BASE    [16000]  etcd client=+379 peer=+380 metrics=+381, apiserver=+443,
#                             controller-manager=+257, scheduler=+259, kwok=+247
#   K8S_KWOK_NODES   [1]  fake nodes named kwok-node-N (label type=kwok), only with kwok
set -euo pipefail

K8S_VERSION=${K8S_VERSION:-v1.37.2}
ETCD_VERSION=${ETCD_VERSION:-v3.7.3}
KWOK_VERSION=${KWOK_VERSION:-v0.8.0}
COMPONENTS=${K8S_COMPONENTS:-"etcd kube-apiserver"}
[ "$COMPONENTS" = full ] && COMPONENTS="etcd kube-apiserver kube-controller-manager kube-scheduler kwok kubectl"
BIN_DIR=${K8S_BIN_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/k8s-testenv/$K8S_VERSION}
STATE_DIR=${K8S_STATE_DIR:-/tmp/k8s-testenv}
PB=${K8S_PORT_BASE:-16000}
ETCD_PORT=$((PB + 379)) ETCD_PEER_PORT=$((PB + 380)) ETCD_METRICS_PORT=$((PB + 381))
APISERVER_PORT=$((PB + 443)) KCM_PORT=$((PB + 257)) SCHED_PORT=$((PB + 259)) KWOK_PORT=$((PB + 247))
KWOK_NODES=${K8S_KWOK_NODES:-1}
ADMIN_TOKEN=${K8S_ADMIN_TOKEN:-testenv-admin-token}
USER_TOKEN=${K8S_USER_TOKEN:-testenv-user-token}   # user "tester", no groups: for RBAC tests
export GOTOOLCHAIN=local GOFLAGS="${GOFLAGS:-} -buildvcs=false"

has() { case " $COMPONENTS " in *" $1 "*) return 0 ;; esac; return 1; }
log() { echo "[k8s-testenv] $*" >&2; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN{printf "%.1f", b-a}'; }

build() {
	local stamp="$K8S_VERSION etcd=$ETCD_VERSION kwok=$KWOK_VERSION go=$(go env GOVERSION) :: $COMPONENTS"
	if [ -f "$BIN_DIR/.stamp" ] && [ "$(cat "$BIN_DIR/.stamp")" = "$stamp" ]; then
		log "binaries up to date in $BIN_DIR"; return 0
	fi
	local t0; t0=$(now)
	mkdir -p "$BIN_DIR"
	unpack_prebuilt
	local all=$COMPONENTS rest=""
	for c in $COMPONENTS; do [ -x "$BIN_DIR/$c" ] && [ -f "$BIN_DIR/.prebuilt-$c" ] || rest+=" $c"; done
	COMPONENTS=${rest# }
	if [ -z "$COMPONENTS" ]; then
		COMPONENTS=$all; echo "$stamp" >"$BIN_DIR/.stamp"
		log "prebuilt binaries unpacked in $(since "$t0") s: $COMPONENTS"; return 0
	fi
	local src="$BIN_DIR/src"
	rm -rf "$src"; mkdir -p "$src/cmd/etcd" "$BIN_DIR"
	local staging="v0.${K8S_VERSION#v1.}" # v1.37.2 -> v0.37.2

	# A tools module: k8s.io/kubernetes cannot be required as-is (it requires its staging
	# modules at v0.0.0 and replaces them with ./staging/src/... paths that are not in the
	# module zip), so map each of them to its published version.
	local kmod
	kmod=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p')
	{
		printf 'module local.test/k8stestenv\n\ngo 1.26.0\n\nreplace (\n'
		awk '/^[[:space:]]+k8s\.io\/[a-z0-9-]+ v0\.0\.0$/ {printf "\t%s => %s %s\n", $1, $1, V}' V="$staging" "$kmod"
		printf ')\n'
	} >"$src/go.mod"
	cat >"$src/cmd/etcd/main.go" <<-'EOF'
	// Command etcd is the upstream etcd server (go.etcd.io/etcd/server/v3/etcdmain).
	package main

	import (
		"os"

		"go.etcd.io/etcd/server/v3/etcdmain"
	)

	func main() { etcdmain.Main(os.Args) }
	EOF

	local pkgs=() gets=()
	for c in kube-apiserver kube-controller-manager kube-scheduler kubectl; do
		has "$c" && pkgs+=("k8s.io/kubernetes/cmd/$c") && gets+=("k8s.io/kubernetes/cmd/$c@$K8S_VERSION")
	done
	has etcd && pkgs+=(./cmd/etcd) && gets+=("go.etcd.io/etcd/server/v3/etcdmain@$ETCD_VERSION")
	if [ ${#pkgs[@]} -gt 0 ]; then
		(cd "$src" && go get "${gets[@]}")
		local minor=${K8S_VERSION#v1.}; minor=${minor%%.*}
		local ldf="-s -w"
		for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
			ldf+=" -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
		done
		log "compiling ${pkgs[*]} (about 10 minutes on 2 cores with a cold Go build cache)"
		(cd "$src" && go build -trimpath -ldflags "$ldf" -o "$BIN_DIR/" "${pkgs[@]}")
	fi
	if has kwok; then
		# Separate module: kwok pins its own k8s.io/* versions.
		GOBIN="$BIN_DIR" go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
		local kdir stages="$BIN_DIR/kwok-stages.yaml"
		kdir=$(go mod download -json "sigs.k8s.io/kwok@$KWOK_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')
		: >"$stages"
		for f in node/fast/node-initialize node/heartbeat/node-heartbeat pod/fast/pod-ready pod/fast/pod-complete pod/fast/pod-delete; do
			echo --- >>"$stages"; cat "$kdir/kustomize/stage/$f.yaml" >>"$stages"
		done
	fi
	COMPONENTS=$all
	echo "$stamp" >"$BIN_DIR/.stamp"
	log "built in $(since "$t0") s: $(cd "$BIN_DIR" && ls -1 | grep -v -e src -e yaml | tr '\n' ' ')"
}

# unpack_prebuilt: binaries built by this recipe and kept, compressed, in ../shared/k8s/$K8S_VERSION/ beside
# the checkout (or $K8S_PREBUILT_DIR): used when their VERSIONS line matches, each checked against
# SHA256SUMS. Components without a prebuilt binary are built as usual.
unpack_prebuilt() {
	local pre=${K8S_PREBUILT_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/shared/k8s/$K8S_VERSION}
	[ -f "$pre/VERSIONS" ] || return 0
	[ "$(cat "$pre/VERSIONS")" = "k8s=$K8S_VERSION etcd=$ETCD_VERSION" ] || { log "prebuilt binaries in $pre are for $(cat "$pre/VERSIONS"); building"; return 0; }
	local c want got
	for c in $COMPONENTS; do
		[ -f "$pre/$c.xz" ] || continue
		[ -x "$BIN_DIR/$c" ] && [ -f "$BIN_DIR/.prebuilt-$c" ] && continue
		want=$(awk -v n="$c" '$2 == n {print $1}' "$pre/SHA256SUMS")
		xz -dc "$pre/$c.xz" >"$BIN_DIR/$c.tmp"
		got=$(sha256sum "$BIN_DIR/$c.tmp" | cut -d' ' -f1)
		if [ -n "$want" ] && [ "$got" = "$want" ]; then
			chmod +x "$BIN_DIR/$c.tmp"; mv "$BIN_DIR/$c.tmp" "$BIN_DIR/$c"; : >"$BIN_DIR/.prebuilt-$c"
		else
			rm -f "$BIN_DIR/$c.tmp"; log "prebuilt $c does not match SHA256SUMS; building it"
		fi
	done
}

# wait_for URL SECONDS [curl args...]: until URL answers exactly "ok"
wait_for() {
	local url=$1 limit=$2; shift 2
	local end=$(($(date +%s) + limit))
	until [ "$(curl -sk -m 2 "$@" "$url" 2>/dev/null)" = ok ]; do
		[ "$(date +%s)" -lt "$end" ] || { log "timeout waiting for $url"; return 1; }
		sleep 0.1
	done
}

spawn() { # spawn NAME CMD... : background process, log and pid in $STATE_DIR
	local name=$1; shift
	"$@" >"$STATE_DIR/$name.log" 2>&1 &
	echo $! >"$STATE_DIR/$name.pid"
}

check_alive() { # fail early with the log tail if a process died
	local name=$1 pid
	pid=$(cat "$STATE_DIR/$name.pid")
	kill -0 "$pid" 2>/dev/null || { log "$name exited; last log lines:"; tail -20 "$STATE_DIR/$name.log" >&2; return 1; }
}

start() {
	[ -f "$STATE_DIR/env" ] && stop || true
	rm -rf "$STATE_DIR"; mkdir -p "$STATE_DIR/certs"
	local S=$STATE_DIR B=$BIN_DIR t0
	openssl genrsa -out "$S/sa.key" 2048 2>/dev/null
	openssl rsa -in "$S/sa.key" -pubout -out "$S/sa.pub" 2>/dev/null
	printf '%s,admin,admin,"system:masters"\n%s,tester,tester\n' "$ADMIN_TOKEN" "$USER_TOKEN" >"$S/tokens.csv"

	t0=$(now)
	spawn etcd "$B/etcd" --name testenv --data-dir "$S/etcd" \
		--listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
		--listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
		--initial-cluster "testenv=http://127.0.0.1:$ETCD_PEER_PORT" --listen-metrics-urls "http://127.0.0.1:$ETCD_METRICS_PORT" \
		--unsafe-no-fsync --log-level warn

	local extra=()
	# Without kube-controller-manager nobody creates each namespace's "default"
	# ServiceAccount, and the ServiceAccount admission plugin would reject every Pod
	# (envtest does the same).
	has kube-controller-manager || extra+=(--disable-admission-plugins=ServiceAccount)
	spawn kube-apiserver "$B/kube-apiserver" --etcd-servers "http://127.0.0.1:$ETCD_PORT" \
		--bind-address 127.0.0.1 --secure-port "$APISERVER_PORT" --cert-dir "$S/certs" \
		--advertise-address 127.0.0.1 --endpoint-reconciler-type none \
		--service-cluster-ip-range 10.0.0.0/24 \
		--service-account-issuer https://kubernetes.default.svc \
		--service-account-key-file "$S/sa.pub" --service-account-signing-key-file "$S/sa.key" \
		--token-auth-file "$S/tokens.csv" --authorization-mode RBAC "${extra[@]}"
	wait_for "https://127.0.0.1:$APISERVER_PORT/readyz" 90 -H "Authorization: Bearer $ADMIN_TOKEN" ||
		{ check_alive etcd; check_alive kube-apiserver; return 1; }
	log "kube-apiserver /readyz ok $(since "$t0") s after start"

	cat >"$S/kubeconfig" <<-EOF
	apiVersion: v1
	kind: Config
	clusters:
	- name: testenv
	  cluster:
	    server: https://127.0.0.1:$APISERVER_PORT
	    certificate-authority: $S/certs/apiserver.crt
	users:
	- name: admin
	  user: {token: $ADMIN_TOKEN}
	- name: tester
	  user: {token: $USER_TOKEN}
	contexts:
	- name: testenv
	  context: {cluster: testenv, user: admin}
	- name: tester
	  context: {cluster: testenv, user: tester}
	current-context: testenv
	EOF

	if has kube-controller-manager; then
		spawn kube-controller-manager "$B/kube-controller-manager" --kubeconfig "$S/kubeconfig" \
			--bind-address 127.0.0.1 --secure-port "$KCM_PORT" --leader-elect=false \
			--service-account-private-key-file "$S/sa.key" --root-ca-file "$S/certs/apiserver.crt" \
			--use-service-account-credentials=false \
			--controllers '*,-kube-apiserver-serving-clustertrustbundle-publisher-controller'
		wait_for "https://127.0.0.1:$KCM_PORT/healthz" 60 || { check_alive kube-controller-manager; return 1; }
	fi
	if has kube-scheduler; then
		spawn kube-scheduler "$B/kube-scheduler" --kubeconfig "$S/kubeconfig" \
			--bind-address 127.0.0.1 --secure-port "$SCHED_PORT" --leader-elect=false
		wait_for "https://127.0.0.1:$SCHED_PORT/healthz" 60 || { check_alive kube-scheduler; return 1; }
	fi
	if has kwok; then
		spawn kwok "$B/kwok" --kubeconfig "$S/kubeconfig" -c "$B/kwok-stages.yaml" \
			--manage-nodes-with-label-selector type=kwok --node-ip 127.0.0.1 \
			--server-address "127.0.0.1:$KWOK_PORT"
		local i
		for i in $(seq 0 $((KWOK_NODES - 1))); do
			curl -sfk -o /dev/null -H "Authorization: Bearer $ADMIN_TOKEN" -H 'Content-Type: application/json' \
				-X POST "https://127.0.0.1:$APISERVER_PORT/api/v1/nodes" \
				-d "{\"apiVersion\":\"v1\",\"kind\":\"Node\",\"metadata\":{\"name\":\"kwok-node-$i\",\"labels\":{\"type\":\"kwok\",\"kubernetes.io/hostname\":\"kwok-node-$i\"}}}"
		done
		local end=$(($(date +%s) + 60))
		until curl -sk -H "Authorization: Bearer $ADMIN_TOKEN" "https://127.0.0.1:$APISERVER_PORT/api/v1/nodes/kwok-node-0" |
			tr -d ' \n' | grep -q '"type":"Ready","status":"True"'; do
			check_alive kwok; [ "$(date +%s)" -lt "$end" ] || { log "kwok node not Ready"; return 1; }; sleep 0.2
		done
	fi

	cat >"$S/env" <<-EOF
	export KUBECONFIG=$S/kubeconfig
	export K8S_APISERVER=https://127.0.0.1:$APISERVER_PORT
	export K8S_CA_FILE=$S/certs/apiserver.crt
	export K8S_ADMIN_TOKEN=$ADMIN_TOKEN
	export K8S_USER_TOKEN=$USER_TOKEN
	export K8S_COMPONENTS="$COMPONENTS"
	export PATH=$B:\$PATH
	EOF
	log "ready in $(since "$t0") s: $COMPONENTS; source $S/env"
}

stop() {
	local S=$STATE_DIR name pid i
	# apiserver before etcd: an apiserver whose etcd is gone hangs in shutdown.
	for name in kwok kube-scheduler kube-controller-manager kube-apiserver etcd; do
		[ -f "$S/$name.pid" ] || continue
		pid=$(cat "$S/$name.pid")
		if kill "$pid" 2>/dev/null; then
			for i in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
			kill -0 "$pid" 2>/dev/null && { log "$name ($pid) still up after 10 s: SIGKILL"; kill -9 "$pid" 2>/dev/null || true; }
		fi
		rm -f "$S/$name.pid"
	done
	rm -f "$S/env"
	log "stopped"
}

smoke() {
	local api="https://127.0.0.1:$APISERVER_PORT" auth=(-H "Authorization: Bearer $ADMIN_TOKEN") ns="smoke-$$"
	local j=(-H 'Content-Type: application/json')
	curl -sfk "${auth[@]}" "${j[@]}" -X POST "$api/api/v1/namespaces" -d "{\"metadata\":{\"name\":\"$ns\"}}" >/dev/null
	curl -sfk "${auth[@]}" "${j[@]}" -X POST "$api/api/v1/namespaces/$ns/pods" \
		-d '{"metadata":{"name":"p1"},"spec":{"containers":[{"name":"c","image":"example.invalid/app:1"}]}}' >/dev/null
	local n
	n=$(curl -sfk "${auth[@]}" "$api/api/v1/namespaces/$ns/pods" | grep -c '"name": "p1"' || true)
	[ "$n" -ge 1 ] || { log "smoke: pod not listed"; return 1; }
	log "smoke: created and listed pod $ns/p1"
	if [ -x "$BIN_DIR/kubectl" ]; then
		sleep 2; KUBECONFIG="$STATE_DIR/kubeconfig" "$BIN_DIR/kubectl" get pods -n "$ns" -o wide
	fi
}

case "${1:-all}" in
build) build ;;
start) start ;;
stop) stop ;;
smoke) smoke ;;
all) build && start && smoke ;;
*) echo "usage: $0 build|start|smoke|stop|all" >&2; exit 2 ;;
esac
