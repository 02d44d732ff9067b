#!/usr/bin/env bash
# etcd-cluster.sh — a 3-member etcd cluster that can be partitioned, for bfill's fault scenarios.
#
# Topology (defaults; see "Settings" below to override):
#
#   root namespace ── bridge bfe-br, 10.213.77.1/24 (clients, benchmarks and tests run here)
#        │
#        ├── veth bfe-m1h ══ eth0 10.213.77.11 in netns bfe-m1 ── etcd member m1
#        ├── veth bfe-m2h ══ eth0 10.213.77.12 in netns bfe-m2 ── etcd member m2
#        ├── veth bfe-m3h ══ eth0 10.213.77.13 in netns bfe-m3 ── etcd member m3
#        └── veth bfe-w1h ══ eth0 10.213.77.21 in netns bfe-w1 ── a client ("client add w1"), e.g.
#                                                                a bfill worker run with ip netns exec
#
# Each member listens on its namespace address only: clients on :2379, peers on :2380. The /24
# exists only on the bridge and inside the namespaces; there is no default route in a namespace,
# no NAT and no IP forwarding — everything is one L2 segment. A "partition" cuts a member (by
# default the leader) off from the OTHER MEMBERS only, with rules installed inside the member
# namespaces; the root namespace still reaches all three, which is exactly the PD leader↔follower
# partition of TiDB #49265 / #47918: clients must move away from the member without a leader.
# Client namespaces ("client add NAME") put a client on the bridge at an address of its own, so
# that it alone can be cut off from every member ("client cut NAME") while it still reaches the
# root namespace (where bfill-store nodes listen) and the other clients: a worker that loses
# etcd but not the stores.
#
# Usage: etcd-cluster.sh <command> [args]     (run "etcd-cluster.sh help" for the list)
#
# Exit codes: 0 ok; 1 failure; 2 usage error; 3 no leader (leader/partition); 77 this machine
# cannot host the harness (no root, no network namespaces, etcd missing) — callers should SKIP.
#
# Everything the harness creates is named from BF_CLUSTER_PREFIX and recorded under the state
# dir; teardown removes exactly that, and kills only processes whose command line names the state
# dir, and whatever still runs inside a client namespace (SIGTERM, SIGKILL after 3 s). Mutating
# commands (setup, partition, heal, stop, start, teardown, client) must not run concurrently
# against the same cluster.
set -eu

PROG=${0##*/}

# ---------------------------------------------------------------------------------------------
# Settings (environment). setup records the network/timing settings in $STATE/cluster.conf;
# later commands read that file, so they act on the cluster that is actually running.
#   BF_CLUSTER_DIR        state dir: pid files, data dirs, logs   (/tmp/bfill-etcd-cluster)
#   BF_CLUSTER_SUBNET     private /24 for the cluster             (10.213.77.0/24)
#   BF_CLUSTER_PREFIX     name prefix for netns/links, [a-z0-9]{1,10} (bfe)
#   BF_ETCD_HEARTBEAT_MS  etcd --heartbeat-interval               (100, etcd's default)
#   BF_ETCD_ELECTION_MS   etcd --election-timeout                 (1000, etcd's default)
#   BF_ETCD_PRE_VOTE      1 = etcd --pre-vote                     (0, etcd 3.4's default)
#   BF_CLUSTER_TIMEOUT    seconds to wait for a healthy cluster   (30)
#   BF_STOP_TIMEOUT       seconds between SIGTERM and SIGKILL     (10)
#   BF_ETCD / BF_ETCDCTL  binaries                                (etcd / etcdctl)
#   BF_ETCD_TLS_DIR       TLS for clients (peers stay plain): certificates as
#                         scripts/tls-certs.sh makes them, naming the members' IPs; members
#                         serve https:// with --client-cert-auth, and etcdctl here shows
#                         client.pem                              (none: plain text)
# ---------------------------------------------------------------------------------------------
STATE=${BF_CLUSTER_DIR:-/tmp/bfill-etcd-cluster}
SUBNET=${BF_CLUSTER_SUBNET:-10.213.77.0/24}
PREFIX=${BF_CLUSTER_PREFIX:-bfe}
HEARTBEAT_MS=${BF_ETCD_HEARTBEAT_MS:-100}
ELECTION_MS=${BF_ETCD_ELECTION_MS:-1000}
PRE_VOTE=${BF_ETCD_PRE_VOTE:-0}
TIMEOUT_S=${BF_CLUSTER_TIMEOUT:-30}
TLS_DIR=${BF_ETCD_TLS_DIR:-}
STOP_TIMEOUT_S=${BF_STOP_TIMEOUT:-10}
ETCD=${BF_ETCD:-etcd}
ETCDCTL=${BF_ETCDCTL:-etcdctl}
TOKEN=""
FWD_RULE=0          # 1 if setup had to let bridged traffic through the root FORWARD chain

MEMBERS="1 2 3"
CLIENT_PORT=2379
PEER_PORT=2380
CUT_CHAIN=BFCUT     # iptables chain inside a member namespace (method "drop")
EXIT_NOLEADER=3
EXIT_SKIP=77

PATH=$PATH:/usr/sbin:/sbin
export ETCDCTL_API=3

# ---------------------------------------------------------------------------------------------
# small helpers
# ---------------------------------------------------------------------------------------------
say()  { printf '%s: %s\n' "$PROG" "$*" >&2; }
die()  { say "error: $*"; exit 1; }
usage_die() { say "$*"; say "run '$PROG help' for usage"; exit 2; }
skip() { say "SKIP: $*"; exit $EXIT_SKIP; }
now_ms() { date +%s%3N; }
quiet() { "$@" >/dev/null 2>&1; }

is_uint() { case ${1:-} in ''|*[!0-9]*) return 1;; esac; }

