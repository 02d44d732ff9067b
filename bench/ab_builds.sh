#!/usr/bin/env bash
# A/B of bfill builds: the same add-index on one generated table with each
# given bfill binary in turn, N rounds, every run after a `sync`; per binary
# the median wall, user and system time (/usr/bin/time) and add-index's own
# scan and import seconds, with every run's wall time. Used to decide an
# engine change against the commit before it (timings here drift 10-30%
# between runs, so only binaries alternated in one run are compared).
#
#   bench/ab_builds.sh N ROWS BFILL_A BFILL_B...
#
# Settings (env): COL (c), MEM (512M), WORKERS (2), BENCH_DIR (a temp dir,
# removed at the end).
set -euo pipefail
[ $# -ge 4 ] || { echo "usage: bench/ab_builds.sh N ROWS BFILL_A BFILL_B..." >&2; exit 2; }
N=$1 ROWS=$2
shift 2
DIR=${BENCH_DIR:-$(mktemp -d /tmp/bfill-ab.XXXXXX)}
trap 'rm -rf "$DIR"' EXIT
S=$DIR/s
"$1" gen --store "$S" --rows "$ROWS" --seed 1 --quiet
for i in $(seq "$N"); do
	for bin in "$@"; do
		sync
		/usr/bin/time -f "%e %U %S" -o "$DIR/t" "$bin" add-index --store "$S" --table sbtest1 \
			--name ab --columns "${COL:-c}" --mem "${MEM:-512M}" --workers "${WORKERS:-2}" \
			--json >"$DIR/j"
		"$1" drop-index --store "$S" --table sbtest1 --name ab >/dev/null
		echo "$bin $(cat "$DIR/t") $(grep -o '"scan_seconds[^,]*,"import_seconds[^,]*' "$DIR/j")"
	done
done | tee "$DIR/out"
python3 - "$DIR/out" <<'P'
import statistics as st, sys
runs = {}
for line in open(sys.argv[1]):
    f = line.split()
    phases = [float(x.split(':')[1]) for x in f[4].split(',')]
    runs.setdefault(f[0], []).append([float(f[1]), float(f[2]), float(f[3])] + phases)
for b, rs in runs.items():
    cols = list(zip(*rs))
    print("%s: median wall %.3f s, user %.2f, sys %.2f, scan %.3f, import %.3f; walls %s"
          % ((b,) + tuple(st.median(c) for c in cols) + (' '.join('%.2f' % w for w in cols[0]),)))
P
