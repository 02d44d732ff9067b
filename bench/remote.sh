#!/usr/bin/env bash
# Benchmark: add-index into a cluster of three local bfill-store nodes with three
# replicas, against the embedded build of the same index in the same run.
#
#   bench/remote.sh [ROWS]            default: 10000000
#
# Starts a private etcd and three bfill-store processes on loopback (all removed at the
# end), writes the layout (REGIONS regions, 3 replicas), loads sbtest1 into the cluster
# (gen --cluster) and the same rows into a local store, then RUNS times, alternating: the
# embedded build of an index on c with its defaults (one import at the end), the embedded
# build importing every quarter of --mem as a cluster job does by default ("embedded-q"),
# each under /usr/bin/time -v, and the remote one (bfill
# under /usr/bin/time -v; the stores are restarted before it so that their peak RSS,
# VmHWM, is this build's), each index dropped after its run. Prints one line per run and
# the medians: rows/s, index MB/s, MB/s sent to the stores (every byte goes to three
# replicas), peak RSS of bfill and of each store; check-index of every replica after the
# last run. With PROFILE=1, one more remote run
# under `perf record` for bfill and for store 1, and the top of each profile.
# Settings (env): RUNS (3), MEM (512M), REGIONS (16), BFILL, BFILL_STORE, BENCH_DIR.
set -euo pipefail

ROWS=${1:-10000000}
RUNS=${RUNS:-3}
MEM=${MEM:-512M}
REGIONS=${REGIONS:-16}
HERE=$(cd "$(dirname "$0")" && pwd)
BFILL=${BFILL:-$HERE/../bin/bfill}
BFILL_STORE=${BFILL_STORE:-$HERE/../bin/bfill-store}
BENCH_DIR=${BENCH_DIR:-$(mktemp -d /tmp/bfill-bench-remote.XXXXXX)}
LC_DIR=$BENCH_DIR
. "$HERE/lib/local_cluster.sh"

cleanup() {
	lc_kill_all
	rm -rf "$BENCH_DIR"
}
trap cleanup EXIT

[ -x "$BFILL" ] && [ -x "$BFILL_STORE" ] || { echo "build bin/bfill and bin/bfill-store first" >&2; exit 1; }
command -v etcd >/dev/null || { echo "etcd is not installed (make deps)" >&2; exit 1; }

echo "== machine"
echo "cpu:    $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //') x $(nproc)"
echo "memory: $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
echo "load:   $(cut -d' ' -f1-3 /proc/loadavg) before the runs"
echo "rows: $ROWS, index on c, --mem $MEM, $REGIONS regions, 3 stores, 3 replicas"

lc_start_etcd
lc_init bench 3 "$REGIONS" "$ROWS"
lc_restart_stores
WHERE=(--etcd "$LC_EP" --cluster bench)
cd "$BENCH_DIR"
t0=$(date +%s.%N)
"$BFILL" gen "${WHERE[@]}" --rows "$ROWS" --quiet
echo "remote gen: $(echo "$(date +%s.%N) - $t0" | bc -l | xargs printf '%.1f') s"
"$BFILL" gen --store "$BENCH_DIR/local" --rows "$ROWS" --quiet

