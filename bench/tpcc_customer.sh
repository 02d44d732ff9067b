#!/usr/bin/env bash
# Benchmark: a table of one's own. TPC-C's customer table (its real column
# types: INT, VARCHAR, CHAR, DATETIME, DECIMAL(12,2), DECIMAL(4,4)) with
# WAREHOUSES x 30,000 rows (default 100: 3M rows), an index on
# (c_w_id, c_d_id, c_last, c_first) -- the index of TiDB's published ingest
# figure -- built by bfill add-index, SQLite's CREATE INDEX and PostgreSQL
# 15's CREATE INDEX over the same rows, side by side in one run.
#
#   bench/tpcc_customer.sh [WAREHOUSES]
#
# bin/bfill-tpccgen writes the rows as CSV once; bfill loads it with
# create-table + load (timed: the load's rows/s is printed too), SQLite
# with .import, PostgreSQL with COPY. None of the three tables has a
# primary key index (TiDB keeps this table's composite key as a separate
# index over a hidden _tidb_rowid; no build here needs it). Then RUNS
# times, alternating: bfill add-index (then drop-index), SQLite (PRAGMA
# threads=WORKERS), PostgreSQL (max_parallel_maintenance_workers =
# WORKERS - 1). A last bfill build is checked with check-index. Prints one
# line per run and the medians: rows/s of each and sqlite/bfill,
# postgres/bfill (how many times faster bfill is).
# Settings (env): RUNS (3), MEM (512M: bfill --mem and PostgreSQL's
# maintenance_work_mem), WORKERS (cores), BENCH_DIR (a temp dir, removed at
# the end), BFILL, TPCCGEN, SQLITE, PGBIN.
set -euo pipefail
shopt -s inherit_errexit

