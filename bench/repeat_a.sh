#!/usr/bin/env bash
# Scenario (a) of bench/scenario.sh (TiDB #49265: the etcd leader cut off from its followers
# while a build with --import-every 32M keeps taking the lock) N times in a row, alternating the
# cut methods, on one 1M-row table. Counts passes, crashes (bfill killed by a signal) and index
# mismatches (check-index failing).
#
#   bench/repeat_a.sh [N]        (default 20)
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
BFILL=${BFILL:-$HERE/../bin/bfill}
N=${1:-20}
WORK=$(mktemp -d /tmp/bfill-repeat-a.XXXXXX)
trap '"$HERE/etcd-cluster.sh" teardown >/dev/null 2>&1; rm -rf "$WORK"' EXIT
"$BFILL" gen --store "$WORK/store" --rows 1000000 --seed 5 --quiet
pass=0 crash=0 mismatch=0 other=0
methods=(blackhole drop)
for i in $(seq 1 "$N"); do
	m=${methods[$(( (i - 1) % 2 ))]}
	out=$("$HERE/scenario.sh" a --method "$m" --store "$WORK/store" --keep-cluster 2>&1)
	st=$?
	[ $st -eq 77 ] && { echo "$out" | tail -n 1; exit 77; }
	line=$(echo "$out" | grep -E 'bfill: state|FAIL' | head -n 1 | sed 's/^\[[^]]*\] //')
	if [ $st -eq 0 ]; then
		pass=$((pass + 1))
	elif echo "$out" | grep -q 'died on signal'; then
		crash=$((crash + 1))
	elif echo "$out" | grep -q 'check-index'; then
		mismatch=$((mismatch + 1))
	else
		other=$((other + 1))
	fi
	printf 'run %2d %-9s exit %d  %s\n' "$i" "$m" "$st" "$line"
done
echo "runs: $N  passed: $pass  crashes: $crash  index mismatches: $mismatch  other failures: $other"
[ $pass -eq "$N" ]
