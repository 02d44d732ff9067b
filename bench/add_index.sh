#!/usr/bin/env bash
# Benchmark: bfill add-index against SQLite's and PostgreSQL 15's CREATE
# INDEX on the same rows, and against bfill-refbuild (bench/ref_build.c), the
# in-memory limit of the same build, side by side in one run (timings here
# vary 10-30% run to run, so only figures taken together are compared).
#
#   bench/add_index.sh [ROWS...]            default: 1000000 10000000
#   bench/add_index.sh --mem-sweep ROWS
#   bench/add_index.sh --scaling SIZES...
#   bench/add_index.sh --reference ROWS
#
# The comparison (the first form): for each table size, generate sbtest1 with
# bfill, dump it once and load the same rows into a throwaway PostgreSQL
# cluster (unix socket only) and a SQLite database (.mode tabs + .import),
# then RUNS times, alternating, on c and then on k: bfill add-index (under
# /usr/bin/time -v for peak RSS; the index is dropped after each run),
# bfill-refbuild (c only; its time is its JSON seconds, from the store's
# opening to the last file, and the whole process's wall time is shown
# too), SQLite CREATE INDEX (PRAGMA threads=WORKERS in the same sqlite3
# invocation, timed by .timer) and PostgreSQL CREATE INDEX (each index
# dropped after its run). Prints one line per run and, per size, the
# medians: sqlite/bfill and postgres/bfill (how many times faster bfill is)
# and bfill/reference (how far bfill is from the in-memory limit).
#
# --mem-sweep ROWS: one table of ROWS rows; bfill's c index at each --mem of
# MEM_SWEEP, RUNS runs each, the settings alternating; per setting the
# median time, rows/s, the highest peak RSS and whether it stayed within
# --mem + 64 MiB. A --mem that add-index refuses (bad usage: exit 2) is
# reported with add-index's own line and skipped.
#
# --scaling SIZES...: bfill's c index at --mem MEM on a table of each size,
# smallest first; per size the median time, rows/s, µs per row, the cost
# per row against the smallest size's, and peak RSS against MEM + 64 MiB.
#
# --reference ROWS: bfill's c index and bfill-refbuild on one table, back to
# back and alternating, after one untimed pair: on a virtual machine that
# hands freed memory back to its host, the first touch of memory freed a
# while ago runs at a fraction of its usual speed, and in the comparison
# the reference (1.9 GiB at 10M rows) touches memory other programs freed
# minutes before. Here both run warm; per run and as medians, bfill's time
# over the reference's.
#
# None of the last three needs PostgreSQL or SQLite. Settings (env): RUNS
# (3), MEM (512M: bfill --mem and PostgreSQL's maintenance_work_mem),
# MEM_SWEEP ("32M 128M 512M 2G"), WORKERS (cores: bfill --workers,
# bfill-refbuild --threads, SQLite's threads, PostgreSQL's parallel
# maintenance workers + 1), BENCH_DIR (a temp dir, removed at the end),
# BFILL, REFBUILD (bin/bfill-refbuild: make bin/bfill-refbuild), SQLITE
# (sqlite3), PGBIN, EXTRA (more add-index flags).
set -euo pipefail
# A failure inside $(...) (a CREATE INDEX, say) ends the script too.
shopt -s inherit_errexit

usage() {
	echo "usage: bench/add_index.sh [ROWS...] | --mem-sweep ROWS | --scaling SIZES... | --reference ROWS" >&2
	exit 2
}

MODE=compare
case "${1:-}" in
--mem-sweep) MODE='mem-sweep'; shift; [ $# -eq 1 ] || usage ;;
--scaling) MODE=scaling; shift; [ $# -ge 1 ] || usage ;;
--reference) MODE=reference; shift; [ $# -eq 1 ] || usage ;;
-*) usage ;;
esac
for n in "$@"; do
	[[ $n =~ ^[1-9][0-9]*$ ]] || usage
done

