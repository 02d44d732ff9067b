#!/bin/sh
# Runs one libFuzzer target for SECONDS over its corpus and reports it as
# one test in Criterion's words, so that tests/run.sh counts it. From the
# top of the tree: tests/fuzz/run.sh NAME SECONDS
#
# What the fuzzer finds goes to build/fuzz/corpus/NAME; the seeds in
# tests/fuzz/corpus/NAME are read, never written. A crash fails the run
# and leaves its input in build/fuzz/artifacts/NAME/. Without clang and
# its libFuzzer runtime the target is skipped, with a line saying so.
set -u
name=$1
secs=$2
bin=build/fuzz/fuzz_$name
log=build/fuzz/logs/$name.log

synthesis() {
	echo "[====] Synthesis: Tested: $1 | Passing: $2 | Failing: $3 | Crashing: $4"
}

if ! scripts/have-libfuzzer.sh; then
	echo "SKIP fuzz_$name: clang with libFuzzer is not installed (make deps installs clang and libclang-rt-dev)"
	synthesis 0 0 0 0
	exit 0
fi
if [ ! -x "$bin" ]; then
	echo "FAIL fuzz_$name: $bin was not built"
	synthesis 1 0 1 0
	exit 1
fi
mkdir -p "build/fuzz/corpus/$name" "build/fuzz/artifacts/$name" build/fuzz/logs
"$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
	-artifact_prefix="build/fuzz/artifacts/$name/" \
	"build/fuzz/corpus/$name" "tests/fuzz/corpus/$name" >"$log" 2>&1
st=$?

stat() { sed -n "s/^stat::$1: *//p" "$log"; }
last=$(grep -E '^#[0-9]+[[:space:]]+(DONE|pulse|NEW|REDUCE)' "$log" | tail -n 1)
field() { echo "$last" | sed -n "s/.* $1: \([^ ]*\).*/\1/p"; }
if [ $st -eq 0 ]; then
	echo "ok   fuzz_$name: $(stat number_of_executed_units) runs in ${secs}s" \
		"($(stat average_exec_per_sec)/s), cov $(field cov) ft $(field ft)," \
		"corpus $(field corp)"
	synthesis 1 1 0 0
	exit 0
fi
echo "FAIL fuzz_$name (exit $st) -- log: $log"
grep -E 'ERROR|SUMMARY|runtime error|deadly signal|Test unit written|^artifact' "$log" | head -n 20
synthesis 1 0 0 1
exit 1
