# shellcheck shell=bash
# Sourced by bench/scenario.sh: the w-* scenarios, a shared add-index job run by `bfill worker`
# processes over three bfill-store nodes while etcd (bench/etcd-cluster.sh) is partitioned.
# See the header of bench/scenario.sh for what each scenario does and checks.
#
# Layout: the etcd members in their namespaces; the stores and (but in w-g) the workers in the
# root namespace, the stores listening on the bridge address (10.213.77.1:<free port>) so that a
# worker in a client namespace reaches them too. Everything lives under $WORK: store<i>/ (data),
# sort-w<k>/ (a worker's sort dir); logs under $LOG: store<i>.log, w<k>.log (a worker's
# stderr: one line per event), status.log ("<epoch> <status --json>" every 250 ms), gen.err,
# submit.json, check.json.
#
# Uses from scenario.sh: SCEN BFILL BFILL_STORE CLUSTER EPS LEADER_IP LOG WORK ROWS HOLD METHOD
# STALL SLOW NWORKERS IMPORT_EVERY LEASE_TTL REGIONS TIMEOUT STUCK SETTLE KEEP NAME, say, fail.

CNAME=scw$$          # the bfill cluster (its layout, catalog and jobs in etcd): one per run
W_ROOT_IP=""         # the root namespace's address on the bridge
WFAULT=""            # BFILL_FAULT of the workers
JOB=""
SAMPLER=""
W_KILLED=""          # what the scenario killed on purpose (w-e: a worker, w-f: a store)
W_CLIENTS=""         # client namespaces made here (w-g)
W_MADE=0             # 1 once the cluster's layout is in etcd
W_T0=""              # when the job was submitted (epoch s)
declare -a WPID=() WNS=() SPID=() SPORT=()

# ---- processes -------------------------------------------------------------------------------
# A live process: not gone and not a zombie (a zombie still answers kill -0).
alive() {
	local s
	s=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 1
	[ -n "$s" ] && [ "$s" != Z ]
}

# Waits for child $1 and leaves its exit status in W_ST. Not in a $(...): a subshell cannot wait
# for its parent's children. The braces keep bash's "Killed" job notice out of the output.
reap() {
	W_ST=0
	{ wait "$1" || W_ST=$?; } 2>/dev/null
}

w_cleanup() {
	local p c
	rm -f "$WORK/sampling"
	[ -z "$SAMPLER" ] || kill "$SAMPLER" 2>/dev/null || true
	for p in "${WPID[@]}" "${SPID[@]}"; do
		[ -z "$p" ] || { kill -9 "$p" && wait "$p"; } 2>/dev/null || true
	done
	for c in $W_CLIENTS; do "$CLUSTER" client del "$c" >/dev/null 2>&1 || true; done
	# A kept etcd cluster keeps no trace of this run's bfill cluster.
	if [ "$KEEP" -eq 1 ] && [ "$W_MADE" -eq 1 ]; then
		ETCDCTL_API=3 etcdctl --endpoints="$EPS" --dial-timeout=2s --command-timeout=5s \
			del --prefix "/bfill/cluster/$CNAME/" >/dev/null 2>&1 || true
	fi
}

free_port() {
	python3 -c 'import socket,sys; s=socket.socket(); s.bind((sys.argv[1],0)); print(s.getsockname()[1])' "$W_ROOT_IP"
}

# Starts store i (again: same port, same data dir) and waits until it serves.
w_start_store() {
	local i=$1 log=$LOG/store$1.log before t0
	t0=$(date +%s.%N)
	touch "$log"
	before=$(wc -l <"$log") # a restart appends: look only at what this start says
	"$BFILL_STORE" --listen "$W_ROOT_IP:${SPORT[$i]}" --data "$WORK/store$i" --store-id "$i" \
		--etcd "$EPS" --cluster "$CNAME" >>"$log" 2>&1 &
	SPID[$i]=$!
	for _ in $(seq 600); do
		if tail -n +$((before + 1)) "$log" | grep -q 'serving cluster'; then
			W_STORE_START_S=$(echo "$(date +%s.%N) - $t0" | bc -l | xargs printf '%.1f')
			return 0
		fi
		alive "${SPID[$i]}" || { reap "${SPID[$i]}"; fail "store $i exited $W_ST at its start: $(tail -n 3 "$log")"; }
		sleep 0.1
	done
	fail "store $i not serving after 60 s: $(tail -n 3 "$log")"
}

