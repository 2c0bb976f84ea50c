#!/usr/bin/env bash
# Agent record retention: a spoke keeps at most agent-retention-count ended
# agents, and none longer than agent-retention-ms after its end. What goes,
# goes whole (record, index entries, request-map entry): GetAgent of it is
# NOT_FOUND (tessera get, grpcurl), its request id makes a new agent, and
# its events stay under event-retention. Running agents are never touched.
. "$(dirname "$0")/lib.sh"

command -v grpcurl >/dev/null || bail "grpcurl is not installed (deploy/install-go-tools.sh)"

KEEP=100
AGENTS=110
S="tessera:{spoke-1}"

start_valkey vk1
keygen hub
SPOKE_MAX_AGENTS=200 start_spoke spoke-1 vk1 hub

# The bounds are checked when the configuration is read.
cp "$WORK/spoke-1.conf" "$WORK/bad.conf"
echo "agent-retention-ms 999" >>"$WORK/bad.conf"
timeout 10 "$TESSERA_SPOKE" --config "$WORK/bad.conf" >"$WORK/bad.out" 2>&1
rc=$?
check "a spoke refuses agent-retention-ms below 1000" test "$rc" -ne 0 -a "$rc" -ne 124
check "... and says what is allowed" \
	grep -q "agent-retention-ms must be a number from 1000 to" "$WORK/bad.out"

kill_hard "$SPOKE_PID_spoke_1"
echo "agent-retention-count $KEEP" >>"$WORK/spoke-1.conf"
restart_spoke spoke-1
start_hub hub hub spoke-1

# spawn_id ARGS...: tessera spawn, printing the new agent's id.
spawn_id() {
	cli --json spawn "$@" | jq -r .id
}

sleeper=$(spawn_id sleep) && [ -n "$sleeper" ] || bail "the sleeper did not spawn"
: >"$WORK/ids"
for i in $(seq 1 "$AGENTS"); do
	spawn_id true --request-id "r$i" >>"$WORK/ids" 2>"$WORK/spawn.err" ||
		bail "spawn $i failed: $(cat "$WORK/spawn.err")"
done
first=$(head -n 1 "$WORK/ids")
last=$(tail -n 1 "$WORK/ids")
[ -n "$first" ] && [ -n "$last" ] || bail "no agent ids from tessera spawn"

ended() {
	[ "$(valkey vk1 ZCARD "$S:agents:ended")" -le "$KEEP" ] &&
		[ "$(valkey vk1 ZCARD "$S:agents")" -eq "$((KEEP + 1))" ]
}
check "the spoke keeps $KEEP ended agents and the running one" wait_for 15 ended
cli get "$first" >/dev/null 2>"$WORK/get.err"
rc=$?
check "tessera get of the oldest fails" [ "$rc" -ne 0 ]
check "... NOT_FOUND" grep -q "NOT_FOUND" "$WORK/get.err"
grpcurl -plaintext -max-time 10 -d "{\"agentId\": \"$first\"}" "$HUB_ADDR" \
	tessera.v1.Hub/GetAgent >/dev/null 2>"$WORK/grpcurl.err"
check "grpcurl GetAgent of it: NotFound" grep -q "Code: NotFound" "$WORK/grpcurl.err"
check "the newest is kept" quiet cli get "$last"
check "the running agent is kept" [ "$(agent_state "$sleeper")" = running ]
check "no index entry or request id of the deleted remains" \
	[ -z "$(valkey vk1 HGET "$S:requests" r1)" -a \
		-z "$(valkey vk1 ZSCORE "$S:agents:state:completed" "$first")" -a \
		-z "$(valkey vk1 ZSCORE "$S:agents:type:true" "$first")" ]
check "its events stay" \
	[ "$(valkey vk1 XLEN "$S:events")" -ge "$((3 * AGENTS))" ]
again=$(spawn_id true --request-id r1)
check "its request id makes a new agent" [ -n "$again" -a "$again" != "$first" ]
echo "# an ended agent's record: $(valkey vk1 MEMORY USAGE "$S:agent:$last") bytes in Valkey"

# Time: with agent-retention-ms 2000, every ended agent goes; the running stays.
kill_hard "$HUB_PID"
kill_hard "$SPOKE_PID_spoke_1"
echo "agent-retention-ms 2000" >>"$WORK/spoke-1.conf"
restart_spoke spoke-1
all_gone() {
	[ "$(valkey vk1 ZCARD "$S:agents:ended")" -eq 0 ] &&
		[ "$(valkey vk1 ZCARD "$S:agents")" -eq 1 ]
}
check "agent-retention-ms deletes every agent ended longer ago" wait_for 15 all_gone
check "... but not the running one" \
	[ -n "$(valkey vk1 ZSCORE "$S:agents" "$sleeper")" ]

finish
