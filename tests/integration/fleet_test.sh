#!/usr/bin/env bash
# Many spokes: three, each with its own Valkey. Placement by name, by
# labels and by load; agents' own labels (kept, shown, listed by, bad ones
# refused); a spoke at its max-agents is skipped, but one whose agents
# ended since the hub's last load poll is not; a stopped
# spoke is shown unreachable while spawns go on elsewhere; the hub stops
# serving (gRPC health) once no spoke is left.
. "$(dirname "$0")/lib.sh"

for tool in jq grpc-health-probe; do
	command -v "$tool" >/dev/null || bail "$tool is not installed"
done

start_valkey vk1
start_valkey vk2
start_valkey vk3
keygen hub
SPOKE_MAX_AGENTS=4 start_spoke spoke-1 vk1 hub
start_spoke spoke-2 vk2 hub
start_spoke spoke-3 vk3 hub
SPOKE_LABELS_spoke_1="zone=eu" SPOKE_LABELS_spoke_2="zone=eu gpu=yes" \
	SPOKE_LABELS_spoke_3="zone=us" start_hub hub hub spoke-1 spoke-2 spoke-3

spawn_id() {
	cli --json spawn "$@" | jq -r .id
}

# loads: "running/max" of every spoke, in configuration order ("-" if unknown).
loads() {
	cli --json spokes | jq -r '.spokes[] |
		if .maxAgents > 0 then "\(.runningAgents)/\(.maxAgents)" else "-" end' | paste -sd' '
}

loads_are() {
	[ "$(loads)" = "$1" ]
}

spoke_state() {
	cli --json spokes | jq -r --arg s "$1" '.spokes[] | select(.id == $s) | .state'
}

hub_serving() {
	grpc-health-probe -addr "$HUB_ADDR" -connect-timeout 3s "$@" >/dev/null 2>&1
}

check "hub is SERVING once its spokes are connected" wait_for 15 hub_serving
check "hub's tessera.v1.Hub is SERVING" hub_serving -service tessera.v1.Hub
check "ListSpokes shows every spoke's load within a poll" \
	wait_for 15 loads_are "0/4 0/16 0/16"
check "tessera spokes has a RUNNING column of running/max" \
	sh -c "'$TESSERA_CLI' --hub '$HUB_ADDR' spokes | grep -Eq '^spoke-1 .* 0/4 '"

# By name, and --wait for the end.
id=$(spawn_id true --spoke spoke-3)
check "spawn --spoke spoke-3 runs there" [ "${id%%.*}" = spoke-3 ]
out=$(cli --json spawn true --spoke spoke-2 --wait)
check "spawn --wait exits 0 for an agent that completes" [ $? -eq 0 ]
check "spawn --wait prints the agent COMPLETED" \
	[ "$(jq -r .state <<<"$out")" = AGENT_STATE_COMPLETED ]
err=$(cli spawn false --spoke spoke-2 --wait 2>&1 >/dev/null)
check "spawn --wait exits 1 for an agent that fails" [ $? -eq 1 ]
check "spawn --wait says why in one line" \
	[ "$(grep -c "ended failed" <<<"$err")" -eq 1 ]

# By labels: only matching spokes ever get the agents.
where=""
for i in 1 2 3 4 5 6; do
	id=$(spawn_id true --label zone=eu)
	where="$where ${id%%.*}"
done
only_eu() {
	[ -z "$(tr ' ' '\n' <<<"$where" | grep -v -e '^$' -e '^spoke-1$' -e '^spoke-2$')" ]
}
both_eu() {
	grep -q spoke-1 <<<"$where" && grep -q spoke-2 <<<"$where"
}
check "zone=eu agents land on spoke-1 and spoke-2 only" only_eu
check "zone=eu agents use both matching spokes" both_eu
where=""
for i in 1 2 3; do
	id=$(spawn_id true --label zone=eu --label gpu=yes)
	where="$where ${id%%.*}"