# Worker k (named w<k>), in netns $2 when given.
w_start_worker() {
	local k=$1 pre=() extra=()
	WNS[$k]=${2:-}
	[ -z "${WNS[$k]}" ] || pre=(ip netns exec "${WNS[$k]}")
	[ -z "$LEASE_TTL" ] || extra+=(--lease-ttl "$LEASE_TTL")
	[ -z "$IMPORT_EVERY" ] || extra+=(--import-every "$IMPORT_EVERY")
	# Started before the submit (w-b), a worker takes any job of the cluster: this run's only one.
	[ -z "$JOB" ] || extra+=(--job "$JOB")
	# ip netns exec and env exec the worker: $! is the worker's pid.
	env BFILL_FAULT="$WFAULT" "${pre[@]}" "$BFILL" worker --etcd "$EPS" --cluster "$CNAME" \
		--name "w$k" --mem 256M --sort-dir "$WORK/sort-w$k" "${extra[@]}" \
		>"$LOG/w$k.out" 2>"$LOG/w$k.log" &
	WPID[$k]=$!
}

w_start_workers() {     # [netns prefix: worker k runs in <prefix>k]
	local k
	for k in $(seq "$NWORKERS"); do w_start_worker "$k" "${1:+$1$k}"; done
	say "$NWORKERS workers started${1:+ in namespaces ${1}1..${1}$NWORKERS}${LEASE_TTL:+ (--lease-ttl $LEASE_TTL)}${WFAULT:+ with BFILL_FAULT=$WFAULT}"
}

# Fails when a worker (not killed on purpose) or a store has ended.
w_check_alive() {
	local k i
	for k in $(seq "$NWORKERS"); do
		[ -n "${WPID[$k]:-}" ] || continue
		alive "${WPID[$k]}" && continue
		reap "${WPID[$k]}"
		fail "worker w$k ended (exit status $W_ST): $(tail -n 5 "$LOG/w$k.log")"
	done
	for i in 1 2 3; do
		[ -n "${SPID[$i]:-}" ] || continue
		alive "${SPID[$i]}" && continue
		reap "${SPID[$i]}"
		fail "store $i ended (exit status $W_ST): $(tail -n 5 "$LOG/store$i.log")"
	done
}

# Sleeps s seconds (fractions allowed), checking every half second that everything still runs.
w_sleep() {
	local end
	end=$(echo "$(date +%s.%N) + $1" | bc -l)
	while [ "$(echo "$(date +%s.%N) < $end" | bc -l)" = 1 ]; do
		w_check_alive
		sleep 0.5
	done
}

# Sleeps until epoch time t.
w_sleep_until() { w_sleep "$(echo "$1 - $(date +%s.%N)" | bc -l | awk '{ print ($1 > 0) ? $1 : 0 }')"; }

# ---- status ----------------------------------------------------------------------------------
# The job as `bfill status --json` shows it now, one line; empty when status fails.
w_status_now() {
	"$BFILL" status --etcd "$EPS" --cluster "$CNAME" --job "$JOB" --json 2>/dev/null |
		jq -c 'if type == "array" then .[0] else . end' 2>/dev/null || true
}

# w_status_now, tried up to $1 times 250 ms apart until status answers; W_TRIES says how many
# it took. (During a cut `bfill status` now and then gives no answer at all.)
w_status_retry() {
	local js="" t
	for t in $(seq "$1"); do
		js=$(w_status_now)
		[ -z "$js" ] || break
		sleep 0.25
	done
	W_TRIES=$t
	printf '%s\n' "$js"
}

w_sampler() {
	while [ -e "$WORK/sampling" ]; do
		printf '%s %s\n' "$(date +%s.%N)" "$(w_status_now)" >>"$LOG/status.log"
		sleep 0.25
	done
}

w_start_sampler() {
	touch "$WORK/sampling"
	w_sampler &
	SAMPLER=$!
}

w_stop_sampler() {
	rm -f "$WORK/sampling"
	[ -z "$SAMPLER" ] || wait "$SAMPLER" 2>/dev/null || true
	SAMPLER=""
}

