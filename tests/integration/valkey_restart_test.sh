#!/usr/bin/env bash
# The spoke's Valkey killed (SIGKILL) and started again on the same folder
# (append-only, fsync on every write), three times, while a client loop
# spawns and kills agents through the hub. Every call answered OK is in
# Valkey afterwards with the state it was answered with, or a later one;
# an agent whose process ended while Valkey was down gets that recorded
# once it is back, and none stays unfinished; calls during an outage fail
# UNAVAILABLE at once; the spoke keeps running and reconnects by itself.
. "$(dirname "$0")/lib.sh"

command -v jq >/dev/null || bail "jq is not installed"

OUTAGES=3
# "At once": well before the calls' 20 s deadline, which a call waiting on
# Valkey would meet; not tighter, since a burst of BURST CLI processes takes
# a loaded machine (or a sanitizer build) seconds to run.
FAST_MS=15000
LOOP_MAX=3000			# the client loop's bound, in iterations
BURST=40			# concurrent spawns in each outage

start_valkey vk1
keygen hub
# Room for the loop's agents and for the 40 spawns an outage sends at once
# (the hub reserves a place for each spawn in flight), but not for three
# such bursts if the hub kept counting failed spawns as placed.
SPOKE_MAX_AGENTS=64 start_spoke spoke-1 vk1 hub
SPOKE_PID=$SPOKE_PID_spoke_1
start_hub hub hub spoke-1

now_ms() {
	date +%s%3N
}

valkey_pid() {
	local i
	for i in "${!NAMES[@]}"; do
		if [ "${NAMES[$i]}" = "valkey vk1" ] && [ -n "${PIDS[$i]}" ]; then
			echo "${PIDS[$i]}"
		fi
	done
}

# status_of OUTPUT: the status a failed CLI call names ("tessera: CODE: ...").
status_of() {
	sed -n 's/^tessera: \([A-Z_]*\): .*/\1/p' <<<"$1" | head -n 1
}

# fast_unavailable OUTPUT MS: a call that failed UNAVAILABLE within FAST_MS.
fast_unavailable() {
	[ "$(status_of "$1")" = UNAVAILABLE ] && [ "$2" -lt "$FAST_MS" ]
}

# burst_unavailable COUNTS MS: every spawn of a burst failed UNAVAILABLE,
# all within FAST_MS; COUNTS is "N STATUS" per status, joined by commas.
burst_unavailable() {
	[ "$1" = "$BURST UNAVAILABLE" ] && [ "$2" -lt "$FAST_MS" ]
}

hash_field() {
	valkey vk1 hget "tessera:{spoke-1}:agent:$1" "$2"
}

state_is() {
	[ "$(hash_field "$1" state)" = "$2" ]
}

# -q: a match counts even when another process vanished under grep.
agent_process_gone() {
	! grep -qsa "TESSERA_AGENT_ID=$1" /proc/[0-9]*/environ
}

agent_process_alive() {
	! agent_process_gone "$1"
}

spawn_ok() {
	cli --timeout 20 spawn true >/dev/null 2>&1
}

# The client loop: spawn a `true`, a `sleep` ended by its 1 s timeout, a
# `sleep` (3 s timeout) killed right away, over and over, until told to
# stop. One line per call in calls.log:
#   ok spawn ID STATE MS | ok kill ID STATE MS | fail spawn|kill STATUS MS
client_loop() {
	local i=0 t0 out rc id args
	while [ ! -e "$WORK/stop" ] && [ "$i" -lt "$LOOP_MAX" ]; do
		i=$((i + 1))
		case $((i % 3)) in
		0) args=(true) ;;
		1) args=(sleep --agent-timeout 1) ;;
		2) args=(sleep --agent-timeout 3) ;;
		esac
		t0=$(now_ms)
		out=$(cli --json --timeout 20 spawn "${args[@]}" 2>&1)
		rc=$?
		if [ "$rc" -ne 0 ]; then
			echo "fail spawn $(status_of "$out") $(($(now_ms) - t0))"
			continue
		fi
		id=$(jq -r .id <<<"$out")
		echo "ok spawn $id $(jq -r .state <<<"$out") $(($(now_ms) - t0))"
		[ $((i % 3)) -eq 2 ] || continue
		t0=$(now_ms)
		out=$(cli --json --timeout 20 kill "$id" 2>&1)
		rc=$?
		if [ "$rc" -ne 0 ]; then
			echo "fail kill $(status_of "$out") $(($(now_ms) - t0))"
		else
			echo "ok kill $id $(jq -r .state <<<"$out") $(($(now_ms) - t0))"
		fi
	done >>"$WORK/calls.log"
}

calls() {
	if [ -f "$WORK/calls.log" ]; then wc -l <"$WORK/calls.log"; else echo 0; fi
}

# more_calls N: the loop has logged N calls beyond the count in $mark.
more_calls() {
	[ "$(calls)" -ge $((mark + $1)) ]
}

check "the spoke is connected" wait_for 15 spawn_ok
client_loop &
loop_pid=$!
track "$loop_pid" -

