#!/usr/bin/env bash
# A kill that races a normal exit or a timeout, thousands of times against
# one spoke (tessera-race plays the hub): every agent ends in exactly one
# terminal state, with exactly one terminal event in the stream, right
# after its spawning and running events, in a state that agrees with the
# kill's answer, with how its process ended (exit code or signal)
# recorded, and no process of any agent is left.
. "$(dirname "$0")/lib.sh"

RACE=$TESSERA_BUILD/tests/tools/tessera-race
AGENTS_KEY='tessera:{spoke-1}:agents'
EVENTS_KEY='tessera:{spoke-1}:events'
KILLS=${KILL_RACE_COUNT:-2000}		# `true` agents, each killed at once
export LC_ALL=C				# sort and join agree on the order

start_valkey vk1
keygen hub
SPOKE_MAX_AGENTS=64 start_spoke spoke-1 vk1 hub

# race OUT OPTION...: spawn(-then-kill) pairs; one line per agent in $WORK/OUT.
race() {
	local out=$1
	shift
	"$RACE" -a "127.0.0.1:$SPOKE_PORT_spoke_1" -k "$WORK/hub.key" -s spoke-1 \
		-p "$WORK/spoke-1.key.pub" -c 4 "$@" >"$WORK/$out" 2>>"$WORK/race.log"
}

lines() {
	wc -l <"$WORK/$1"
}

t0=$(date +%s)
check "$KILLS spawn+kill pairs of an agent that exits at once all get answers" \
	race kill.out -n "$KILLS"
check "one line per agent" [ "$(lines kill.out)" -eq "$KILLS" ]
check "1000 more pairs, 16 in flight at once, get answers" race kill16.out -n 1000 -c 16
check "300 spawn+kill pairs with a 1 ms timeout racing both get answers" \
	race timeout-kill.out -n 300 -o 1
check "300 spawns with a 1 ms timeout racing the exit get answers" \
	race timeout-exit.out -n 300 -o 1 -N
check "200 spawn+kill pairs of a sleeping agent with a 1 ms timeout get answers" \
	race sleep-kill.out -n 200 -o 1 -A sleep
TOTAL=$((KILLS + 1800))
echo "# $TOTAL agents in $(($(date +%s) - t0)) s"
check "every spawn was answered RUNNING" \
	[ -z "$(cat "$WORK"/*.out | awk '$2 != "AGENT_STATE_RUNNING"')" ]