done
check "zone=eu gpu=yes agents all land on spoke-2" [ "$where" = " spoke-2 spoke-2 spoke-2" ]
err=$(cli spawn true --label zone=ap 2>&1)
check "labels no spoke carries: FAILED_PRECONDITION" \
	grep -q "FAILED_PRECONDITION: no spoke matches labels zone=ap" <<<"$err"
err=$(cli spawn true --spoke spoke-3 --label zone=eu 2>&1)
check "a named spoke without the labels: FAILED_PRECONDITION" \
	grep -q FAILED_PRECONDITION <<<"$err"
err=$(cli spawn true --label "bad key=x" 2>&1)
check "a malformed label key: INVALID_ARGUMENT" grep -q INVALID_ARGUMENT <<<"$err"
many=()
for i in $(seq 0 16); do many+=(--label "k$i=v"); done
err=$(cli spawn true "${many[@]}" 2>&1)
check "more than 16 labels are refused" [ $? -ne 0 ]

# An agent's own labels: kept by its spoke, shown by get, and selected by
# across every spoke (with --state and --type too).
a1=$(spawn_id true --spoke spoke-1 --agent-label team=red --agent-label run=l1)
a2=$(spawn_id true --spoke spoke-3 --agent-label run=l1 --agent-label team=red)
a3=$(spawn_id sleep --spoke spoke-2 --agent-label team=blue --agent-label run=l1)
labels_of() {
	agent_field "$1" '.labels | to_entries | map("\(.key)=\(.value)") | join(",")'
}
check "get --json shows an agent's labels, sorted by key" \
	[ "$(labels_of "$a2")" = "run=l1,team=red" ]
check "get shows them on one line" \
	sh -c "'$TESSERA_CLI' --hub '$HUB_ADDR' get '$a1' | grep -Eq '^labels: +run=l1,team=red\$'"
ids_of() {
	cli --json list "$@" | jq -r '.agents[].id' | sort | paste -sd' '
}
red=$(printf '%s\n' "$a1" "$a2" | sort | paste -sd' ')
check "list --label selects across spokes" [ "$(ids_of --label run=l1 --label team=red)" = "$red" ]
red_completed() {
	[ "$(ids_of --label run=l1 --state completed --type true)" = "$red" ]
}
check "list --label with --state and --type" wait_for 15 red_completed
check "list --label of a running agent" [ "$(ids_of --label run=l1 --state running)" = "$a3" ]
check "list --label nobody carries lists nothing" [ -z "$(ids_of --label run=none)" ]
cli kill "$a3" >/dev/null || not_ok "kill $a3"
before=$(cli --json list | jq '.agents | length')
for bad in "bad key=x" "k=" "k=two words" "k=$(printf 'x%.0s' $(seq 65))"; do
	err=$(cli spawn true --agent-label "$bad" 2>&1)
	rc=$?
	check "agent label '${bad:0:12}': exit 1" [ "$rc" -eq 1 ]
	check "... with INVALID_ARGUMENT naming the agent label" \
		grep -q "INVALID_ARGUMENT: .*agent label" <<<"$err"
done
err=$(cli spawn true --agent-label k=1 --agent-label k=2 2>&1)
check "an agent label given twice: INVALID_ARGUMENT" \
	grep -q "INVALID_ARGUMENT: agent label k given twice" <<<"$err"
many=()
for i in $(seq 0 16); do many+=(--agent-label "k$i=v"); done
cli spawn true "${many[@]}" >/dev/null 2>&1
check "more than 16 agent labels: usage error (exit 2)" [ $? -eq 2 ]
check "no refused spawn created an agent" \
	[ "$(cli --json list | jq '.agents | length')" -eq "$before" ]
err=$(cli list --label "k=two words" 2>&1)
check "a malformed label selector: exit 1" [ $? -eq 1 ]
check "... with INVALID_ARGUMENT naming the selector" \
	grep -q "INVALID_ARGUMENT: selector label k needs a value" <<<"$err"
cli list --label novalue >/dev/null 2>&1
check "list --label without = is a usage error (exit 2)" [ $? -eq 2 ]