RUNS=${RUNS:-3}
MEM=${MEM:-512M}
MEM_SWEEP=${MEM_SWEEP:-32M 128M 512M 2G}
WORKERS=${WORKERS:-$(nproc)}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=bench/lib/peers.sh
. "$ROOT/bench/lib/peers.sh"
BFILL=${BFILL:-$ROOT/bin/bfill}
REFBUILD=${REFBUILD:-$ROOT/bin/bfill-refbuild}
SQLITE=${SQLITE:-sqlite3}
EXTRA=${EXTRA:-}
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
case $MODE in
compare) if [ $# -gt 0 ]; then SIZES=("$@"); else SIZES=(1000000 10000000); fi ;;
mem-sweep | reference) SIZES=("$1") ;;
scaling) mapfile -t SIZES < <(printf '%s\n' "$@" | sort -n) ;;
esac

# "512M", "2G", "64K" or bytes -> KiB
size_kib() {
	local n=${1%[kKmMgGtT]}
	[[ $n =~ ^[0-9]+$ ]] || { echo "bench/add_index.sh: not a size: '$1'" >&2; exit 2; }
	case ${1:${#n}} in
	'') echo $((n / 1024)) ;;
	[kK]) echo "$n" ;;
	[mM]) echo $((n * 1024)) ;;
	[gG]) echo $((n * 1048576)) ;;
	[tT]) echo $((n * 1073741824)) ;;
	esac
}
size_kib "$MEM" >/dev/null
for mem in $MEM_SWEEP; do size_kib "$mem" >/dev/null; done

[ -x "$BFILL" ] || { echo "no bfill binary at $BFILL (make bin/bfill)" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "GNU time is not installed (make bench-deps)" >&2; exit 1; }
if [ "$MODE" = compare ] || [ "$MODE" = reference ]; then
	[ -x "$REFBUILD" ] || { echo "no bfill-refbuild at $REFBUILD (make bin/bfill-refbuild)" >&2; exit 1; }
fi
if [ "$MODE" = compare ]; then
	[ -x "$REFBUILD" ] || { echo "no bfill-refbuild at $REFBUILD (make bin/bfill-refbuild)" >&2; exit 1; }
	[ -x "$PGBIN/initdb" ] || { echo "PostgreSQL 15 is not installed (make bench-deps)" >&2; exit 1; }
	command -v "$SQLITE" >/dev/null || { echo "sqlite3 is not installed (make bench-deps)" >&2; exit 1; }
fi

BENCH_DIR=${BENCH_DIR:-$(mktemp -d /tmp/bfill-bench-add-index.XXXXXX)}
RESULTS=$BENCH_DIR/results

peers_setup
maximum() { sort -g | tail -n 1; }
# Column $2 of the result lines tagged $1, through median or maximum ($3).
col_stat() { awk -v t="$1" -v f="$2" '$1 == t {print $f}' "$RESULTS" | "$3"; }
mib() { calc "$1 / 1024"; }
# "ok" when a peak RSS (KiB) is within --mem $2 + 64 MiB.
within() { [ "$1" -le $(($(size_kib "$2") + 65536)) ] && echo ok || echo OVER; }

peers_machine
case $MODE in
compare)
	pg_mem=$(echo "$MEM" | sed 's/[Mm]$/MB/; s/[Gg]$/GB/')
	pg_workers=$((WORKERS > 1 ? WORKERS - 1 : 0))
	echo "bfill:  --mem $MEM --workers $WORKERS${EXTRA:+ $EXTRA}; reference: --threads $WORKERS;" \
		"SQLite $("$SQLITE" --version | cut -d' ' -f1): threads=$WORKERS;" \
		"PostgreSQL: maintenance_work_mem=$pg_mem, max_parallel_maintenance_workers=$pg_workers"
	;;
mem-sweep) echo "bfill:  --mem $MEM_SWEEP (each) --workers $WORKERS${EXTRA:+ $EXTRA}" ;;
scaling) echo "bfill:  --mem $MEM --workers $WORKERS${EXTRA:+ $EXTRA}" ;;
esac

# Runs "$@" under /usr/bin/time -v: stdout to $BENCH_DIR/out.json, stderr to
# $BENCH_DIR/err.txt, peak RSS (KiB) in RSS_KIB; returns the command's status.
timed() {
	local st=0
	settle
	/usr/bin/time -v -o "$BENCH_DIR/time.txt" "$@" >"$BENCH_DIR/out.json" 2>"$BENCH_DIR/err.txt" || st=$?
	RSS_KIB=$(awk -F': ' '/Maximum resident/ {print $2}' "$BENCH_DIR/time.txt")
	return "$st"
}

