#!/usr/bin/env bash
# Faults of a compose deployment (two hubs, three spokes), each with agents
# running and a watcher following every spoke through hub-b:
#   docker kill of spoke-1's container: unreachable, the other spokes
#     serve without an error; started again, its agents are FAILED saying
#     their PID namespace ended, and nothing stays non-terminal;
#   the spoke process of spoke-2 restarted by SIGUSR1, then SIGKILLed
#     inside its container: the container stays, the spoke starts again and adopts its agents, which
#     stay killable and end with their true exit codes;
#   spoke-3 disconnected from the hubs' network: unreachable; reconnected:
#     connected, and it takes spawns again;
#   docker kill of hub-a: every call succeeds through hub-b; hub-a started
#     again serves again;
#   valkey-2 stopped and started while spawns go on: calls in between fail
#     fast UNAVAILABLE, every acknowledged spawn is in Valkey, and an exit
#     that happened meanwhile is recorded after.
# Last, the watcher has seen every event of every spoke's stream once.
. "$(dirname "$0")/lib.sh"

add_test_agents
bash "$UP" 3 >"$WORK/up.log" 2>&1 || { sed 's/^/# /' "$WORK/up.log" | tail -n 40; bail "up.sh failed"; }

# stream_positions N: every position of spoke-N's event stream, in order.
stream_positions() {
	vk "$1" --json XRANGE "tessera:{spoke-$1}:events" - + | jq -r '.[][0]'
}

watched_positions() {
	jq -r --arg s "spoke-$1" 'select(.event.spokeId == $s) | .event.position' "$WORK/watch.out"
}

all_watched() {
	local i
	for i in 1 2 3; do
		[ "$(watched_positions "$i")" = "$(stream_positions "$i")" ] || return 1
	done
}

# spoke_is SPOKE STATE: hub-a shows the spoke in that state.
spoke_is() {
	[ "$(spoke_state "$1")" = "$2" ]
}

# agent_is ID STATE [CLI]: the agent is in that state (upper-case short name).
agent_is() {
	[ "$("${3:-cli}" --json get "$1" | jq -r .state)" = "AGENT_STATE_$2" ]
}

# nonterminal N: spoke-N's agents still SPAWNING or RUNNING, through hub-b.
nonterminal() {
	cli_b --json list | jq -r --arg s "spoke-$1" \
		'.agents[] | select(.spokeId == $s and (.state == "AGENT_STATE_SPAWNING" or .state == "AGENT_STATE_RUNNING")) | .id'
}

# spoke2_pid: the pid (on this machine) of spoke-2's spoke process.
spoke2_pid() {
	docker top "$(ctr spoke-2)" -eo pid,args | awk '$2 == "tessera-spoke" { print $1 }'
}

new_spoke_pid() {
	local p
	p=$(spoke2_pid)
	[ -n "$p" ] && [ "$p" != "$1" ]
}

# ended_with ID "STATE CODE"
ended_with() {
	[ "$(cli --json get "$1" | jq -r '.state + " " + (.exitCode | tostring)')" = "$2" ]
}

# only_open N ID: ID is the one agent of spoke-N not yet ended.
only_open() {
	[ "$(nonterminal "$1")" = "$2" ]
}

# spawn_on N TYPE TASK: the new agent's id, through hub-b.
spawn_on() {
	cli_b --json spawn "$2" "$3" --spoke "spoke-$1" | jq -r .id
}

# seconds_until BOUND COMMAND...: how long until the command succeeds, or
# fails the caller after BOUND seconds.
seconds_until() {
	local bound=$1 start=$SECONDS
	shift
	wait_for "$bound" "$@" || return 1
	echo $((SECONDS - start))
}

"$TESSERA_CLI" --hub "$HUB_B_ADDR" --json watch --from-start >"$WORK/watch.out" 2>"$WORK/watch.err" &
track "$!" -
wait_for 20 grep -q '^watching' "$WORK/watch.err" || bail "the watcher did not subscribe"

declare -A sleepers
for i in 1 2 3; do
	sleepers[$i]="$(spawn_on "$i" sleep x) $(spawn_on "$i" sleep x)"
