#!/bin/sh
# Runs every Criterion test binary given, then (after "--") the sanitizer
# builds, then (after a second "--") the fuzz runs, which speak Criterion's
# summary line too, and prints one summary line. Exits non-zero if
# anything failed.
# Each binary's full output goes to build/test-logs/<name>.log; failures
# are echoed.
set -u
logdir=build/test-logs
mkdir -p "$logdir"
export BFILL_BIN="${BFILL_BIN:-$(pwd)/bin/bfill}"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
# Leaks inside the system libraries (gRPC's global state, RocksDB's static
# caches) are not ours to fix.
export LSAN_OPTIONS="${LSAN_OPTIONS:-suppressions=$(pwd)/tests/lsan.supp:print_suppressions=0}"

tested=0 passing=0 failing=0 crashing=0 skipped=0 bins=0 badbins=""
suffix=""
for bin in "$@"; do
	if [ "$bin" = "--" ]; then
		[ -z "$suffix" ] && suffix=" [asan]" || suffix=" [fuzz]"
		continue
	fi
	# BIN@MODE runs BIN with BFILL_TEST_ETCD=MODE: its etcd over TLS
	# ("tls") or with authentication ("auth"), see tests/support/etcd.h.
	mode=""
	case "$bin" in *@*) mode=${bin#*@}; bin=${bin%@*} ;; esac
	name=$(echo "$bin${mode:+@$mode}" | sed 's|^build/||; s|/|_|g')
	log="$logdir/$name.log"
	bins=$((bins + 1))
	start=$(date +%s)
	# A temporary directory of its own: what the tests' commands leave
	# under it (a cluster's live-lock directory outlives the command, by
	# design) goes with it.
	tmp=$(mktemp -d "${TMPDIR:-/tmp}/bft.XXXXXX")
	TMPDIR=$tmp BFILL_TEST_ETCD="$mode" "$bin" --jobs 1 >"$log" 2>&1 </dev/null
	status=$?
	rm -rf "$tmp"
	secs=$(( $(date +%s) - start ))
	line=$(grep 'Synthesis:' "$log" | tail -n 1)
	t=$(echo "$line" | sed -n 's/.*Tested: \([0-9]*\).*/\1/p')
	p=$(echo "$line" | sed -n 's/.*Passing: \([0-9]*\).*/\1/p')
	f=$(echo "$line" | sed -n 's/.*Failing: \([0-9]*\).*/\1/p')
	c=$(echo "$line" | sed -n 's/.*Crashing: \([0-9]*\).*/\1/p')
	s=$(grep -c 'SKIP' "$log")
	tested=$((tested + ${t:-0})); passing=$((passing + ${p:-0}))
	failing=$((failing + ${f:-0})); crashing=$((crashing + ${c:-0}))
	skipped=$((skipped + s))
	if [ $status -ne 0 ] || [ -z "$line" ]; then
		badbins="$badbins $bin"
		echo "FAIL $bin${mode:+@$mode}$suffix (${secs}s, exit $status) -- log: $log"
		grep -E '\[(FAIL|----)\]|Assertion|ERROR|runtime error|Sanitizer' "$log" | head -n 40
	else
		echo "ok   $bin${mode:+@$mode}$suffix (${t:-0} tests, ${secs}s)"
	fi
	grep -E 'SKIP|^ok   fuzz_' "$log" | sed 's/^/     /' | head -n 10
done
echo "bfill tests: $tested tested, $passing passing, $failing failing, $crashing crashing, $skipped skipped ($bins binaries)"
[ -z "$badbins" ] && [ $failing -eq 0 ] && [ $crashing -eq 0 ] || echo "failed:$badbins"
# The last line, in the shape CI reads. A binary that failed without
# counting a failed test (it crashed before its summary) counts as one.
nbad=$((failing + crashing))
[ -n "$badbins" ] && [ $nbad -eq 0 ] && nbad=$(echo "$badbins" | wc -w)
echo "tests: $passing passed, $nbad failed, $skipped skipped"
[ $nbad -eq 0 ] || exit 1
exit 0
