#!/usr/bin/env bash
# Throughput of a shared job under a PD (etcd) partition: 3 `bfill worker` processes build one
# index over 3 bfill-store nodes with 3 replicas, against the 3-member etcd cluster of
# bench/etcd-cluster.sh (members in network namespaces; stores and workers in the root
# namespace). Each round runs the job twice, side by side: without a fault, and with the etcd
# leader cut off from its followers for CUT seconds from the middle of the import phase (once
# a quarter of the rows are imported). `bfill status` is sampled every 250 ms
# (bench/sample_status.py): cluster-wide rows scanned and rows imported (the subtasks'
# checkpoints). Writes both runs of the last round as CSV, one plot (gnuplot: PNG and SVG, the
# cut shaded), and prints per run the completion time (the job record's end - start), medians
# over the rounds, their ratio against the target (cut <= 1.10 x baseline + 5 s), the lock
# waits of the workers (p50/p99, from BFILL_TRACE's lock-wait events) during the cut and over
# the whole baseline run, and how many imports waited on the lock across the cut. Every replica
# is checked (check-index) after the last cut run (a check of a big table takes longer than
# the job here), and in --scaling after the last 3-worker run.
#
#   bench/partition_workers.sh [--rows N] [--cut S] [--rounds R] [--method blackhole|drop|neigh]
#                              [--workers N] [--out DIR]
#   bench/partition_workers.sh --scaling [--rows N] [--rounds R] [--out DIR]
#
# --scaling runs the same job with 1, 2 and 3 workers (no fault), round after round, and prints
# the median completion time of each. Defaults: 20,000,000 rows, a 20 s cut, 3 rounds,
# blackhole routes, results in docs/bench/. Exit 77 when this machine cannot host the cluster.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
BFILL=${BFILL:-$HERE/../bin/bfill}
BFILL_STORE=${BFILL_STORE:-$HERE/../bin/bfill-store}
CLUSTER=$HERE/etcd-cluster.sh
ROWS=20000000
CUT=20
ROUNDS=3
METHOD=blackhole
WORKERS=3
SCALING=0
OUT=$HERE/../docs/bench
while [ $# -gt 0 ]; do
	case $1 in
	--rows) ROWS=$2; shift 2 ;;
	--cut) CUT=$2; shift 2 ;;
	--rounds) ROUNDS=$2; shift 2 ;;
	--method) METHOD=$2; shift 2 ;;
	--workers) WORKERS=$2; shift 2 ;;
	--scaling) SCALING=1; shift ;;
	--out) OUT=$2; shift 2 ;;
	*) echo "partition_workers: unknown argument '$1'" >&2; exit 2 ;;
	esac
done
BFILL=$(realpath "$BFILL")
BFILL_STORE=$(realpath "$BFILL_STORE")
export BFILL BFILL_STORE
WORK=$(mktemp -d /tmp/bfill-pworkers.XXXXXX)
export LC_DIR=$WORK/lc
mkdir -p "$LC_DIR" "$OUT"
OUT=$(realpath "$OUT")
. "$HERE/lib/local_cluster.sh"
WPIDS=()
cleanup() {
	local st=$?
	for p in "${WPIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
	lc_kill_all
	"$CLUSTER" heal >/dev/null 2>&1 || true
	"$CLUSTER" teardown >/dev/null 2>&1 || true
	rm -rf "$WORK"
	exit $st
}
trap cleanup EXIT
trap 'exit 1' INT TERM

say() { printf '[%s] %s\n' "$(date +%T)" "$*"; }

. "$HERE/lib/harness_setup.sh"
hs_setup
LC_EP=$EPS
say "etcd: $EPS (leader first)"
# Twelve regions: two a subtask, six subtasks, two each for three workers.
lc_init pw 3 12 "$ROWS"
for i in 1 2 3; do lc_start_store "$i"; done
WHERE=(--etcd "$EPS" --cluster pw)
cd "$WORK"
t=$(date +%s)
"$BFILL" gen "${WHERE[@]}" --rows "$ROWS" --seed 11 --quiet
say "generated $ROWS rows in $(( $(date +%s) - t )) s; $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo)"

