#!/usr/bin/env bash
# The partition scenarios of DESIGN §8, against a real 3-member etcd cluster in network
# namespaces (bench/etcd-cluster.sh). Each ends with `bfill check-index` and a check that
# bfill never died on a signal.
#
#   bench/scenario.sh [options] a|b|c|d|d-timeout|w-a|w-b|w-e|w-f|w-g
#
# A single bfill add-index into a local store (--store):
#   a          TiDB #49265: a build with --import-every 32M (the lock is taken many times);
#              the etcd leader is cut off from its followers just after the build starts and
#              healed after 15 s.
#   b          TiDB #47918: the leader is cut off first; the build starts; 5 s later
#              `bfill status --json` must say running (never queueing); heal; it finishes.
#   c          the leader is cut off for 3 s every 5 s through the whole build.
#   d          all three members stopped for 20 s mid-build, then restarted: the build waits,
#              says so in its status, and finishes.
#   d-timeout  as d, with a --lock-timeout shorter than the outage: the build fails cleanly
#              (exit 1, no index entry), and after the restart --resume finishes it.
#
# A shared job with --workers N `bfill worker` processes (default 3) and 3 bfill-store nodes
# (3 replicas): the w-* scenarios set up a bfill cluster of their own (`cluster init` on the
# namespaced etcd, 3 stores listening on the bridge address 10.213.77.1 in the root namespace,
# `gen`), submit the job with `add-index --detach`, run the workers (--name w1..wN, --mem 256M,
# a sort dir each), sample `bfill status --json` every 250 ms into status.log, and end with
# check-index of every replica, a check that the job and all its subtasks are done, and a check
# that no worker or store died on a signal (except the one the scenario kills on purpose).
#   w-a        TiDB #49265 with workers: --import-every 8M; once a subtask shows rows, the leader
#              is cut off for --hold s (15), then healed; no worker exits, the job finishes.
#   w-b        TiDB #47918 with workers: the workers wait for work (no --job); the leader is
#              cut off; once the partition stands (a new leader, and the cut member knows it has
#              none) the job is submitted; 5 s later status says running with a running
#              subtask; heal --hold s (10) after the submit; status never said queueing after
#              the job's first second.
#   w-e        workers with --lease-ttl 4; once a subtask of a worker shows rows, that worker is
#              SIGKILLed: another worker claims its subtask after the lease ran out (checked in
#              the workers' logs) and the job finishes.
#   w-f        the leader is cut off for --hold s (15) mid-job; 1 s into the cut store 2 is
#              SIGKILLed, and restarted 5 s later.
#   w-g        the workers (default 2) run in client namespaces w1, w2 (etcd-cluster.sh client
#              add) with --lease-ttl 4; w1 is cut off from all etcd members, not from the stores,
#              for --hold s (20) while it holds a subtask: its log says its lease is gone and it
#              left the subtask; the other workers go on; after the heal the job finishes.
#
# Options: --method blackhole|drop|neigh (how to cut; default blackhole; w-g's client cut:
# drop), --rows N (w-a, w-b, w-f: 5000000, w-g: 6000000, w-e: 2000000: the job outlasts the
# fault), --hold S (how long a cut or outage lasts), --store DIR (reuse a
# generated store: the index is dropped afterwards), --keep-cluster (leave the etcd cluster
# running for the next scenario), --log DIR, --stall MS (make every import pause MS before its
# fencing check, through the import.stall fault seam, so that a small table still gives a long
# build; with w-* only the workers get it).
# With w-* also: --workers N, --import-every SIZE (the job's and the workers'), --lease-ttl S
# (the workers'), --slow MS (the scan.slow seam in the workers: a pause per scanned batch),
# --regions R (16), --timeout S (how long the job may take once the fault is over, 900),
# --stuck S (fail when the job has not moved at all for S s, 60, saying which subtask it waits
# for and why), --no-settle (w-b: submit right after the cut, in the election, instead of once
# the partition stands).
# --tls (a, b, c, d, d-timeout): the etcd cluster serves TLS with client-certificate auth
# (certificates from scripts/tls-certs.sh in the work dir, BF_ETCD_TLS_DIR) and bfill talks to
# it with --etcd-cacert/--etcd-cert/--etcd-key; the cluster is set up for the run and torn
# down after it, and a kept cluster of the other kind is replaced.
# The etcd cluster is set up with etcd-cluster.sh's defaults when none runs (BF_ETCD_PRE_VOTE=1
# in the environment: with --pre-vote). BFILL (bin/bfill) and BFILL_STORE (bfill-store next to
# BFILL) name the binaries. The w-* logs: store<i>.log, w<k>.log (a worker's stderr),
# status.log (every 250 ms: "<epoch> <status --json>"), check.json.
# Exit: 0 pass, 1 fail, 77 this machine cannot host the cluster (skip).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
BFILL=${BFILL:-$HERE/../bin/bfill}
BFILL_STORE=${BFILL_STORE:-$(dirname "$BFILL")/bfill-store}
# absolute: the w-* scenarios run in their work dir
case $BFILL in /*) ;; */*) BFILL=$PWD/$BFILL ;; esac
case $BFILL_STORE in /*) ;; */*) BFILL_STORE=$PWD/$BFILL_STORE ;; esac
CLUSTER=$HERE/etcd-cluster.sh
METHOD=""
ROWS=""
HOLD=""
STORE=""
KEEP=0
LOG=""
SCEN=""
STALL=""
SLOW=""
NWORKERS=""
IMPORT_EVERY=""
LEASE_TTL=""
REGIONS=16
TIMEOUT=900
STUCK=60
SETTLE=1
TLS=0
while [ $# -gt 0 ]; do
	case $1 in
	--method) METHOD=$2; shift 2 ;;
	--rows) ROWS=$2; shift 2 ;;
	--hold) HOLD=$2; shift 2 ;;
	--store) STORE=$2; shift 2 ;;
	--keep-cluster) KEEP=1; shift ;;
	--log) LOG=$2; shift 2 ;;
	--stall) STALL=$2; shift 2 ;;
	--slow) SLOW=$2; shift 2 ;;
	--workers) NWORKERS=$2; shift 2 ;;
	--import-every) IMPORT_EVERY=$2; shift 2 ;;
	--lease-ttl) LEASE_TTL=$2; shift 2 ;;
	--regions) REGIONS=$2; shift 2 ;;
	--timeout) TIMEOUT=$2; shift 2 ;;
	--stuck) STUCK=$2; shift 2 ;;
	--no-settle) SETTLE=0; shift ;;
	--tls) TLS=1; shift ;;
	a|b|c|d|d-timeout|w-a|w-b|w-e|w-f|w-g) SCEN=$1; shift ;;
	*) echo "scenario: unknown argument '$1'" >&2; exit 2 ;;
	esac