# The last status the sampler got.
w_last() { awk 'NF > 1 { l = $0 } END { sub(/^[^ ]* /, "", l); print l }' "$LOG/status.log" 2>/dev/null; }

# jq filter on the last status; prints its result ("" when there is none).
w_q() { w_last | jq -r "$1" 2>/dev/null || true; }

# Waits until jq filter $3 is true on the last status: at most $1 s; $2 says what for.
w_wait_for() {
	local deadline=$(($(date +%s) + $1))
	while [ "$(w_q "$3")" != true ]; do
		[ "$(w_q .state)" != failed ] || fail "the job failed while waiting for $2: $(w_last)"
		w_check_alive
		[ "$(date +%s)" -lt "$deadline" ] || fail "no $2 within $1 s; last status: $(w_last)"
		sleep 0.2
	done
}

# Short text of a status: state, rows, subtasks by state.
w_brief() {
	jq -r '"\(.state), \(.rows_done)/\(.rows_total) rows, subtasks: \([.subtasks[] | select(.state == "done")] | length) done, \([.subtasks[] | select(.state == "running")] | length) running (\([.subtasks[] | select(.state == "running") | "\(.seq):\(.worker):\(.rows)"] | join(" "))), \([.subtasks[] | select(.state == "waiting")] | length) waiting"' 2>/dev/null <<<"$1" || echo "?"
}

# ---- setup -----------------------------------------------------------------------------------
w_setup() {
	local i addrs=() t0
	[ -x "$BFILL_STORE" ] || fail "no bfill-store binary at $BFILL_STORE"
	command -v jq >/dev/null || fail "jq is needed"
	W_ROOT_IP=${LEADER_IP%.*}.1
	[ -z "$STALL" ] || WFAULT="import.stall~$STALL"
	[ -z "$SLOW" ] || WFAULT="${WFAULT:+$WFAULT,}scan.slow~$SLOW"
	cd "$WORK" || fail "cannot cd to $WORK"
	rm -f "$LOG"/store[0-9]*.log "$LOG"/w[0-9]*.log "$LOG"/w[0-9]*.out "$LOG/status.log"
	t0=$(date +%s.%N)
	for i in 1 2 3; do
		SPORT[$i]=$(free_port)
		addrs+=("$W_ROOT_IP:${SPORT[$i]}")
	done
	"$BFILL" cluster init --etcd "$EPS" --cluster "$CNAME" --stores "$(IFS=,; echo "${addrs[*]}")" \
		--regions "$REGIONS" --replicas 3 --rows "$ROWS" >"$LOG/init.out" 2>&1 ||
		fail "cluster init: $(cat "$LOG/init.out")"
	W_MADE=1
	for i in 1 2 3; do w_start_store "$i"; done
	"$BFILL" gen --etcd "$EPS" --cluster "$CNAME" --rows "$ROWS" --seed 7 --quiet 2>"$LOG/gen.err" ||
		fail "gen: $(cat "$LOG/gen.err")"
	say "bfill cluster $CNAME: 3 stores on $W_ROOT_IP:${SPORT[1]},${SPORT[2]},${SPORT[3]}, $REGIONS regions, 3 replicas, $ROWS rows ($(echo "$(date +%s.%N) - $t0" | bc -l | xargs printf '%.1f') s)"
}

# Submits the job (add-index --detach); sets JOB and W_T0.
w_submit() {
	local extra=() t0
	[ -z "$IMPORT_EVERY" ] || extra+=(--import-every "$IMPORT_EVERY")
	t0=$(date +%s.%N)
	W_T0=$t0
	"$BFILL" add-index --etcd "$EPS" --cluster "$CNAME" --table sbtest1 --name "$NAME" --columns c \
		--mem 256M "${extra[@]}" --detach --json >"$LOG/submit.json" 2>"$LOG/submit.err" ||
		fail "add-index --detach: $(cat "$LOG/submit.err")"
	JOB=$(jq -r .job_id "$LOG/submit.json")
	case $JOB in '' | null | *[!0-9]*) fail "no job id from add-index --detach: $(cat "$LOG/submit.json")" ;; esac
	say "job $JOB submitted: $(jq -r .subtasks "$LOG/submit.json") subtasks${IMPORT_EVERY:+, --import-every $IMPORT_EVERY} ($(echo "$(date +%s.%N) - $t0" | bc -l | xargs printf '%.2f') s)"
}