# Derived names. Interface names are limited to 15 bytes: "<prefix>-m1h" ≤ 14 with a 10-byte prefix.
derive() {
    case $PREFIX in ''|*[!a-z0-9]*) usage_die "BF_CLUSTER_PREFIX must be [a-z0-9]{1,10}: '$PREFIX'";; esac
    [ ${#PREFIX} -le 10 ] || usage_die "BF_CLUSTER_PREFIX longer than 10 characters: '$PREFIX'"
    local re='^(25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])\.(25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])\.(25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])\.0/24$'
    [[ $SUBNET =~ $re ]] || usage_die "BF_CLUSTER_SUBNET must look like A.B.C.0/24: '$SUBNET'"
    NET=${SUBNET%.0/24}
    BRIDGE=$PREFIX-br
    ROOT_IP=$NET.1
    case $STATE in /*) ;; *) STATE=$PWD/$STATE;; esac
    STATE=${STATE%/}
    [ -n "$STATE" ] || usage_die "BF_CLUSTER_DIR must not be /"
    CONF=$STATE/cluster.conf
    case $TLS_DIR in ''|/*) ;; *) TLS_DIR=$PWD/$TLS_DIR;; esac
    CUTS=$STATE/cuts
    CLIENTS=$STATE/clients          # "<name> <ip>" per client namespace
    CLIENT_CUTS=$STATE/client-cuts  # "<method> <name>" per client cut
}

name_of() { echo "m$1"; }
ns_of()   { echo "$PREFIX-m$1"; }
ip_of()   { echo "$NET.1$1"; }
host_if() { echo "$PREFIX-m$1h"; }      # root side of the member's veth (on the bridge)
mdir()    { echo "$STATE/m$1"; }
ep_of()   { echo "$(ip_of "$1"):$CLIENT_PORT"; }

endpoints() {
    local i out=""
    for i in $MEMBERS; do out=${out:+$out,}$(ep_of "$i"); done
    echo "$out"
}

# Accepts m2, 2, <prefix>-m2, 10.213.77.12 or 10.213.77.12:2379; prints the member index.
resolve_member() {
    local a=${1%:*} i
    for i in $MEMBERS; do
        case $a in "m$i"|"$i"|"$(ns_of "$i")"|"$(ip_of "$i")") echo "$i"; return 0;; esac
    done
    usage_die "unknown member '$1' (use m1, m2, m3, 1..3 or a member IP)"
}

others() { local i; for i in $MEMBERS; do [ "$i" = "$1" ] || echo "$i"; done; }

load_conf() {
    derive
    if [ -f "$CONF" ]; then
        TLS_DIR=""  # what the running cluster was set up with, not the environment's
        # shellcheck disable=SC1090
        . "$CONF"
        derive
    fi
}

write_conf() {
    cat >"$CONF" <<EOF
# written by $PROG setup; read by every later command
SUBNET=$SUBNET
PREFIX=$PREFIX
HEARTBEAT_MS=$HEARTBEAT_MS
ELECTION_MS=$ELECTION_MS
PRE_VOTE=$PRE_VOTE
TLS_DIR=$TLS_DIR
TOKEN=$TOKEN
FWD_RULE=$FWD_RULE
EOF
}

require_setup() {
    [ -f "$CONF" ] || die "no cluster under $STATE (run '$PROG setup' first)"
}

ectl() {
    if [ -n "$TLS_DIR" ]; then
        set -- --cacert="$TLS_DIR/ca.pem" --cert="$TLS_DIR/client.pem" --key="$TLS_DIR/client.key" "$@"
    fi
    "$ETCDCTL" --dial-timeout=1s --command-timeout="${ECTL_TIMEOUT:-2s}" "$@"
}

client_scheme() { if [ -n "$TLS_DIR" ]; then echo https; else echo http; fi; }

# ---------------------------------------------------------------------------------------------
# processes: a member's process is identified by "--data-dir=$STATE/mN/data" in its cmdline,
# so a stale pid file or a pid reused by another program is never killed.
# ---------------------------------------------------------------------------------------------
cmdline_of() { tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null || true; }

# True if pid $1 is a live process of member $2. A zombie's cmdline is empty, so it never matches.
# The pattern comes from stdin so that grep's own argv cannot match itself.
pid_is_member() {   # pid index
    printf '%s\n' "--data-dir=$(mdir "$2")/data" | grep -qzxF -f - "/proc/$1/cmdline" 2>/dev/null
}

# Every live process of member i: the pid file, then a /proc scan (covers stale pid files).
member_pids() {
    local i=$1 p f
    f=$(mdir "$i")/etcd.pid
    {
        if [ -f "$f" ]; then
            p=$(cat "$f" 2>/dev/null || true)
            if is_uint "$p" && pid_is_member "$p" "$i"; then echo "$p"; fi
        fi
        # shellcheck disable=SC2062  # /proc/[0-9]*/cmdline is a file glob, not a pattern
        printf '%s\n' "--data-dir=$(mdir "$i")/data" \
            | grep -lzxF -f - /proc/[0-9]*/cmdline 2>/dev/null | cut -d/ -f3
    } | sort -un
}

member_alive() { [ -n "$(member_pids "$1")" ]; }

pids_of_members() { local k; for k in "$@"; do member_pids "$k"; done; }

start_member() {    # index
    local i=$1 d name state peers="" j etcd_bin tls=()
    d=$(mdir "$i"); name=$(name_of "$i")
    [ -z "$TLS_DIR" ] || tls=(--cert-file="$TLS_DIR/server.pem" --key-file="$TLS_DIR/server.key"
                              --trusted-ca-file="$TLS_DIR/ca.pem" --client-cert-auth)
    etcd_bin=$(command -v "$ETCD") || die "etcd binary '$ETCD' not found"
    mkdir -p "$d"
    if member_alive "$i"; then say "$name already running"; return 0; fi
    for j in $MEMBERS; do peers=${peers:+$peers,}$(name_of "$j")=http://$(ip_of "$j"):$PEER_PORT; done
    state=new; [ -d "$d/data/member" ] && state=existing
    rm -f "$d/etcd.pid"
    echo "=== $(date '+%F %T') start $name (cluster-state $state)" >>"$d/etcd.log"
    # setsid: the member must outlive this script and its caller's process group. The shell
    # writes its own pid and execs ip-netns-exec, which execs env, which execs etcd: one pid.
    setsid sh -c 'echo $$ >"$1"; shift; exec "$@"' sh "$d/etcd.pid" \
        ip netns exec "$(ns_of "$i")" \
        env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME="$d" \
        "$etcd_bin" --name="$name" --data-dir="$d/data" \
            --listen-client-urls="$(client_scheme)://$(ip_of "$i"):$CLIENT_PORT" \
            --advertise-client-urls="$(client_scheme)://$(ip_of "$i"):$CLIENT_PORT" \
            ${tls[@]+"${tls[@]}"} \
            --listen-peer-urls="http://$(ip_of "$i"):$PEER_PORT" \
            --initial-advertise-peer-urls="http://$(ip_of "$i"):$PEER_PORT" \
            --initial-cluster="$peers" --initial-cluster-state="$state" \
            --initial-cluster-token="$TOKEN" \
            --heartbeat-interval="$HEARTBEAT_MS" --election-timeout="$ELECTION_MS" \
            --pre-vote="$([ "$PRE_VOTE" = 1 ] && echo true || echo false)" \
            --logger=zap --log-outputs=stderr \
        </dev/null >>"$d/etcd.log" 2>&1 &
    local n=0
    while [ ! -s "$d/etcd.pid" ] && [ $n -lt 50 ]; do sleep 0.1; n=$((n + 1)); done
    [ -s "$d/etcd.pid" ] || die "$name: no pid file after 5 s (see $d/etcd.log)"
}