done
[ -n "$SCEN" ] || { echo "usage: $0 [options] a|b|c|d|d-timeout|w-a|w-b|w-e|w-f|w-g" >&2; exit 2; }
case $SCEN in
a) : "${ROWS:=1000000}" "${HOLD:=15}" ;;
b) : "${ROWS:=10000000}" "${HOLD:=10}" ;;
c) : "${ROWS:=10000000}" "${HOLD:=3}" ;;
d | d-timeout) : "${ROWS:=3000000}" "${HOLD:=20}" ;;
w-a) : "${ROWS:=5000000}" "${HOLD:=15}" "${IMPORT_EVERY:=8M}" ;;
w-b) : "${ROWS:=5000000}" "${HOLD:=10}" ;;
w-e) : "${ROWS:=2000000}" "${HOLD:=0}" "${LEASE_TTL:=4}" ;;
w-f) : "${ROWS:=5000000}" "${HOLD:=15}" ;;
w-g) : "${ROWS:=6000000}" "${HOLD:=20}" "${LEASE_TTL:=4}" "${NWORKERS:=2}" ;;
esac
case $SCEN in
w-*)
	: "${NWORKERS:=3}" "${METHOD:=$([ "$SCEN" = w-g ] && echo drop || echo blackhole)}"
	case $NWORKERS in '' | *[!0-9]*) echo "scenario: --workers needs a number" >&2; exit 2 ;; esac
	[ "$NWORKERS" -ge 1 ] || { echo "scenario: --workers must be at least 1" >&2; exit 2; }
	case $SCEN in w-e | w-g) [ "$NWORKERS" -ge 2 ] || { echo "scenario: $SCEN needs --workers 2 or more" >&2; exit 2; } ;; esac
	[ -z "$STORE" ] || { echo "scenario: --store is for the single-process scenarios" >&2; exit 2; }
	[ $TLS -eq 0 ] || { echo "scenario: --tls is for the single-process scenarios" >&2; exit 2; }
	;;
