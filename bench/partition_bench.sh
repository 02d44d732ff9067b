#!/usr/bin/env bash
# Throughput under a partition: a build on c with --import-every 256M against the 3-member
# etcd cluster of bench/etcd-cluster.sh, once without a fault and once with the etcd leader cut
# off from its followers for CUT seconds from the start of the import phase (when the first
# import is due). Samples `bfill status` every 250 ms (bench/sample_status.py), writes both runs
# as CSV, plots them on one chart (gnuplot: PNG and SVG, the cut shaded) and prints completion
# times, their ratio, the lock acquisition latency seen by each run, and the scan rate while an
# import runs against the rate between imports (bench/import_overlap.py).
#
#   bench/partition_bench.sh [--rows N] [--cut S] [--method blackhole|drop|neigh] [--out DIR]
#
# A third run first, with one import at the end, gives the scan rate with no import running.
# Defaults: 10,000,000 rows, a 30 s cut, blackhole routes, results in docs/bench/.
# Exit 77 when this machine cannot host the cluster.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
BFILL=${BFILL:-$HERE/../bin/bfill}
CLUSTER=$HERE/etcd-cluster.sh
ROWS=10000000
CUT=30
METHOD=blackhole
OUT=$HERE/../docs/bench
IMPORT_EVERY=256M
while [ $# -gt 0 ]; do
	case $1 in
	--rows) ROWS=$2; shift 2 ;;
	--cut) CUT=$2; shift 2 ;;
	--method) METHOD=$2; shift 2 ;;
	--out) OUT=$2; shift 2 ;;
	*) echo "partition_bench: unknown argument '$1'" >&2; exit 2 ;;
	esac