# SIGTERM to the given members, SIGKILL to whatever is left after timeout_s; returns 0 once
# none is left. Followers go first, the leader last: a leader told to stop hands leadership to a
# connected peer and waits up to 5 s + 2 × election timeout for it to take over, which never
# happens if that peer is stopping too; once it has noticed that its peers are gone (a few
# heartbeats) it has nobody to hand over to and exits at once.
stop_members() {    # timeout_s index...
    local t=$1 i p n=0 left leader followers=""
    shift
    if [ $# -gt 1 ] && leader=$(current_leader); then
        for i in "$@"; do [ "$i" = "$leader" ] || followers="$followers $i"; done
        if [ "$followers" != " $*" ]; then
            # shellcheck disable=SC2086
            stop_members "$t" $followers || return 1
            sleep "$(awk -v h="$HEARTBEAT_MS" 'BEGIN { s = 3 * h / 1000; print (s < 0.3) ? 0.3 : s }')"
            set -- "$leader"
        fi
    fi
    for p in $(pids_of_members "$@"); do kill -TERM "$p" 2>/dev/null || true; done
    while [ -n "$(pids_of_members "$@")" ] && [ $n -lt $((t * 10)) ]; do sleep 0.1; n=$((n + 1)); done
    left=$(pids_of_members "$@")
    if [ -n "$left" ]; then
        say "still running after SIGTERM + ${t}s, sending SIGKILL to pid(s)" $left
        for p in $left; do kill -KILL "$p" 2>/dev/null || true; done
        n=0
        while [ -n "$(pids_of_members "$@")" ] && [ $n -lt 50 ]; do sleep 0.1; n=$((n + 1)); done
    fi
    for i in "$@"; do
        [ -z "$(member_pids "$i")" ] || { say "$(name_of "$i") survived SIGKILL"; return 1; }
        rm -f "$(mdir "$i")/etcd.pid"
    done
}

# ---------------------------------------------------------------------------------------------
# cluster state as seen from the root namespace
# ---------------------------------------------------------------------------------------------
# One line per member that answers:  <index> <member_id> <leader_id> <raft_term> <raft_index>
# (ids in decimal; leader_id 0 = the member knows no leader). Members that don't answer are absent.
status_rows() {
    local i pids=""
    for i in $MEMBERS; do
        # in parallel: a member that does not answer costs its timeout once, not three times
        ( ECTL_TIMEOUT=${ECTL_TIMEOUT:-1s} ectl --endpoints="$(ep_of "$i")" endpoint status -w fields \
            2>/dev/null | awk -v idx="$i" '
                /^"MemberID"/ { mid = $3 }
                /^"Leader"/   { lid = $3 }
                /^"RaftTerm"/ { term = $3 }
                /^"RaftIndex"/{ ridx = $3 }
                END { if (mid != "") print idx, mid, lid, term, ridx }' || true ) &
        pids="$pids $!"
    done
    # shellcheck disable=SC2086  # only these: a plain "wait" would also wait for members started here
    wait $pids
}

# Prints the leader's index if a quorum (2 of 3) of answering members name the same leader at
# the same term and that leader itself answers and agrees; else returns 1.
# Reads status rows from stdin (so one snapshot can serve several questions). IDs are 64-bit:
# awk must compare them as strings ("" concatenation), never as doubles.
leader_from_rows() {
    awk '
        { idx[NR] = $1; mid[NR] = $2 ""; lid[NR] = $3 ""; term[NR] = $4 ""; n = NR }
        END {
            for (a = 1; a <= n; a++) {
                if (lid[a] == "0") continue
                votes = 0
                for (b = 1; b <= n; b++) if (lid[b] == lid[a] && term[b] == term[a]) votes++
                if (votes < 2) continue
                for (b = 1; b <= n; b++) if (mid[b] == lid[a] && lid[b] == lid[a]) { print idx[b]; exit 0 }
            }
            exit 1
        }'
}

current_leader() { status_rows | leader_from_rows; }

# Converged: all three answer, name the same leader, sit at the same term, and pass a
# linearizable health check (which needs a working leader).
converged() {
    local rows
    rows=$(status_rows)
    [ "$(printf '%s\n' "$rows" | grep -c .)" = 3 ] || return 1
    printf '%s\n' "$rows" | awk '
        NR == 1 { l = $3 ""; t = $4 "" } { if ($3 "" != l || $4 "" != t || $3 "" == "0") bad = 1 }
        END { exit bad }' || return 1
    ECTL_TIMEOUT=1s quiet ectl --endpoints="$(endpoints)" endpoint health
}

wait_healthy() {    # timeout_s
    local deadline=$(( $(now_ms) + $1 * 1000 )) i
    while :; do
        for i in $MEMBERS; do
            member_alive "$i" || {
                say "$(name_of "$i") exited; last lines of $(mdir "$i")/etcd.log:"
                tail -n 15 "$(mdir "$i")/etcd.log" >&2 || true
                return 1
            }
        done
        converged && return 0
        [ "$(now_ms)" -lt "$deadline" ] || { say "cluster not healthy after $1 s"; return 1; }
        sleep 0.2
    done
}

# ---------------------------------------------------------------------------------------------
# network
# ---------------------------------------------------------------------------------------------
netns_exists() { ip netns list 2>/dev/null | awk '{print $1}' | grep -qx "$1"; }
link_exists()  { quiet ip link show dev "$1"; }

# Can this process create network namespaces, bridges and veths? Exit 77 if not.
preflight() {
    command -v ip >/dev/null 2>&1 || skip "iproute2 ('ip') not found"
    command -v "$ETCD" >/dev/null 2>&1 || skip "etcd binary '$ETCD' not found (Debian: apt-get install etcd-server)"
    command -v "$ETCDCTL" >/dev/null 2>&1 || skip "etcdctl binary '$ETCDCTL' not found (Debian: apt-get install etcd-client)"
    command -v setsid >/dev/null 2>&1 || skip "setsid (util-linux) not found"
    local probe=$PREFIX-probe$$ err
    if ! err=$(ip netns add "$probe" 2>&1); then
        skip "cannot create a network namespace (need root / CAP_SYS_ADMIN + CAP_NET_ADMIN): $err"
    fi
    if ! err=$(ip -n "$probe" link add "$PREFIX-pb" type bridge 2>&1); then
        quiet ip netns del "$probe" || true
        skip "cannot create a bridge in a network namespace: $err"
    fi
    if ! err=$(ip -n "$probe" link add "$PREFIX-pa" type veth peer name "$PREFIX-pz" 2>&1); then
        quiet ip netns del "$probe" || true
        skip "cannot create a veth pair: $err"
    fi
    quiet ip netns del "$probe" || true
}

# Bridged IPv4 frames go through the root FORWARD chain when br_netfilter is loaded; on hosts
# whose FORWARD policy drops (Docker does this) the members could not reach each other.
open_root_forward() {
    [ "$(cat /proc/sys/net/bridge/bridge-nf-call-iptables 2>/dev/null || echo 0)" = 1 ] || return 0
    command -v iptables >/dev/null 2>&1 || return 0
    iptables -w -S FORWARD 2>/dev/null | head -n1 | grep -qx -- '-P FORWARD ACCEPT' && return 0
    iptables -w -I FORWARD -i "$BRIDGE" -o "$BRIDGE" -m comment --comment "$PREFIX-bridge" -j ACCEPT
    FWD_RULE=1
}

close_root_forward() {
    command -v iptables >/dev/null 2>&1 || return 0
    local n=0
    while [ $n -lt 20 ] && quiet iptables -w -D FORWARD -i "$BRIDGE" -o "$BRIDGE" \
            -m comment --comment "$PREFIX-bridge" -j ACCEPT; do n=$((n + 1)); done
}

build_network() {
    local i ns hif
    ip link add "$BRIDGE" type bridge
    ip link set "$BRIDGE" up
    ip addr add "$ROOT_IP/24" dev "$BRIDGE"
    open_root_forward
    write_conf
    for i in $MEMBERS; do
        ns=$(ns_of "$i"); hif=$(host_if "$i")
        ip netns add "$ns"
        ip link add "$hif" type veth peer name "$PREFIX-m${i}n"
        ip link set "$PREFIX-m${i}n" netns "$ns"
        ip link set "$hif" master "$BRIDGE" up
        ip -n "$ns" link set lo up
        ip -n "$ns" link set "$PREFIX-m${i}n" name eth0
        ip -n "$ns" addr add "$(ip_of "$i")/24" dev eth0
        ip -n "$ns" link set eth0 up
    done
}

# The subnet must not be in use by anything else on this host.
check_free() {
    local i
    if ip -4 -o addr show 2>/dev/null | awk '{print $4}' | grep -q "^${NET//./\\.}\\."; then
        die "subnet $SUBNET already has an address on this host (a leftover cluster: run '$PROG teardown'; else set BF_CLUSTER_SUBNET)"
    fi
    if ip -4 route show 2>/dev/null | grep -q "^${NET//./\\.}\\."; then
        die "subnet $SUBNET is already routed on this host (a leftover cluster: run '$PROG teardown'; else set BF_CLUSTER_SUBNET)"
    fi
    link_exists "$BRIDGE" && die "link $BRIDGE exists (run '$PROG teardown' or set BF_CLUSTER_PREFIX)"
    for i in $MEMBERS; do
        netns_exists "$(ns_of "$i")" && die "netns $(ns_of "$i") exists (run '$PROG teardown' or set BF_CLUSTER_PREFIX)"
        link_exists "$(host_if "$i")" && die "link $(host_if "$i") exists (run '$PROG teardown')"
    done
    return 0
}

# --- cuts. All rules live inside member and client namespaces, never in the root namespace. --
fake_mac() { printf '02:bf:de:ad:00:%02x' "${1##*.}"; }    # from the peer IP's last byte

# Make namespace $1 unable to exchange packets with the IPs given, with one command per namespace
# so that the cut lands at once.
cut_rules_in() {    # netns method ip...
    local ns=$1 m=$2 a
    shift 2
    case $m in
    blackhole)
        for a in "$@"; do echo "route replace blackhole $a/32"; done | ip -n "$ns" -batch - ;;
    drop)
        {
            echo '*filter'
            if ! quiet ip netns exec "$ns" iptables -w -S "$CUT_CHAIN"; then
                echo ":$CUT_CHAIN - [0:0]"
                echo "-I INPUT -j $CUT_CHAIN"
                echo "-I OUTPUT -j $CUT_CHAIN"
            fi
            for a in "$@"; do
                echo "-A $CUT_CHAIN -s $a/32 -j DROP"
                echo "-A $CUT_CHAIN -d $a/32 -j DROP"
            done
            echo COMMIT
        } | ip netns exec "$ns" iptables-restore -w --noflush ;;
    neigh)
        # frames for the peer go to a MAC no interface owns; the bridge floods them and nobody
        # accepts them. A permanent entry is not overwritten by incoming ARP.
        for a in "$@"; do
            echo "neigh replace $a lladdr $(fake_mac "$a") dev eth0 nud permanent"
        done | ip -n "$ns" -batch - ;;
    esac
}