*)
	: "${METHOD:=blackhole}"
	[ -z "$STALL" ] || export BFILL_FAULT="import.stall~$STALL"
	[ -z "$SLOW" ] || export BFILL_FAULT="${BFILL_FAULT:+$BFILL_FAULT,}scan.slow~$SLOW"
	;;
esac

WORK=$(mktemp -d /tmp/bfill-scenario.XXXXXX)
[ -n "$LOG" ] || LOG=$WORK/log
mkdir -p "$LOG"
LOG=$(cd "$LOG" && pwd)
OWN_STORE=0
if [ -z "$STORE" ] && [ "${SCEN#w-}" = "$SCEN" ]; then
	STORE=$WORK/store
	OWN_STORE=1
fi
NAME=sc_idx_$$
BPID=""

say() { printf '[%s %s] %s\n' "$(date +%T.%3N)" "$SCEN" "$*"; }
fail() { say "FAIL: $*"; exit 1; }

cleanup() {
	local st=$?
	[ -n "$BPID" ] && kill -9 "$BPID" 2>/dev/null || true
	! declare -F w_cleanup >/dev/null || w_cleanup
	"$CLUSTER" heal >/dev/null 2>&1 || true
	if [ $KEEP -eq 0 ]; then
		"$CLUSTER" teardown >/dev/null 2>&1 || true
	else
		"$CLUSTER" start all >/dev/null 2>&1 || true
	fi
	if [ $OWN_STORE -eq 1 ]; then
		rm -rf "$STORE" "$STORE.sort"
	elif [ -n "$STORE" ] && [ -d "$STORE" ]; then
		"$BFILL" drop-index --store "$STORE" --table sbtest1 --name "$NAME" >/dev/null 2>&1 || true
	fi
	rm -rf "$WORK"
	exit $st
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# The w-* scenarios (shared jobs, workers, store nodes) live in their own file.
# shellcheck source=bench/lib/worker_scenarios.sh
. "$HERE/lib/worker_scenarios.sh"

# --- the cluster ------------------------------------------------------------------------------
# With --tls: certificates naming the members (etcd-cluster.sh's addresses .11-.13 of its
# subnet), the client's flags for bfill, and a cluster of its own (the certificates go with
# the work dir).
ETCD_TLS=()
export BF_ETCD_TLS_DIR=""
if [ $TLS -eq 1 ]; then
	net=${BF_CLUSTER_SUBNET:-10.213.77.0/24}
	net=${net%.0/24}
	"$HERE/../scripts/tls-certs.sh" "$WORK/certs" "$net.11" "$net.12" "$net.13" ||
		fail "could not make the certificates (openssl)"
	BF_ETCD_TLS_DIR=$WORK/certs
	ETCD_TLS=(--etcd-cacert "$WORK/certs/ca.pem" --etcd-cert "$WORK/certs/client.pem"
		--etcd-key "$WORK/certs/client.key")
	KEEP=0
fi
set +e
EPS=$("$CLUSTER" endpoints 2>/dev/null)
if [ -z "$EPS" ] || [ "$("$CLUSTER" tls-dir 2>/dev/null)" != "$BF_ETCD_TLS_DIR" ] ||
	! "$CLUSTER" leader >/dev/null 2>&1; then
	"$CLUSTER" teardown >/dev/null 2>&1
	EPS=$("$CLUSTER" setup 2>"$LOG/setup.err" | tail -n 1)
	st=$?
	if [ $st -eq 77 ]; then
		say "SKIP: $(tail -n 1 "$LOG/setup.err")"
		exit 77
	fi
	[ $st -eq 0 ] || fail "cluster setup failed: $(tail -n 3 "$LOG/setup.err")"
fi
set -e
# bfill talks to the leader first (as a PD client does), so cutting the leader off hits the
# member it is using.
LEADER_IP=$("$CLUSTER" leader | cut -d' ' -f2)
EPS="$LEADER_IP:2379,$(echo "$EPS" | tr ',' '\n' | grep -v "^$LEADER_IP:" | paste -sd,)"
say "cluster up: $EPS (leader first)"

case $SCEN in
w-*)
	w_run
	say "PASS"
	exit 0
	;;