# bfill add-index on column $2 of store $1 with --mem $3, then drop-index.
# Sets B_SECS, B_MBS, B_SORT (peak sort-dir bytes) and B_RSS (KiB); when
# add-index refuses its flags (exit 2, nothing done), B_REFUSAL holds its
# message instead. Any other failure ends the script.
bfill_index() {
	local st=0
	B_REFUSAL=
	# shellcheck disable=SC2086 # EXTRA is a list of flags
	timed "$BFILL" add-index --store "$1" --table sbtest1 --name "b_$2" --columns "$2" \
		--mem "$3" --workers "$WORKERS" $EXTRA --json || st=$?
	if [ "$st" -eq 2 ]; then
		B_REFUSAL=$(head -n 1 "$BENCH_DIR/err.txt")
		return 0
	fi
	if [ "$st" -ne 0 ]; then
		echo "bfill add-index --columns $2 --mem $3 failed (exit $st): $(head -n 3 "$BENCH_DIR/err.txt")" >&2
		exit 1
	fi
	"$BFILL" drop-index --store "$1" --table sbtest1 --name "b_$2"
	B_SECS=$(jq -r .seconds "$BENCH_DIR/out.json")
	B_MBS=$(jq -r .mb_per_s "$BENCH_DIR/out.json")
	B_SORT=$(jq -r .peak_sort_dir_bytes "$BENCH_DIR/out.json")
	B_RSS=$RSS_KIB
}

# bfill add-index that must not be refused: bfill_index, or the end.
bfill_index_or_exit() {
	bfill_index "$@"
	[ -z "$B_REFUSAL" ] || { echo "bfill add-index refused --mem $3: $B_REFUSAL" >&2; exit 1; }
}

# bfill-refbuild on c of store $1, its files on the benchmark's file system.
# Sets R_SECS (its own seconds), R_WALL (the process) and R_RSS (KiB).
ref_index() {
	local t0 t1
	settle
	t0=$(date +%s.%N)
	"$REFBUILD" --store "$1" --table sbtest1 --columns c --threads "$WORKERS" \
		--out "$BENCH_DIR/ref-out" >"$BENCH_DIR/ref.json"
	t1=$(date +%s.%N)
	rm -rf "$BENCH_DIR/ref-out"
	R_WALL=$(calc "$t1 - $t0")
	R_SECS=$(jq -r .seconds "$BENCH_DIR/ref.json")
	R_RSS=$(jq -r .peak_rss_kib "$BENCH_DIR/ref.json")
}

# Generates sbtest1 with $2 rows in store $1.
gen_table() {
	echo
	echo "== $2 rows"
	"$BFILL" gen --store "$1" --rows "$2" --seed 1 --quiet
}

# ---- --mem-sweep and --scaling: bfill alone ----

if [ "$MODE" = mem-sweep ]; then
	rows=${SIZES[0]}
	store=$BENCH_DIR/store
	declare -A refused=()
	gen_table "$store" "$rows"
	: >"$RESULTS"
	for run in $(seq 1 "$RUNS"); do
		for mem in $MEM_SWEEP; do
			[ -z "${refused[$mem]:-}" ] || continue
			bfill_index "$store" c "$mem"
			if [ -n "$B_REFUSAL" ]; then
				refused[$mem]=$B_REFUSAL
				printf 'run %d  mem %-5s  refused: %s\n' "$run" "$mem" "$B_REFUSAL"
				continue
			fi
			printf 'run %d  mem %-5s  bfill %.3f s  %9.0f rows/s  rss %5.0f MiB (%s)  sort-dir %6.0f MiB\n' \
				"$run" "$mem" "$B_SECS" "$(calc "$rows / $B_SECS")" "$(mib "$B_RSS")" \
				"$(within "$B_RSS" "$mem")" "$(calc "$B_SORT / 1048576")"
			echo "$mem $B_SECS $B_RSS" >>"$RESULTS"
		done
	done
	for mem in $MEM_SWEEP; do
		if [ -n "${refused[$mem]:-}" ]; then
			printf 'mem %-5s (%d rows): refused: %s\n' "$mem" "$rows" "${refused[$mem]}"
			continue
		fi
		bs=$(col_stat "$mem" 2 median)
		rss=$(col_stat "$mem" 3 maximum)
		printf 'mem %-5s (%d rows): bfill %.3f s = %.0f rows/s  max peak RSS %.0f MiB, limit (mem + 64 MiB) %.0f MiB: %s\n' \
			"$mem" "$rows" "$bs" "$(calc "$rows / $bs")" "$(mib "$rss")" \
			"$(mib $(($(size_kib "$mem") + 65536)))" "$(within "$rss" "$mem")"
	done
	exit 0
