#!/bin/sh
# make demo: the main job on the embedded default (a local store, the
# in-process lock), start to finish:
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
echo "== bfill add-index: index c_idx on sbtest1(c)"
"$bfill" add-index --store "$store" --table sbtest1 --name c_idx --columns c --json >"$store.json"
python3 - "$store.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
print("job %d %s: %d rows in %.2f s = %.0f rows/s, %d index entries (%.0f MB/s of index data), "
      "%d SST file(s) imported" % (d["job_id"], d["state"], d["rows"], d["seconds"],
      d["rows_per_s"], d["index_keys"], d["mb_per_s"], d["sst_files"]))
PY
rm -f "$store.json"
echo "== bfill check-index: recompute the index from the rows and compare"
"$bfill" check-index --store "$store" --table sbtest1 --name c_idx
echo "== bfill status"
"$bfill" status --store "$store"