# ---- the end of every scenario ---------------------------------------------------------------
# Waits for the job; checks it and every replica; stops workers and stores and checks that none
# died on a signal.
w_finish() {
	local deadline=$(($(date +%s) + TIMEOUT)) js st k i n sig="" since
	since=$(date +%s)
	while :; do
		case $(w_q .state) in
		done) break ;;
		failed | cancelled) fail "the job ended $(w_q .state): $(w_last)" ;;
		esac
		w_check_alive
		[ "$(date +%s)" -lt "$deadline" ] || fail "the job is not done after $TIMEOUT s: $(w_last)"
		# No progress at all (rows, checkpoints, claims) for $STUCK s: say why and stop waiting.
		if [ "$(w_q "$W_PROGRESS")" != "$sig" ]; then
			sig=$(w_q "$W_PROGRESS")
			since=$(date +%s)
		elif [ $(($(date +%s) - since)) -ge "$STUCK" ]; then
			w_diagnose_stuck
			fail "the job made no progress for $STUCK s: $(w_brief "$(w_last)")"
		fi
		sleep 0.5
	done
	W_JOB_S=$(echo "$(date +%s.%N) - $W_T0" | bc -l | xargs printf '%.1f')
	w_stop_sampler
	js=$(w_status_retry 20)
	[ "$(jq -r .state <<<"$js" 2>/dev/null)" = "done" ] || fail "status does not say done: $js"
	n=$(jq '[.subtasks[] | select(.state != "done")] | length' <<<"$js")
	[ "$n" = 0 ] || fail "the job is done but $n subtask(s) are not: $js"
	say "job $JOB done about $W_JOB_S s after the submit: $(w_brief "$js")"
	w_check_alive

	# every replica
	st=0
	"$BFILL" check-index --etcd "$EPS" --cluster "$CNAME" --table sbtest1 --name "$NAME" --json \
		>"$LOG/check.json" 2>"$LOG/check.err" || st=$?
	[ "$st" -eq 0 ] || fail "check-index exited $st: $(cat "$LOG/check.json" "$LOG/check.err" | head -c 2000)"
	say "check-index: exact on every replica: $(jq -r '[.replicas[] | "replica \(.replica) \(.found)/\(.expected) entries, ok=\(.ok)"] | join(", ")' "$LOG/check.json" 2>/dev/null || head -c 400 "$LOG/check.json")"

	# SIGTERM: a worker gives its subtask back (none left) and exits 0; a store stops cleanly.
	for k in $(seq "$NWORKERS"); do
		[ -z "${WPID[$k]:-}" ] || kill -TERM "${WPID[$k]}" 2>/dev/null || true
	done
	for k in $(seq "$NWORKERS"); do
		[ -n "${WPID[$k]:-}" ] || continue
		reap "${WPID[$k]}"
		st=$W_ST
		WPID[$k]=""
		[ "$st" -le 128 ] || fail "worker w$k died on signal $((st - 128)): $(tail -n 5 "$LOG/w$k.log")"
		[ "$st" -eq 0 ] || fail "worker w$k exited $st on SIGTERM: $(tail -n 5 "$LOG/w$k.log")"
	done
	for i in 1 2 3; do
		[ -z "${SPID[$i]:-}" ] || kill -TERM "${SPID[$i]}" 2>/dev/null || true
	done
	for i in 1 2 3; do
		[ -n "${SPID[$i]:-}" ] || continue
		reap "${SPID[$i]}"
		st=$W_ST
		SPID[$i]=""
		[ "$st" -le 128 ] || fail "store $i died on signal $((st - 128)): $(tail -n 5 "$LOG/store$i.log")"
		[ "$st" -eq 0 ] || fail "store $i exited $st on SIGTERM: $(tail -n 5 "$LOG/store$i.log")"
	done
	say "no worker or store died on a signal${W_KILLED:+ (but $W_KILLED, killed on purpose)}; all exited 0 on SIGTERM"
	for k in $(seq "$NWORKERS"); do
		say "w$k: $(grep -c 'claimed job' "$LOG/w$k.log" || true) claims, $(grep -c 'subtask [0-9]* done' "$LOG/w$k.log" || true) subtasks done, $(grep -c 'trying again' "$LOG/w$k.log" || true) retries, $(grep -c 'etcd unreachable' "$LOG/w$k.log" || true) outages, $(grep -c 'lease is gone' "$LOG/w$k.log" || true) lost leases"
	done
}