esac

# --- the table --------------------------------------------------------------------------------
if [ ! -d "$STORE" ]; then
	"$BFILL" gen --store "$STORE" --rows "$ROWS" --seed 7 --quiet
fi

status_json() { "$BFILL" status --store "$STORE" --job "$1" --json 2>/dev/null || true; }
json_field() { python3 -c 'import json,sys
try: print(json.load(sys.stdin)[sys.argv[1]])
except Exception: print("")' "$1"; }

# Starts the build in the background; sets BPID and JOB.
JOB=$(( ($$ % 100000) + 100000 ))
start_build() {
	"$BFILL" add-index --store "$STORE" --table sbtest1 --name "$NAME" --columns c \
		--etcd "$EPS" ${ETCD_TLS[@]+"${ETCD_TLS[@]}"} --job-id "$JOB" --json "$@" \
		>"$LOG/build.json" 2>"$LOG/build.err" &
	BPID=$!
}

# Waits for the build; fails on a signal; leaves its exit code in $st.
wait_build() {
	st=0
	wait "$BPID" || st=$?
	BPID=""
	if [ $st -gt 128 ]; then
		fail "bfill died on signal $((st - 128)) ($(cat "$LOG/build.err"))"
	fi
}

# Samples the job's status every 200 ms into $LOG/status.log until the build ends.
sample_status() {
	while [ -n "$BPID" ] && kill -0 "$BPID" 2>/dev/null; do
		printf '%s %s\n' "$(date +%s.%N)" "$(status_json "$JOB")" >>"$LOG/status.log"
		sleep 0.2
	done
}

check_index() {
	"$BFILL" check-index --store "$STORE" --table sbtest1 --name "$NAME" >"$LOG/check.out" 2>&1 ||
		fail "check-index: $(cat "$LOG/check.out")"
	say "check-index: $(head -n 1 "$LOG/check.out")"
}

wait_running() {
	for _ in $(seq 1 100); do
		[ "$(status_json "$JOB" | json_field state || true)" = running ] && return 0
		kill -0 "$BPID" 2>/dev/null || return 0
		sleep 0.05
	done
}

summary() {
	say "bfill: $(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print("state %s, %.1f s, %d imports, %d lock acquires, lock wait %d ms (max %d ms), %d fence losses" % (d["state"], d["seconds"], d["imports"], d["lock_acquires"], d["lock_wait_ms"], d["lock_wait_max_ms"], d["fence_losses"]))' "$LOG/build.json" 2>/dev/null || cat "$LOG/build.err")"
}

case $SCEN in
a)
	start_build --import-every 32M
	wait_running
	cut=$("$CLUSTER" partition --method "$METHOD")
	say "cut: $cut"
	sleep "$HOLD"
	"$CLUSTER" heal
	say "healed"
	wait_build
	[ "$st" -eq 0 ] || fail "bfill exited $st: $(cat "$LOG/build.err")"
	summary
	check_index
	;;
