#!/bin/sh
# Installs bfill into a scratch prefix and uses it the way a program
# outside this tree would, with nothing but pkg-config:
#   - `make install PREFIX=DIR/prefix` (then `make uninstall` at the end);
#   - every installed header compiles on its own, as C11 and as C++11;
#   - every example in examples/ builds against the installed library,
#     linked dynamically (libbfill.so) and statically (libbfill.a with
#     `pkg-config --static`), and the sort_engine example runs from both;
#   - libbfill.so has its soname and exports nothing but bf_* symbols.
# Usage: scripts/install-check.sh DIR   (DIR: empty scratch space; the
# caller removes it). Run from anywhere; prints one line per check and
# exits non-zero, saying what failed, at the first failure.
set -eu

[ $# -eq 1 ] || { echo "usage: scripts/install-check.sh DIR" >&2; exit 2; }
root=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$1"
dir=$(cd "$1" && pwd)
prefix=$dir/prefix
log=$dir/install-check.log
cc=${CC:-cc}
cxx=${CXX:-c++}

fail() {
	echo "install-check: FAIL: $*"
	exit 1
}

command -v pkg-config >/dev/null 2>&1 || fail "pkg-config is missing (make deps installs it)"

# A make of its own: the one that runs this test may have left its
# jobserver in the environment, which this one cannot use.
unset MAKEFLAGS MFLAGS MAKELEVEL
make -C "$root" install PREFIX="$prefix" >"$log" 2>&1 ||
	fail "make install PREFIX=$prefix (log: $log): $(tail -n 3 "$log" | tr '\n' ' ')"
echo "install-check: make install PREFIX=$prefix"

export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
version=$(pkg-config --modversion bfill) || fail "pkg-config finds no bfill in $PKG_CONFIG_PATH"
cflags=$(pkg-config --cflags bfill)
libs=$(pkg-config --libs bfill)
# The static link names the archive itself: with libbfill.so beside it,
# -lbfill would pick the shared library.
static_libs=$(pkg-config --static --libs bfill | sed 's/-lbfill\b/-l:libbfill.a/')
case "$libs" in
*"-L$prefix/lib"*"-lbfill"*) ;;
*) fail "pkg-config --libs bfill says '$libs'" ;;
esac
echo "install-check: bfill.pc $version: $cflags $libs"

# Each public header includes what it uses and has its extern "C" guards.
tu=$dir/header
nheaders=0
for h in "$prefix"/include/bfill/*.h; do
	name=$(basename "$h")
	printf '#include <bfill/%s>\nint main(void) { return 0; }\n' "$name" >"$tu.c"
	cp "$tu.c" "$tu.cc"
	# shellcheck disable=SC2086
	"$cc" -std=c11 -pedantic -Wall -Wextra -Werror $cflags -fsyntax-only "$tu.c" \
		>"$log" 2>&1 || fail "bfill/$name does not compile on its own as C11: $(head -n 3 "$log")"
	if command -v "$cxx" >/dev/null 2>&1; then
		# shellcheck disable=SC2086
		"$cxx" -std=c++11 -pedantic -Wall -Wextra -Werror $cflags -fsyntax-only "$tu.cc" \
			>"$log" 2>&1 ||
			fail "bfill/$name does not compile on its own as C++11: $(head -n 3 "$log")"
	fi
	nheaders=$((nheaders + 1))
done
if command -v "$cxx" >/dev/null 2>&1; then
	echo "install-check: $nheaders headers compile on their own (C11, C++11)"
else
	echo "install-check: $nheaders headers compile on their own (C11; no $cxx for C++)"
fi

mkdir -p "$dir/dynamic" "$dir/static" "$dir/run"
for src in "$root"/examples/*.c; do
	name=$(basename "$src" .c)
	# shellcheck disable=SC2086
	"$cc" -Wall -Wextra -Werror -O2 -o "$dir/dynamic/$name" "$src" $cflags $libs >"$log" 2>&1 ||
		fail "examples/$name.c does not build with pkg-config --cflags --libs bfill: $(head -n 5 "$log")"
	# shellcheck disable=SC2086
	"$cc" -Wall -Wextra -Werror -O2 -o "$dir/static/$name" "$src" $cflags $static_libs \
		>"$log" 2>&1 ||
		fail "examples/$name.c does not build with pkg-config --static --libs bfill: $(head -n 5 "$log")"
	readelf -d "$dir/dynamic/$name" | grep -q 'NEEDED.*\[libbfill\.so\.0\]' ||
		fail "$name (dynamic) does not load libbfill.so.0"
	if readelf -d "$dir/static/$name" | grep -q 'NEEDED.*libbfill'; then
		fail "$name (static) loads libbfill.so"
	fi
	echo "install-check: examples/$name.c builds (dynamic and static)"
done

out=$(LD_LIBRARY_PATH="$prefix/lib" "$dir/dynamic/sort_engine" "$dir/run") ||
	fail "sort_engine (dynamic) failed"
case "$out" in *"in order, none lost"*) ;; *) fail "sort_engine (dynamic) printed '$out'" ;; esac
echo "install-check: dynamic: $out"
out=$("$dir/static/sort_engine" "$dir/run") || fail "sort_engine (static) failed"
case "$out" in *"in order, none lost"*) ;; *) fail "sort_engine (static) printed '$out'" ;; esac
echo "install-check: static: $out"

so="$prefix/lib/libbfill.so"
soname=$(readelf -d "$so" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[ "$soname" = "libbfill.so.0" ] || fail "libbfill.so's soname is '$soname', not libbfill.so.0"
others=$(nm -D --defined-only "$so" | awk '{ print $NF }' | grep -v '^bf_' | head -n 5 |
	tr '\n' ' ' || true)
[ -z "$others" ] || fail "libbfill.so exports symbols other than bf_*: $others"
echo "install-check: $soname exports $(nm -D --defined-only "$so" | wc -l) symbols, all bf_*"

make -C "$root" uninstall PREFIX="$prefix" >"$log" 2>&1 || fail "make uninstall (log: $log)"
left=$(find "$prefix" -type f -o -type l | head -n 5 | tr '\n' ' ')
[ -z "$left" ] || fail "make uninstall left $left"
echo "install-check: make uninstall removed every file"
echo "install-check: ok"