# Make the namespace of member $1 unable to exchange packets with the members named after the
# method.
cut_from() {        # index method peer_index...
    local ns m=$2 j ips=""
    ns=$(ns_of "$1")
    shift 2
    for j in "$@"; do ips="$ips $(ip_of "$j")"; done
    # shellcheck disable=SC2086
    cut_rules_in "$ns" "$m" $ips
}

# Remove every cut this harness can make from one namespace (whether recorded or not).
clear_cuts_in() {   # index
    clear_cuts_ns "$(ns_of "$1")"
}

clear_cuts_ns() {   # netns
    local ns=$1 r n
    netns_exists "$ns" || return 0
    ip -n "$ns" route show type blackhole 2>/dev/null | awk '{print $2}' | while read -r r; do
        case $r in "$NET".*) ip -n "$ns" route del blackhole "$r" 2>/dev/null || true;; esac
    done
    if command -v iptables >/dev/null 2>&1 && quiet ip netns exec "$ns" iptables -w -S "$CUT_CHAIN"; then
        n=0; while [ $n -lt 20 ] && quiet ip netns exec "$ns" iptables -w -D INPUT -j "$CUT_CHAIN"; do n=$((n + 1)); done
        n=0; while [ $n -lt 20 ] && quiet ip netns exec "$ns" iptables -w -D OUTPUT -j "$CUT_CHAIN"; do n=$((n + 1)); done
        ip netns exec "$ns" iptables -w -F "$CUT_CHAIN" 2>/dev/null || true
        ip netns exec "$ns" iptables -w -X "$CUT_CHAIN" 2>/dev/null || true
    fi
    ip -n "$ns" neigh show nud permanent 2>/dev/null | awk '{print $1}' | while read -r r; do
        case $r in "$NET".*) ip -n "$ns" neigh del "$r" dev eth0 2>/dev/null || true;; esac
    done
}

# Cut member $1 from the other members (both directions, rules in all three namespaces).
do_partition() {    # index method
    local i=$1 m=$2 j
    case $m in blackhole|drop|neigh) ;; *) usage_die "unknown method '$m' (blackhole|drop|neigh)";; esac
    if [ "$m" = drop ] && ! command -v iptables-restore >/dev/null 2>&1; then die "method drop needs iptables"; fi
    echo "$m $i" >>"$CUTS"      # record first: heal must find even a half-installed cut
    # The member's own namespace first: that alone already isolates it in both directions (its
    # replies cannot get out); the rules on the other side make the cut symmetric.
    # shellcheck disable=SC2046
    cut_from "$i" "$m" $(others "$i")
    for j in $(others "$i"); do cut_from "$j" "$m" "$i"; done
}

do_heal() {
    local i c
    for i in $MEMBERS; do clear_cuts_in "$i"; done
    rm -f "$CUTS"
    for c in $(client_names); do clear_cuts_ns "$(client_ns "$c")"; done
    rm -f "$CLIENT_CUTS"
}

cut_of() {          # index -> methods that cut it, comma-separated, or "no"
    local out
    out=$([ -f "$CUTS" ] && awk -v i="$1" '$2 == i { print $1 }' "$CUTS" | sort -u | paste -sd, - || true)
    echo "${out:-no}"
}

# ---------------------------------------------------------------------------------------------
# client namespaces: <prefix>-<name> on the bridge, address $NET.21.. (or --ip); cut off from the
# members only, by rules inside the client namespace.
# ---------------------------------------------------------------------------------------------
client_ns() { echo "$PREFIX-$1"; }
client_if() { echo "$PREFIX-$1h"; }     # root side of the client's veth (on the bridge)

check_client_name() {
    case $1 in ''|*[!a-z0-9]*) usage_die "a client name is [a-z0-9]+: '$1'";; esac
    case $1 in m[0-9]*|br|probe*) usage_die "client name '$1' is reserved for the harness";; esac
    [ ${#PREFIX} -le 10 ] && [ $(( ${#PREFIX} + ${#1} + 2 )) -le 15 ] \
        || usage_die "client name '$1' too long: '$(client_if "$1")' must fit in 15 bytes"
}

client_ip() { [ -f "$CLIENTS" ] && awk -v n="$1" '$1 == n { print $2; exit }' "$CLIENTS"; }

# Recorded clients, and any namespace <prefix>-<x> (not a member) with an address in the subnet:
# a client whose record was lost still goes at teardown.
client_names() {
    local ns n
    {
        [ -f "$CLIENTS" ] && awk '{ print $1 }' "$CLIENTS"
        for ns in $(ip netns list 2>/dev/null | awk '{print $1}'); do
            case $ns in "$PREFIX"-*) ;; *) continue;; esac
            n=${ns#"$PREFIX"-}
            case $n in ''|*[!a-z0-9]*|m[0-9]*|br|probe*) continue;; esac
            ip -n "$ns" -4 -o addr show 2>/dev/null | awk '{print $4}' | grep -q "^${NET//./\\.}\\." \
                && echo "$n"
        done
    } | awk 'NF && !seen[$0]++'
}

client_cut_of() {   # name -> method(s) or "no"
    local out
    out=$([ -f "$CLIENT_CUTS" ] && awk -v n="$1" '$2 == n { print $1 }' "$CLIENT_CUTS" | sort -u | paste -sd, - || true)
    echo "${out:-no}"
}

require_client() {  # name
    [ -n "$(client_ip "$1")" ] && netns_exists "$(client_ns "$1")" \
        || die "no client '$1' (run '$PROG client add $1' first)"
}

# Lowest free address from .21 on (.1 is the root namespace, .11-.13 the members).
free_client_ip() {
    local k used
    used=$([ -f "$CLIENTS" ] && awk '{ print $2 }' "$CLIENTS" || true)
    for k in $(seq 21 254); do
        printf '%s\n' "$used" | grep -qxF "$NET.$k" || { echo "$NET.$k"; return 0; }
    done
    die "no free client address left in $SUBNET"
}