W=${1:-100}
[[ $W =~ ^[1-9][0-9]*$ ]] && [ $# -le 1 ] || { echo "usage: bench/tpcc_customer.sh [WAREHOUSES]" >&2; exit 2; }
RUNS=${RUNS:-3}
MEM=${MEM:-512M}
WORKERS=${WORKERS:-$(nproc)}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=bench/lib/peers.sh
. "$ROOT/bench/lib/peers.sh"
BFILL=${BFILL:-$ROOT/bin/bfill}
TPCCGEN=${TPCCGEN:-$ROOT/bin/bfill-tpccgen}
SQLITE=${SQLITE:-sqlite3}
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
ROWS=$((W * 30000))
COLS="c_w_id, c_d_id, c_last, c_first"

[ -x "$BFILL" ] || { echo "no bfill binary at $BFILL (make bin/bfill)" >&2; exit 1; }
[ -x "$TPCCGEN" ] || { echo "no bfill-tpccgen at $TPCCGEN (make bin/bfill-tpccgen)" >&2; exit 1; }
[ -x "$PGBIN/initdb" ] || { echo "PostgreSQL 15 is not installed (make bench-deps)" >&2; exit 1; }
command -v "$SQLITE" >/dev/null || { echo "sqlite3 is not installed (make bench-deps)" >&2; exit 1; }
command -v jq >/dev/null || { echo "jq is not installed (make bench-deps)" >&2; exit 1; }

BENCH_DIR=${BENCH_DIR:-$(mktemp -d /tmp/bfill-bench-tpcc.XXXXXX)}
peers_setup
STORE=$BENCH_DIR/store
CSV=$BENCH_DIR/customer.csv
RESULTS=$BENCH_DIR/results

pg_mem=$(echo "$MEM" | sed 's/[Mm]$/MB/; s/[Gg]$/GB/')
pg_workers=$((WORKERS > 1 ? WORKERS - 1 : 0))
peers_machine
echo "bfill:  --mem $MEM --workers $WORKERS; SQLite $("$SQLITE" --version | cut -d' ' -f1): threads=$WORKERS;" \
	"PostgreSQL: maintenance_work_mem=$pg_mem, max_parallel_maintenance_workers=$pg_workers"
echo "table:  customer, $W warehouses = $ROWS rows; index ($COLS)"

# One schema, spelled for each: the types go-tpc gives TiDB.
SCHEMA="c_id INT NOT NULL, c_d_id INT NOT NULL, c_w_id INT NOT NULL, c_first VARCHAR(16),
 c_middle CHAR(2), c_last VARCHAR(16), c_street_1 VARCHAR(20), c_street_2 VARCHAR(20),
 c_city VARCHAR(20), c_state CHAR(2), c_zip CHAR(9), c_phone CHAR(16), c_since DATETIME,
 c_credit CHAR(2), c_credit_lim DECIMAL(12,2), c_discount DECIMAL(4,4), c_balance DECIMAL(12,2),
 c_ytd_payment DECIMAL(12,2), c_payment_cnt INT, c_delivery_cnt INT, c_data VARCHAR(500)"
PG_SCHEMA=${SCHEMA//DATETIME/TIMESTAMP}

echo
echo "== loading $ROWS rows"
t0=$(date +%s.%N)
"$TPCCGEN" "$W" >"$CSV"
t1=$(date +%s.%N)
printf 'csv: %.0f MiB written in %.2f s\n' "$(calc "$(stat -c %s "$CSV") / 1048576")" "$(calc "$t1 - $t0")"
"$BFILL" create-table --store "$STORE" --table customer --schema "$SCHEMA" >/dev/null
settle
"$BFILL" load --store "$STORE" --table customer --csv "$CSV" --mem "$MEM" --json >"$BENCH_DIR/load.json"
printf 'bfill load: %.2f s, %.0f rows/s\n' "$(jq -r .seconds "$BENCH_DIR/load.json")" \
	"$(jq -r .rows_per_s "$BENCH_DIR/load.json")"
pg_start "$pg_mem" "$pg_workers"
psql -c "CREATE TABLE customer ($PG_SCHEMA)"
t0=$(date +%s.%N)
psql -c "COPY customer FROM STDIN (FORMAT csv)" <"$CSV"
psql -c "VACUUM ANALYZE customer"
t1=$(date +%s.%N)
printf 'postgres COPY + VACUUM ANALYZE: %.2f s\n' "$(calc "$t1 - $t0")"
t0=$(date +%s.%N)
sqlite "CREATE TABLE customer ($SCHEMA)"
sqlite ".import --csv $CSV customer"
t1=$(date +%s.%N)
printf 'sqlite .import: %.2f s\n' "$(calc "$t1 - $t0")"
rm -f "$CSV"

bfill_index() {
	settle
	"$BFILL" add-index --store "$STORE" --table customer --name idx_customer \
		--columns "${COLS// /}" --mem "$MEM" --workers "$WORKERS" --json >"$BENCH_DIR/out.json"
	B_SECS=$(jq -r .seconds "$BENCH_DIR/out.json")
}

echo
echo "== CREATE INDEX idx_customer ($COLS), $RUNS runs"
for run in $(seq 1 "$RUNS"); do
	bfill_index
	"$BFILL" drop-index --store "$STORE" --table customer --name idx_customer
	ss=$(sqlite_index customer "$COLS")
	ps=$(pg_index customer "$COLS")
	printf 'run %d  bfill %.3f s  %9.0f rows/s  |  sqlite %.3f s  %9.0f rows/s  |  postgres %.3f s  %9.0f rows/s  |  ratio sqlite/bfill %.2fx  postgres/bfill %.2fx\n' \
		"$run" "$B_SECS" "$(calc "$ROWS / $B_SECS")" "$ss" "$(calc "$ROWS / $ss")" "$ps" \
		"$(calc "$ROWS / $ps")" "$(calc "$ss / $B_SECS")" "$(calc "$ps / $B_SECS")"
	echo "$B_SECS $ss $ps" >>"$RESULTS"
done
bs=$(awk '{print $1}' "$RESULTS" | median)
ss=$(awk '{print $2}' "$RESULTS" | median)
ps=$(awk '{print $3}' "$RESULTS" | median)
printf 'median (%d rows): bfill %.3f s = %.0f rows/s  sqlite %.3f s = %.0f rows/s (%.2fx)  postgres %.3f s = %.0f rows/s (%.2fx)\n' \
	"$ROWS" "$bs" "$(calc "$ROWS / $bs")" "$ss" "$(calc "$ROWS / $ss")" "$(calc "$ss / $bs")" \
	"$ps" "$(calc "$ROWS / $ps")" "$(calc "$ps / $bs")"

echo
echo "== check"
bfill_index
"$BFILL" check-index --store "$STORE" --table customer --name idx_customer
