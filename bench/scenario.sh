#!/usr/bin/env bash
# The partition scenarios of DESIGN §8, against a real 3-member etcd cluster in network
# namespaces (bench/etcd-cluster.sh). Each ends with `bfill check-index` and a check that
# bfill never died on a signal.
#
#   bench/scenario.sh [options] a|b|c|d|d-timeout
#
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
# Options: --method blackhole|drop|neigh (how to cut; default blackhole), --rows N, --hold S
# (how long a cut or outage lasts), --store DIR (reuse a generated store: the index is dropped
# afterwards), --keep-cluster (leave the cluster running for the next scenario), --log DIR,
# --stall MS (make every import pause MS before its fencing check, through the import.stall
# fault seam, so that a small table still gives a long build).
# Exit: 0 pass, 1 fail, 77 this machine cannot host the cluster (skip).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
BFILL=${BFILL:-$HERE/../bin/bfill}
CLUSTER=$HERE/etcd-cluster.sh
METHOD=blackhole
ROWS=""
HOLD=""
STORE=""
KEEP=0
LOG=""
SCEN=""
while [ $# -gt 0 ]; do
	case $1 in
	--method) METHOD=$2; shift 2 ;;
	--rows) ROWS=$2; shift 2 ;;
	--hold) HOLD=$2; shift 2 ;;
	--store) STORE=$2; shift 2 ;;
	--keep-cluster) KEEP=1; shift ;;
	--log) LOG=$2; shift 2 ;;
	--stall) export BFILL_FAULT="import.stall~$2"; shift 2 ;;
	a|b|c|d|d-timeout) SCEN=$1; shift ;;
	*) echo "scenario: unknown argument '$1'" >&2; exit 2 ;;
	esac
done
[ -n "$SCEN" ] || { echo "usage: $0 [options] a|b|c|d|d-timeout" >&2; exit 2; }
case $SCEN in
a) : "${ROWS:=1000000}" "${HOLD:=15}" ;;
b) : "${ROWS:=10000000}" "${HOLD:=10}" ;;
c) : "${ROWS:=10000000}" "${HOLD:=3}" ;;
d | d-timeout) : "${ROWS:=3000000}" "${HOLD:=20}" ;;
esac

WORK=$(mktemp -d /tmp/bfill-scenario.XXXXXX)
[ -n "$LOG" ] || LOG=$WORK/log
mkdir -p "$LOG"
OWN_STORE=0
if [ -z "$STORE" ]; then
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
	"$CLUSTER" heal >/dev/null 2>&1 || true
	if [ $KEEP -eq 0 ]; then
		"$CLUSTER" teardown >/dev/null 2>&1 || true
	else
		"$CLUSTER" start all >/dev/null 2>&1 || true
	fi
	if [ $OWN_STORE -eq 1 ]; then
		rm -rf "$STORE" "$STORE.sort"
	elif [ -d "$STORE" ]; then
		"$BFILL" drop-index --store "$STORE" --table sbtest1 --name "$NAME" >/dev/null 2>&1 || true
	fi
	rm -rf "$WORK"
	exit $st
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# --- the cluster ------------------------------------------------------------------------------
set +e
EPS=$("$CLUSTER" endpoints 2>/dev/null)
if [ -z "$EPS" ] || ! "$CLUSTER" leader >/dev/null 2>&1; then
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
		--etcd "$EPS" --job-id "$JOB" --json "$@" >"$LOG/build.json" 2>"$LOG/build.err" &
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
		"$BFILL" add-index --store "$STORE" --resume --job-id "$JOB" --etcd "$EPS" --json >"$LOG/build.json" 2>"$LOG/build.err" ||
			fail "--resume failed: $(cat "$LOG/build.err")"
		summary
	fi
	check_index
	;;
esac
say "PASS"
