#!/usr/bin/env bash
# Scenario (a) of bench/scenario.sh (TiDB #49265: the etcd leader cut off from its followers
# while the imports keep taking the lock) N times in a row, alternating the cut methods. Counts
# passes, crashes (a process killed by a signal) and index mismatches (check-index failing).
#
#   bench/repeat_a.sh [N]              (default 20) one bfill, a 1M-row local store, --import-every 32M
#   bench/repeat_a.sh --workers [N]    three `bfill worker` processes sharing the job over three
#                                      store nodes (scenario w-a): 200,000 rows, a 6 s cut, imports
#                                      every 1M with a 500 ms stall each (the short form of make test)
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
BFILL=${BFILL:-$HERE/../bin/bfill}
WORKERS=0
if [ "${1:-}" = --workers ]; then
	WORKERS=1
	shift
fi
N=${1:-20}
WORK=$(mktemp -d /tmp/bfill-repeat-a.XXXXXX)
trap '"$HERE/etcd-cluster.sh" teardown >/dev/null 2>&1; rm -rf "$WORK"' EXIT
[ $WORKERS = 1 ] || "$BFILL" gen --store "$WORK/store" --rows 1000000 --seed 5 --quiet
pass=0 crash=0 mismatch=0 other=0
methods=(blackhole drop)
for i in $(seq 1 "$N"); do
	m=${methods[$(( (i - 1) % 2 ))]}
	if [ $WORKERS = 1 ]; then
		out=$("$HERE/scenario.sh" w-a --method "$m" --rows 200000 --hold 6 --import-every 1M \
			--stall 500 --stuck 30 --timeout 75 --keep-cluster 2>&1)
	else
		out=$("$HERE/scenario.sh" a --method "$m" --store "$WORK/store" --keep-cluster 2>&1)
	fi
	st=$?
	[ $st -eq 77 ] && { echo "$out" | tail -n 1; exit 77; }
	line=$(echo "$out" | grep -E 'bfill: state|job [0-9]+ done|FAIL' | head -n 1 | sed 's/^\[[^]]*\] //')
	if [ $st -eq 0 ]; then
		pass=$((pass + 1))
	elif echo "$out" | grep -qE 'died on signal|on signal'; then
		crash=$((crash + 1))
	elif echo "$out" | grep -q 'check-index'; then
		mismatch=$((mismatch + 1))
	else
		other=$((other + 1))
	fi
	printf 'run %2d %-9s exit %d  %s\n' "$i" "$m" "$st" "$line"
	[ $st -eq 0 ] || echo "$out" | tail -n 5 | sed 's/^/    /'
done
echo "runs: $N  passed: $pass  crashes: $crash  index mismatches: $mismatch  other failures: $other"
[ $pass -eq "$N" ]