# timed NAME ARGS... -> "<json> <peak rss KiB>"
timed() {
	local tf=$BENCH_DIR/time.txt out
	out=$(/usr/bin/time -v -o "$tf" "$@")
	echo "$out $(awk -F': ' '/Maximum resident/ {print $2}' "$tf")"
}
field() { python3 -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"; }

QUARTER=$(python3 -c 'import sys; s=sys.argv[1]; m={"K":1,"M":1024,"G":1048576}[s[-1].upper()]; print("%dK" % (int(s[:-1]) * m // 4))' "$MEM")
printf '%-10s %3s %9s %11s %9s %11s %9s %s\n' kind run seconds rows/s index_MB/s sent_MB/s bfill_MiB stores_MiB
: >"$BENCH_DIR/results.txt"
for run in $(seq "$RUNS"); do
	# embedded: its defaults (one import at the end); embedded-q: importing every quarter of
	# --mem during the scan, as a cluster job does by default.
	for kind in embedded embedded-q; do
		extra=()
		[ "$kind" = embedded-q ] && extra=(--import-every "$QUARTER")
		line=$(timed "$BFILL" add-index --store "$BENCH_DIR/local" --table sbtest1 --name c1 \
			--columns c --mem "$MEM" "${extra[@]}" --json)
		json=${line% *} rss=${line##* }
		s=$(field "$json" seconds) b=$(field "$json" index_bytes)
		printf '%-10s %3d %9.2f %11.0f %9.1f %11s %9.0f %s\n' "$kind" "$run" "$s" "$(echo "$ROWS / $s" | bc -l)" \
			"$(echo "$b / $s / 1000000" | bc -l)" - "$(echo "$rss / 1024" | bc -l)" - | tee -a "$BENCH_DIR/results.txt"
		"$BFILL" drop-index --store "$BENCH_DIR/local" --table sbtest1 --name c1
	done

	lc_restart_stores
	line=$(timed "$BFILL" add-index "${WHERE[@]}" --table sbtest1 --name c1 --columns c --mem "$MEM" --json)
	json=${line% *} rss=${line##* }
	s=$(field "$json" seconds) b=$(field "$json" index_bytes)
	printf '%-10s %3d %9.2f %11.0f %9.1f %11.1f %9.0f %s\n' remote "$run" "$s" "$(echo "$ROWS / $s" | bc -l)" \
		"$(echo "$b / $s / 1000000" | bc -l)" "$(echo "3 * $b / $s / 1000000" | bc -l)" \
		"$(echo "$rss / 1024" | bc -l)" "$(lc_store_hwm 1)/$(lc_store_hwm 2)/$(lc_store_hwm 3)" | tee -a "$BENCH_DIR/results.txt"
	# Every replica of the last run's index is checked (a 10M-row check reads 3 x 10M rows
	# and entries: minutes, so not after every run).
	if [ "$run" = "$RUNS" ]; then
		"$BFILL" check-index "${WHERE[@]}" --table sbtest1 --name c1 ||
			{ echo "check-index failed" >&2; exit 1; }
	fi
	"$BFILL" drop-index "${WHERE[@]}" --table sbtest1 --name c1
done

echo "== medians"
python3 - "$BENCH_DIR/results.txt" "$MEM" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
def med(kind, col):
    return statistics.median(float(r[col]) for r in rows if r[0] == kind)
e, r = med("embedded", 3), med("remote", 3)
mem = int(sys.argv[2].rstrip("MmGg")) * (1024 if sys.argv[2][-1] in "Gg" else 1)
print("embedded: %.0f rows/s, %.1f index MB/s, peak RSS %.0f MiB" % (e, med("embedded", 4), med("embedded", 6)))
print("remote:   %.0f rows/s, %.1f index MB/s, %.1f MB/s sent, bfill peak RSS %.0f MiB (limit --mem + 64 = %d MiB)"
      % (r, med("remote", 4), med("remote", 5), med("remote", 6), mem + 64))
print("stores' peak RSS (MiB, per run):", ", ".join(x[7] for x in rows if x[0] == "remote"))
eq = med("embedded-q", 3)
print("embedded, importing every quarter of --mem: %.0f rows/s, peak RSS %.0f MiB" % (eq, med("embedded-q", 6)))
print("remote / embedded rows/s: %.2f (target >= 0.35), each with its defaults" % (r / e))
print("remote / embedded importing as the remote does: %.2f" % (r / eq))
PY

if [ "${PROFILE:-0}" = 1 ]; then
	echo "== profile of one more remote run (perf record -g, bfill and store 1)"
	lc_restart_stores
	perf record -g -o "$BENCH_DIR/store.perf" -p "${LC_SPID[1]}" >/dev/null 2>&1 &
	PP=$!
	perf record -g -o "$BENCH_DIR/bfill.perf" -- "$BFILL" add-index "${WHERE[@]}" --table sbtest1 \
		--name c1 --columns c --mem "$MEM" --quiet >/dev/null 2>&1
	kill -INT "$PP"; wait "$PP" || true
	for who in bfill store; do
		echo "-- $who: top symbols (self)"
		perf report -i "$BENCH_DIR/$who.perf" --stdio --no-children --sort dso,symbol -g none \
			2>/dev/null | grep -E '^ +[0-9]' | sed 's/  */ /g; s/ - - *$//' | head -15 || true
	done
fi