# What changes while a job moves: rows, checkpoints, which worker holds what.
W_PROGRESS='[.rows_done, (.subtasks[] | [.state, .worker, .rows, .rows_checkpointed])] | tostring'

# A job that stands still: for each subtask shown running, what its worker's log last said of it,
# and whether the worker has moved on (then the claim outlived the worker's hold on the subtask).
w_diagnose_stuck() {
	local line seq who k last other key lease wlease
	say "stuck; last status: $(w_last)"
	w_q '.subtasks[] | select(.state == "running") | "\(.seq) \(.worker)"' | while read -r seq who; do
		k=${who#w}
		case $k in '' | *[!0-9]*) continue ;; esac
		last=$(grep -E "subtask $seq([ :]|\$)" "$LOG/$who.log" | tail -n 1 || true)
		other=$(grep -n 'claimed job' "$LOG/$who.log" | tail -n 1 || true)
		say "subtask $seq shown running by $who; $who's log last said of it: '${last:-nothing}'; its last claim: '${other#*:}'"
		case $other in *"subtask $seq "*) continue ;; esac
		# The claim record (cluster/subtask.c: <root>claim/<job, 20 digits>/<seq, 8 digits>) and
		# the worker's presence (<root>worker/<name>): the same lease means that the worker,
		# alive, still holds a subtask it left.
		key=$(printf '/bfill/cluster/%s/claim/%020d/%08d' "$CNAME" "$JOB" "$seq")
		lease=$(ETCDCTL_API=3 etcdctl --endpoints="$EPS" get "$key" -w fields 2>/dev/null | awk '/"Lease"/ { print $3 }' || true)
		wlease=$(ETCDCTL_API=3 etcdctl --endpoints="$EPS" get "/bfill/cluster/$CNAME/worker/$who" -w fields 2>/dev/null | awk '/"Lease"/ { print $3 }' || true)
		if [ -n "$lease" ] && [ "$lease" = "$wlease" ]; then
			say "$who left subtask $seq and went on with others, but the claim $key is still there under $who's own live lease ($lease): nobody can claim the subtask while $who runs"
		else
			say "$who left subtask $seq and went on with others; claim $key: lease '${lease:-(not read)}', $who's worker lease '${wlease:-(not read)}'"
		fi
	done
}

# "<seq> <worker> <worker>..." for each subtask that two or more workers claimed (from the logs).
w_claimed_twice() {
	local k
	for k in $(seq "$NWORKERS"); do
		grep -o "claimed job $JOB subtask [0-9]*" "$LOG/w$k.log" 2>/dev/null | awk -v w="w$k" '{ print $5, w }'
	done | sort -u | awk '{ n[$1]++; ws[$1] = ws[$1] " " $2 } END { for (s in n) if (n[s] > 1) print s ws[s] }' | sort -n
}

# Whether workers other than $1 made progress between status $2 and status $3: a subtask done
# that was not, or a subtask another worker holds at both with more rows.
w_others_progressed() {
	python3 - "$1" "$2" "$3" <<'PY'
import json, sys
me, a, b = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
before = {s["seq"]: s for s in a["subtasks"]}
why = []
for s in b["subtasks"]:
    s0 = before.get(s["seq"], {})
    if s["state"] == "done" and s0.get("state") != "done":
        why.append("subtask %d done" % s["seq"])
    elif s["state"] == "running" and s["worker"] != me and (
            s0.get("worker") != s["worker"] or s["rows"] > s0.get("rows", 0)):
        why.append("subtask %d: %s at %d rows" % (s["seq"], s["worker"], s["rows"]))
print("; ".join(why))
sys.exit(0 if why else 1)
PY
}

# ---- the scenarios ---------------------------------------------------------------------------
ANY_ROWS='[.subtasks[] | select(.state == "running" and .rows > 0)] | length > 0'

