#!/usr/bin/env bash
# Draining a spoke, with two hubs and two spokes (each with its own
# Valkey): drained through hub A, spoke-1 shows "draining" through hub B,
# whose placement then skips it (least loaded, and request ids whose
# rendezvous choice is spoke-1), while a spawn naming it is refused
# FAILED_PRECONDITION and a retry of a request it carried out still gets
# its agent; its running agents go on, and `drain --wait` returns once
# they have ended, not before. The state is the spoke's: it outlives a
# restart of hub A and of the spoke. Undrained through hub B, spoke-1
# takes agents again; grpcurl drains and undrains too, and with every
# spoke draining a spawn is refused saying so.
. "$(dirname "$0")/lib.sh"

for tool in grpcurl jq python3; do
	command -v "$tool" >/dev/null || bail "$tool is not installed"
done

start_valkey vk1
start_valkey vk2
keygen hub-a
keygen hub-b
start_spoke spoke-1 vk1 hub-a hub-b
start_spoke spoke-2 vk2 hub-a hub-b
start_hub hub-a hub-a spoke-1 spoke-2
HUB_A=$HUB_ADDR
start_hub hub-b hub-b spoke-1 spoke-2
HUB_B=$HUB_ADDR

# at HUB CLI-ARGS...: the CLI against one of the hubs.
at() {
	local hub=$1
	shift
	"$TESSERA_CLI" --hub "$hub" "$@"
}

# spoke_json HUB ID: that spoke in the hub's ListSpokes, as the CLI's JSON.
spoke_json() {
	at "$1" --json spokes | jq -c --arg s "$2" '.spokes[] | select(.id == $s)'
}

# state_is HUB ID STATE: the hub shows the spoke in that state.
state_is() {
	[ "$(spoke_json "$1" "$2" | jq -r .state)" = "$3" ]
}

# running_is HUB ID N: the hub knows the spoke's load, and it runs N agents.
running_is() {
	[ "$(spoke_json "$1" "$2" | jq -r 'if .maxAgents > 0 then .runningAgents else "-" end')" = "$3" ]
}

# rid_choosing SPOKE PREFIX: a request id whose rendezvous choice among
# spoke-1 and spoke-2 is SPOKE (hub/placement.c: the highest BLAKE2b-64 of
# the spoke's id, a NUL and the id).
rid_choosing() {
	python3 - "$1" "$2" <<'EOF'
import hashlib, sys
want, prefix = sys.argv[1], sys.argv[2]
score = lambda s, r: int.from_bytes(
    hashlib.blake2b(s.encode() + b"\0" + r.encode(), digest_size=8).digest(), "big")
for i in range(1000):
    rid = f"{prefix}-{i}"
    if max(("spoke-1", "spoke-2"), key=lambda s: score(s, rid)) == want:
        print(rid)
        break
EOF
}

spawn_id() {
	local hub=$1
	shift
	at "$hub" --json spawn "$@" | jq -r .id
}

check "spoke-1 and spoke-2 are connected to hub A" wait_for 15 \
	sh -c "[ \"\$('$TESSERA_CLI' --hub $HUB_A --json spokes | jq -r '.spokes[].state' | sort -u)\" = connected ]"
check "... and to hub B" wait_for 15 \
	sh -c "[ \"\$('$TESSERA_CLI' --hub $HUB_B --json spokes | jq -r '.spokes[].state' | sort -u)\" = connected ]"
check "hub A knows spoke-1's load" wait_for 15 running_is "$HUB_A" spoke-1 0

# Before the drain: three agents on spoke-2, two on spoke-1 (one ends by
# itself once the file finish exists, one runs until killed), so that
# least-loaded placement would choose spoke-1; and a spawn placed there
# by its request id.
busy=()
for i in 1 2 3; do busy+=("$(spawn_id "$HUB_A" sleep --spoke spoke-2)"); done
check "hub B knows spoke-2 runs three agents" wait_for 15 running_is "$HUB_B" spoke-2 3
long=$(spawn_id "$HUB_A" sleep --spoke spoke-1)
rid_before=$(rid_choosing spoke-1 before)
before=$(spawn_id "$HUB_A" true --request-id "$rid_before")
check "a request id whose rendezvous spoke is spoke-1 lands there" [ "${before%%.*}" = spoke-1 ]
short=$(spawn_id "$HUB_A" sh "while [ ! -e $WORK/finish ]; do sleep 0.1; done" --spoke spoke-1)
check "two agents run on spoke-1" \
	[ "$(agent_state "$long") $(agent_state "$short")" = "running running" ]

# Drained through hub A.
out=$(at "$HUB_A" --json drain spoke-1)
check "drain exits 0" [ $? -eq 0 ]
check "drain answers the spoke draining, with its two agents" \
	[ "$(jq -r '"\(.id) \(.state) \(.draining) \(.runningAgents)"' <<<"$out")" = "spoke-1 draining true 2" ]
