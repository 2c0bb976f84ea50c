#!/usr/bin/env bash
# Spoke crashes and restarts with agents running: adoption of processes
# that are provably the same (pid, start time, boot id), true final states
# for those that ended meanwhile (with the exit status their shim
# recorded), a recorded pid that now belongs to an unrelated process left
# alone, what outlived a shim SIGKILLed while the spoke was down killed
# with its agent's cgroup, a SIGKILL at each point of a spawn
# (TESSERA_SPOKE_CRASH_AT) with its retry never starting a second process,
# and a loop of SIGKILLs and restarts with agents running, after which
# nothing is stuck, nothing is orphaned, no agent's cgroup is left and
# every agent has exactly one terminal event.
. "$(dirname "$0")/lib.sh"

start_valkey vk1
keygen hub
# Room for every agent of the crash loop below, its `sleep`s included.
SPOKE_MAX_AGENTS=64 start_spoke s1 vk1 hub
start_hub hub hub s1
SPOOL=$WORK/s1.state

spawn() {
	cli --json spawn "$@" | jq -r .id
}

# The pids of every process still running under s1's state dir: its
# shims, whose command line names their exit file there.
shims() {
	pgrep -f -- "tessera-shim $SPOOL/" || true
}

hub_sees_s1() {
	cli --json spokes | jq -e '.spokes[] | select(.id == "s1") | .state == "connected"' >/dev/null
}

spoke_down() {
	kill_hard "$SPOKE_PID_s1"
}

spoke_up() {
	restart_spoke s1
	wait_for 30 hub_sees_s1 || bail "hub does not see s1 again"
}

# terminal_events ID: how many terminal events the spoke's stream holds for ID.
terminal_events() {
	valkey vk1 --raw xrange 'tessera:{s1}:events' - + |
		awk -v id="$1" '$0 == "agent" { getline; a = $0 }
			$0 == "new" { getline; if (a == id && ($0 == "completed" || $0 == "failed" ||
			$0 == "killed")) n++ } END { print n + 0 }'
}

group_alive() {
	kill -0 -- "-$1" 2>/dev/null
}

# cgroups_left ID...: those of the agents that still have a cgroup under
# s1's, none where the spoke runs without agent cgroups.
cgroups_left() {
	local id
	grep -q "agent cgroups: on" "$WORK/s1.log" || return 0
	for id in "$@"; do
		[ ! -d "$(agent_cgroup_dir s1 "$id")" ] || echo "$id"
	done
}

# --- adoption after a SIGKILL of the spoke --------------------------------
a=$(spawn sleep --spoke s1)
b=$(spawn sleep --spoke s1)
c=$(spawn sh 'sleep 4; echo done' --spoke s1)
d=$(spawn sh 'sleep 2; echo bye; exit 3' --spoke s1)
check "four agents run" [ "$(agent_state "$a")$(agent_state "$d")" = runningrunning ]
pa=$(agent_field "$a" .pid)
pb=$(agent_field "$b" .pid)
check "a recorded process has its start time" \
	[ "$(agent_field "$a" '.pidStartTicks | tonumber > 0')" = true ]
check "and the boot id" [ "$(agent_field "$a" .bootId)" = "$(cat /proc/sys/kernel/random/boot_id)" ]
spoke_down
check "the agents outlive the spoke" group_alive "$pa"
kill -KILL -- "-$pb"
check "b's whole group is gone, shim included" wait_for 10 eval "! group_alive $pb"
check "d ends while the spoke is down" wait_for 15 test -s "$SPOOL/$d.exit"
spoke_up
check "a is adopted: still RUNNING" [ "$(agent_state "$a")" = running ]
check "with the same pid" [ "$(agent_field "$a" .pid)" = "$pa" ]
check "b, gone meanwhile, is FAILED" wait_for 10 eval '[ "$(agent_state '"$b"')" = failed ]'
check "b's error says it ended while the spoke was down" \
	grep -q "while the spoke was down" <<<"$(agent_field "$b" .error)"
check "d is FAILED with the exit code its shim recorded" \
	wait_for 10 eval '[ "$(agent_field '"$d"' .exitCode)" = 3 ]'
check "d's output was kept" grep -q bye <<<"$(agent_field "$d" .output)"
check "c, adopted, completes with exit code 0" \
	wait_for 15 eval '[ "$(agent_state '"$c"')" = completed ]'
check "c's exit code is known" [ "$(agent_field "$c" .exitCode)" = 0 ]
check "c's output is kept" grep -q done <<<"$(agent_field "$c" .output)"
quiet cli kill "$a"
check "the adopted a is KILLED by request" \
	wait_for 15 eval '[ "$(agent_state '"$a"')" = killed ]'
check "no process of a is left" wait_for 10 eval "! group_alive $pa"
check "every agent has exactly one terminal event" \
	[ "$(for x in "$a" "$b" "$c" "$d"; do terminal_events "$x"; done | sort -u)" = 1 ]
check "their files are gone from the state dir" \
	wait_for 10 eval '[ -z "$(ls "$SPOOL")" ]'

# --- a recorded pid that now names an unrelated process ---------------------
e=$(spawn sleep --spoke s1)
pe=$(agent_field "$e" .pid)
spoke_down
kill -KILL -- "-$pe"
wait_for 10 eval "! group_alive $pe"
sleep 300 &
other=$!
track "$other" -
valkey vk1 hset "tessera:{s1}:agent:$e" pid "$other" >/dev/null
spoke_up
check "the agent whose pid was reused is FAILED" \
	wait_for 10 eval '[ "$(agent_state '"$e"')" = failed ]'
check "the unrelated process is left alone" kill -0 "$other"
grep -q "now belongs to another process" "$WORK/s1.log"
check "the spoke logs why it did not adopt it" [ $? -eq 0 ]
kill "$other"