# Every agent's hash, one line: id state kill_requested exit_code signal
# error (its white space as _), each "-" when missing or empty.
records() {
	valkey vk1 eval "
		local out = {}
		for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
			local h = redis.call('HMGET', KEYS[2] .. id, 'state', 'kill_requested',
				'exit_code', 'signal', 'error')
			for i = 1, 5 do
				if not h[i] or h[i] == '' then h[i] = '-' end
			end
			h[5] = (h[5]:gsub('%s', '_'))
			out[#out + 1] = id .. ' ' .. table.concat(h, ' ')
		end
		return out" 2 "$AGENTS_KEY" "tessera:{spoke-1}:agent:"
}

all_settled() {
	[ "$(records | awk '$2 != "completed" && $2 != "failed" && $2 != "killed"' |
		wc -l)" -eq 0 ]
}
check "every agent reaches a terminal state" wait_for 60 all_settled
records >"$WORK/records"
check "Valkey has every agent the race made" \
	[ "$(wc -l <"$WORK/records")" -eq "$TOTAL" ]

# Every event as "agent type", in stream order.
valkey vk1 eval "
	local out = {}
	for _, e in ipairs(redis.call('XRANGE', KEYS[1], '-', '+')) do
		local f, agent, type = e[2], '-', '-'
		for i = 1, #f, 2 do
			if f[i] == 'agent' then agent = f[i + 1] end
			if f[i] == 'type' then type = f[i + 1] end
		end
		out[#out + 1] = agent .. ' ' .. type
	end
	return out" 1 "$EVENTS_KEY" >"$WORK/events"

# The events of each agent joined: "id agent.spawning agent.running agent.X".
awk '{ seq[$1] = seq[$1] " " $2 } END { for (a in seq) print a seq[a] }' \
	"$WORK/events" | sort >"$WORK/sequences"
sort "$WORK/records" >"$WORK/records.sorted"

# bad_sequences: agents whose events are not spawning, running and one
# terminal event naming the state in their hash.
bad_sequences() {
	join "$WORK/records.sorted" "$WORK/sequences" | awk '
		NF != 9 || $7 != "agent.spawning" || $8 != "agent.running" ||
		$9 != "agent." $2 { print }'
}
bad=$(bad_sequences)
check "each agent has exactly one terminal event, after spawning and running, matching its state" \
	[ -z "$bad" ]
[ -z "$bad" ] || head -n 5 <<<"$bad" | sed 's/^/# /'
check "no event names an agent Valkey does not have" \
	[ "$(wc -l <"$WORK/sequences")" -eq "$(wc -l <"$WORK/records")" ]

# outcomes FILE: "state kill_requested kill_reply timed_out" per agent.
outcomes() {
	join <(sort "$WORK/$1") "$WORK/records.sorted" | awk '{
		t = ($8 ~ /^timed_out_after/) ? "timeout" : "-"
		print $4, $5, $3, t
	}'
}

# inconsistent FILE: the agents whose record disagrees with the kill's answer:
#   kill OK                  -> kill_requested, and KILLED, or FAILED by a
#                               timeout that fired first
#   kill FAILED_PRECONDITION -> it had ended already: no kill_requested,
#                               COMPLETED (or FAILED by its timeout)
#   no kill                  -> COMPLETED or FAILED by its timeout
inconsistent() {
	outcomes "$1" | awk '
		$3 == "OK" && $2 == 1 && ($1 == "killed" || ($1 == "failed" && $4 == "timeout")) { next }
		$3 == "FAILED_PRECONDITION" && $2 != 1 && ($1 == "completed" ||
			($1 == "failed" && $4 == "timeout")) { next }
		$3 == "-" && $2 != 1 && ($1 == "completed" || ($1 == "failed" && $4 == "timeout")) { next }
		{ print }'
}
for f in kill.out kill16.out timeout-kill.out timeout-exit.out sleep-kill.out; do
	bad=$(inconsistent "$f")
	check "$f: every final state agrees with the kill's answer" [ -z "$bad" ]
	[ -z "$bad" ] || head -n 5 <<<"$bad" | sed 's/^/# /'
	echo "# $f: $(outcomes "$f" | sort | uniq -c | sed 's/^ *//' | paste -sd, -)"
done
# Every agent here ran (its spawn was answered RUNNING), and the spoke
# learns how each process ended: that must be in its record, whichever
# state won. Fails if a kill that lands after the exit, before the spoke
# has recorded it, records KILLED without it and drops the exit.
lost=$(awk '$4 == "-" && $5 == "-"' "$WORK/records")
check "every agent records how its process ended (exit code or signal)" [ -z "$lost" ]
[ -z "$lost" ] || echo "# $(wc -l <<<"$lost") without, e.g.: $(head -n 1 <<<"$lost")"

KILL_OUTS=("$WORK/kill.out" "$WORK/kill16.out" "$WORK/timeout-kill.out" "$WORK/sleep-kill.out")
check "the races went both ways (some kills came too late)" \
	grep -q "FAILED_PRECONDITION" "${KILL_OUTS[@]}"
check "the races went both ways (some kills were in time)" \
	[ "$(cat "${KILL_OUTS[@]}" | awk '$3 == "OK"' | wc -l)" -gt 0 ]

agents_gone() {
	[ -z "$(agent_processes vk1 spoke-1)" ]
}
check "no process of any agent is left" wait_for 20 agents_gone

finish