done

# --- spoke-1's container killed.
docker kill "$(ctr spoke-1)" >/dev/null
if t=$(seconds_until 60 spoke_is spoke-1 unreachable); then
	ok "spoke-1 killed: the hub shows it unreachable (after $t s)"
else
	not_ok "spoke-1 killed: the hub shows it unreachable"
fi
errors=0
for k in $(seq 1 10); do
	for i in 2 3; do
		id=$(spawn_on "$i" exit-after "0 0") && cli --json get "$id" >/dev/null || errors=$((errors + 1))
	done
done
check "meanwhile 20 spawns and gets on spoke-2 and spoke-3 give no error ($errors)" [ "$errors" -eq 0 ]
err=$(cli spawn sleep x --spoke spoke-1 2>&1)
check "a spawn naming spoke-1 fails UNAVAILABLE" grep -q UNAVAILABLE <<<"$err"
docker start "$(ctr spoke-1)" >/dev/null
check "spoke-1's container started again is healthy" wait_for 90 healthy spoke-1
check "and connected" wait_for 30 spoke_is spoke-1 connected
for id in ${sleepers[1]}; do
	check "its agent $id is FAILED" agent_is "$id" FAILED
	check "saying its PID namespace ended" \
		grep -q 'PID namespace ended' <<<"$(cli --json get "$id" | jq -r .error)"
done
check "no agent of spoke-1 is SPAWNING or RUNNING" [ -z "$(nonterminal 1)" ]

# --- the spoke process of spoke-2 killed inside its container.
slow=$(spawn_on 2 exit-after "3 10")
read -r keep victim <<<"${sleepers[2]}"
pid_before=$(cli --json get "$keep" | jq -r .pid)
started_before=$(docker inspect --format '{{.State.StartedAt}}' "$(ctr spoke-2)")
spoke_pid=$(spoke2_pid)
check "spoke-2's spoke process found ($spoke_pid)" [ -n "$spoke_pid" ]
docker kill --signal USR1 "$(ctr spoke-2)" >/dev/null
check "SIGUSR1 to the container restarts the spoke process" wait_for 30 new_spoke_pid "$spoke_pid"
check "spoke-2 is connected after it" wait_for 60 spoke_is spoke-2 connected
check "its agent is adopted: same pid" \
	[ "$(cli --json get "$keep" | jq -r '.state + " " + (.pid | tostring)')" = "AGENT_STATE_RUNNING $pid_before" ]
spoke_pid=$(spoke2_pid)
docker kill --signal HUP "$(ctr spoke-2)" >/dev/null
check "SIGHUP reaches the spoke, which reloads its keys" \
	wait_for 10 bash -c "docker logs --since 30s $(ctr spoke-2) 2>&1 | grep -q 'SIGHUP: 2 trusted hub keys'"
check "and neither the spoke process nor its container ends" [ "$(spoke2_pid)" = "$spoke_pid" ]
kill -KILL "$spoke_pid"
check "a new spoke process runs in the same container" wait_for 30 new_spoke_pid "$spoke_pid"
check "the container was not restarted" \
	[ "$(docker inspect --format '{{.State.StartedAt}}' "$(ctr spoke-2)")" = "$started_before" ]
check "spoke-2 is connected again" wait_for 60 spoke_is spoke-2 connected
agent=$(cli --json get "$keep")
check "its sleeping agent was adopted: running, same pid" \
	[ "$(jq -r '.state + " " + (.pid | tostring)' <<<"$agent")" = "AGENT_STATE_RUNNING $pid_before" ]
check "an adopted agent is still killable" quiet cli kill "$victim"
check "it ends KILLED" wait_for 20 agent_is "$victim" KILLED
check "an adopted agent that exits 3 is FAILED with exit code 3" wait_for 30 ended_with "$slow" "AGENT_STATE_FAILED 3"

# --- spoke-3 cut off from the hubs' network.
net=${COMPOSE_PROJECT}_hubs
docker network disconnect "$net" "$(ctr spoke-3)"
if t=$(seconds_until 90 spoke_is spoke-3 unreachable); then
	ok "spoke-3 disconnected: unreachable (after $t s)"
