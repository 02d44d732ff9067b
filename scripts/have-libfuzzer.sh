#!/bin/sh
# Exit status 0 when clang can build a libFuzzer target (clang itself and
# its fuzzer runtime, which Debian ships apart from clang); silent.
# Usage: scripts/have-libfuzzer.sh [CLANG]
cc=${1:-${FUZZ_CC:-clang}}
command -v "$cc" >/dev/null 2>&1 || exit 1
out=$(mktemp /tmp/bfill-libfuzzer.XXXXXX) || exit 1
printf 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n)\n{ (void)d; (void)n; return 0; }\n' |
	"$cc" -x c -fsanitize=fuzzer -o "$out" - >/dev/null 2>&1
st=$?
rm -f "$out"
exit $st