check "the spoke's Valkey holds the flag" [ "$(valkey vk1 get 'tessera:{spoke-1}:draining')" = 1 ]
check "the spoke logs the drain" grep -q "draining: no new agents; 2 running go on" "$WORK/spoke-1.log"
line=$(at "$HUB_A" drain spoke-1)
check "drain again is harmless, and says so in one line" \
	[ "$line" = "spoke-1: draining, running 2/16" ]

# Through hub B, right away: spawns skip spoke-1 whether hub B has polled
# it yet or not (a draining spoke refuses, and the hub places again).
where=""
for i in 1 2 3 4; do
	id=$(spawn_id "$HUB_B" true) && where="$where ${id%%.*}"
done
check "least-loaded spawns through hub B all land on the busier spoke-2" \
	[ "$where" = " spoke-2 spoke-2 spoke-2 spoke-2" ]
rid_during=$(rid_choosing spoke-1 during)
during=$(spawn_id "$HUB_B" true --request-id "$rid_during")
check "a new request id whose rendezvous spoke is spoke-1 lands on spoke-2" \
	[ "${during%%.*}" = spoke-2 ]
check "... and its retry, through hub A, names the same agent" \
	[ "$(spawn_id "$HUB_A" true --request-id "$rid_during")" = "$during" ]
check "a retry of a request spoke-1 carried out before the drain gets its agent" \
	[ "$(spawn_id "$HUB_B" true --request-id "$rid_before")" = "$before" ]
check "... also when it names spoke-1" \
	[ "$(spawn_id "$HUB_B" true --request-id "$rid_before" --spoke spoke-1)" = "$before" ]
check "hub B shows spoke-1 draining" wait_for 15 state_is "$HUB_B" spoke-1 draining
check "... with its two agents" running_is "$HUB_B" spoke-1 2
check "tessera spokes has draining in its STATE column" \
	sh -c "'$TESSERA_CLI' --hub '$HUB_B' spokes | grep -Eq '^spoke-1 .* draining +2/16 '"
check "--json spokes says draining: true" \
	[ "$(spoke_json "$HUB_B" spoke-1 | jq -r .draining)" = true ]
check "spoke-2 is still connected, not draining" state_is "$HUB_B" spoke-2 connected
err=$(at "$HUB_B" spawn true --spoke spoke-1 2>&1)
check "spawn --spoke spoke-1 exits 1" [ $? -eq 1 ]
check "... FAILED_PRECONDITION, saying the spoke is draining" \
	grep -qx "tessera: FAILED_PRECONDITION: spoke spoke-1 is draining: it takes no new agents until it is undrained" <<<"$err"
check "no agent was created on spoke-1 since the drain" \
	[ "$(valkey vk1 zcard 'tessera:{spoke-1}:agents')" -eq 3 ]

# Its agents go on; drain --wait returns once they end, not before.
check "spoke-1's agents still run" \
	[ "$(agent_state "$long") $(agent_state "$short")" = "running running" ]
err=$(at "$HUB_B" --timeout 2 drain spoke-1 --wait 2>&1 >/dev/null)
check "drain --wait with agents left past --timeout: exit 1" [ $? -eq 1 ]
check "... DEADLINE_EXCEEDED, saying how many run" \
	grep -q "DEADLINE_EXCEEDED: spoke spoke-1 still runs 2 agents after 2 s" <<<"$err"
at "$HUB_B" --json --timeout 60 drain spoke-1 --wait >"$WORK/wait.out" 2>"$WORK/wait.err" &
waiter=$!
track "$waiter" -
sleep 1
check "drain --wait is still waiting while both agents run" kill -0 "$waiter"
check "kill of the long agent" quiet at "$HUB_A" kill "$long"
sleep 3 # past a load poll
check "drain --wait is still waiting while the other one runs" \
	sh -c "kill -0 $waiter && [ \"\$('$TESSERA_CLI' --hub $HUB_A --json get $short | jq -r .state)\" = AGENT_STATE_RUNNING ]"
touch "$WORK/finish"
rc=0
wait_tracked "$waiter" || rc=$?
returned=$(date +%s%3N)
check "drain --wait exits 0 once no agent runs" [ "$rc" -eq 0 ]
ended_before() {
	[ "$(agent_state "$1")" = completed ] &&
		[ "$(agent_field "$1" '.completedAtMs | tonumber')" -le "$2" ]
}
check "... after the other agent ended" ended_before "$short" "$returned"
check "... printing the spoke drained, none running" \
	[ "$(jq -r '"\(.state) \(.runningAgents)"' "$WORK/wait.out")" = "draining 0" ]
check "no process of spoke-1's agents is left" [ -z "$(agent_processes vk1 spoke-1)" ]

# The drain is the spoke's: it outlives hub A's and the spoke's restarts.
stop_tracked "hub hub-a"
restart_hub hub-a
stop_tracked "spoke spoke-1"
restart_spoke spoke-1
check "the restarted spoke says it is draining" \
	grep -q "draining: no new agents until \`tessera undrain spoke-1\`" "$WORK/spoke-1.log"
