#!/usr/bin/env bash
# Benchmark: bfill add-index against PostgreSQL 15's CREATE INDEX on the same
# rows, side by side in one run (timings here vary 10-30% run to run, so
# only figures taken together are compared).
#
#   bench/add_index.sh [ROWS...]          default: 1000000 10000000
#
# For each table size: generate sbtest1 with bfill, copy the same rows into a
# throwaway PostgreSQL cluster (unix socket only, removed at the end), then
# RUNS times, alternating: bfill add-index on c and on k (each under
# /usr/bin/time -v for peak RSS; the index is dropped after each run),
# PostgreSQL CREATE INDEX on c and on k. Prints one line per run and the
# medians. Settings (env): RUNS (3), MEM (512M, bfill --mem and PostgreSQL
# maintenance_work_mem), WORKERS (cores), BENCH_DIR (a temp dir), BFILL,
# EXTRA (more add-index flags).
set -euo pipefail

RUNS=${RUNS:-3}
MEM=${MEM:-512M}
WORKERS=${WORKERS:-$(nproc)}
BFILL=${BFILL:-$(cd "$(dirname "$0")/.." && pwd)/bin/bfill}
EXTRA=${EXTRA:-}
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
[ $# -gt 0 ] && SIZES=("$@") || SIZES=(1000000 10000000)
BENCH_DIR=${BENCH_DIR:-$(mktemp -d /tmp/bfill-bench-add-index.XXXXXX)}
PGDATA=$BENCH_DIR/pg
PGSOCK=$BENCH_DIR/sock

pg_mem=$(echo "$MEM" | sed 's/[Mm]$/MB/; s/[Gg]$/GB/')

cleanup() {
	if [ -f "$PGDATA/postmaster.pid" ]; then
		runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGDATA" -m immediate stop >/dev/null 2>&1 || true
	fi
	rm -rf "$BENCH_DIR"
}
trap cleanup EXIT

[ -x "$BFILL" ] || { echo "no bfill binary at $BFILL (make bin/bfill)" >&2; exit 1; }
[ -x "$PGBIN/initdb" ] || { echo "PostgreSQL 15 is not installed (make bench-deps)" >&2; exit 1; }

echo "== machine"
echo "cpu:    $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //') x $(nproc)"
echo "memory: $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
echo "load:   $(cut -d' ' -f1-3 /proc/loadavg) before the runs"
echo "bfill:  --mem $MEM --workers $WORKERS $EXTRA; PostgreSQL: maintenance_work_mem=$pg_mem, max_parallel_maintenance_workers=$((WORKERS > 1 ? WORKERS - 1 : 0))"

mkdir -p "$PGSOCK"
chown postgres "$BENCH_DIR" "$PGSOCK"
chmod 755 "$BENCH_DIR"
runuser -u postgres -- "$PGBIN/initdb" -D "$PGDATA" -A trust -U postgres >/dev/null
runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGDATA" -l "$BENCH_DIR/pg.log" -w \
	-o "-k $PGSOCK -c listen_addresses='' -c maintenance_work_mem=$pg_mem -c max_parallel_maintenance_workers=$((WORKERS > 1 ? WORKERS - 1 : 0)) -c shared_buffers=512MB -c fsync=on" start >/dev/null
psql() { runuser -u postgres -- "$PGBIN/psql" -h "$PGSOCK" -U postgres -X -q -v ON_ERROR_STOP=1 "$@"; }

# Runs "$@" under /usr/bin/time -v; prints "<json line> <peak rss KiB>".
timed_bfill() {
	local tf=$BENCH_DIR/time.txt out
	out=$(/usr/bin/time -v -o "$tf" "$@")
	echo "$out $(awk -F': ' '/Maximum resident/ {print $2}' "$tf")"
}

pg_index() { # table column -> seconds
	local t0 t1
	psql -c "DROP INDEX IF EXISTS bench_idx" >/dev/null 2>&1
	psql -c "CHECKPOINT" >/dev/null
	t0=$(date +%s.%N)
	psql -c "CREATE INDEX bench_idx ON sbtest1 ($1)"
	t1=$(date +%s.%N)
	psql -c "DROP INDEX bench_idx" >/dev/null
	echo "$t1 - $t0" | bc -l
}

median() { sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }

for rows in "${SIZES[@]}"; do
	store=$BENCH_DIR/store-$rows
	echo
	echo "== $rows rows"
	"$BFILL" gen --store "$store" --rows "$rows" --seed 1 --quiet
	psql -c "SET client_min_messages=warning; DROP TABLE IF EXISTS sbtest1; CREATE TABLE sbtest1 (id BIGINT PRIMARY KEY, k INT NOT NULL, c CHAR(120) NOT NULL, pad CHAR(60) NOT NULL)"
	"$BFILL" dump --store "$store" --table sbtest1 | tail -n +2 | psql -c "COPY sbtest1 FROM STDIN"
	psql -c "VACUUM ANALYZE sbtest1"
	: >"$BENCH_DIR/results"
	for run in $(seq 1 "$RUNS"); do
		for col in c k; do
			line=$(timed_bfill "$BFILL" add-index --store "$store" --table sbtest1 --name "b_$col" \
				--columns "$col" --mem "$MEM" --workers "$WORKERS" $EXTRA --json)
			json=${line% *}
			rss=${line##* }
			"$BFILL" drop-index --store "$store" --table sbtest1 --name "b_$col"
			secs=$(echo "$json" | python3 -c 'import json,sys; print(json.load(sys.stdin)["seconds"])')
			mbs=$(echo "$json" | python3 -c 'import json,sys; print(json.load(sys.stdin)["mb_per_s"])')
			sortb=$(echo "$json" | python3 -c 'import json,sys; print(json.load(sys.stdin)["peak_sort_dir_bytes"])')
			pgs=$(pg_index "$col")
			printf 'run %d  %s  bfill %.3f s  %9.0f rows/s  %6.1f MB/s  rss %5.0f MiB  sort-dir %6.0f MiB  |  postgres %.3f s  %9.0f rows/s  |  ratio %.2fx\n' \
				"$run" "$col" "$secs" "$(echo "$rows / $secs" | bc -l)" "$mbs" "$(echo "$rss / 1024" | bc -l)" \
				"$(echo "$sortb / 1048576" | bc -l)" "$pgs" "$(echo "$rows / $pgs" | bc -l)" "$(echo "$pgs / $secs" | bc -l)"
			echo "$col $secs $pgs $rss $sortb" >>"$BENCH_DIR/results"
		done
	done
	for col in c k; do
		bs=$(awk -v c="$col" '$1 == c {print $2}' "$BENCH_DIR/results" | median)
		ps=$(awk -v c="$col" '$1 == c {print $3}' "$BENCH_DIR/results" | median)
		rss=$(awk -v c="$col" '$1 == c {print $4}' "$BENCH_DIR/results" | sort -g | tail -1)
		printf 'median %s (%d rows): bfill %.3f s = %.0f rows/s (peak RSS %.0f MiB)  postgres %.3f s = %.0f rows/s  ratio %.2fx\n' \
			"$col" "$rows" "$bs" "$(echo "$rows / $bs" | bc -l)" "$(echo "$rss / 1024" | bc -l)" "$ps" \
			"$(echo "$rows / $ps" | bc -l)" "$(echo "$ps / $bs" | bc -l)"
	done
	rm -rf "$store" "$store.sort"
	psql -c "DROP TABLE sbtest1"
done
