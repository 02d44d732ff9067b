# Sourced by bench/partition_bench.sh and bench/partition_workers.sh: a fresh 3-member etcd
# cluster of bench/etcd-cluster.sh for the run. Needs CLUSTER, WORK and say(); sets EPS (the
# endpoints, leader first) and LEADER_IP; exits 77 (skip) where the harness can't run here.
# The worst case: the clients talk to the leader when it is cut off (as a PD client talks to
# the PD leader), so the leader's endpoint goes first.
hs_setup() {
	local st
	"$CLUSTER" teardown >/dev/null 2>&1 || true
	set +e
	EPS=$("$CLUSTER" setup 2>"$WORK/setup.err" | tail -n 1)
	st=$?
	set -e
	[ $st -eq 77 ] && { say "SKIP: $(tail -n 1 "$WORK/setup.err")"; exit 77; }
	[ $st -eq 0 ] || { say "cluster setup failed"; cat "$WORK/setup.err"; exit 1; }
	LEADER_IP=$("$CLUSTER" leader | cut -d' ' -f2)
	EPS="$LEADER_IP:2379,$(echo "$EPS" | tr ',' '\n' | grep -v "^$LEADER_IP:" | paste -sd,)"
}