b)
	cut=$("$CLUSTER" partition --method "$METHOD")
	say "cut before the build: $cut"
	t0=$(date +%s.%N)
	start_build --import-every 256M
	( sample_status ) &
	SAMPLER=$!
	sleep 5
	state=$(status_json "$JOB" | json_field state || true)
	say "status 5 s after the start: $state"
	[ "$state" = running ] || fail "status says '$state' 5 s after the start (want running)"
	sleep $((HOLD > 5 ? HOLD - 5 : 0))
	"$CLUSTER" heal
	say "healed"
	wait_build
	wait "$SAMPLER" 2>/dev/null || true
	[ "$st" -eq 0 ] || fail "bfill exited $st: $(cat "$LOG/build.err")"
	# Never queueing once a second has passed.
	bad=$(awk -v t0="$t0" '$1 - t0 > 1 && /"state":"queueing"/' "$LOG/status.log" | head -n 1)
	[ -z "$bad" ] || fail "status showed queueing after the first second: $bad"
	summary
	check_index
	;;
c)
	start_build --import-every 256M
	wait_running
	cuts=0
	while kill -0 "$BPID" 2>/dev/null; do
		"$CLUSTER" partition --method "$METHOD" >/dev/null && cuts=$((cuts + 1))
		sleep "$HOLD"
		"$CLUSTER" heal
		sleep 2
	done
	say "$cuts cuts of ${HOLD}s during the build"
	wait_build
	[ "$st" -eq 0 ] || fail "bfill exited $st: $(cat "$LOG/build.err")"
	summary
	check_index
	;;
d | d-timeout)
	extra=()
	[ "$SCEN" = d-timeout ] && extra=(--lock-timeout 8)
	start_build --import-every 64M "${extra[@]}"
	wait_running
	sleep 0.5
	"$CLUSTER" stop all --kill >/dev/null
	say "all members stopped"
	( sample_status ) &
	SAMPLER=$!
	sleep "$HOLD"
	"$CLUSTER" start all >/dev/null
	say "all members restarted"
	wait_build
	wait "$SAMPLER" 2>/dev/null || true
	if grep -q '"waiting":"waiting for etcd lock' "$LOG/status.log"; then
		say "status said: $(grep -o '"waiting":"waiting for etcd lock[^"]*' "$LOG/status.log" | head -n 1 | cut -c12-)"
	else
		fail "status never said it was waiting for the etcd lock"
	fi
	if [ "$SCEN" = d ]; then
		[ "$st" -eq 0 ] || fail "bfill exited $st: $(cat "$LOG/build.err")"
		summary
	else
		[ "$st" -eq 1 ] || fail "with --lock-timeout 8 the build should fail (exit 1), got $st"
		[ "$(wc -l <"$LOG/build.err")" -eq 1 ] || fail "more than one error line: $(cat "$LOG/build.err")"
		say "failed cleanly: $(cat "$LOG/build.err")"
		found=$("$BFILL" check-index --store "$STORE" --table sbtest1 --name "$NAME" --json 2>/dev/null | json_field found || true)
		[ "$found" = 0 ] || fail "the failed build left $found index entries in the store"
		say "no index entry left in the store; resuming"
		"$BFILL" add-index --store "$STORE" --resume --job-id "$JOB" --etcd "$EPS" \
			${ETCD_TLS[@]+"${ETCD_TLS[@]}"} --json >"$LOG/build.json" 2>"$LOG/build.err" ||
			fail "--resume failed: $(cat "$LOG/build.err")"
		summary
	fi
	check_index
	;;
esac
say "PASS"