# Least-loaded: with three sleepers on spoke-2 and on spoke-3, new agents
# go to the emptiest spoke, spoke-1.
sleepers=()
for s in spoke-2 spoke-3; do
	for i in 1 2 3; do sleepers+=("$(spawn_id sleep --spoke "$s")"); done
done
check "ListSpokes counts the sleepers" wait_for 15 loads_are "0/4 3/16 3/16"
where=""
for i in 1 2 3; do
	id=$(spawn_id sleep)
	sleepers+=("$id")
	where="$where ${id%%.*}"
done
check "three new agents all go to the emptiest spoke" \
	[ "$where" = " spoke-1 spoke-1 spoke-1" ]
check "ListSpokes counts match where the agents run" wait_for 15 loads_are "3/4 3/16 3/16"

# A spoke at its max-agents is skipped.
sleepers+=("$(spawn_id sleep --spoke spoke-1)")
check "spoke-1 is at its max" wait_for 15 loads_are "4/4 3/16 3/16"
where=""
for i in 1 2; do
	id=$(spawn_id sleep --label zone=eu)
	sleepers+=("$id")
	where="$where ${id%%.*}"
done
check "a spoke at max-agents is skipped" [ "$where" = " spoke-2 spoke-2" ]
err=$(cli spawn sleep --spoke spoke-1 2>&1)
check "spawn --spoke at its max: RESOURCE_EXHAUSTED" grep -q RESOURCE_EXHAUSTED <<<"$err"
for id in "${sleepers[@]}"; do cli kill "$id" >/dev/null || not_ok "kill $id"; done
check "every sleeper is gone" wait_for 15 loads_are "0/4 0/16 0/16"

# Short agents, half again as many as spoke-1 and spoke-2 (zone=eu) can
# run at once, one after another within one load poll (2 s): each reply
# tells the hub what still runs, so none is refused as if the ended ones
# still ran.
burst=0
t0=$(date +%s%N)
for i in $(seq 30); do
	cli spawn true --label zone=eu >/dev/null 2>>"$WORK/burst.err" && burst=$((burst + 1))
done
t1=$(date +%s%N)
check "30 short agents on 20 places in $(((t1 - t0) / 1000000)) ms: none refused" \
	[ "$burst" -eq 30 ]

# One spoke stopped: shown unreachable; spawns go on elsewhere, and one
# that names it fails at once.
stop_tracked "spoke spoke-3"
check "tessera spokes shows a stopped spoke unreachable" \
	wait_for 15 sh -c "'$TESSERA_CLI' --hub '$HUB_ADDR' spokes | grep -Eq '^spoke-3 .* unreachable +- '"
okays=0
for i in 1 2 3 4 5 6; do
	id=$(spawn_id true --timeout 5) && [ "${id%%.*}" != spoke-3 ] && okays=$((okays + 1))
done
check "spawns keep succeeding on the other spokes within their deadline" [ "$okays" -eq 6 ]
t0=$(date +%s%N)
err=$(cli --timeout 10 spawn true --spoke spoke-3 2>&1)
t1=$(date +%s%N)
check "spawn --spoke to the stopped spoke fails UNAVAILABLE" grep -q UNAVAILABLE <<<"$err"
check "... within 3 s" [ $(((t1 - t0) / 1000000)) -lt 3000 ]
check "hub is still SERVING with two spokes" hub_serving

# Every spoke down: the hub says NOT_SERVING.
stop_tracked "spoke spoke-1"
stop_tracked "spoke spoke-2"
check "hub is NOT_SERVING once every spoke is down" \
	wait_for 15 sh -c "! grpc-health-probe -addr '$HUB_ADDR' >/dev/null 2>&1"
check "hub's tessera.v1.Hub is NOT_SERVING too" \
	sh -c "! grpc-health-probe -addr '$HUB_ADDR' -service tessera.v1.Hub >/dev/null 2>&1"
err=$(cli spawn true 2>&1)
check "a spawn with no spoke left: UNAVAILABLE" grep -q UNAVAILABLE <<<"$err"

finish
