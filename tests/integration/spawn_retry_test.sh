#!/usr/bin/env bash
# Idempotent spawn under concurrent retries: in each round, 20 SpawnAgent
# calls with the same request id reach two hubs at once (15 from the CLI,
# 5 from grpcurl), both hubs with the same two spokes. All must name the
# same agent, the spokes' Valkey must hold exactly one agent for that
# request id, and one process must have run: each agent's task appends
# its id to a file.
. "$(dirname "$0")/lib.sh"

for tool in grpcurl jq; do
	command -v "$tool" >/dev/null || bail "$tool is not installed"
done

ROUNDS=5
CALLS=20
GRPCURL_CALLS=5

start_valkey vk1
start_valkey vk2
keygen hub
start_spoke spoke-1 vk1 hub
start_spoke spoke-2 vk2 hub
start_hub hub hub spoke-1 spoke-2
HUB_A=$HUB_ADDR
# A second hub with the same key and spokes: retries may go through either.
start_hub hub2 hub spoke-1 spoke-2
HUB_B=$HUB_ADDR

connected() {
	[ "$("$TESSERA_CLI" --hub "$1" --json spokes | jq -r '.spokes[].state' |
		grep -c '^connected$')" -eq 2 ]
}
check "both spokes are connected to the first hub" wait_for 15 connected "$HUB_A"
check "both spokes are connected to the second hub" wait_for 15 connected "$HUB_B"

# agents_for REQUEST_ID: the agents both spokes' Valkey hold for it.
agents_for() {
	local s
	for s in 1 2; do
		valkey "vk$s" eval "
			local n = 0
			for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
				if redis.call('HGET', KEYS[2] .. id, 'request_id') == ARGV[1] then
					n = n + 1
				end
			end
			return n" 2 "tessera:{spoke-$s}:agents" "tessera:{spoke-$s}:agent:" "$1"
	done | awk '{ n += $1 } END { print n }'
}

# spawning_events ID: agent.spawning events for it in its spoke's stream.
spawning_events() {
	local s=${1%%.*}
	valkey "vk${s#spoke-}" eval "
		local n = 0
		for _, e in ipairs(redis.call('XRANGE', KEYS[1], '-', '+')) do
			local f, agent, type = e[2], nil, nil
			for i = 1, #f, 2 do
				if f[i] == 'agent' then agent = f[i + 1] end
				if f[i] == 'type' then type = f[i + 1] end
			end
			if agent == ARGV[1] and type == 'agent.spawning' then n = n + 1 end
		end
		return n" 1 "tessera:{$s}:events" "$1"
}

rids=()

started_lines() {
	if [ -f "$WORK/started-$1" ]; then wc -l <"$WORK/started-$1"; else echo 0; fi
}

for round in $(seq 1 "$ROUNDS"); do
	rid=retry-$round-$RANDOM
	task="echo \$TESSERA_AGENT_ID >>$WORK/started-$rid"
	pids=()
	for i in $(seq 1 "$CALLS"); do
		if [ $((i % 2)) -eq 0 ]; then hub=$HUB_A; else hub=$HUB_B; fi
		if [ "$i" -le "$GRPCURL_CALLS" ]; then
			grpcurl -plaintext -max-time 30 \
				-d "$(jq -cn --arg t "$task" --arg r "$rid" \
					'{type: "sh", task: $t, requestId: $r}')" \
				"$hub" tessera.v1.Hub/SpawnAgent >"$WORK/out-$rid-$i" 2>&1 &
		else
			"$TESSERA_CLI" --hub "$hub" --json --timeout 30 spawn sh "$task" \
				--request-id "$rid" >"$WORK/out-$rid-$i" 2>&1 &
		fi
		pids+=($!)
	done
	failed=0
	for p in "${pids[@]}"; do
		wait "$p" || failed=$((failed + 1))
	done
	ids=$(for f in "$WORK"/out-"$rid"-*; do
		jq -r '.id // "none"' "$f" 2>/dev/null || echo none
	done | sort | uniq -c)
	check "round $round: all $CALLS concurrent spawns succeed" [ "$failed" -eq 0 ]
	check "round $round: all $CALLS name one agent ($(wc -l <<<"$ids") distinct)" \
		[ "$(awk '{ print $1 }' <<<"$ids")" = "$CALLS" ]
	id=$(awk '{ print $2 }' <<<"$ids" | head -n 1)
	check "round $round: Valkey holds exactly one agent for the request id" \
		[ "$(agents_for "$rid")" -eq 1 ]
	check "round $round: exactly one agent.spawning event for it" \
		[ "$(spawning_events "$id")" -eq 1 ]
	check "round $round: its process ran" wait_for 10 grep -qx "$id" "$WORK/started-$rid"
	wait_for 10 agent_terminal "$id"
	check "round $round: exactly one process ran for it" [ "$(started_lines "$rid")" -eq 1 ]
	# A retry after the agent has ended still gets the same agent, and runs nothing.
	again=$(cli --json spawn sh "$task" --request-id "$rid" | jq -r .id)
	check "round $round: a later retry names the same agent" [ "$again" = "$id" ]
	rids+=("$rid")
done
total=$(($(valkey vk1 zcard 'tessera:{spoke-1}:agents') + $(valkey vk2 zcard 'tessera:{spoke-2}:agents')))
check "the spokes hold $ROUNDS agents in all, one per request id" [ "$total" -eq "$ROUNDS" ]
# The processes' side of the same: still one line per request id.
extra=0
for rid in "${rids[@]}"; do
	[ "$(started_lines "$rid")" -eq 1 ] || extra=$((extra + 1))
done
check "no retry, concurrent or late, started a second process" [ "$extra" -eq 0 ]

finish