fi

if [ "$MODE" = scaling ]; then
	base_us=
	for rows in "${SIZES[@]}"; do
		store=$BENCH_DIR/store-$rows
		gen_table "$store" "$rows"
		: >"$RESULTS"
		for run in $(seq 1 "$RUNS"); do
			bfill_index_or_exit "$store" c "$MEM"
			printf 'run %d  c  bfill %.3f s  %9.0f rows/s  %6.1f MB/s  rss %5.0f MiB  sort-dir %6.0f MiB\n' \
				"$run" "$B_SECS" "$(calc "$rows / $B_SECS")" "$B_MBS" "$(mib "$B_RSS")" \
				"$(calc "$B_SORT / 1048576")"
			echo "c $B_SECS $B_RSS" >>"$RESULTS"
		done
		bs=$(col_stat c 2 median)
		rss=$(col_stat c 3 maximum)
		us=$(calc "$bs * 1000000 / $rows")
		base_us=${base_us:-$us}
		printf 'median c (%d rows): bfill %.3f s = %.0f rows/s = %.3f µs/row (%.2fx the cost per row at %d rows)  peak RSS %.0f MiB, limit (mem + 64 MiB) %.0f MiB: %s\n' \
			"$rows" "$bs" "$(calc "$rows / $bs")" "$us" "$(calc "$us / $base_us")" "${SIZES[0]}" \
			"$(mib "$rss")" "$(mib $(($(size_kib "$MEM") + 65536)))" "$(within "$rss" "$MEM")"
		rm -rf "$store" "$store.sort"
	done
	exit 0
fi

if [ "$MODE" = reference ]; then
	rows=${SIZES[0]}
	store=$BENCH_DIR/store
	gen_table "$store" "$rows"
	bfill_index_or_exit "$store" c "$MEM"
	ref_index "$store"
	echo "(one untimed pair: bfill $B_SECS s, reference $R_SECS s)"
	: >"$RESULTS"
	for run in $(seq 1 "$RUNS"); do
		bfill_index_or_exit "$store" c "$MEM"
		ref_index "$store"
		printf 'run %d  c  bfill %.3f s  %9.0f rows/s  rss %5.0f MiB  |  reference %.3f s (process %.3f s, rss %.0f MiB)  |  bfill/reference %.2fx\n' \
			"$run" "$B_SECS" "$(calc "$rows / $B_SECS")" "$(mib "$B_RSS")" "$R_SECS" "$R_WALL" \
			"$(mib "$R_RSS")" "$(calc "$B_SECS / $R_SECS")"
		echo "c $B_SECS $R_SECS $(calc "$B_SECS / $R_SECS")" >>"$RESULTS"
	done
	printf 'median c (%d rows, warm): bfill %.3f s  reference %.3f s  bfill/reference %.2fx (median of the per-run ratios %.2fx)\n' \
		"$rows" "$(col_stat c 2 median)" "$(col_stat c 3 median)" \
		"$(calc "$(col_stat c 2 median) / $(col_stat c 3 median)")" "$(col_stat c 4 median)"
	exit 0
fi

# ---- the comparison: bfill, the reference, SQLite and PostgreSQL ----

pg_start "$pg_mem" "$pg_workers"