# A field of the job's status; tried again while etcd elects a leader (just after a heal).
job_json() {
	local _
	for _ in $(seq 20); do
		"$BFILL" status "${WHERE[@]}" --job "$1" --json 2>/dev/null && return 0
		sleep 0.5
	done
	return 1
}
job_field() { job_json "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$2"; }

# run NAME NWORKERS CUT(0|1) [CHECK(0|1)]: one job; writes $WORK/NAME.{csv,trace,times}
run() {
	local name=$1 nw=$2 with_cut=$3 check=${4:-0} job spid t_sample cut_at="" healed_at="" i st
	job=$("$BFILL" add-index "${WHERE[@]}" --table sbtest1 --name "p_$name" --columns c --detach --json |
		python3 -c 'import json,sys; print(json.load(sys.stdin)["job_id"])')
	WPIDS=()
	for i in $(seq "$nw"); do
		BFILL_TRACE=$WORK/$name.trace "$BFILL" worker "${WHERE[@]}" --job "$job" --name "w$i" \
			--sort-dir "$WORK/sort-w$i" --mem 512M >"$WORK/$name-w$i.log" 2>&1 &
		WPIDS+=("$!")
	done
	t_sample=$(date +%s.%N)
	python3 "$HERE/sample_status.py" --bfill "$BFILL" --etcd "$EPS" --cluster pw --job "$job" \
		--until-done --interval 0.25 --out "$WORK/$name.csv" &
	spid=$!
	while kill -0 "$spid" 2>/dev/null; do
		if [ "$with_cut" = 1 ] && [ -z "$cut_at" ]; then
			imported=$({ tail -n 1 "$WORK/$name.csv" 2>/dev/null || true; } | cut -d, -f5)
			if [ -n "$imported" ] && [ "$imported" != rows_imported ] && [ "$imported" -ge $((ROWS / 4)) ]; then
				"$CLUSTER" partition "$LEADER_IP" --method "$METHOD" >"$WORK/cut.txt"
				cut_at=$(date +%s.%N)
				( sleep "$CUT"; "$CLUSTER" heal >/dev/null ) &
				HEALER=$!
			fi
		fi
		sleep 0.1
	done
	[ -n "$cut_at" ] && { wait "$HEALER" || true; healed_at=$(echo "$cut_at + $CUT" | bc -l); }
	[ "$(job_field "$job" state)" = done ] || { say "$name: job $job did not finish"; tail -n 5 "$WORK/$name"-w*.log; exit 1; }
	for i in "${!WPIDS[@]}"; do
		kill -TERM "${WPIDS[$i]}"
		st=0
		wait "${WPIDS[$i]}" || st=$?
		[ $st -eq 0 ] || { say "$name: worker $((i + 1)) exited $st"; tail -n 5 "$WORK/$name-w$((i + 1)).log"; exit 1; }
	done
	WPIDS=()
	# Every replica checked after the last run of each kind (a check of a big table takes
	# longer than the job here).
	local checked=""
	if [ "$check" = 1 ]; then
		"$BFILL" check-index "${WHERE[@]}" --table sbtest1 --name "p_$name" >"$WORK/$name.check" ||
			{ say "$name: check-index failed: $(cat "$WORK/$name.check")"; exit 1; }
		checked=", check-index exact on 3 replicas"
	fi
	"$BFILL" drop-index "${WHERE[@]}" --table sbtest1 --name "p_$name"
	local secs
	secs=$(job_json "$job" |
		python3 -c 'import json,sys; d=json.load(sys.stdin); print("%.1f" % ((d["end_ms"] - d["start_ms"]) / 1000))')
	echo "$secs $t_sample ${cut_at:-0} ${healed_at:-0}" >"$WORK/$name.times"
	say "$name: $nw worker(s), $secs s$checked$([ -n "$cut_at" ] && echo ", cut at +$(printf '%.1f' "$(echo "$cut_at - $t_sample" | bc -l)") s")"
}