# How many times a subtask's checkpoint moved (an import recorded) in the status samples taken
# between epoch times $1 and $2.
w_checkpoints_between() {
	awk -v a="$1" -v b="$2" 'NF > 1 && $1 >= a && $1 <= b { sub(/^[^ ]* /, ""); print }' "$LOG/status.log" |
		jq -r '.subtasks[] | select(.rows_checkpointed > 0) | "\(.seq) \(.rows_checkpointed)"' 2>/dev/null |
		sort -u | awk -v base="$(w_checkpoints_before "$1")" 'BEGIN { n = split(base, x, ",") ; for (i = 1; i <= n; i++) seen[x[i]] = 1 } !seen[$0] { c++ } END { print c + 0 }'
}

# The "seq rows_checkpointed" pairs already seen before epoch time $1, comma-separated.
w_checkpoints_before() {
	awk -v a="$1" 'NF > 1 && $1 < a { sub(/^[^ ]* /, ""); print }' "$LOG/status.log" |
		jq -r '.subtasks[] | select(.rows_checkpointed > 0) | "\(.seq) \(.rows_checkpointed)"' 2>/dev/null |
		sort -u | paste -sd, -
}

w_a() {
	local cut js0 js1 t_cut
	w_submit
	w_start_workers
	w_start_sampler
	w_wait_for 300 "subtask showing progress" "$ANY_ROWS"
	js0=$(w_last)
	[ "$(jq -r .state <<<"$js0")" = running ] || fail "the job is not running when the cut is due: $js0"
	cut=$("$CLUSTER" partition --method "$METHOD")
	t_cut=$(date +%s.%N)
	say "cut: $cut; job: $(w_brief "$js0")"
	w_sleep "$HOLD"
	"$CLUSTER" heal
	js1=$(w_last)
	say "healed after $HOLD s; job: $(w_brief "$js1"); $(w_checkpoints_between "$t_cut" "$(date +%s.%N)") checkpoint moves (imports recorded) seen during the cut"
	[ "$(jq -r .state <<<"$js1")" != "done" ] || say "note: the job was done before the heal"
	w_finish
}

# The workers run before the partition and wait for work, as a deployment's would; the leader is
# cut off; the job is submitted once the partition stands (the others have elected a leader and
# the cut member knows it has none), unless --no-settle: then at once, in the election. A job
# submitted during the cut must not sit in queueing: "the first second" is the job's own, from
# its start_ms (its record written by the submit); the submit's own time is reported too.
w_b() {
	local cut js state n bad start first t_cut new="" ip lead=x
	w_start_workers
	w_sleep 1
	cut=$("$CLUSTER" partition --method "$METHOD")
	t_cut=$(date +%s.%N)
	say "cut before the submit: $cut"
	if [ "$SETTLE" -eq 1 ]; then
		ip=$(echo "$cut" | cut -d' ' -f2)
		for _ in $(seq 150); do
			[ -n "$new" ] || { new=$("$CLUSTER" leader 2>/dev/null | cut -d' ' -f1) || new=""; }
			[ "$new" != "${cut%% *}" ] || new=""
			lead=$(ETCDCTL_API=3 etcdctl --endpoints="$ip:2379" --dial-timeout=1s --command-timeout=1s \
				endpoint status -w fields 2>/dev/null | awk '/"Leader"/ { print $3 }' || true)
			[ -z "$new" ] || [ "$lead" != 0 ] || break
			sleep 0.2
		done
		[ -n "$new" ] && [ "$lead" = 0 ] || fail "the partition did not settle within 30 s (new leader '$new', the cut member's leader '$lead')"
		say "new leader $new; the cut member knows it has none; $(echo "$(date +%s.%N) - $t_cut" | bc -l | xargs printf '%.1f') s after the cut"
	fi
	w_submit
	w_start_sampler
	w_sleep_until "$(echo "$W_T0 + 5" | bc -l)"
	# not in a $(...): W_TRIES must reach this shell
	w_status_retry 4 >"$WORK/status5.json"
	js=$(cat "$WORK/status5.json")
	state=$(jq -r .state <<<"$js" 2>/dev/null || true)
	n=$(jq '[.subtasks[] | select(.state == "running")] | length' <<<"$js" 2>/dev/null || echo 0)
	say "status 5 s after the submit began: $(w_brief "$js")$([ "$W_TRIES" = 1 ] || echo " (status answered at try $W_TRIES)")"
	[ "$state" = running ] || fail "status says '$state' 5 s after the submit (want running): $js"
	[ "$n" -ge 1 ] || fail "no subtask running 5 s after the submit: $js"
	w_sleep_until "$(echo "$W_T0 + $((HOLD > 5 ? HOLD : 5))" | bc -l)"
	"$CLUSTER" heal
	say "healed $HOLD s after the submit began: $(w_brief "$(w_last)")"
	w_finish
	start=$(awk 'NF > 1 { if (match($2, /"start_ms":[0-9]+/)) { printf "%.3f\n", substr($2, RSTART + 11, RLENGTH - 11) / 1000; exit } }' "$LOG/status.log")
	[ -n "$start" ] || fail "no status sample shows the job's start_ms"
	first=$(awk -v t="$start" 'NF > 1 && /"state":"running"/ { printf "%.2f", $1 - t; exit }' "$LOG/status.log")
	say "job record written $(echo "$start - $W_T0" | bc -l | xargs printf '%.2f') s after the submit began; first sample saying running: ${first:-none} s after that"
	# Never queueing once a second has passed.
	bad=$(awk -v t0="$start" '$1 - t0 > 1 && /"state":"queueing"/' "$LOG/status.log" | head -n 1)
	[ -z "$bad" ] || fail "status showed queueing more than a second after the job started: $bad"
	say "status never said queueing after the job's first second ($(grep -c . "$LOG/status.log") samples, $(awk 'NF < 2' "$LOG/status.log" | grep -c . || true) without an answer)"
}