client_add() {      # name [ip]
    local name=$1 ip=${2:-} ns hif i
    ns=$(client_ns "$name"); hif=$(client_if "$name")
    [ -z "$(client_ip "$name")" ] || die "client '$name' exists"
    netns_exists "$ns" && die "netns $ns exists (run '$PROG client del $name')"
    link_exists "$hif" && die "link $hif exists (run '$PROG client del $name')"
    if [ -z "$ip" ]; then
        ip=$(free_client_ip)
    else
        case $ip in *.*) ;; *) ip=$NET.$ip;; esac
        case $ip in "$NET".*) ;; *) usage_die "client address $ip is not in $SUBNET";; esac
        is_uint "${ip##*.}" && [ "${ip##*.}" -ge 2 ] && [ "${ip##*.}" -le 254 ] \
            || usage_die "bad client address '$ip'"
        for i in $MEMBERS; do [ "$ip" != "$(ip_of "$i")" ] || usage_die "$ip is member m$i's address"; done
        [ -z "$(awk -v a="$ip" '$2 == a' "$CLIENTS" 2>/dev/null)" ] || usage_die "$ip is taken by another client"
    fi
    echo "$name $ip" >>"$CLIENTS"      # record first: teardown must find even a half-built client
    ip netns add "$ns"
    ip link add "$hif" type veth peer name "$PREFIX-${name}n"
    ip link set "$PREFIX-${name}n" netns "$ns"
    ip link set "$hif" master "$BRIDGE" up
    ip -n "$ns" link set lo up
    ip -n "$ns" link set "$PREFIX-${name}n" name eth0
    ip -n "$ns" addr add "$ip/24" dev eth0
    ip -n "$ns" link set eth0 up
    echo "$ns $ip"
}

client_cut() {      # name method
    local name=$1 m=$2 i ips=""
    case $m in blackhole|drop|neigh) ;; *) usage_die "unknown method '$m' (blackhole|drop|neigh)";; esac
    if [ "$m" = drop ] && ! command -v iptables-restore >/dev/null 2>&1; then die "method drop needs iptables"; fi
    for i in $MEMBERS; do ips="$ips $(ip_of "$i")"; done
    echo "$m $name" >>"$CLIENT_CUTS"
    # shellcheck disable=SC2086
    cut_rules_in "$(client_ns "$name")" "$m" $ips
    echo "$name $(client_ip "$name") $m"
}

client_heal() {     # name
    clear_cuts_ns "$(client_ns "$1")"
    drop_line "$CLIENT_CUTS" 2 "$1"
}

# Removes a client namespace: whatever still runs in it gets SIGTERM, SIGKILL after 3 s (it would
# be left without a network anyway), then the veth and the namespace go. Never fails.
client_del() {      # name
    local name=$1 ns p n=0
    ns=$(client_ns "$name")
    if netns_exists "$ns"; then
        for p in $(ip netns pids "$ns" 2>/dev/null || true); do kill -TERM "$p" 2>/dev/null || true; done
        while [ -n "$(ip netns pids "$ns" 2>/dev/null || true)" ] && [ $n -lt 30 ]; do sleep 0.1; n=$((n + 1)); done
        for p in $(ip netns pids "$ns" 2>/dev/null || true); do kill -KILL "$p" 2>/dev/null || true; done
    fi
    link_exists "$(client_if "$name")" && { ip link del "$(client_if "$name")" 2>/dev/null || true; }
    netns_exists "$ns" && { ip netns del "$ns" 2>/dev/null || true; }
    drop_line "$CLIENTS" 1 "$name"
    drop_line "$CLIENT_CUTS" 2 "$name"
}

# Removes the lines of file whose field k is value; the file goes when nothing is left.
drop_line() {       # file k value
    [ -f "$1" ] || return 0
    awk -v k="$2" -v v="$3" '$k != v' "$1" >"$1.tmp" && mv "$1.tmp" "$1"
    [ -s "$1" ] || rm -f "$1"
}

cmd_client() {
    require_setup
    local sub=${1:-list} name="" method=drop ip="" c
    [ $# -gt 0 ] && shift
    while [ $# -gt 0 ]; do
        case $1 in
        --method) method=${2:?--method needs blackhole|drop|neigh}; shift ;;
        --method=*) method=${1#*=} ;;
        --ip) ip=${2:?--ip needs an address}; shift ;;
        --ip=*) ip=${1#*=} ;;
        -*) usage_die "client $sub: unknown option '$1'" ;;
        *) [ -z "$name" ] || usage_die "client $sub: one client at a time"; name=$1 ;;
        esac
        shift
    done
    case $sub in
    add|cut|del) [ -n "$name" ] || usage_die "client $sub needs a NAME"; check_client_name "$name" ;;
    heal) [ -n "$name" ] || name=all; [ "$name" = all ] || check_client_name "$name" ;;
    list) ;;
    *) usage_die "unknown client command '$sub' (add|cut|heal|del|list)" ;;
    esac
    case $sub in
    add) client_add "$name" "$ip" ;;
    cut) require_client "$name"; client_cut "$name" "$method" ;;
    heal)
        if [ "$name" = all ]; then
            for c in $(client_names); do client_heal "$c"; done
        else
            require_client "$name"; client_heal "$name"
        fi ;;
    del) client_del "$name" ;;
    list)
        for c in $(client_names); do
            printf '%s %s %s cut=%s processes=%s\n' "$c" "$(client_ns "$c")" "$(client_ip "$c" || true)" \
                "$(client_cut_of "$c")" "$(ip netns pids "$(client_ns "$c")" 2>/dev/null | grep -c . || true)"
        done ;;
    esac
}

# ---------------------------------------------------------------------------------------------
# teardown: idempotent, never fails on something already gone
# ---------------------------------------------------------------------------------------------
do_teardown() {
    local i ns p c left=0
    # clients first: whatever runs there is a client of the cluster, not part of it
    for c in $(client_names); do client_del "$c"; done
    # heal first so that members shut down gracefully instead of waiting for cut-off peers
    for i in $MEMBERS; do clear_cuts_in "$i"; done
    # shellcheck disable=SC2086
    stop_members 3 $MEMBERS || left=1
    # Anything else still running inside our namespaces that belongs to this state dir.
    for i in $MEMBERS; do
        ns=$(ns_of "$i")
        netns_exists "$ns" || continue
        for p in $(ip netns pids "$ns" 2>/dev/null || true); do
            case $(cmdline_of "$p") in *"$STATE/"*) kill -KILL "$p" 2>/dev/null || true;; esac
        done
    done
    for i in $MEMBERS; do
        link_exists "$(host_if "$i")" && { ip link del "$(host_if "$i")" 2>/dev/null || true; }
        netns_exists "$(ns_of "$i")" && { ip netns del "$(ns_of "$i")" 2>/dev/null || true; }
    done
    link_exists "$BRIDGE" && { ip link del "$BRIDGE" 2>/dev/null || true; }
    close_root_forward
    # Remove only what the harness writes: never rm -rf a directory someone pointed us at.
    if [ -d "$STATE" ]; then
        for i in $MEMBERS; do rm -rf "$(mdir "$i")"; done
        rm -f "$CONF" "$CUTS" "$CLIENTS" "$CLIENT_CUTS"
        rmdir "$STATE" 2>/dev/null || say "note: $STATE not empty, left in place"
    fi
    for i in $MEMBERS; do
        netns_exists "$(ns_of "$i")" && { say "netns $(ns_of "$i") still exists"; left=1; }
        link_exists "$(host_if "$i")" && { say "link $(host_if "$i") still exists"; left=1; }
        [ -z "$(member_pids "$i")" ] || { say "$(name_of "$i") still running"; left=1; }
    done
    for c in $(client_names); do say "client netns $(client_ns "$c") still exists"; left=1; done
    link_exists "$BRIDGE" && { say "bridge $BRIDGE still exists"; left=1; }
    return $left
}

