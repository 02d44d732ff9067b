#!/bin/sh
# Load rate of `bfill gen`: hyperfine over a fresh store per run (median,
# min, max), then one run under /usr/bin/time -v for the peak RSS.
#
#   bench/gen.sh [ROWS ...]            default: 1000000 10000000
#
# Builds nothing: it runs bin/bfill (make bin/bfill first).
# Environment:
#   BFILL      the binary                     (default bin/bfill)
#   BENCH_DIR  where the stores go            (default a new dir under ${TMPDIR:-/tmp})
#   RUNS       timed runs per size            (default 10 up to 1M rows, 5 above)
#   WARMUP     untimed runs first             (default 1)
#   SEED       --seed                         (default 1)
#   GEN_ARGS   extra gen options, e.g. "--threads 1" or "--compression lz4"
set -eu

bfill=${BFILL:-bin/bfill}
warmup=${WARMUP:-1}
seed=${SEED:-1}
gen_args=${GEN_ARGS:-}
[ $# -gt 0 ] || set -- 1000000 10000000

die() { echo "bench/gen.sh: $*" >&2; exit 1; }
[ -x "$bfill" ] || die "$bfill not found or not executable (run make bin/bfill first)"
command -v hyperfine >/dev/null 2>&1 || die "hyperfine is not installed"
command -v python3 >/dev/null 2>&1 || die "python3 is not installed (used to read hyperfine's JSON)"
[ -x /usr/bin/time ] || die "/usr/bin/time is not installed (GNU time, for peak RSS)"
bfill=$(cd "$(dirname "$bfill")" && pwd)/$(basename "$bfill")

if [ -n "${BENCH_DIR:-}" ]; then
	mkdir -p "$BENCH_DIR"
	dir=$(mktemp -d "$BENCH_DIR/bfill-bench-gen.XXXXXX")
else
	dir=$(mktemp -d "${TMPDIR:-/tmp}/bfill-bench-gen.XXXXXX")
fi
trap 'rm -rf "$dir"' EXIT
trap 'exit 130' INT TERM

echo "== machine"
echo "cpu:    $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //') x $(nproc) online"
echo "memory: $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
echo "disk:   $(df -h "$dir" | awk 'NR == 2 { print $1 " (" $2 ", " $4 " free)" }'), mounted at $(df "$dir" | awk 'NR == 2 { print $6 }')"
echo "kernel: $(uname -sr)"
echo "bfill:  $bfill"
echo "load:   $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min) before the runs"

for rows in "$@"; do
	case $rows in
	'' | *[!0-9]*) die "ROWS must be a non-negative integer, got '$rows'" ;;
	esac
	runs=${RUNS:-$([ "$rows" -le 1000000 ] && echo 10 || echo 5)}
	store="$dir/store-$rows"
	json="$dir/hyperfine-$rows.json"
	cmd="'$bfill' gen --store '$store' --rows $rows --seed $seed --quiet $gen_args"

	echo
	echo "== bfill gen, $rows rows: $runs runs after $warmup warm-up, fresh store each run"
	echo "command: $cmd"
	hyperfine --style basic --warmup "$warmup" --runs "$runs" \
		--prepare "rm -rf '$store'" --export-json "$json" "$cmd"
	python3 - "$json" "$rows" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))["results"][0]
rows = int(sys.argv[2])
med, lo, hi = r["median"], r["min"], r["max"]
print("wall time: median %.3f s, min %.3f s, max %.3f s, mean %.3f s +- %.3f s"
      % (med, lo, hi, r["mean"], r["stddev"] or 0))
print("rows/s:    median %.0f (best %.0f, worst %.0f)" % (rows / med, rows / lo, rows / hi))
print("each run:  " + " ".join("%.3f" % t for t in r["times"]) + " s")
EOF

	echo "-- one more run under /usr/bin/time -v (bfill's own timing in the JSON line)"
	rm -rf "$store"
	/usr/bin/time -v -o "$dir/time-$rows.txt" "$bfill" gen --store "$store" --rows "$rows" \
		--seed "$seed" --json $gen_args
	grep -E 'Elapsed \(wall clock\)|Maximum resident set size|Percent of CPU' "$dir/time-$rows.txt" |
		sed 's/^[[:space:]]*//'
	awk '/Maximum resident set size/ { printf "peak RSS: %.1f MiB\n", $NF / 1024 }' "$dir/time-$rows.txt"
	echo "store on disk: $(du -sh "$store" | cut -f1)"
	rm -rf "$store"
done
echo
echo "load:   $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min) after the runs"