w_e() {
	local victim seq k t_kill t_kill_ns st twice taken line when delay free
	w_submit
	w_start_workers
	w_start_sampler
	w_wait_for 300 "subtask showing progress" "$ANY_ROWS"
	line=$(w_q '[.subtasks[] | select(.state == "running" and .rows > 0)][0] | "\(.worker) \(.seq) \(.rows)"')
	victim=${line%% *}
	seq=$(echo "$line" | cut -d' ' -f2)
	k=${victim#w}
	case $k in '' | *[!0-9]*) fail "cannot tell which worker holds subtask $seq: '$line'" ;; esac
	[ -n "${WPID[$k]:-}" ] || fail "no worker $victim"
	kill -KILL "${WPID[$k]}"
	t_kill=$(date +%s)
	t_kill_ns=$(date +%s.%N)
	reap "${WPID[$k]}"
	st=$W_ST
	WPID[$k]=""
	W_KILLED=$victim
	[ "$st" -eq 137 ] || fail "$victim should have died on SIGKILL, exit status $st"
	say "SIGKILLed $victim holding subtask $seq at $(echo "$line" | cut -d' ' -f3) rows"
	w_finish
	twice=$(w_claimed_twice)
	[ -n "$twice" ] || fail "no subtask was claimed by two workers (worker logs)"
	say "claimed by two workers or more (seq workers): $(echo "$twice" | paste -sd';' -)"
	taken=""
	for k in $(seq "$NWORKERS"); do
		[ "w$k" != "$victim" ] || continue
		line=$(grep "claimed job $JOB subtask $seq " "$LOG/w$k.log" | head -n 1 || true)
		[ -n "$line" ] || continue
		when=$(date -d "$(date +%F) ${line%% *}" +%s)
		[ "$when" -ge "$t_kill" ] || continue
		taken="w$k"
		delay=$((when - t_kill))
		say "subtask $seq taken over by $taken $delay s after the kill: ${line#* bfill worker: }"
		break
	done
	[ -n "$taken" ] || fail "no other worker claimed $victim's subtask $seq after the kill"
	# When status first showed the subtask free again (the claim gone with the lease).
	free=$(awk -v t="$t_kill_ns" -v q="$seq" 'NF > 1 && $1 > t && index($2, "{\"seq\":" q ",\"state\":\"waiting\"") { printf "%.1f", $1 - t; exit }' "$LOG/status.log")
	say "status showed subtask $seq free again ${free:-?} s after the kill (--lease-ttl $LEASE_TTL)"
	# A claim before the lease could have run out would be two workers on one subtask.
	[ "$delay" -ge $((LEASE_TTL / 2)) ] ||
		fail "subtask $seq taken over $delay s after the kill, before $victim's lease (TTL $LEASE_TTL s) could run out"
}