# ---------------------------------------------------------------------------------------------
# commands
# ---------------------------------------------------------------------------------------------
cmd_setup() {
    while [ $# -gt 0 ]; do
        case $1 in
        --pre-vote) PRE_VOTE=1 ;;
        --no-pre-vote) PRE_VOTE=0 ;;
        --heartbeat-interval) HEARTBEAT_MS=${2:?--heartbeat-interval needs ms}; shift ;;
        --heartbeat-interval=*) HEARTBEAT_MS=${1#*=} ;;
        --election-timeout) ELECTION_MS=${2:?--election-timeout needs ms}; shift ;;
        --election-timeout=*) ELECTION_MS=${1#*=} ;;
        --timeout) TIMEOUT_S=${2:?--timeout needs seconds}; shift ;;
        --timeout=*) TIMEOUT_S=${1#*=} ;;
        *) usage_die "setup: unknown option '$1'" ;;
        esac
        shift
    done
    is_uint "$HEARTBEAT_MS" && is_uint "$ELECTION_MS" && is_uint "$TIMEOUT_S" \
        || usage_die "timings must be whole numbers (ms for etcd, s for --timeout)"
    [ "$ELECTION_MS" -ge $((HEARTBEAT_MS * 5)) ] \
        || usage_die "etcd wants --election-timeout ≥ 5 × --heartbeat-interval"
    derive
    [ -e "$CONF" ] && die "a cluster is already set up under $STATE (run '$PROG teardown' first)"
    if [ -n "$TLS_DIR" ]; then
        for f in ca.pem server.pem server.key client.pem client.key; do
            [ -r "$TLS_DIR/$f" ] || usage_die "BF_ETCD_TLS_DIR: no $TLS_DIR/$f (scripts/tls-certs.sh makes them)"
        done
    fi
    preflight
    check_free
    mkdir -p "$STATE"
    TOKEN=$PREFIX-$(date +%s)-$$
    write_conf

    SETUP_DONE=0
    trap 'setup_failed' EXIT
    build_network
    local i
    for i in $MEMBERS; do start_member "$i"; done
    wait_healthy "$TIMEOUT_S" || die "setup failed: the etcd cluster did not become healthy"
    SETUP_DONE=1
    trap - EXIT
    endpoints
}

setup_failed() {
    local rc=$? i
    [ "${SETUP_DONE:-1}" = 0 ] || return 0
    say "setup failed (exit $rc); member logs:"
    for i in $MEMBERS; do
        [ -f "$(mdir "$i")/etcd.log" ] || continue
        echo "--- $(name_of "$i"):" >&2
        tail -n 10 "$(mdir "$i")/etcd.log" >&2 || true
    done
    if [ "${BF_CLUSTER_KEEP:-0}" = 1 ]; then
        say "BF_CLUSTER_KEEP=1: leaving everything in place; run '$PROG teardown' when done"
    else
        say "tearing down the half-built cluster"
        do_teardown || true
    fi
    exit 1
}

cmd_leader() {
    require_setup
    local i
    i=$(current_leader) || { say "no leader (no quorum agrees on one)"; exit $EXIT_NOLEADER; }
    echo "$(name_of "$i") $(ip_of "$i")"
}

cmd_partition() {
    require_setup
    local member="" method=blackhole i
    while [ $# -gt 0 ]; do
        case $1 in
        --method) method=${2:?--method needs blackhole|drop|neigh}; shift ;;
        --method=*) method=${1#*=} ;;
        -*) usage_die "partition: unknown option '$1'" ;;
        *) [ -z "$member" ] || usage_die "partition: one member at a time"; member=$1 ;;
        esac
        shift
    done
    if [ -n "$member" ]; then
        i=$(resolve_member "$member")
    else
        i=$(current_leader) || { say "no leader to partition"; exit $EXIT_NOLEADER; }
    fi
    do_partition "$i" "$method"
    echo "$(name_of "$i") $(ip_of "$i") $method"
}

cmd_heal() { require_setup; do_heal; }

members_arg() {     # "" | all | member -> indices
    case ${1:-all} in all) echo "$MEMBERS";; *) resolve_member "$1";; esac
}

cmd_stop() {
    require_setup
    local target=all t=$STOP_TIMEOUT_S i p targets
    while [ $# -gt 0 ]; do
        case $1 in
        --kill) t="kill" ;;
        --timeout) t=${2:?--timeout needs seconds}; shift ;;
        --timeout=*) t=${1#*=} ;;
        -*) usage_die "stop: unknown option '$1'" ;;
        *) target=$1 ;;
        esac
        shift
    done
    targets=$(members_arg "$target")
    if [ "$t" = kill ]; then
        # a crash, not a shutdown: no leadership hand-over, no clean close of the WAL
        for i in $targets; do
            for p in $(member_pids "$i"); do kill -KILL "$p" 2>/dev/null || true; done
        done
        t=5
    fi
    is_uint "$t" || usage_die "stop: --timeout needs whole seconds"
    # shellcheck disable=SC2086
    stop_members "$t" $targets
}

cmd_start() {
    require_setup
    local target=all wait=1 i targets
    while [ $# -gt 0 ]; do
        case $1 in --no-wait) wait=0 ;; -*) usage_die "start: unknown option '$1'" ;; *) target=$1 ;; esac
        shift
    done
    targets=$(members_arg "$target")
    for i in $targets; do start_member "$i"; done
    [ $wait = 1 ] || return 0
    local all_up=1 j
    for i in $MEMBERS; do member_alive "$i" || all_up=0; done
    if [ $all_up = 1 ] && [ -s "$CUTS" ]; then
        # a cut member cannot catch up: wait for a quorum with a leader only
        T0=$(now_ms)
        poll_until current_leader >/dev/null || die "no leader within ${TIMEOUT_S}s after start"
        say "cuts in place ($(awk '{print "m"$2" "$1}' "$CUTS" | paste -sd, -)): waited for a leader only"
        return 0
    fi
    if [ $all_up = 0 ]; then
        # No quorum to wait for; just make sure what we started stays up.
        sleep 1
        for j in $targets; do
            member_alive "$j" || die "$(name_of "$j") exited (see $(mdir "$j")/etcd.log)"
        done
        return 0
    fi
    wait_healthy "$TIMEOUT_S" || die "start: the etcd cluster did not become healthy"
}

cmd_status() {
    require_setup
    local rows leader i alive row lead term
    rows=$(status_rows)
    leader=$(printf '%s\n' "$rows" | leader_from_rows || true)
    for i in $MEMBERS; do
        alive=no; member_alive "$i" && alive=yes
        row=$(printf '%s\n' "$rows" | awk -v i="$i" '$1 == i')
        lead=no; [ "$i" = "$leader" ] && lead=yes
        term=-; [ -n "$row" ] && term=$(echo "$row" | awk '{print $4}')
        [ -n "$row" ] || [ $alive = no ] || alive=unresponsive
        printf '%s %s alive=%s leader=%s partitioned=%s term=%s\n' \
            "$(name_of "$i")" "$(ip_of "$i")" "$alive" "$lead" "$(cut_of "$i")" "$term"
    done
}

cmd_teardown() { do_teardown; }