else
	not_ok "spoke-3 disconnected: unreachable"
fi
check "spoke-2 keeps serving meanwhile" quiet spawn_on 2 exit-after "0 0"
docker network connect --alias spoke-3 "$net" "$(ctr spoke-3)"
if t=$(seconds_until 90 spoke_is spoke-3 connected); then
	ok "reconnected: connected again (after $t s)"
else
	not_ok "reconnected: connected again"
fi
check "spoke-3 takes a spawn again" quiet spawn_on 3 exit-after "0 0"
check "spoke-3's agents ran on through the cut" agent_is "${sleepers[3]%% *}" RUNNING

# --- hub-a killed.
docker kill "$(ctr hub-a)" >/dev/null
check "hub-a killed: a call to it fails" bash -c "! '$TESSERA_CLI' --hub $HUB_ADDR --timeout 3 spokes >/dev/null 2>&1"
check "hub-b shows 3 connected spokes" [ "$(connected_spokes cli_b)" -eq 3 ]
id=$(spawn_on 1 exit-after "0 0")
check "hub-b spawns ($id)" [ -n "$id" ]
check "hub-b gets it" wait_for 20 agent_is "$id" COMPLETED cli_b
check "hub-b lists every spoke's agents" \
	[ "$(cli_b --json list | jq '[.agents[].spokeId] | unique | length')" -eq 3 ]
docker start "$(ctr hub-a)" >/dev/null
check "hub-a started again is healthy" wait_for 60 healthy hub-a
check "and serves again" [ "$(connected_spokes cli)" -eq 3 ]

# --- valkey-2 stopped and started while spawns go on through hub-b.
ender=$(spawn_on 2 exit-after "0 3")
(
	for k in $(seq 1 80); do
		t0=$(date +%s%N)
		if out=$(cli_b --json --timeout 5 spawn exit-after "0 0" --spoke spoke-2 2>&1); then
			echo "ok $(jq -r .id <<<"$out")"
		else
			echo "err $((($(date +%s%N) - t0) / 1000000)) $out"
		fi
		sleep 0.1
	done
) >"$WORK/spawns.log" &
loop=$!
track "$loop" -
sleep 2
docker stop -t 10 "$(ctr valkey-2)" >/dev/null
sleep 4
docker start "$(ctr valkey-2)" >/dev/null
wait "$loop"
acked=$(awk '$1 == "ok" { print $2 }' "$WORK/spawns.log")
failed=$(grep -c '^err' "$WORK/spawns.log")
check "spawns failed while valkey-2 was down ($failed)" [ "$failed" -gt 0 ]
check "each of them UNAVAILABLE" bash -c "! grep '^err' '$WORK/spawns.log' | grep -qv UNAVAILABLE"
check "each within 3 s" bash -c "! awk '\$1 == \"err\" && \$2 > 3000' '$WORK/spawns.log' | grep -q ."
missing=0
for id in $acked; do
	[ "$(vk 2 EXISTS "tessera:{spoke-2}:agent:$id")" = 1 ] || missing=$((missing + 1))
done
check "every acknowledged spawn ($(wc -w <<<"$acked")) is in valkey-2 ($missing missing)" [ "$missing" -eq 0 ]
check "the agent that exited while valkey-2 was down is COMPLETED" wait_for 30 agent_is "$ender" COMPLETED
check "nothing of spoke-2 is left SPAWNING or RUNNING but its sleeper" \
	wait_for 30 only_open 2 "$keep"

# --- the watcher, against every spoke's stream.
if wait_for 60 all_watched; then
	ok "the watcher saw every event of every spoke once, in order"
else
	not_ok "the watcher saw every event of every spoke once, in order"
	for i in 1 2 3; do
		echo "# spoke-$i: stream $(stream_positions "$i" | wc -l), watched $(watched_positions "$i" | wc -l), distinct $(watched_positions "$i" | sort -u | wc -l)"
	done
fi

finish
