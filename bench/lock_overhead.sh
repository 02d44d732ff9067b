#!/usr/bin/env bash
# The cost of the etcd import lock on a whole build: a 1M-row index on c with the in-process
# lock and with a local etcd, once importing at the end (one lock acquisition) and once with
# --import-every 32M (one per import), timed by hyperfine (each run builds a fresh index; the
# index is dropped before each run).
#
#   bench/lock_overhead.sh [ROWS]        (default 1000000; RUNS=N runs per variant, default 5)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
BFILL=${BFILL:-$HERE/../bin/bfill}
ROWS=${1:-1000000}
RUNS=${RUNS:-5}
WORK=$(mktemp -d /tmp/bfill-lockov.XXXXXX)
ETCD_PID=""
cleanup() {
	[ -n "$ETCD_PID" ] && kill "$ETCD_PID" 2>/dev/null && wait "$ETCD_PID" 2>/dev/null || true
	rm -rf "$WORK"
}
trap cleanup EXIT

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
CP=$(port)
PP=$(port)
etcd --name bench --data-dir "$WORK/etcd" --listen-client-urls "http://127.0.0.1:$CP" \
	--advertise-client-urls "http://127.0.0.1:$CP" --listen-peer-urls "http://127.0.0.1:$PP" \
	--initial-advertise-peer-urls "http://127.0.0.1:$PP" \
	--initial-cluster "bench=http://127.0.0.1:$PP" >"$WORK/etcd.log" 2>&1 &
ETCD_PID=$!
for _ in $(seq 1 100); do
	etcdctl --endpoints "127.0.0.1:$CP" endpoint health >/dev/null 2>&1 && break
	sleep 0.1
done
EP=127.0.0.1:$CP
echo "etcd $(etcd --version | head -n 1 | awk '{print $3}') at $EP; $ROWS rows; $RUNS runs per variant; load $(cut -d' ' -f1-3 /proc/loadavg)"
"$BFILL" gen --store "$WORK/s" --rows "$ROWS" --seed 3 --quiet
build="$BFILL add-index --store $WORK/s --table sbtest1 --name lo --columns c --quiet"
drop="$BFILL drop-index --store $WORK/s --table sbtest1 --name lo"
hyperfine --warmup 1 --runs "$RUNS" --prepare "$drop 2>/dev/null || true" --export-json "$WORK/ov.json" \
	-n "in-process lock, 1 import" "$build" \
	-n "etcd lock, 1 import" "$build --etcd $EP" \
	-n "in-process lock, --import-every 32M" "$build --import-every 32M" \
	-n "etcd lock, --import-every 32M" "$build --import-every 32M --etcd $EP"
$drop 2>/dev/null || true
echo
echo "medians:"
python3 - "$WORK/ov.json" <<'PY'
import json, sys
res = json.load(open(sys.argv[1]))["results"]
base = res[0]["median"]
for r in res:
    print("  %-40s median %7.1f ms  (min %7.1f, max %7.1f)  %+6.1f ms vs in-process, 1 import"
          % (r["command"], r["median"] * 1e3, r["min"] * 1e3, r["max"] * 1e3, (r["median"] - base) * 1e3))
PY
echo
echo "lock figures of one run each (--json):"
for args in "--etcd $EP" "--import-every 32M --etcd $EP"; do
	"$BFILL" add-index --store "$WORK/s" --table sbtest1 --name lo --columns c $args --json |
		python3 -c 'import json,sys; d=json.load(sys.stdin); print("  %-40s %.3f s, %d imports, %d lock acquisitions, lock wait %d ms (max %d ms), release %d ms" % (sys.argv[1], d["seconds"], d["imports"], d["lock_acquires"], d["lock_wait_ms"], d["lock_wait_max_ms"], d["lock_release_ms"]))' "$args"
	$drop
done