for round in $(seq 1 "$OUTAGES"); do
	mark=$(calls)
	wait_for 30 more_calls 20 || bail "the client loop makes no progress"

	# Agents whose fate falls into the outage.
	timed=$(cli --json spawn sleep --agent-timeout 2 | jq -r .id)
	running=$(cli --json spawn sleep | jq -r .id)
	check "round $round: an agent with a 2 s timeout runs before the outage" \
		state_is "$timed" running
	check "round $round: an agent without one runs before the outage" \
		state_is "$running" running

	kill_hard "$(valkey_pid)"
	t0=$(now_ms)
	out=$(cli --timeout 20 spawn true 2>&1)
	t1=$(now_ms)
	check "round $round: a spawn while Valkey is down fails UNAVAILABLE ($((t1 - t0)) ms)" \
		fast_unavailable "$out" $((t1 - t0))
	# A burst: more spawns than the spoke's max-agents, all at once.
	t0=$(now_ms)
	bpids=()
	for i in $(seq 1 "$BURST"); do
		cli --timeout 20 spawn true >"$WORK/burst-$round-$i" 2>&1 &
		bpids+=($!)
	done
	wait "${bpids[@]}"
	t1=$(now_ms)
	burst=$(for i in $(seq 1 "$BURST"); do
		status_of "$(cat "$WORK/burst-$round-$i")"
	done | sort | uniq -c | sed 's/^ *//' | paste -sd, -)
	check "round $round: $BURST concurrent spawns fail UNAVAILABLE within $((t1 - t0)) ms ($burst)" \
		burst_unavailable "$burst" $((t1 - t0))
	t0=$(now_ms)
	out=$(cli --timeout 20 kill "$running" 2>&1)
	t1=$(now_ms)
	check "round $round: a kill while Valkey is down fails UNAVAILABLE ($((t1 - t0)) ms)" \
		fast_unavailable "$out" $((t1 - t0))
	check "round $round: the timed-out agent's process ends while Valkey is down" \
		wait_for 15 agent_process_gone "$timed"
	check "round $round: the spoke survives the outage" kill -0 "$SPOKE_PID"

	start_valkey vk1
	check "round $round: the spoke reconnects by itself" wait_for 20 spawn_ok
	check "round $round: the exit during the outage is recorded FAILED once Valkey is back" \
		wait_for 15 state_is "$timed" failed
	check "round $round: ... as its timeout" \
		grep -q "timed out" <<<"$(hash_field "$timed" error)"
	check "round $round: the agent whose kill was refused still runs" \
		agent_process_alive "$running"
	check "round $round: and is killed now" quiet cli kill "$running"
	check "round $round: KILLED" wait_for 10 state_is "$running" killed
done
mark=$(calls)
check "the client loop goes on after the last outage" wait_for 30 more_calls 20
touch "$WORK/stop"
wait "$loop_pid"

fails=$(awk '$1 == "fail"' "$WORK/calls.log")
echo "# client loop: $(calls) calls, $(grep -c . <<<"$fails") failed during outages"
check "the client loop met the outages" [ -n "$fails" ]
others=$(awk '$3 != "UNAVAILABLE" { print $2, $3 }' <<<"$fails" | sort | uniq -c)
check "every call that failed failed UNAVAILABLE" [ -z "$others" ]
[ -z "$others" ] || sed 's/^ */# instead: /' <<<"$others"
check "every call of the loop ended within $FAST_MS ms" \
	[ -z "$(awk '$NF >= '"$FAST_MS" "$WORK/calls.log")" ]

# Every agent in Valkey ends: its process ended, and the spoke recorded it.
unsettled() {
	valkey vk1 eval "
		local n = 0
		for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
			local s = redis.call('HGET', KEYS[2] .. id, 'state')
			if s ~= 'completed' and s ~= 'failed' and s ~= 'killed' then n = n + 1 end
		end
		return n" 2 'tessera:{spoke-1}:agents' 'tessera:{spoke-1}:agent:'
}
all_settled() {
	[ "$(unsettled)" = 0 ]
}
check "no agent stays unfinished in Valkey" wait_for 30 all_settled

# What each OK answer acknowledged is there, or a state after it.
lost=0
while read -r _ what id state _; do
	got=$(hash_field "$id" state)
	case "$what $state $got" in
	"spawn AGENT_STATE_RUNNING "running | "spawn AGENT_STATE_RUNNING "completed | \
	"spawn AGENT_STATE_RUNNING "failed | "spawn AGENT_STATE_RUNNING "killed | \
	"kill AGENT_STATE_KILLED killed") ;;
	"kill AGENT_STATE_RUNNING killed")
		[ "$(hash_field "$id" kill_requested)" = 1 ] || lost=$((lost + 1)) ;;
	"kill AGENT_STATE_RUNNING failed")
		# A timeout that fired before the kill keeps its FAILED.
		grep -q "timed out" <<<"$(hash_field "$id" error)" || lost=$((lost + 1)) ;;
	*) lost=$((lost + 1)); echo "# acknowledged $what $id $state, Valkey has '$got'" ;;
	esac
done < <(awk '$1 == "ok"' "$WORK/calls.log")
check "every acknowledged spawn and kill is in Valkey with its state or a later one" \
	[ "$lost" -eq 0 ]

agents_gone() {
	[ -z "$(agent_processes vk1 spoke-1)" ]
}
if wait_for 20 agents_gone; then
	ok "no agent process is left"
else
	not_ok "no agent process is left"
	for id in $(agent_processes vk1 spoke-1); do
		echo "# left: agent $id, Valkey: '$(hash_field "$id" state)'"
	done
fi
check "the spoke ran throughout" kill -0 "$SPOKE_PID"

finish
