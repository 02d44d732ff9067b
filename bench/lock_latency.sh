#!/usr/bin/env bash
# Measures the etcd import lock's acquire+release latency (bin/bfill-lockbench)
# against a single local etcd and against a 3-member loopback cluster. Every
# etcd runs from a temporary data dir and is stopped, and the dirs removed,
# on every exit path.
#
# usage: bench/lock_latency.sh [ITERATIONS [BENCH-ARGS...]]   (default 1000)
#   BENCH-ARGS go to bfill-lockbench (e.g. --threads 4); BFILL_LOCKBENCH
#   picks another build of it (make tsan runs its TSan build this way).
set -euo pipefail

iterations=${1:-1000}
shift || true
extra=("$@")
bench=${BFILL_LOCKBENCH:-bin/bfill-lockbench}
work=$(mktemp -d "${TMPDIR:-/tmp}/bfill-lockbench-XXXXXX")
pids=()

cleanup() {
	for pid in "${pids[@]}"; do
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	rm -rf "$work"
}
trap cleanup EXIT INT TERM

command -v etcd >/dev/null || { echo "lock_latency.sh: etcd is not installed" >&2; exit 2; }
[ -x "$bench" ] || { echo "lock_latency.sh: build $bench first (make $bench)" >&2; exit 2; }

# A random high port nothing answers on.
free_port() {
	local port
	while :; do
		port=$((20000 + RANDOM % 40000))
		(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || { echo "$port"; return; }
	done
}

# start_cluster N: starts members m0..m(N-1); sets $endpoints.
start_cluster() {
	local n=$1 tag=$2 i cluster="" cports=() pports=()
	for ((i = 0; i < n; i++)); do
		cports[i]=$(free_port)
		pports[i]=$(free_port)
		cluster+="${cluster:+,}m$i=http://127.0.0.1:${pports[i]}"
	done
	endpoints=""
	for ((i = 0; i < n; i++)); do
		local url="http://127.0.0.1:${cports[i]}" peer="http://127.0.0.1:${pports[i]}"
		etcd --name "m$i" --data-dir "$work/$tag-m$i" \
			--listen-client-urls "$url" --advertise-client-urls "$url" \
			--listen-peer-urls "$peer" --initial-advertise-peer-urls "$peer" \
			--initial-cluster "$cluster" --initial-cluster-token "$tag-$$" \
			--initial-cluster-state new --logger zap --log-level error \
			>"$work/$tag-m$i.log" 2>&1 &
		pids+=($!)
		endpoints+="${endpoints:+,}127.0.0.1:${cports[i]}"
	done
	for ((i = 0; i < 200; i++)); do
		if ETCDCTL_API=3 etcdctl --endpoints="$endpoints" --command-timeout=1s \
			endpoint health >/dev/null 2>&1; then
			return 0
		fi
		sleep 0.1
	done
	echo "lock_latency.sh: etcd ($tag) did not become healthy" >&2
	tail -n 20 "$work/$tag"-m*.log >&2
	exit 1
}

stop_cluster() {
	for pid in "${pids[@]}"; do
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	pids=()
}

echo "== single etcd =="
start_cluster 1 single
"$bench" --endpoints "$endpoints" --iterations "$iterations" "${extra[@]}"
stop_cluster

echo "== 3-member loopback cluster =="
start_cluster 3 three
"$bench" --endpoints "$endpoints" --iterations "$iterations" "${extra[@]}"
stop_cluster