usage() {
    cat <<EOF
usage: $PROG <command> [args]

  setup [--pre-vote] [--heartbeat-interval MS] [--election-timeout MS] [--timeout S]
                      build the namespaces and bridge, start m1..m3, wait until healthy,
                      print the client endpoints (comma-separated)
  endpoints           print the client endpoints (host:port; with TLS, a client needs the CA)
  tls-dir             print the certificates' directory of a TLS cluster ("" when plain)
  leader              print "<name> <ip>" of the leader; exit $EXIT_NOLEADER if there is none
  partition [MEMBER] [--method blackhole|drop|neigh]
                      cut MEMBER (default: the leader) off from the other members; the root
                      namespace still reaches it. Prints "<name> <ip> <method>"
  heal                undo every cut (of members and of clients)
  stop [MEMBER|all] [--timeout S | --kill]
                      SIGTERM members, SIGKILL after S (default \$BF_STOP_TIMEOUT=10) seconds;
                      --kill: SIGKILL at once (a crash). While cuts are in place a graceful
                      stop is unreliable (a cut member may ignore SIGTERM; a leader may try to
                      hand over to a cut peer for 5 s + 2 x election timeout): heal or --kill
  start [MEMBER|all] [--no-wait]
                      restart members on their data dirs; waits for health if all three run
  status              one line per member: name ip alive= leader= partitioned= term=
  client add NAME [--ip A.B.C.D|N]
                      a client namespace <prefix>-NAME on the bridge (address .21, .22, ... of
                      the subnet unless --ip); prints "<netns> <ip>". Run a client there with
                      "ip netns exec <netns> CMD": it reaches the members, the root namespace
                      (e.g. bfill-store nodes listening on the bridge's .1) and other clients
  client cut NAME [--method drop|blackhole|neigh]
                      cut client NAME off from all three members (default method: drop), with
                      rules inside its namespace only; the root namespace and other clients stay
                      reachable. Prints "<name> <ip> <method>"
  client heal [NAME|all]
                      undo the cuts of one client (default: all clients)
  client del NAME     remove a client namespace; what still runs in it gets SIGTERM, SIGKILL
                      after 3 s
  client list         one line per client: name netns ip cut= processes=
  teardown            remove everything, client namespaces included (idempotent, safe after a
                      failed setup)
  check [--pre-vote] [--methods "blackhole drop neigh"] [--rounds N] [--hold S]
        [--heartbeat-interval MS] [--election-timeout MS]
                      self-test on a cluster of its own: for each method, cut the leader, time
                      the election of a new one, check that the root namespace still reaches the
                      old leader, hold the cut S (5) seconds, heal, time the convergence; tears
                      everything down (BF_CLUSTER_KEEP=1 keeps it)
  help

MEMBER is m1|m2|m3, 1|2|3, or a member IP. Settings come from BF_CLUSTER_DIR,
BF_CLUSTER_SUBNET, BF_CLUSTER_PREFIX, BF_ETCD_HEARTBEAT_MS, BF_ETCD_ELECTION_MS,
BF_ETCD_PRE_VOTE, BF_CLUSTER_TIMEOUT, BF_STOP_TIMEOUT (see the header of this file).
Exit codes: 0 ok, 1 failure, 2 usage, $EXIT_NOLEADER no leader, $EXIT_SKIP cannot host the harness (skip).
EOF
}

# ---------------------------------------------------------------------------------------------
# check: the self-test
# ---------------------------------------------------------------------------------------------
# Wait (polling every 100 ms) until predicate "$@" holds; print elapsed ms since $T0.
# Returns 1 after $TIMEOUT_S.
poll_until() {
    local deadline=$(( T0 + TIMEOUT_S * 1000 ))
    while :; do
        "$@" && { echo $(( $(now_ms) - T0 )); return 0; }
        [ "$(now_ms)" -lt "$deadline" ] || return 1
        sleep 0.1
    done
}

# Like poll_until, but the predicate must then keep holding for window_ms; prints the elapsed ms
# (since $T0) at which the final, stable streak began.
poll_stable() {     # window_ms predicate...
    local window=$1 since="" now deadline=$(( T0 + TIMEOUT_S * 1000 ))
    shift
    while :; do
        if "$@"; then
            now=$(now_ms)
            [ -n "$since" ] || since=$now
            [ $(( now - since )) -lt "$window" ] || { echo $(( since - T0 )); return 0; }
        else
            since=""
        fi
        [ "$(now_ms)" -lt "$deadline" ] || return 1
        sleep 0.1
    done
}

new_leader_elected() {  # old_index  — a leader other than the old one, agreed by a quorum
    local l
    l=$(current_leader) || return 1
    [ "$l" != "$1" ]
}

# How a follower's attempt to open a peer connection to the cut member ends: "<ms>ms/<outcome>".
probe_peer_connect() {  # from_index to_index
    local t0 out rc ms
    t0=$(now_ms)
    out=$(ip netns exec "$(ns_of "$1")" timeout 2 bash -c \
        "exec 3<>/dev/tcp/$(ip_of "$2")/$PEER_PORT" 2>&1) && rc=0 || rc=$?
    ms=$(( $(now_ms) - t0 ))
    if [ $rc = 0 ]; then echo "${ms}ms/connected"
    elif [ $rc = 124 ]; then echo "${ms}ms/timeout"
    else echo "${ms}ms/$(printf '%s' "$out" | sed -n 's/.*: \([^:]*\)$/\1/p' | tail -n1 | tr ' ' '_')"
    fi
}

median() { sort -n | awk '{ v[NR] = $1 } END { if (NR == 0) { print "-"; exit }
    print (NR % 2) ? v[(NR + 1) / 2] : int((v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }

# "<median> [<min>..<max>]" of the numeric values of key $2 over RESULT lines of method $1.
summarize() {       # method key file
    local v
    v=$(awk -v m="method=$1" -v k="$2=" '$2 == m {
            for (f = 3; f <= NF; f++) if (index($f, k) == 1) { x = substr($f, length(k) + 1); if (x ~ /^[0-9]+$/) print x }
        }' "$3" | sort -n)
    [ -n "$v" ] || { echo "-"; return; }
    echo "$(printf '%s\n' "$v" | median) [$(printf '%s\n' "$v" | head -n1)..$(printf '%s\n' "$v" | tail -n1)]"
}

cmd_check() {
    local methods="blackhole drop neigh" rounds=1 hold_s=5 setup_args=""
    while [ $# -gt 0 ]; do
        case $1 in
        --pre-vote) setup_args="$setup_args --pre-vote"; PRE_VOTE=1 ;;
        --methods) methods=${2:?--methods needs a list}; shift ;;
        --methods=*) methods=${1#*=} ;;
        --rounds) rounds=${2:?--rounds needs a number}; shift ;;
        --rounds=*) rounds=${1#*=} ;;
        --hold) hold_s=${2:?--hold needs seconds}; shift ;;
        --hold=*) hold_s=${1#*=} ;;
        --heartbeat-interval|--election-timeout) setup_args="$setup_args $1 ${2:?$1 needs ms}"; shift ;;
        --heartbeat-interval=*|--election-timeout=*) setup_args="$setup_args $1" ;;
        *) usage_die "check: unknown option '$1'" ;;
        esac
        shift
    done
    is_uint "$rounds" && [ "$rounds" -ge 1 ] || usage_die "--rounds must be ≥ 1"
    is_uint "$hold_s" || usage_die "--hold needs whole seconds"
    local m
    for m in $methods; do case $m in blackhole|drop|neigh) ;; *) usage_die "unknown method '$m'";; esac; done
    case " $methods " in *" drop "*) command -v iptables-restore >/dev/null 2>&1 || skip "method drop needs iptables";; esac
    derive
    [ -e "$CONF" ] && die "a cluster is already set up under $STATE; the self-test needs its own (set BF_CLUSTER_DIR, BF_CLUSTER_PREFIX and BF_CLUSTER_SUBNET, or tear it down)"
    preflight

    local results
    results=$(mktemp "${TMPDIR:-/tmp}/bfill-etcd-check.XXXXXX")
    # From here on, whatever happens, tear down (unless asked to keep the cluster for a look).
    if [ "${BF_CLUSTER_KEEP:-0}" = 1 ]; then
        # shellcheck disable=SC2064
        trap "rm -f '$results'; say 'BF_CLUSTER_KEEP=1: cluster left in place'" EXIT
    else
        # shellcheck disable=SC2064
        trap "do_teardown >/dev/null 2>&1 || true; rm -f '$results'" EXIT
    fi
    # setup runs as its own process: it exercises the command line, and its EXIT trap is its own
    # shellcheck disable=SC2086
    "$0" setup $setup_args >/dev/null || { say "check: setup failed"; exit 1; }
    load_conf
    say "cluster up: $(endpoints) (pre-vote=$PRE_VOTE, heartbeat ${HEARTBEAT_MS} ms, election ${ELECTION_MS} ms, cut held ${hold_s} s)"

    local r old new_idx final elect conv put_ms put_err st_ok st_leader st_self probe old_term \
        mid_term new_term cut_ms fails=0 tmp log off campaigns precampaigns top_term rows
    for r in $(seq 1 "$rounds"); do
        for m in $methods; do
            # every round starts from a converged cluster that has been quiet for a second
            T0=$(now_ms)
            poll_stable 1000 converged >/dev/null || { say "round $r $m: not converged before the cut"; fails=$((fails + 1)); continue; }
            old=$(current_leader) || { say "round $r $m: no leader before the cut"; fails=$((fails + 1)); continue; }
            old_term=$(status_rows | awk -v i="$old" '$1 == i {print $4}')
            log=$(mdir "$old")/etcd.log
            off=$(( $(stat -c %s "$log") + 1 ))

            # --- cut, and time until a quorum agrees on a different leader
            T0=$(now_ms)
            do_partition "$old" "$m"
            cut_ms=$(( $(now_ms) - T0 ))
            local cut_t0=$T0
            if ! elect=$(poll_until new_leader_elected "$old"); then
                say "round $r $m: no new leader within ${TIMEOUT_S}s"; fails=$((fails + 1)); elect=-
            fi
            rows=$(status_rows)
            new_idx=$(printf '%s\n' "$rows" | leader_from_rows || echo '?')
            mid_term=$(printf '%s\n' "$rows" | awk -v i="$new_idx" '$1 == i {print $4}')

            # --- what the root namespace sees of the old leader: status answers (it must: only
            # member-to-member traffic is cut); a put has no leader to go to and runs into its
            # own deadline.
            tmp=$(ECTL_TIMEOUT=2s ectl --endpoints="$(ep_of "$old")" endpoint status -w fields 2>&1) \
                && st_ok=yes || st_ok=no
            st_leader=$(printf '%s\n' "$tmp" | awk '/^"Leader"/ {print $3}')
            st_self=$(printf '%s\n' "$tmp" | awk '/^"MemberID"/ {print $3}')
            if [ "${st_leader:-x}" = 0 ]; then st_leader=none
            elif [ -n "$st_leader" ] && [ "$st_leader" = "$st_self" ]; then st_leader=itself
            elif [ -n "$st_leader" ]; then
                st_leader=$(printf '%s\n' "$rows" | awk -v l="$st_leader" '$2 "" == l "" {print "m" $1}' | head -n1)
            fi
            if [ $st_ok = no ]; then
                say "round $r $m: the old leader does not answer from the root namespace"; fails=$((fails + 1))
            fi
            T0=$(now_ms)
            if put_err=$(ECTL_TIMEOUT=500ms ectl --endpoints="$(ep_of "$old")" put bfill-selftest x 2>&1); then
                put_err=succeeded
            else
                put_err=$(printf '%s' "$put_err" | tail -n1 | sed 's/^Error: //' | tr ' ' '_')
            fi
            put_ms=$(( $(now_ms) - T0 ))
            probe=$(probe_peer_connect "$(others "$old" | head -n1)" "$old")
            case $probe in *connected) say "round $r $m: a follower can still connect to the old leader"; fails=$((fails + 1));; esac

            # --- hold the cut, then heal and time until all three agree again
            tmp=$(( cut_t0 + hold_s * 1000 - $(now_ms) ))
            [ "$tmp" -le 0 ] || sleep "$(awk -v ms="$tmp" 'BEGIN { printf "%.3f", ms / 1000 }')"
            campaigns=$(tail -c "+$off" "$log" | grep -c 'became candidate at term' || true)
            precampaigns=$(tail -c "+$off" "$log" | grep -c 'became pre-candidate at term' || true)
            top_term=$(tail -c "+$off" "$log" | sed -n 's/.*became candidate at term \([0-9]*\).*/\1/p' | tail -n1)
            T0=$(now_ms)
            do_heal
            if ! conv=$(poll_stable 1000 converged); then
                say "round $r $m: not converged within ${TIMEOUT_S}s after heal"; fails=$((fails + 1)); conv=-
            fi
            rows=$(status_rows)
            final=$(printf '%s\n' "$rows" | leader_from_rows || echo '?')
            new_term=$(printf '%s\n' "$rows" | awk 'NR == 1 {print $4}')
            printf 'RESULT method=%s pre_vote=%s round=%s elect_ms=%s converge_ms=%s cut_install_ms=%s leader=m%s->m%s->m%s term=%s->%s->%s old_leader_campaigns=%s/prevote:%s/top_term:%s old_leader_status=%s old_leader_sees_leader=%s put_to_old_leader=%s/%sms follower_connect_to_old_leader=%s\n' \
                "$m" "$PRE_VOTE" "$r" "$elect" "$conv" "$cut_ms" "$old" "$new_idx" "$final" \
                "$old_term" "${mid_term:-?}" "${new_term:-?}" "$campaigns" "$precampaigns" "${top_term:--}" \
                "$st_ok" "${st_leader:-?}" "$put_err" "$put_ms" "$probe" | tee -a "$results"
        done
    done

    echo "SUMMARY pre_vote=$PRE_VOTE heartbeat=${HEARTBEAT_MS}ms election=${ELECTION_MS}ms hold=${hold_s}s rounds=$rounds (ms: median [min..max], polled every 100 ms)"
    for m in $methods; do
        printf 'SUMMARY method=%-9s new_leader_after_cut=%-22s converged_after_heal=%s\n' "$m" \
            "$(summarize "$m" elect_ms "$results")" "$(summarize "$m" converge_ms "$results")"
    done
    trap - EXIT
    rm -f "$results"
    if [ "${BF_CLUSTER_KEEP:-0}" = 1 ]; then
        say "BF_CLUSTER_KEEP=1: cluster left in place; run '$PROG teardown' when done"
    else
        do_teardown || { say "teardown left something behind"; exit 1; }
    fi
    [ $fails = 0 ] || { say "check: $fails failure(s)"; exit 1; }
    say "check: ok"
}

# ---------------------------------------------------------------------------------------------
main() {
    local cmd=${1:-help}
    [ $# -gt 0 ] && shift
    case $cmd in
    setup)     cmd_setup "$@" ;;
    endpoints) load_conf; endpoints ;;
    tls-dir)   load_conf; echo "$TLS_DIR" ;;
    leader)    load_conf; cmd_leader ;;
    partition) load_conf; cmd_partition "$@" ;;
    heal)      load_conf; cmd_heal ;;
    stop)      load_conf; cmd_stop "$@" ;;
    start)     load_conf; cmd_start "$@" ;;
    status)    load_conf; cmd_status ;;
    teardown)  load_conf; cmd_teardown ;;
    client)    load_conf; cmd_client "$@" ;;
    check|selftest) cmd_check "$@" ;;
    help|-h|--help) usage ;;
    *) usage_die "unknown command '$cmd'" ;;
    esac
}

main "$@"