done
WORK=$(mktemp -d /tmp/bfill-pbench.XXXXXX)
STORE=$WORK/store
BPID=""
cleanup() {
	local st=$?
	[ -n "$BPID" ] && kill -9 "$BPID" 2>/dev/null || true
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
say "cluster: $EPS (leader first)"
"$BFILL" gen --store "$STORE" --rows "$ROWS" --seed 11 --quiet
mkdir -p "$OUT"

# First import is due once IMPORT_EVERY bytes of index entries are pending (165 B per c entry).
first_import_rows=$(python3 -c "
import re,sys
m = re.fullmatch(r'(\d+)([KMG]?)', '$IMPORT_EVERY'); n = int(m.group(1)) * {'':1,'K':1<<10,'M':1<<20,'G':1<<30}[m.group(2)]
print(int(n / 165 * 0.95))")

# run NAME CUT(0|1) [IMPORT_EVERY] -> writes $WORK/NAME.csv, $WORK/NAME.json and the cut's
# start and end offsets to $WORK/NAME.offsets
run() {
	local name=$1 with_cut=$2 every=${3:-$IMPORT_EVERY} t0 rows cut_at="" healed_at="" job=$((RANDOM + 1000)) spid
	t0=$(date +%s.%N)
	"$BFILL" add-index --store "$STORE" --table sbtest1 --name "p_$name" --columns c \
		--etcd "$EPS" --import-every "$every" --job-id "$job" --json \
		>"$WORK/$name.json" 2>"$WORK/$name.err" &
	BPID=$!
	python3 "$HERE/sample_status.py" --bfill "$BFILL" --store "$STORE" --job "$job" \
		--pid "$BPID" --interval 0.25 --out "$WORK/$name.csv" &
	spid=$!
	while kill -0 "$BPID" 2>/dev/null; do
		if [ "$with_cut" = 1 ] && [ -z "$cut_at" ]; then
			rows=$({ tail -n 1 "$WORK/$name.csv" 2>/dev/null || true; } | cut -d, -f2)
			if [ -n "$rows" ] && [ "$rows" != rows_done ] && [ "$rows" -ge "$first_import_rows" ]; then
				"$CLUSTER" partition "$LEADER_IP" --method "$METHOD" >"$WORK/cut.txt"
				cut_at=$(echo "$(date +%s.%N) - $t0" | bc -l)
				( sleep "$CUT"; "$CLUSTER" heal >/dev/null ) &
				HEALER=$!
			fi
		fi
		sleep 0.1
	done
	local st=0
	wait "$BPID" || st=$?
	BPID=""
	wait "$spid" || true
	[ $st -eq 0 ] || { say "$name: bfill exited $st: $(cat "$WORK/$name.err")"; exit 1; }
	if [ -n "$cut_at" ]; then
		wait "$HEALER" || true
		healed_at=$(echo "$cut_at + $CUT" | bc -l)
	fi
	"$BFILL" check-index --store "$STORE" --table sbtest1 --name "p_$name" >/dev/null ||
		{ say "$name: check-index failed"; exit 1; }
	"$BFILL" drop-index --store "$STORE" --table sbtest1 --name "p_$name"
	echo "$cut_at $healed_at" >"$WORK/$name.offsets"
}

say "reference run: no fault, one import at the end (the scan rate with no import running)"
run reference 0 0
say "baseline run (no fault)"
run baseline 0
say "run with a ${CUT}s leader cut ($METHOD) from the start of the import phase"
run cut 1
read -r cut_at healed_at <"$WORK/cut.offsets"
say "cut: $(cat "$WORK/cut.txt") at +${cut_at}s"

# rows/s per sample interval, with whether an import round was running
for name in reference baseline cut; do
	awk -F, 'BEGIN {print "t,rows_done,rows_per_s,importing,phase"} NR > 2 && $1 > pt {printf "%.2f,%d,%.0f,%d,%s\n", $1, $2, ($2 - pr) / ($1 - pt), $3, $4} NR > 1 {pt = $1; pr = $2}' \
		"$WORK/$name.csv" >"$OUT/partition-$name.csv"
	cp "$WORK/$name.csv" "$OUT/partition-$name-samples.csv"
done
overlap=$(python3 "$HERE/import_overlap.py" --reference "$OUT/partition-reference-samples.csv" \
	"$OUT/partition-baseline-samples.csv" "$OUT/partition-cut-samples.csv")

read -r tb lb lmb < <(python3 -c 'import json; d=json.load(open("'"$WORK"'/baseline.json")); print(d["seconds"], d["lock_wait_ms"], d["lock_wait_max_ms"])')
read -r tc lc lmc fl acq < <(python3 -c 'import json; d=json.load(open("'"$WORK"'/cut.json")); print(d["seconds"], d["lock_wait_ms"], d["lock_wait_max_ms"], d["fence_losses"], d["lock_acquires"])')
ratio=$(echo "$tc / $tb" | bc -l)
limit=$(echo "1.10 * $tb + 5" | bc -l)

for fmt in png svg; do
	term="pngcairo size 1000,500"
	[ $fmt = svg ] && term="svg size 1000,500"
	gnuplot <<GP
set terminal $term
set output "$OUT/partition.$fmt"
set datafile separator ","
set key top right
set xlabel "seconds since the build started"
set ylabel "rows/s (from bfill status, 250 ms samples)"
set title "bfill add-index, $ROWS rows, index on c, --import-every $IMPORT_EVERY: no fault vs a ${CUT}s etcd leader cut"
set object 1 rect from ${cut_at:-0},graph 0 to ${healed_at:-0},graph 1 fc rgb "#f4cccc" fs solid 0.5 behind
set label 1 "leader cut off (${METHOD})" at ${cut_at:-0},graph 0.95 offset 0.5,0
plot "$OUT/partition-baseline.csv" using 1:3 every ::1 with linespoints lw 2 title sprintf("no fault: %.1f s", $tb), \
     "$OUT/partition-cut.csv" using 1:3 every ::1 with linespoints lw 2 title sprintf("leader cut: %.1f s", $tc)
GP
done

cat <<EOF
rows:                    $ROWS
baseline completion:     $tb s   (lock wait total $lb ms, max $lmb ms)
under a ${CUT}s cut:        $tc s   (lock wait total $lc ms, max $lmc ms, $acq acquisitions, $fl fence losses)
ratio:                   $(printf '%.3f' "$ratio")
target (1.10 x base + 5): $(printf '%.1f' "$limit") s -> $(echo "$tc <= $limit" | bc -l | sed 's/1/met/; s/0/NOT met/')
cut started at +$(printf '%.1f' "$cut_at") s, healed at +$(printf '%.1f' "$healed_at") s
csv: $OUT/partition-baseline.csv $OUT/partition-cut.csv   plot: $OUT/partition.png $OUT/partition.svg
scan rate while an import runs vs between imports (target: ratio >= 0.5):
$overlap
EOF
