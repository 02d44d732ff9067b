#!/bin/sh
# Installs the Debian packages bfill needs, but only those that are missing.
# Usage: scripts/deps.sh [--bench]   (--bench adds the benchmark tools)
set -eu

# package:check  where check is "pc:<pkg-config name>", "cmd:<command>" or
# "run:<script that exits 0 when the package's part is there>"
core="
pkg-config:cmd:pkg-config
librocksdb-dev:pc:rocksdb
rocksdb-tools:cmd:ldb
liblz4-dev:pc:liblz4
libxxhash-dev:pc:libxxhash
libzstd-dev:pc:libzstd
liburcu-dev:pc:liburcu-cds
libgrpc-dev:pc:grpc
libprotobuf-c-dev:pc:libprotobuf-c
protobuf-c-compiler:cmd:protoc-c
etcd-server:cmd:etcd
etcd-client:cmd:etcdctl
libcriterion-dev:pc:criterion
libcjson-dev:pc:libcjson
python3:cmd:python3
openssl:cmd:openssl
iproute2:cmd:ip
iptables:cmd:iptables
procps:cmd:pkill
jq:cmd:jq
bc:cmd:bc
clang:cmd:clang
libclang-rt-dev:run:scripts/have-libfuzzer.sh
"
bench="
hyperfine:cmd:hyperfine
gnuplot-nox:cmd:gnuplot
time:cmd:/usr/bin/time
postgresql-15:cmd:/usr/lib/postgresql/15/bin/initdb
sqlite3:cmd:sqlite3
linux-perf:cmd:perf
"

list=$core
[ "${1:-}" = "--bench" ] && list="$core $bench"

missing=""
for entry in $list; do
	pkg=${entry%%:*}
	rest=${entry#*:}
	kind=${rest%%:*}
	what=${rest#*:}
	case $kind in
	pc) command -v pkg-config >/dev/null 2>&1 && pkg-config --exists "$what" && continue ;;
	cmd) command -v "$what" >/dev/null 2>&1 && continue ;;
	run) "$what" && continue ;;
	esac
	missing="$missing $pkg"
done

if [ -z "$missing" ]; then
	echo "deps: all present"
	exit 0
fi
echo "deps: installing$missing"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
# shellcheck disable=SC2086
$SUDO apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends $missing
