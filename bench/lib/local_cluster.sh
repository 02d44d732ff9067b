# Sourced by bench/remote.sh and tests/tsan_cluster.sh: a private etcd and
# bfill-store nodes on loopback, for one script's lifetime.
#
# Needs: BFILL, BFILL_STORE (binaries), LC_DIR (a scratch dir the caller removes).
# lc_start_etcd              starts etcd; sets LC_EP
# lc_init NAME N REGIONS ROWS  writes cluster NAME's layout: N stores, 3 replicas
# lc_start_store I / lc_stop_store I   node I of cluster LC_NAME (SIGTERM, waits for its exit)
# lc_restart_stores          stops and starts every node (their peak RSS starts over)
# lc_store_hwm I             node I's peak RSS so far, MiB
# lc_kill_all                SIGKILLs everything started (for an EXIT trap)

LC_PIDS=()
declare -A LC_SPID LC_PORT

lc_free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

lc_start_etcd() {
	LC_EP=127.0.0.1:$(lc_free_port)
	etcd --data-dir "$LC_DIR/etcd" --listen-client-urls "http://$LC_EP" \
		--advertise-client-urls "http://$LC_EP" --listen-peer-urls "http://127.0.0.1:$(lc_free_port)" \
		--quota-backend-bytes=$((2 << 30)) >"$LC_DIR/etcd.log" 2>&1 &
	LC_ETCD_PID=$!
	disown
	for _ in $(seq 50); do
		ETCDCTL_API=3 etcdctl --endpoints="$LC_EP" endpoint health >/dev/null 2>&1 && return 0
		sleep 0.2
	done
	echo "etcd did not start: $LC_DIR/etcd.log" >&2
	return 1
}

lc_init() {
	local addrs=() i
	LC_NAME=$1 LC_NSTORES=$2
	for i in $(seq "$LC_NSTORES"); do
		LC_PORT[$i]=$(lc_free_port)
		addrs+=("127.0.0.1:${LC_PORT[$i]}")
	done
	"$BFILL" cluster init --etcd "$LC_EP" --cluster "$LC_NAME" --stores "$(IFS=,; echo "${addrs[*]}")" \
		--regions "$3" --replicas 3 --rows "$4" >/dev/null
}

lc_start_store() {
	local i=$1 log=$LC_DIR/store$1.log before
	touch "$log"
	before=$(wc -l <"$log") # a restart appends: look only at what this start says
	"$BFILL_STORE" --listen "127.0.0.1:${LC_PORT[$i]}" --data "$LC_DIR/store$i" --store-id "$i" \
		--etcd "$LC_EP" --cluster "$LC_NAME" >>"$log" 2>&1 &
	LC_SPID[$i]=$!
	LC_PIDS+=("$!")
	disown
	for _ in $(seq 300); do
		tail -n +$((before + 1)) "$log" | grep -q 'serving cluster' && return 0
		kill -0 "${LC_SPID[$i]}" 2>/dev/null || break
		sleep 0.1
	done
	echo "store $i did not start: $log" >&2
	return 1
}

lc_stop_store() {
	local p=${LC_SPID[$1]:-}
	[ -n "$p" ] || return 0
	kill -TERM "$p" 2>/dev/null || true
	while kill -0 "$p" 2>/dev/null; do sleep 0.1; done
	LC_SPID[$1]=
}

lc_restart_stores() {
	local i
	for i in $(seq "$LC_NSTORES"); do
		lc_stop_store "$i"
		lc_start_store "$i" || return 1
	done
}

lc_store_hwm() { awk '/VmHWM/ {printf "%.0f", $2/1024}' "/proc/${LC_SPID[$1]}/status"; }

lc_kill_all() {
	local p
	for p in "${LC_PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
	[ -n "${LC_ETCD_PID:-}" ] && kill -9 "$LC_ETCD_PID" 2>/dev/null || true
}
