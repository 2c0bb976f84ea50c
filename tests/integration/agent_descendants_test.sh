#!/usr/bin/env bash
# Nothing an agent started outlives it: processes it left behind, also
# those that called setsid (a session and group of their own, which a
# group kill misses) or were double forked (orphans), end with it, whether
# it exits by itself, is killed (dying on SIGTERM or ignoring it until the
# SIGKILL after the grace), times out, or is killed after its spoke was
# restarted. Twice:
# - spoke dcg, "agent-cgroups auto": each agent in a cgroup of its own
#   (agent-ID under the spoke's), ended by its cgroup.kill; the cases are
#   skipped when the spoke logs "agent cgroups: off" (no cgroup v2 it may
#   write, e.g. not root);
# - spoke doff, "agent-cgroups off": the shim, a child subreaper, SIGKILLs
#   every descendant left once its agent has ended.
# And no zombie is left under either spoke, nor under a third, dmany
# (agent-cgroups off), whose orphan, left by a shim killed from inside,
# ends while MANY other agents run there: the spoke reaps what it
# inherits however many shims it has.
#
# Each left-behind process is a "sleep N" with an N of this run's own (9,
# this shell's pid, the pass, the case) that pgrep -x finds and nothing
# else matches; an agent's own long sleep is "sleep 8...". Whatever of them
# a failing spoke leaves is killed, by pid, when the test ends, and so are
# the cgroups it leaves.
. "$(dirname "$0")/lib.sh"

MANY=300 # live agents under spoke dmany: more children than a page of /proc lists

start_valkey vk1
keygen hub
SPOKE_CONF_EXTRA="agent-cgroups auto"
start_spoke dcg vk1 hub
SPOKE_CONF_EXTRA="agent-cgroups off"
start_spoke doff vk1 hub
# Its agents outlive however long MANY spawns take on a loaded machine.
SPOKE_CONF_EXTRA=$'agent-cgroups off\nagent long stdin /bin/sleep 3600' \
	SPOKE_MAX_AGENTS=$((MANY + 8)) start_spoke dmany vk1 hub
SPOKE_CONF_EXTRA=
start_hub hub hub dcg doff dmany

CG_DIRS=() # agents' cgroup directories seen, removed at the end if left

# descendants_cleanup: the marked sleeps and agents' cgroups a failing
# spoke left, after lib.sh's cleanup stopped the daemons and shims. Only
# directories named agent-ID, of this test's agents, are touched.
descendants_cleanup() {
	local pid d
	for pid in $(pgrep -f -x "sleep [89]$$[12][1-8]" 2>/dev/null); do
		kill -KILL "$pid" 2>/dev/null
	done
	for d in "${CG_DIRS[@]}"; do
		case "${d##*/}" in
		agent-dcg.* | agent-doff.*) ;;
		*) continue ;;
		esac
		cgroup_remove "$d"
	done
}
trap 'cleanup; descendants_cleanup' EXIT

skip() {
	TAP_N=$((TAP_N + 1))
	echo "ok $TAP_N # SKIP $*"
}

# mark PASS CASE: the N of a left-behind "sleep N"; long PASS CASE: the
# N of an agent's own long sleep.
mark() {
	echo "9$$$1$2"
}

long() {
	echo "8$$$1$2"
}

gone() {
	! pgrep -f -x "sleep $1" >/dev/null
}

state_is() {
	[ "$(agent_state "$1")" = "$2" ]
}

hub_sees() {
	cli --json spokes | jq -e --arg s "$1" \
		'.spokes[] | select(.id == $s) | .state == "connected"' >/dev/null
}

# In an agent's task (sh): up N waits (up to 5 s) until "sleep N" runs,
# then says "up N".
PRELUDE='up() { i=0; while ! pgrep -f -x "sleep $1" >/dev/null; do i=$((i + 1)); [ $i -lt 50 ] || return 1; sleep 0.1; done; echo "up $1"; }
'

# spawn SPOKE TASK [ARG...]: an sh agent on SPOKE running PRELUDE and TASK.
spawn() {
	local s=$1 task=$2
	shift 2
	cli --json spawn sh "$PRELUDE$task" --spoke "$s" "$@" | jq -r .id
}

said_up() {
	grep -qx "up $2" <<<"$(agent_field "$1" .output)"
}

