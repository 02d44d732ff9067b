#!/usr/bin/env bash
# The cluster path under ThreadSanitizer (`make tsan`): a private etcd and
# three bfill-store nodes built with TSan, then a TSan bfill loads the table,
# builds an index with several imports while the layout changes under it (a
# split and leader transfers, so the region caches of bfill and of every
# node publish new snapshots while region jobs read them), two TSan workers
# share a second job (their watcher threads publishing progress while the
# parts run) and one is stopped with SIGTERM mid-job, and every replica is
# checked. Fails on a failed command or on any TSan report, from any process.
#
#   tests/tsan_cluster.sh BFILL BFILL_STORE LOG SUPPRESSIONS...
# The suppression files (RocksDB's, gRPC's and abseil's own synchronisation,
# invisible to TSan) are joined into one, as TSan takes a single file.
set -uo pipefail
BFILL=$(realpath "$1") BFILL_STORE=$(realpath "$2") LOG=$(realpath -m "$3")
shift 3
HERE=$(cd "$(dirname "$0")" && pwd)
LC_DIR=$(mktemp -d /tmp/bfill-tsan-cluster.XXXXXX)
. "$HERE/../bench/lib/local_cluster.sh"
trap 'lc_kill_all; rm -rf "$LC_DIR"' EXIT
cat "$@" >"$LC_DIR/tsan.supp"
export TSAN_OPTIONS="halt_on_error=1 suppressions=$LC_DIR/tsan.supp"

command -v etcd >/dev/null || { echo "SKIP tsan cluster: etcd is not installed (make deps)"; exit 0; }
ROWS=100000
run() {
	local st
	cd "$LC_DIR" || return 1 # sort files go where bfill runs
	lc_start_etcd && lc_init tsan 3 8 "$ROWS" && lc_restart_stores || return 1
	local W=(--etcd "$LC_EP" --cluster tsan)
	"$BFILL" gen "${W[@]}" --rows "$ROWS" --quiet || return 1
	"$BFILL" add-index "${W[@]}" --table sbtest1 --name c1 --columns c --name k1 --columns k \
		--mem 128M --import-every 4M --workers 3 --json &
	local job=$!
	sleep 2
	# Regions 1.. hold the rows; move leaders and split one while the build runs.
	"$BFILL" cluster transfer-leader "${W[@]}" --region 2 --store 3 || true
	"$BFILL" cluster transfer-leader "${W[@]}" --region 3 --store 1 || true
	"$BFILL" cluster show "${W[@]}" --json >"$LC_DIR/layout.json" &&
		"$BFILL" cluster split "${W[@]}" --region 3 --key "$(python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
print([r for r in d["regions"] if r["id"] == 3][0]["start"] + "00")' "$LC_DIR/layout.json")" || true
	wait "$job"; st=$?
	[ "$st" -eq 0 ] || return "$st"
	"$BFILL" check-index "${W[@]}" --table sbtest1 --name c1 &&
		"$BFILL" check-index "${W[@]}" --table sbtest1 --name k1 || return 1
	# A shared job: two workers, one told to leave half-way.
	"$BFILL" add-index "${W[@]}" --table sbtest1 --name c2 --columns c --import-every 2M --detach || return 1
	local w1 w2
	"$BFILL" worker "${W[@]}" --name t1 --mem 128M --sort-dir "$LC_DIR/sort-t1" --threads 2 &
	w1=$!
	"$BFILL" worker "${W[@]}" --name t2 --mem 128M --sort-dir "$LC_DIR/sort-t2" --threads 2 &
	w2=$!
	sleep 4
	kill -TERM "$w1"
	wait "$w1" || return 1
	for _ in $(seq 600); do
		[ "$("$BFILL" status "${W[@]}" --job 2 --json |
			python3 -c 'import json,sys; print(json.load(sys.stdin)["state"])')" = done ] && break
		sleep 0.5
	done
	kill -TERM "$w2"
	wait "$w2" || return 1
	"$BFILL" check-index "${W[@]}" --table sbtest1 --name c2
}
run >"$LOG" 2>&1; st=$?
for i in 1 2 3; do lc_stop_store "$i"; done
cat "$LC_DIR"/store*.log >>"$LOG" 2>/dev/null
if [ "$st" -ne 0 ] || grep -q 'ThreadSanitizer' "$LOG"; then
	echo "FAIL tsan cluster (exit $st) -- log: $LOG"
	grep -A20 'WARNING: ThreadSanitizer' "$LOG" | head -60
	exit 1
fi
echo "ok   tsan cluster"
tail -n 2 "$LOG"