median() { sort -n | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }

if [ $SCALING = 1 ]; then
	for r in $(seq "$ROUNDS"); do
		for nw in 1 2 3; do run "s${nw}_$r" "$nw" 0 "$([ "$r" = "$ROUNDS" ] && [ "$nw" = 3 ] && echo 1 || echo 0)"; done
	done
	echo "rows: $ROWS, 3 store nodes, 3 replicas, $(nproc) cores; medians of $ROUNDS rounds"
	for nw in 1 2 3; do
		m=$(for r in $(seq "$ROUNDS"); do cut -d' ' -f1 "$WORK/s${nw}_$r.times"; done | median)
		all=$(for r in $(seq "$ROUNDS"); do cut -d' ' -f1 "$WORK/s${nw}_$r.times"; done | paste -sd' ')
		printf '%d worker(s): median %.1f s (%s)  %.0f rows/s\n' "$nw" "$m" "$all" "$(echo "$ROWS / $m" | bc -l)"
	done
	exit 0
fi

for r in $(seq "$ROUNDS"); do
	say "round $r: baseline (no fault)"
	run "base_$r" "$WORKERS" 0
	say "round $r: ${CUT}s leader cut ($METHOD) once a quarter of the rows are imported"
	run "cut_$r" "$WORKERS" 1 "$([ "$r" = "$ROUNDS" ] && echo 1 || echo 0)"
done

# The last round's samples: rates over a sliding second (4 samples), seconds since submission.
for kind in base cut; do
	read -r _ t0 c0 h0 <"$WORK/${kind}_$ROUNDS.times"
	awk -F, 'NR > 1 {t[NR] = $1; d[NR] = $2; m[NR] = $5}
		END {print "t,rows_scanned_per_s,rows_imported_per_s";
		     for (i = 6; i <= NR; i++) printf "%.2f,%.0f,%.0f\n", t[i], (d[i] - d[i-4]) / (t[i] - t[i-4]), (m[i] - m[i-4]) / (t[i] - t[i-4])}' \
		"$WORK/${kind}_$ROUNDS.csv" >"$OUT/partition-workers-$kind.csv"
done
read -r tc t0 c0 h0 <"$WORK/cut_$ROUNDS.times"
cut_from=$(echo "$c0 - $t0" | bc -l)
cut_to=$(echo "$h0 - $t0" | bc -l)
tb=$(cut -d' ' -f1 "$WORK/base_$ROUNDS.times")
for fmt in png svg; do
	term="pngcairo size 1100,550"
	[ $fmt = svg ] && term="svg size 1100,550"
	gnuplot <<GP
set terminal $term
set output "$OUT/partition-workers.$fmt"
set datafile separator ","
set key top right
set xlabel "seconds since the job was submitted"
set ylabel "rows/s, cluster-wide (1 s window of 250 ms samples)"
set title "bfill: $WORKERS workers, 3 store nodes x 3 replicas, $ROWS rows, index on c: no fault vs a ${CUT} s etcd leader cut"
set object 1 rect from $cut_from,graph 0 to $cut_to,graph 1 fc rgb "#f4cccc" fs solid 0.5 behind
set label 1 "leader cut off ($METHOD)" at $cut_from,graph 0.95 offset 0.5,0
plot "$OUT/partition-workers-base.csv" using 1:2 every ::1 with lines lw 2 lc rgb "#1f77b4" title sprintf("no fault: scanned (%.1f s)", $tb), \
     "$OUT/partition-workers-base.csv" using 1:3 every ::1 with lines lw 1 dt 2 lc rgb "#1f77b4" title "no fault: imported", \
     "$OUT/partition-workers-cut.csv" using 1:2 every ::1 with lines lw 2 lc rgb "#d62728" title sprintf("leader cut: scanned (%.1f s)", $tc), \
     "$OUT/partition-workers-cut.csv" using 1:3 every ::1 with lines lw 1 dt 2 lc rgb "#d62728" title "leader cut: imported"
