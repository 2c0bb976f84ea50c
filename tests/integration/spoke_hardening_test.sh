#!/usr/bin/env bash
# What an agent, or a record in Valkey, can do to the spoke under it:
# - an agent that replaces its exit file by a FIFO (and blocks its shim
#   from renaming over it) leaves the spoke answering, and ends FAILED
#   saying why its status is unknown; a spoke restarted with such a FIFO
#   present starts, serves, and records the same;
# - a forged RUNNING record whose pid, start time and boot id name a live
#   process that is no shim of that agent (a stand-in for sshd, leading
#   its own session and group; or the shim of another agent) is never
#   adopted by a restarted spoke: that process gets no signal, though the
#   record's timeout is due, and the record ends FAILED naming the
#   mismatch.
. "$(dirname "$0")/lib.sh"

start_valkey vk1
keygen hub
start_spoke s1 vk1 hub
start_hub hub hub s1
SPOOL=$WORK/s1.state

spawn() {
	cli --json spawn "$@" --spoke s1 | jq -r .id
}

hub_sees_s1() {
	cli --json spokes | jq -e '.spokes[] | select(.id == "s1") | .state == "connected"' >/dev/null
}

# answers: the spoke carries out a whole spawn, to the end, within 10 s.
answers() {
	cli --timeout 10 spawn true --spoke s1 --wait >/dev/null 2>&1
}

state_is() {
	[ "$(agent_state "$1")" = "$2" ]
}

# The agent's task, by stdin to /bin/sh: once the file $1 exists, its exit
# record's path becomes a FIFO nobody writes, and the shim's temporary file
# a directory, so that the shim cannot rename its record over the FIFO;
# then it exits 3.
saboteur() {
	echo "while [ ! -e $1 ]; do sleep 0.05; done
e=$SPOOL/\$TESSERA_AGENT_ID.exit
rm -f \"\$e\" && mkfifo \"\$e\" && mkdir \"\$e.tmp\" && echo planted && exit 3
exit 9"
}

# --- a FIFO for an exit record, with the spoke running -----------------------
touch "$WORK/go-now"
a=$(spawn sh "$(saboteur "$WORK/go-now")")
[ -n "$a" ] && [ "$a" != null ] || bail "spawn failed"
check "the saboteur ends FAILED" wait_for 15 state_is "$a" failed
check "its error says its exit record is not a regular file" \
	[ "$(agent_field "$a" .error)" = "exit record is not a regular file (a FIFO)" ]
check "it did plant its FIFO" grep -q planted <<<"$(agent_field "$a" .output)"
check "the spoke logs that the exit record is a FIFO" \
	grep -q "agent $a: exit record is not a regular file (a FIFO)" "$WORK/s1.log"
check "the spoke answers: a spawn after it completes" answers
check "the FIFO went with the agent's files" [ ! -p "$SPOOL/$a.exit" ]

# --- a FIFO for an exit record, planted while the spoke is down ---------------
b=$(spawn sh "$(saboteur "$WORK/go-b")")
check "a second saboteur runs" state_is "$b" running
pb=$(agent_field "$b" .pid)
kill_hard "$SPOKE_PID_s1"
touch "$WORK/go-b"
check "it ends while the spoke is down" wait_for 15 eval "! kill -0 -- -$pb 2>/dev/null"
check "leaving a FIFO where its exit record goes" [ -p "$SPOOL/$b.exit" ]
restart_spoke s1
wait_for 30 hub_sees_s1 || bail "hub does not see s1 again"
check "the restarted spoke answers" answers
check "the saboteur is FAILED" wait_for 10 state_is "$b" failed
check "saying its exit record is not a regular file" \
	grep -q "exit record is not a regular file (a FIFO)" <<<"$(agent_field "$b" .error)"

