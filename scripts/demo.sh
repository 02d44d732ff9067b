#!/bin/sh
# make demo: the main job on the embedded default, start to finish.
#   1. generate a sysbench table of N rows into DIR (fresh each time)
#   2. build an index on c with bfill add-index
#   3. verify it independently with bfill check-index
set -eu
store=${1:-./demo-store}
rows=${2:-1000000}
bfill=${BFILL:-bin/bfill}

rm -rf "$store" "$store.sort"
echo "== bfill gen: $rows rows into $store"
"$bfill" gen --store "$store" --rows "$rows" --seed 1
echo "== verify the rows"
n=$("$bfill" dump --store "$store" --table sbtest1 | tail -n +2 | wc -l)
[ "$n" -eq "$rows" ] || { echo "demo: expected $rows rows, found $n" >&2; exit 1; }
echo "rows: $n"