# in_agent_cgroup SPOKE ID N: "sleep N" is in the agent's cgroup,
# agent-ID under its spoke's; the directory is remembered for the end.
in_agent_cgroup() {
	local pid cg want
	pid=$(pgrep -f -x "sleep $3" | head -n 1)
	[ -n "$pid" ] || return 1
	cg=$(cgroup_of "$pid")
	want=$(agent_cgroup_dir "$1" "$2")
	CG_DIRS+=("$want")
	echo "# sleep $3 is in cgroup $cg"
	[ "$(cgroup2_mount)$cg" = "$want" ]
}

# cgroup_removed SPOKE ID: the agent's cgroup directory is gone.
cgroup_removed() {
	[ ! -d "$(agent_cgroup_dir "$1" "$2")" ]
}

# started_up LABEL ID N...: the agent is RUNNING and each "sleep N" is up.
started_up() {
	local label=$1 id=$2 n
	shift 2
	[ -n "$id" ] && [ "$id" != null ] || bail "$label: spawn failed"
	for n in "$@"; do
		check "$label: the agent started sleep $n" wait_for 10 said_up "$id" "$n"
	done
	check "$label: the agent is RUNNING" state_is "$id" running
}

# run_cases SPOKE PASS LABEL CGROUPS: cases a to g on SPOKE; CGROUPS yes
# adds the checks of the agents' cgroups.
run_cases() {
	local s=$1 p=$2 l=$3 cg=$4 id n1 n2 n3 n4 n5 n6 n8 l4 l6 l8

	# a. normal exit, a setsid grandchild left behind.
	n1=$(mark "$p" 1)
	id=$(spawn "$s" "setsid sleep $n1 &
up $n1 && exit 0
exit 3")
	check "$l a: an agent leaving a setsid child ends" wait_for 15 agent_terminal "$id"
	check "$l a: COMPLETED" state_is "$id" completed
	check "$l a: its child was up when it exited" said_up "$id" "$n1"
	check "$l a: its setsid child is gone" wait_for 5 gone "$n1"

	# b. double forks: an orphan, and an orphan's orphan in a session of its own.
	n2=$(mark "$p" 2)
	n3=$(mark "$p" 3)
	id=$(spawn "$s" "( sleep $n2 & )
(setsid sh -c 'sleep $n3 &' &)
up $n2 && up $n3 && exit 0
exit 3")
	check "$l b: an agent leaving double-forked children ends" wait_for 15 agent_terminal "$id"
	check "$l b: COMPLETED" state_is "$id" completed
	check "$l b: both children were up when it exited" \
		eval 'said_up "$id" "$n2" && said_up "$id" "$n3"'
	check "$l b: the double-forked child is gone" wait_for 5 gone "$n2"
	check "$l b: the double-forked setsid grandchild is gone" wait_for 5 gone "$n3"

	# c. killed; the agent dies on SIGTERM, its setsid child would not.
	n4=$(mark "$p" 4)
	l4=$(long "$p" 4)
	id=$(spawn "$s" "setsid sleep $n4 &
up $n4
exec sleep $l4")
	started_up "$l c" "$id" "$n4"
	[ "$cg" != yes ] || check "$l c: its setsid child is in the cgroup agent-$id" \
		in_agent_cgroup "$s" "$id" "$n4"
	quiet cli kill "$id"
	check "$l c: the agent is KILLED" wait_for 15 state_is "$id" killed
	check "$l c: the agent's process is gone" wait_for 5 gone "$l4"
	check "$l c: its setsid child is gone" wait_for 5 gone "$n4"
	[ "$cg" != yes ] || check "$l c: its cgroup is removed" wait_for 10 cgroup_removed "$s" "$id"

	# d. killed; the agent ignores SIGTERM: SIGKILL after the grace (2 s).
	n5=$(mark "$p" 5)
	id=$(spawn "$s" "trap '' TERM
setsid sleep $n5 &
up $n5
while :; do sleep 1; done")
	started_up "$l d" "$id" "$n5"
	[ "$cg" != yes ] || check "$l d: its setsid child is in the cgroup agent-$id" \
		in_agent_cgroup "$s" "$id" "$n5"
	quiet cli kill "$id"
	check "$l d: the SIGTERM-deaf agent is KILLED" wait_for 15 state_is "$id" killed
	check "$l d: by SIGKILL" [ "$(agent_field "$id" .signal)" = 9 ]
	check "$l d: its setsid child is gone" wait_for 5 gone "$n5"
	[ "$cg" != yes ] || check "$l d: its cgroup is removed" wait_for 10 cgroup_removed "$s" "$id"

	# g. timed out (3 s).
	n8=$(mark "$p" 8)
	l8=$(long "$p" 8)
	id=$(spawn "$s" "setsid sleep $n8 &
up $n8
exec sleep $l8" --agent-timeout 3)
	[ -n "$id" ] && [ "$id" != null ] || bail "$l g: spawn failed"
	check "$l g: the agent started sleep $n8" wait_for 10 said_up "$id" "$n8"
	check "$l g: the timed agent ends" wait_for 15 agent_terminal "$id"
	check "$l g: FAILED, timed out" \
		[ "$(agent_field "$id" .error)" = "timed out after 3000 ms" ]
	check "$l g: the agent's process is gone" wait_for 5 gone "$l8"
	check "$l g: its setsid child is gone" wait_for 5 gone "$n8"

	# e. the spoke crashes and starts again; then the agent is killed.
	n6=$(mark "$p" 6)
	l6=$(long "$p" 6)
	id=$(spawn "$s" "setsid sleep $n6 &
up $n6
sleep $l6")
	started_up "$l e" "$id" "$n6"
	[ "$cg" != yes ] || check "$l e: its setsid child is in the cgroup agent-$id" \
		in_agent_cgroup "$s" "$id" "$n6"
	kill_hard "$(spoke_pid "$s")"
	restart_spoke "$s"
	wait_for 30 hub_sees "$s" || bail "the hub does not see spoke $s again"
	check "$l e: after the spoke's restart the agent is RUNNING" state_is "$id" running
	check "$l e: its setsid child still runs" eval '! gone "$n6"'
	quiet cli kill "$id"
	check "$l e: the agent is KILLED" wait_for 15 state_is "$id" killed
	check "$l e: the agent's process is gone" wait_for 5 gone "$l6"
	check "$l e: its setsid child is gone" wait_for 5 gone "$n6"
	[ "$cg" != yes ] || check "$l e: its cgroup is removed" wait_for 10 cgroup_removed "$s" "$id"
}

# no_zombie PID: no child of PID is a zombie.
no_zombie() {
	! ps -o stat= --ppid "$1" | grep -q '^Z'
}

# --- agent-cgroups auto ---------------------------------------------------------
mode=$(grep -m 1 -o "agent cgroups: .*" "$WORK/dcg.log")
echo "# dcg: ${mode:-no agent cgroups line}"
case "$mode" in
"agent cgroups: on"*)
	ok "the auto spoke logs that agents get cgroups"
	run_cases dcg 1 cgroup yes
	;;
"agent cgroups: off"*)
	ok "the auto spoke logs that agents get no cgroup"
	for c in a b c d g e; do
		skip "no writable cgroup v2: case $c of agent-cgroups auto"
	done
	;;
*)
	not_ok "the auto spoke logs whether agents get cgroups"
	run_cases dcg 1 cgroup yes
	;;
esac

# --- agent-cgroups off: the shim's sweep alone -----------------------------------
mode=$(grep -m 1 -o "agent cgroups: .*" "$WORK/doff.log")
echo "# doff: ${mode:-no agent cgroups line}"
check "the spoke with agent-cgroups off logs it" grep -q "^agent cgroups: off" <<<"$mode"
run_cases doff 2 subreaper no

# g. an orphan the spoke inherits, among MANY live shims, is reaped when it
# ends: the agent kills its own shim, so nothing but the spoke is left to
# wait for its setsid child (cgroups are off).
for i in $(seq "$MANY"); do
	cli spawn long --spoke dmany >/dev/null || break
done
check "$MANY sleep agents run under dmany" \
	[ "$(pgrep -c -P "$(spoke_pid dmany)" -x tessera-shim)" -eq "$MANY" ]
cli spawn sh "setsid sleep 3.$$ </dev/null >/dev/null 2>&1 & sleep 0.2; kill -KILL \$PPID; sleep 60" \
	--spoke dmany >/dev/null
orphan_inherited() {
	[ "$(ps -o ppid= -p "$(pgrep -f -x "sleep 3.$$" | head -n 1)" 2>/dev/null | tr -d ' ')" = \
		"$(spoke_pid dmany)" ]
}
check "its setsid child is inherited by the spoke" wait_for 5 orphan_inherited
check "... and reaped once it ends, among $MANY shims" \
	wait_for 10 eval '! pgrep -f -x "sleep 3.$$" >/dev/null && no_zombie "$(spoke_pid dmany)"'

# f. nothing left unreaped under either spoke.
for s in dcg doff; do
	check "no zombie is left under spoke $s" wait_for 5 no_zombie "$(spoke_pid "$s")"
done
check "no marked process of this test is left" \
	eval '! pgrep -f -x "sleep [89]$$[12][1-8]" >/dev/null'

finish