# --- forged RUNNING records ---------------------------------------------------
# ticks PID: the process's start time, field 22 of /proc/PID/stat (the
# fields after the command name, which ends at the last ')', start at 3).
ticks() {
	local stat rest
	stat=$(cat "/proc/$1/stat") || return 1
	rest=${stat##*) }
	set -- $rest
	echo "${20}"
}

# forge ID TYPE PID TICKS: a RUNNING record of agent ID naming process PID,
# in the layout the store writes (hash and indexes), this boot's and this
# PID namespace's, whose timeout is due: adopted, it would be signalled at
# once.
forge() {
	local id=$1 type=$2 pid=$3 start=$4 now ns=() init
	now=$(date +%s%3N)
	ns=(pid_ns "$(stat -L -c %i /proc/self/ns/pid)")
	! init=$(ticks 1 2>/dev/null) || ns+=(pid_ns_init_ticks "$init")
	valkey vk1 hset "tessera:{s1}:agent:$id" id "$id" spoke_id s1 type "$type" task "" \
		state running created_at_ms "$now" started_at_ms "$((now - 1000))" \
		timeout_at_ms "$((now - 999))" pid "$pid" pid_start_ticks "$start" \
		boot_id "$(cat /proc/sys/kernel/random/boot_id)" "${ns[@]}" >/dev/null &&
		valkey vk1 zadd "tessera:{s1}:agents" "$now" "$id" >/dev/null &&
		valkey vk1 zadd "tessera:{s1}:agents:state:running" "$now" "$id" >/dev/null &&
		valkey vk1 zadd "tessera:{s1}:agents:type:$type" "$now" "$id" >/dev/null ||
		bail "cannot forge the record of $id"
}

# The stand-in for sshd: its own session and group, noting any SIGTERM (in
# a subshell, which outlives its group's SIGKILL quietly).
(setsid sh -c 'echo $$ >"$1/foreign.pid"; trap "echo TERM >>\"$1/foreign.sig\"" TERM
	while :; do sleep 1; done' sh "$WORK"; :) &
standin=$!
track "$standin" -
wait_for 10 test -s "$WORK/foreign.pid" || bail "the stand-in did not start"
foreign=$(cat "$WORK/foreign.pid")
track "$foreign" - # stopped by PID too, should the test end early
check "the stand-in leads its own group" [ "$(ps -o pgid= -p "$foreign" | tr -d ' ')" = "$foreign" ]
c=$(spawn sleep)
check "an agent runs whose shim a record will name too" state_is "$c" running
pc=$(agent_field "$c" .pid)
tc=$(agent_field "$c" .pidStartTicks)
stop_tracked "spoke s1"
forged=s1.0123456789abcdef01234567
twin=s1.89abcdef0123456789abcdef
forge "$forged" sleep "$foreign" "$(ticks "$foreign")"
forge "$twin" sleep "$pc" "$tc"
restart_spoke s1
wait_for 30 hub_sees_s1 || bail "hub does not see s1 again"
check "the record naming the stand-in ends FAILED" wait_for 10 state_is "$forged" failed
check "its error names the mismatch" \
	grep -q "not this agent's tessera-shim.* runs /" <<<"$(agent_field "$forged" .error)"
check "the record naming another agent's shim ends FAILED" \
	wait_for 10 state_is "$twin" failed
check "its error names the mismatch" \
	grep -q "another first argument" <<<"$(agent_field "$twin" .error)"
sleep 1
check "the stand-in is alive" kill -0 "$foreign"
check "and got no SIGTERM" [ ! -e "$WORK/foreign.sig" ]
check "the other agent is adopted as its own, still RUNNING" state_is "$c" running
check "its shim untouched" kill -0 "$pc"
check "the spoke logs why it adopted neither" \
	[ "$(grep -c "not adopted: not this agent's tessera-shim" "$WORK/s1.log")" -eq 2 ]
quiet cli kill "$c"
check "the adopted agent is KILLED by request" wait_for 15 state_is "$c" killed
kill -KILL -- "-$foreign" 2>/dev/null
kill_hard "$standin"

finish
