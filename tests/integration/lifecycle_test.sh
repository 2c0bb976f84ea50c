#!/usr/bin/env bash
# The walking skeleton end to end: CLI -> hub -> signed command -> spoke ->
# Valkey -> real process -> events back to the CLI, with real daemons.
. "$(dirname "$0")/lib.sh"

start_valkey vk1
keygen hub
keygen rogue
start_spoke spoke-1 vk1 hub
start_hub hub hub spoke-1

spawn_id() {
	cli --json spawn "$@" | jq -r .id
}

# /bin/true reaches COMPLETED with both times set.
id=$(spawn_id true) || bail "spawn failed"
check "spawn returns an agent id of spoke-1" [ "${id%%.*}" = spoke-1 ]
check "true agent reaches a terminal state" wait_for 10 agent_terminal "$id"
check "true agent is COMPLETED" [ "$(agent_state "$id")" = completed ]
check "COMPLETED agent has startedAt and completedAt" \
	[ "$(agent_field "$id" '(.startedAtMs|tonumber) > 0 and (.completedAtMs|tonumber) >= (.startedAtMs|tonumber)')" = true ]
check "COMPLETED agent has exit code 0" [ "$(agent_field "$id" .exitCode)" = 0 ]

# The record in Valkey is what get reports, field by field.
stored=$(valkey vk1 -3 --json hgetall "tessera:{spoke-1}:agent:$id")
reported=$(cli --json get "$id")
same_record() {
	jq -en --argjson h "$stored" --argjson g "$reported" '
	($g.state | ascii_downcase | sub("^agent_state_"; "")) as $state
	| $h.id == $g.id and $h.spoke_id == $g.spokeId and $h.type == $g.type
	and $h.task == ($g.task // "") and $h.state == $state
	and ($h.created_at_ms | tonumber) == ($g.createdAtMs | tonumber)
	and ($h.started_at_ms | tonumber) == ($g.startedAtMs | tonumber)
	and ($h.completed_at_ms | tonumber) == ($g.completedAtMs | tonumber)
	and ($h.exit_code | tonumber) == $g.exitCode
	and ($h.pid | tonumber) == ($g.pid | tonumber)' >/dev/null
}
check "Valkey hash matches get for every field" same_record

# /bin/false reaches FAILED with its exit code.
id=$(spawn_id false)
check "false agent reaches a terminal state" wait_for 10 agent_terminal "$id"
check "false agent is FAILED" [ "$(agent_state "$id")" = failed ]
check "FAILED agent records exit code 1" [ "$(agent_field "$id" .exitCode)" = 1 ]
check "FAILED agent has an error text" [ -n "$(agent_field "$id" '.error // empty')" ]

# A sleeping agent is killed, and nothing of it survives.
id=$(spawn_id sleep)
check "sleep agent is RUNNING" [ "$(agent_state "$id")" = running ]
pid=$(agent_field "$id" .pid)
killed_id=$id
check "sleep agent has a live process" kill -0 "$pid"
check "kill exits 0" quiet cli kill "$id"
check "sleep agent is KILLED once kill returns" [ "$(agent_state "$id")" = killed ]
check "the KILLED agent records the signal" [ "$(agent_field "$id" .signal)" = 15 ]
check "no process of the killed agent is left" \
	sh -c "! kill -0 $pid 2>/dev/null && ! pgrep -g $pid >/dev/null"
err=$(cli kill "$id" 2>&1)
rc=$?
check "killing a KILLED agent again exits non-zero" [ "$rc" -ne 0 ]
check "killing a KILLED agent again names FAILED_PRECONDITION" grep -q FAILED_PRECONDITION <<<"$err"

# watch: the events of one agent, in order, from the start of the stream.
id=$(spawn_id true)
wait_for 10 agent_terminal "$id"
types=$(timeout 20 "$TESSERA_CLI" --hub "$HUB_ADDR" --json watch --from-start --agent "$id" --count 3 2>/dev/null | jq -r .event.type | paste -sd' ')
check "watch --from-start shows spawning, running, completed in order" \
	[ "$types" = "agent.spawning agent.running agent.completed" ]

# watch live: subscribe first, then spawn.
timeout 20 "$TESSERA_CLI" --hub "$HUB_ADDR" --json watch --count 3 >"$WORK/watch.out" 2>"$WORK/watch.err" &
wpid=$!
track "$wpid" -
if wait_for 10 grep -q '^watching' "$WORK/watch.err"; then
	id=$(spawn_id true)
	wait "$wpid"
	types=$(jq -r 'select(.event.agentId == "'"$id"'") | .event.type' "$WORK/watch.out" | paste -sd' ')
	check "live watch shows agent.running then agent.completed" \
		[ "$types" = "agent.spawning agent.running agent.completed" ]
	check "every watched event carries a resume cursor" \
		[ "$(jq -r '.cursor | length > 0' "$WORK/watch.out" | sort -u)" = true ]
else
	not_ok "live watch subscribed"
fi

# Unknown agent: NOT_FOUND and a non-zero exit.
err=$(cli get spoke-1.000000000000000000000000 2>&1)
rc=$?
check "get of an unknown agent exits non-zero" [ "$rc" -ne 0 ]
check "get of an unknown agent names NOT_FOUND" grep -q NOT_FOUND <<<"$err"
err=$(cli get not-an-id 2>&1)
check "get of a malformed id names INVALID_ARGUMENT" grep -q INVALID_ARGUMENT <<<"$err"

# A hub whose key the spoke does not trust is refused, and nothing is created.
before=$(valkey vk1 zcard "tessera:{spoke-1}:agents")
main_hub=$HUB_ADDR
start_hub rogue-hub rogue spoke-1
err=$(cli spawn true --spoke spoke-1 2>&1)
rc=$?
check "spawn through an untrusted hub fails" [ "$rc" -ne 0 ]
check "the spoke answers PERMISSION_DENIED" grep -q PERMISSION_DENIED <<<"$err"
check "nothing was created in Valkey" [ "$(valkey vk1 zcard "tessera:{spoke-1}:agents")" = "$before" ]
HUB_ADDR=$main_hub

# A hub holding a wrong key for its spoke refuses the spoke's replies; once
# its config has the right key, SIGHUP makes it trust them, no restart.
keygen stale
start_hub keyswap hub spoke-1
sed -i "s|$(pubkey spoke-1)|$(pubkey stale)|" "$WORK/keyswap.conf"
kill -HUP "$HUB_PID"
wait_for 5 grep -q "spoke spoke-1 now verified with key" "$WORK/keyswap.log"
err=$(cli spawn true --spoke spoke-1 2>&1)
check "a reply signed with a key the hub does not hold is refused" \
	grep -q "does not verify" <<<"$err"
sed -i "s|$(pubkey stale)|$(pubkey spoke-1)|" "$WORK/keyswap.conf"
kill -HUP "$HUB_PID"
# Only once the hub has taken the key: a spawn before would be a third agent.
reloaded_twice() {
	[ "$(grep -c "spoke spoke-1 now verified with key" "$WORK/keyswap.log")" -ge 2 ]
}
wait_for 5 reloaded_twice
check "after SIGHUP with the right key, spawns through that hub work" \
	wait_for 5 quiet cli spawn true
HUB_ADDR=$main_hub
# The spoke did carry out the refused spawn: the hub only could not prove it.
before=$((before + 2))

# list shows every agent spawned above, and filters by state.
check "list --json shows every agent" [ "$(cli --json list | jq '.agents | length')" = "$before" ]
check "list --state killed shows the one killed agent" \
	[ "$(cli --json list --state killed | jq -r '.agents[].id')" = "$killed_id" ]

# An agent that ignores SIGTERM, and the child it left running, are
# SIGKILLed once the grace (kill-grace-ms 2000) has passed.
id=$(spawn_id sh 'trap "" TERM; sleep 60 & echo started; wait')
wait_for 10 grep -q started <<<"$(cli logs "$id")"
pid=$(agent_field "$id" .pid)
t0=$(date +%s%3N)
quiet cli kill "$id"
t1=$(date +%s%3N)
check "the SIGTERM-deaf agent is KILLED" [ "$(agent_state "$id")" = killed ]
check "only after the grace ($((t1 - t0)) ms)" [ $((t1 - t0)) -ge 1900 ]
check "by SIGKILL" [ "$(agent_field "$id" .signal)" = 9 ]
check "nothing of its group is left, its child included" \
	sh -c "! kill -0 -- -$pid 2>/dev/null"

# Output capture: the task through cat comes back as the agent's output.
id=$(spawn_id cat "hello from cat")
wait_for 10 agent_terminal "$id"
check "cat agent's output is in get --json" [ "$(agent_field "$id" .output)" = "hello from cat" ]
check "the output is in the agent's Valkey hash" \
	[ "$(valkey vk1 hget "tessera:{spoke-1}:agent:$id" output)" = "hello from cat" ]
check "logs prints the raw tail and exits 0" [ "$(cli logs "$id"; echo "rc=$?")" = "hello from catrc=0" ]

# A type's agent-env and agent-dir lines reach its process.
id=$(spawn_id shenv 'echo "$TSR_GREETING $(pwd)"')
wait_for 10 agent_terminal "$id"
check "agent-env and agent-dir reach the agent" [ "$(agent_field "$id" .output)" = "hello $WORK" ]

# A running agent's tail so far, stdout and stderr, then kept when killed.
id=$(spawn_id sh 'echo early; echo to-stderr >&2; exec sleep 60')
early_out() {
	[ "$(cli logs "$1")" = "$(printf 'early\nto-stderr')" ]
}
check "a running agent's logs show stdout and stderr so far" wait_for 10 early_out "$id"
check "it is still RUNNING" [ "$(agent_state "$id")" = running ]
quiet cli kill "$id"
check "the KILLED agent keeps its output" early_out "$id"
check "list pages carry no output tail" \
	[ "$(cli --json list | jq '[.agents[].output // "" | length] | add')" = 0 ]

# Timeouts: a sleep 60 agent given 1 s ends FAILED, nothing of it left.
id=$(spawn_id sleep --agent-timeout 1)
pid=$(agent_field "$id" .pid)
check "a timed agent reaches a terminal state" wait_for 10 agent_terminal "$id"
check "the timed-out agent is FAILED" [ "$(agent_state "$id")" = failed ]
check "its error says it timed out" [ "$(agent_field "$id" .error)" = "timed out after 1000 ms" ]
check "it ended by SIGTERM" [ "$(agent_field "$id" .signal)" = 15 ]
check "no process of the timed-out agent is left" \
	sh -c "! kill -0 $pid 2>/dev/null && ! pgrep -g $pid >/dev/null"
err=$(cli spawn sleep --agent-timeout 7200 2>&1)
rc=$?
check "a timeout above the type's maximum is refused" [ "$rc" -ne 0 ]
check "the refusal names INVALID_ARGUMENT" grep -q INVALID_ARGUMENT <<<"$err"
err=$(cli spawn sleep --agent-timeout 86401 2>&1)
check "the CLI refuses a timeout above 24 h" [ $? -ne 0 ]

# A container's spoke needs no file: lines from $TESSERA_SPOKE_CONFIG, then --set.
start_valkey vk2
port=$(free_port)
TESSERA_SPOKE_CONFIG=$(sed -e '/^id /d' -e '/^listen /d' -e '/^valkey /d' -e '/^state-dir /d' \
	"$WORK/spoke-1.conf") "$TESSERA_SPOKE" --set "id envspoke" --set "listen 127.0.0.1:$port" \
	--set "valkey unix:$WORK/vk2/valkey.sock" --set "state-dir $WORK/envspoke.state" \
	--set "agent extra stdin /bin/true" >"$WORK/envspoke.log" 2>&1 &
track $! "spoke envspoke"
check "a spoke configured by environment and --set starts" \
	wait_for 15 grep -q "listening on 127.0.0.1:$port" "$WORK/envspoke.log"
err=$("$TESSERA_SPOKE" --set "max-agents none" 2>&1)
check "a bad --set line is named in the error" grep -q -- "--set:1: max-agents" <<<"$err"
err=$(env -u TESSERA_SPOKE_CONFIG "$TESSERA_SPOKE" 2>&1)
check "no configuration at all is refused clearly" grep -q "no configuration" <<<"$err"

# The hub the same way: its lines from $TESSERA_HUB_CONFIG, the port by --set.
port=$(free_port)
TESSERA_HUB_CONFIG=$(sed -e '/^listen /d' "$WORK/hub.conf") "$TESSERA_HUB" \
	--set "listen 127.0.0.1:$port" >"$WORK/envhub.log" 2>&1 &
track $! "hub envhub"
check "a hub configured by environment and --set starts" \
	wait_for 15 grep -q "listening on 127.0.0.1:$port" "$WORK/envhub.log"
check "it reaches the spoke of its config" \
	wait_for 15 sh -c '"$1" --hub "$2" --json spokes | grep -q connected' - "$TESSERA_CLI" \
	"127.0.0.1:$port"
err=$(env -u TESSERA_HUB_CONFIG "$TESSERA_HUB" 2>&1)
check "a hub with no configuration is refused clearly" grep -q "no configuration" <<<"$err"

finish