GP
done

# Lock waits from the traces: "<end µs> lock-wait job=J index=I ms=W rc=R".
lockstats() { # trace [from_epoch to_epoch]: p50 p99 max n (waits whose span meets the window)
	python3 - "$@" <<'PY'
import sys
path = sys.argv[1]
lo = float(sys.argv[2]) if len(sys.argv) > 2 else None
hi = float(sys.argv[3]) if len(sys.argv) > 3 else None
w = []
for line in open(path):
    f = line.split()
    if len(f) < 3 or f[1] != "lock-wait":
        continue
    kv = dict(x.split("=", 1) for x in f[2:] if "=" in x)
    end = int(f[0]) / 1e6
    ms = int(kv["ms"])
    if lo is not None and (end < lo or end - ms / 1000 > hi):
        continue
    w.append(ms)
w.sort()
def pct(p):
    return w[min(len(w) - 1, int(p * len(w)))] if w else 0
print(pct(0.50), pct(0.99), w[-1] if w else 0, len(w))
PY
}
read -r bp50 bp99 bmax bn < <(lockstats "$WORK/base_$ROUNDS.trace")
read -r cp50 cp99 cmax cn < <(lockstats "$WORK/cut_$ROUNDS.trace" "$c0" "$h0")
delayed=$(python3 - "$WORK/cut_$ROUNDS.trace" "$c0" "$h0" "$bp99" <<'PY'
import sys
lo, hi, p99 = float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
n = 0
for line in open(sys.argv[1]):
    f = line.split()
    if len(f) < 3 or f[1] != "lock-wait":
        continue
    kv = dict(x.split("=", 1) for x in f[2:] if "=" in x)
    end, ms = int(f[0]) / 1e6, int(kv["ms"])
    if end >= lo and end - ms / 1000 <= hi and ms > p99:
        n += 1
print(n)
PY
)
mb=$(for r in $(seq "$ROUNDS"); do cut -d' ' -f1 "$WORK/base_$r.times"; done | median)
mc=$(for r in $(seq "$ROUNDS"); do cut -d' ' -f1 "$WORK/cut_$r.times"; done | median)
allb=$(for r in $(seq "$ROUNDS"); do cut -d' ' -f1 "$WORK/base_$r.times"; done | paste -sd' ')
allc=$(for r in $(seq "$ROUNDS"); do cut -d' ' -f1 "$WORK/cut_$r.times"; done | paste -sd' ')
limit=$(echo "1.10 * $mb + 5" | bc -l)
cat <<EOF
rows: $ROWS   workers: $WORKERS   store nodes: 3 (3 replicas)   cores: $(nproc)   rounds: $ROUNDS
baseline completion:   median $(printf '%.1f' "$mb") s   ($allb)
under a ${CUT} s cut:     median $(printf '%.1f' "$mc") s   ($allc)
ratio:                 $(printf '%.3f' "$(echo "$mc / $mb" | bc -l)")
target (1.10 x base + 5 s): $(printf '%.1f' "$limit") s -> $(echo "$mc <= $limit" | bc -l | sed 's/1/met/; s/0/NOT met/')
last round: cut at +$(printf '%.1f' "$cut_from") s, healed at +$(printf '%.1f' "$cut_to") s ($(cat "$WORK/cut.txt"))
lock waits, baseline (whole run): p50 $bp50 ms  p99 $bp99 ms  max $bmax ms  ($bn acquisitions)
lock waits during the cut:        p50 $cp50 ms  p99 $cp99 ms  max $cmax ms  ($cn acquisitions)
imports the cut delayed (a lock wait across the cut longer than the baseline p99): $delayed
csv: $OUT/partition-workers-base.csv $OUT/partition-workers-cut.csv   plot: $OUT/partition-workers.png $OUT/partition-workers.svg
EOF