# Loads the same dump into PostgreSQL and SQLite.
load_rows() { # store rows
	local tsv=$BENCH_DIR/rows.tsv n
	"$BFILL" dump --store "$1" --table sbtest1 | tail -n +2 >"$tsv"
	psql -c "SET client_min_messages=warning; DROP TABLE IF EXISTS sbtest1; CREATE TABLE sbtest1 (id BIGINT PRIMARY KEY, k INT NOT NULL, c CHAR(120) NOT NULL, pad CHAR(60) NOT NULL)"
	psql -c "COPY sbtest1 FROM STDIN" <"$tsv"
	psql -c "VACUUM ANALYZE sbtest1"
	rm -f "$SQLITE_DB"
	printf '%s\n' "CREATE TABLE sbtest1 (id INTEGER PRIMARY KEY, k INTEGER NOT NULL, c CHAR(120) NOT NULL, pad CHAR(60) NOT NULL);" \
		'.mode tabs' ".import '$tsv' sbtest1" | sqlite
	rm -f "$tsv"
	n=$(sqlite "SELECT count(*) FROM sbtest1")
	[ "$n" -eq "$2" ] || { echo "SQLite holds $n rows, not $2" >&2; exit 1; }
}

for rows in "${SIZES[@]}"; do
	store=$BENCH_DIR/store-$rows
	gen_table "$store" "$rows"
	load_rows "$store" "$rows"
	: >"$RESULTS"
	for run in $(seq 1 "$RUNS"); do
		for col in c k; do
			bfill_index_or_exit "$store" "$col" "$MEM"
			R_SECS=- R_WALL=-
			if [ "$col" = c ]; then
				ref_index "$store"
			fi
			ss=$(sqlite_index sbtest1 "$col")
			ps=$(pg_index sbtest1 "$col")
			line=$(printf 'run %d  %s  bfill %.3f s  %9.0f rows/s  %6.1f MB/s  rss %5.0f MiB  sort-dir %6.0f MiB  |  sqlite %.3f s  %9.0f rows/s  |  postgres %.3f s  %9.0f rows/s' \
				"$run" "$col" "$B_SECS" "$(calc "$rows / $B_SECS")" "$B_MBS" "$(mib "$B_RSS")" \
				"$(calc "$B_SORT / 1048576")" "$ss" "$(calc "$rows / $ss")" "$ps" "$(calc "$rows / $ps")")
			[ "$col" != c ] || line+=$(printf '  |  reference %.3f s (process %.3f s, rss %.0f MiB)' \
				"$R_SECS" "$R_WALL" "$(mib "$R_RSS")")
			line+=$(printf '  |  ratio sqlite/bfill %.2fx  postgres/bfill %.2fx' "$(calc "$ss / $B_SECS")" \
				"$(calc "$ps / $B_SECS")")
			[ "$col" != c ] || line+=$(printf '  bfill/reference %.2fx' "$(calc "$B_SECS / $R_SECS")")
			echo "$line"
			echo "$col $B_SECS $ps $B_RSS $B_SORT $ss $R_SECS $R_WALL" >>"$RESULTS"
		done
	done
	for col in c k; do
		bs=$(col_stat "$col" 2 median)
		ps=$(col_stat "$col" 3 median)
		rss=$(col_stat "$col" 4 maximum)
		ss=$(col_stat "$col" 6 median)
		line=$(printf 'median %s (%d rows): bfill %.3f s = %.0f rows/s (peak RSS %.0f MiB)  sqlite %.3f s (%.2fx)  postgres %.3f s (%.2fx)' \
			"$col" "$rows" "$bs" "$(calc "$rows / $bs")" "$(mib "$rss")" \
			"$ss" "$(calc "$ss / $bs")" "$ps" "$(calc "$ps / $bs")")
		if [ "$col" = c ]; then
			rs=$(col_stat c 7 median)
			rw=$(col_stat c 8 median)
			line+=$(printf '  reference %.3f s, process %.3f s (bfill/reference %.2fx)' "$rs" "$rw" "$(calc "$bs / $rs")")
		fi
		echo "$line"
	done
	rm -rf "$store" "$store.sort"
	psql -c "DROP TABLE sbtest1"
	rm -f "$SQLITE_DB"
done