w_f() {
	local cut t_cut st js
	w_submit
	w_start_workers
	w_start_sampler
	w_wait_for 300 "subtask showing progress" "$ANY_ROWS"
	cut=$("$CLUSTER" partition --method "$METHOD")
	t_cut=$(date +%s.%N)
	say "cut: $cut; job: $(w_brief "$(w_last)")"
	w_sleep 1
	kill -KILL "${SPID[2]}"
	reap "${SPID[2]}"
	st=$W_ST
	SPID[2]=""
	[ "$st" -eq 137 ] || fail "store 2 should have died on SIGKILL, exit status $st"
	say "SIGKILLed store 2; job: $(w_brief "$(w_last)")"
	w_sleep 5
	w_start_store 2
	say "store 2 restarted, serving after $W_STORE_START_S s; job: $(w_brief "$(w_last)")"
	w_sleep_until "$(echo "$t_cut + $HOLD" | bc -l)"
	"$CLUSTER" heal
	js=$(w_last)
	say "healed $HOLD s after the cut; job: $(w_brief "$js")"
	[ "$(jq -r .state <<<"$js")" != "done" ] || say "note: the job was done before the heal"
	W_KILLED="the first run of store 2"
	w_finish
}

w_g() {
	local k ns out js0 js1 t_cut left why n_before n_after
	for k in $(seq "$NWORKERS"); do
		"$CLUSTER" client del "w$k" >/dev/null 2>&1 || true
		out=$("$CLUSTER" client add "w$k") || fail "client add w$k failed"
		W_CLIENTS="$W_CLIENTS w$k"
		ns=${out%% *}
		say "client namespace $out"
	done
	w_submit
	w_start_workers "${ns%"$NWORKERS"}"
	w_start_sampler
	w_wait_for 300 "subtask of w1 showing progress" \
		'[.subtasks[] | select(.state == "running" and .worker == "w1" and .rows > 0)] | length > 0'
	js0=$(w_last)
	n_before=$(wc -l <"$LOG/w1.log")
	out=$("$CLUSTER" client cut w1 --method "$METHOD")
	t_cut=$(date +%s.%N)
	say "w1 cut off from every etcd member: $out; job: $(w_brief "$js0")"
	left=""
	while [ "$(echo "$(date +%s.%N) < $t_cut + $HOLD" | bc -l)" = 1 ]; do
		if [ -z "$left" ] && tail -n +$((n_before + 1)) "$LOG/w1.log" | grep -q 'lease is gone; leaving it'; then
			left=$(echo "$(date +%s.%N) - $t_cut" | bc -l | xargs printf '%.1f')
			say "w1 left its subtask ~$left s into the cut: $(tail -n +$((n_before + 1)) "$LOG/w1.log" | grep 'lease is gone' | head -n 1)"
		fi
		w_check_alive
		sleep 0.5
	done
	js1=$(w_last)
	[ -n "$left" ] || fail "w1 never said its lease was gone in the $HOLD s it was cut off: $(tail -n +$((n_before + 1)) "$LOG/w1.log" | tail -n 5)"
	# cut off, it can neither claim nor finish anything
	if tail -n +$((n_before + 1)) "$LOG/w1.log" | grep -E 'claimed job|subtask [0-9]+ done'; then
		fail "w1 claimed or finished a subtask while cut off from etcd"
	fi
	why=$(w_others_progressed w1 "$js0" "$js1") ||
		fail "the other workers made no progress while w1 was cut off: $(w_brief "$js0") -> $(w_brief "$js1")"
	say "while w1 was cut off the others went on: $why"
	"$CLUSTER" client heal w1
	n_after=$(wc -l <"$LOG/w1.log")
	say "healed w1 after $HOLD s; w1 said meanwhile: $(tail -n +$((n_before + 1)) "$LOG/w1.log" | head -n $((n_after - n_before)) | sed 's/^[0-9:]* bfill worker: //' | sort | uniq -c | sed 's/^ *//' | paste -sd';' -)"
	w_finish
	say "after the heal w1 claimed $(tail -n +$((n_after + 1)) "$LOG/w1.log" | grep -c 'claimed job' || true) subtask(s) and finished $(tail -n +$((n_after + 1)) "$LOG/w1.log" | grep -cE 'subtask [0-9]+ done' || true)"
}

w_run() {
	w_setup
	case $SCEN in
	w-a) w_a ;;
	w-b) w_b ;;
	w-e) w_e ;;
	w-f) w_f ;;
	w-g) w_g ;;
	esac
}
