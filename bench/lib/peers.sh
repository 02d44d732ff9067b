# Shared by the benchmarks that put bfill beside SQLite and PostgreSQL 15
# (bench/add_index.sh, bench/tpcc_customer.sh): statistics, the machine
# line, a throwaway PostgreSQL cluster on a unix socket, and one timed
# CREATE INDEX in each peer. Sourced; expects BENCH_DIR, SQLITE, PGBIN and
# WORKERS to be set by the caller.

median() { sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
calc() { echo "$1" | bc -l; }

# Every timed command starts with nothing of the previous one's left to
# write back: PostgreSQL's index or bfill's runs still on their way to the
# disk would otherwise slow whichever command came next.
settle() { sync; }

# The scratch dir, removed (PostgreSQL stopped first) when the script ends.
peers_setup() {
	PGDATA=$BENCH_DIR/pg
	PGSOCK=$BENCH_DIR/sock
	SQLITE_DB=$BENCH_DIR/sqlite.db
	trap peers_cleanup EXIT
	trap 'exit 130' INT TERM
	mkdir -p "$BENCH_DIR"
}

peers_cleanup() {
	if [ -f "$PGDATA/postmaster.pid" ]; then
		runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGDATA" -m immediate stop >/dev/null 2>&1 || true
	fi
	rm -rf "$BENCH_DIR"
}

peers_machine() {
	echo "== machine"
	echo "cpu:    $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //') x $(nproc)"
	echo "memory: $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
	echo "load:   $(cut -d' ' -f1-3 /proc/loadavg) before the runs"
}

# Starts PostgreSQL with maintenance_work_mem $1 and $2 parallel
# maintenance workers.
pg_start() {
	mkdir -p "$PGSOCK"
	chown postgres "$BENCH_DIR" "$PGSOCK"
	chmod 755 "$BENCH_DIR"
	runuser -u postgres -- "$PGBIN/initdb" -D "$PGDATA" -A trust -U postgres >/dev/null
	runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGDATA" -l "$BENCH_DIR/pg.log" -w \
		-o "-k $PGSOCK -c listen_addresses='' -c maintenance_work_mem=$1 -c max_parallel_maintenance_workers=$2 -c shared_buffers=512MB -c fsync=on" start >/dev/null
}
psql() { runuser -u postgres -- "$PGBIN/psql" -h "$PGSOCK" -U postgres -X -q -v ON_ERROR_STOP=1 "$@"; }
sqlite() { "$SQLITE" -bail "$SQLITE_DB" "$@"; }

pg_index() { # table columns -> seconds
	local t0 t1
	psql -c "DROP INDEX IF EXISTS bench_idx" >/dev/null 2>&1
	psql -c "CHECKPOINT" >/dev/null
	settle
	t0=$(date +%s.%N)
	psql -c "CREATE INDEX bench_idx ON $1 ($2)"
	t1=$(date +%s.%N)
	psql -c "DROP INDEX bench_idx" >/dev/null
	calc "$t1 - $t0"
}

# CREATE INDEX with the sort threads set in the same connection (the
# pragma is per connection); .timer's real time of that one statement.
sqlite_index() { # table columns -> seconds
	local out
	settle
	out=$(printf 'PRAGMA threads=%d;\n.timer on\nCREATE INDEX bench_idx ON %s (%s);\n' \
		"$WORKERS" "$1" "$2" | sqlite)
	sqlite "DROP INDEX bench_idx"
	echo "$out" | awk '/^Run Time:/ {t = $4} END {print t}'
}