check "the restarted hub A shows spoke-1 draining" wait_for 20 state_is "$HUB_A" spoke-1 draining
check "hub B too, once it reconnects" wait_for 20 state_is "$HUB_B" spoke-1 draining
err=$(at "$HUB_A" spawn true --spoke spoke-1 2>&1)
check "spawn --spoke spoke-1 is still refused FAILED_PRECONDITION" \
	grep -q "FAILED_PRECONDITION: spoke spoke-1 is draining" <<<"$err"
id=$(spawn_id "$HUB_A" true)
check "a placed spawn still lands on spoke-2" [ "${id%%.*}" = spoke-2 ]

# grpcurl drains too: with both spokes draining, nothing can be placed.
out=$(grpcurl -plaintext -max-time 10 -d '{"spokeId": "spoke-2"}' "$HUB_B" tessera.v1.Hub/DrainSpoke)
check "grpcurl DrainSpoke answers the SpokeInfo, draining" \
	[ "$(jq -r '"\(.id) \(.state) \(.draining)"' <<<"$out")" = "spoke-2 draining true" ]
check "hub A learns of it within a poll" wait_for 15 state_is "$HUB_A" spoke-2 draining
err=$(at "$HUB_A" spawn true 2>&1)
check "with every spoke draining, a spawn fails FAILED_PRECONDITION saying so" \
	grep -q "FAILED_PRECONDITION: every spoke is draining" <<<"$err"
err=$(at "$HUB_B" spawn true --request-id "$(rid_choosing spoke-2 all)" 2>&1)
check "... with a request id too" grep -q "FAILED_PRECONDITION: every spoke is draining" <<<"$err"
err=$(grpcurl -plaintext -max-time 10 -d '{"spokeId": "spoke-9"}' "$HUB_B" \
	tessera.v1.Hub/DrainSpoke 2>&1)
check "DrainSpoke of an unknown spoke: NotFound" grep -q "Code: NotFound" <<<"$err"
err=$(grpcurl -plaintext -max-time 10 -d '{}' "$HUB_B" tessera.v1.Hub/UndrainSpoke 2>&1)
check "UndrainSpoke without a spoke id: InvalidArgument" grep -q "Code: InvalidArgument" <<<"$err"
out=$(grpcurl -plaintext -max-time 10 -d '{"spokeId": "spoke-2"}' "$HUB_B" tessera.v1.Hub/UndrainSpoke)
check "grpcurl UndrainSpoke answers it connected" \
	[ "$(jq -r '"\(.state) \(.draining // false)"' <<<"$out")" = "connected false" ]

# Undrained through hub B: placement uses spoke-1 again, through both hubs.
line=$(at "$HUB_B" undrain spoke-1)
check "undrain exits 0 with one line" [ "$line" = "spoke-1: not draining, running 0/16" ]
check "the spoke's Valkey no longer holds the flag" \
	[ "$(valkey vk1 exists 'tessera:{spoke-1}:draining')" = 0 ]
check "hub A shows spoke-1 connected again within a poll" wait_for 15 state_is "$HUB_A" spoke-1 connected
where=""
for hub in "$HUB_A" "$HUB_B" "$HUB_A" "$HUB_B"; do
	id=$(spawn_id "$hub" true --request-id "$(rid_choosing spoke-1 "after$RANDOM")") &&
		where="$where ${id%%.*}"
done
check "request ids whose rendezvous spoke is spoke-1 land there again" \
	[ "$where" = " spoke-1 spoke-1 spoke-1 spoke-1" ]
where=""
for hub in "$HUB_A" "$HUB_B"; do
	id=$(spawn_id "$hub" true) && where="$where ${id%%.*}"
done
check "least-loaded spawns through both hubs choose the emptier spoke-1 again" \
	[ "$where" = " spoke-1 spoke-1" ]
id=$(spawn_id "$HUB_B" true --spoke spoke-1)
check "spawn --spoke spoke-1 works again" [ "${id%%.*}" = spoke-1 ]

for id in "${busy[@]}"; do at "$HUB_A" kill "$id" >/dev/null || not_ok "kill $id"; done

# Usage, and completion.
at "$HUB_A" drain >/dev/null 2>&1
check "drain without a spoke: usage error (exit 2)" [ $? -eq 2 ]
at "$HUB_A" undrain spoke-1 --wait >/dev/null 2>&1
check "undrain --wait: usage error (exit 2)" [ $? -eq 2 ]
err=$(at "$HUB_A" drain spoke-9 2>&1)
check "drain of an unknown spoke: exit 1" [ $? -eq 1 ]
check "... NOT_FOUND" grep -q "NOT_FOUND: no spoke spoke-9 is configured" <<<"$err"
check "tessera __complete offers drain and undrain" \
	[ "$("$TESSERA_CLI" __complete d) $("$TESSERA_CLI" __complete un)" = "drain undrain" ]
check "... and drain's --wait" [ "$("$TESSERA_CLI" __complete drain --wa)" = --wait ]

finish