# --- what outlived a shim SIGKILLed while the spoke was down ----------------
mark=317.$$
LEFT_CG= # that agent's cgroup

# recovery_cleanup: what that agent left, should the spoke not have ended
# it, once lib.sh's cleanup has stopped the daemons and shims.
recovery_cleanup() {
	local pid
	for pid in $(pgrep -f -x "sleep $mark" 2>/dev/null); do
		kill -KILL "$pid" 2>/dev/null
	done
	[ -z "$LEFT_CG" ] || cgroup_remove "$LEFT_CG"
}
trap 'cleanup; recovery_cleanup' EXIT

if grep -q "agent cgroups: on" "$WORK/s1.log"; then
	f=$(spawn sh "setsid sleep $mark & exec sleep $mark" --spoke s1)
	LEFT_CG=$(agent_cgroup_dir s1 "$f")
	wait_for 10 eval '[ "$(pgrep -c -f -x "sleep $mark")" = 2 ]' ||
		bail "the agent and its setsid child do not run"
	pf=$(agent_field "$f" .pid)
	spoke_down
	kill -KILL "$pf"
	spoke_up
	check "an agent whose shim was SIGKILLed while the spoke was down is FAILED" \
		wait_for 10 eval '[ "$(agent_state '"$f"')" = failed ]'
	check "what outlived its shim, its own session too, is killed" \
		wait_for 10 eval '! pgrep -f -x "sleep $mark" >/dev/null'
	check "its cgroup is gone" wait_for 10 eval '[ -z "$(cgroups_left "$f")" ]'
else
	echo "# skipped: what outlived a killed shim (the spoke has no agent cgroups)"
fi

# --- SIGKILL at each point of a spawn ----------------------------------------
for point in spawn-before-create spawn-after-create spawn-after-start spawn-after-running \
	spawn-after-release; do
	stop_pid "$SPOKE_PID_s1" || true
	TESSERA_SPOKE_CRASH_AT=$point restart_spoke s1
	wait_for 30 hub_sees_s1 || bail "hub does not see s1 with $point"
	marks=$WORK/starts.$point
	task="echo x >> $marks; sleep 1"
	quiet cli spawn sh "$task" --spoke s1 --request-id "r-$point" 2>/dev/null
	check "$point: the spoke dies there" wait_for 10 eval "! kill -0 $SPOKE_PID_s1"
	kill_hard "$SPOKE_PID_s1"
	spoke_up
	id=$(spawn sh "$task" --spoke s1 --request-id "r-$point")
	again=$(spawn sh "$task" --spoke s1 --request-id "r-$point")
	check "$point: a retry returns one agent" [ -n "$id" -a "$id" = "$again" ]
	check "$point: it reaches a terminal state" wait_for 15 agent_terminal "$id"
	case $point in
	spawn-after-release | spawn-before-create)
		want=1 ;;	# it ran (adopted, or first started by the retry)
	*)
		want=0 ;;	# the gate never opened: no agent code ran
	esac
	check "$point: the agent ran $want time(s)" \
		[ "$(cat "$marks" 2>/dev/null | wc -l)" -eq "$want" ]
	if [ "$want" -eq 0 ]; then
		check "$point: it is FAILED, saying it never started" \
			grep -qi "start" <<<"$(agent_field "$id" .error)"
	else
		check "$point: it COMPLETED" [ "$(agent_state "$id")" = completed ]
	fi
	check "$point: no shim is left" wait_for 10 eval '[ -z "$(shims)" ]'
	check "$point: no cgroup of it is left" wait_for 10 eval '[ -z "$(cgroups_left "$id")" ]'
	check "$point: one terminal event" [ "$(terminal_events "$id")" = 1 ]
done

# --- SIGKILL and restart, again and again, with agents running --------------
ids=()
for round in $(seq 1 12); do
	ids+=("$(spawn sleep --spoke s1)")
	ids+=("$(spawn sh 'sleep 0.3' --spoke s1)")
	ids+=("$(spawn sh "sleep 0.$((round % 9 + 1)); exit $((round % 3))" --spoke s1)")
	for id in "${ids[@]: -3}"; do
		[ -n "$id" ] && [ "$id" != null ] || bail "round $round: a spawn failed"
	done
	sleep "0.$((RANDOM % 6))"
	spoke_down
	sleep "0.$((RANDOM % 4))"
	spoke_up
done
for id in "${ids[@]}"; do
	[ "$(agent_state "$id")" = running ] && quiet cli kill --no-wait "$id"
done
all_terminal() {
	local id
	for id in "${ids[@]}"; do agent_terminal "$id" || return 1; done
}
check "after 12 crashes all ${#ids[@]} agents reach a terminal state" wait_for 60 all_terminal
check "none is stuck non-terminal in Valkey" \
	[ "$(cli --json list --state running | jq '.agents | length')$(cli --json list --state spawning | jq '.agents | length')" = 00 ]
check "no agent process is orphaned" wait_for 10 eval '[ -z "$(shims)" ]'
check "no agent's cgroup is left" wait_for 10 eval '[ -z "$(cgroups_left "${ids[@]}")" ]'
check "each agent has exactly one terminal event" \
	[ "$(for id in "${ids[@]}"; do terminal_events "$id"; done | sort -u)" = 1 ]
bad=0
for id in "${ids[@]}"; do
	case "$(agent_field "$id" .type):$(agent_state "$id")" in
	sleep:killed | sh:completed | sh:failed | sh:killed) ;;
	*) bad=$((bad + 1)) ;;
	esac
done
check "every state is one its agent could truly reach" [ "$bad" -eq 0 ]

stop_all check
finish
