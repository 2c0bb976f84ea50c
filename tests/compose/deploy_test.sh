#!/usr/bin/env bash
# The compose deployment from nothing: no image of the test's tags (its
# base image's included), no volume; deploy/compose/up.sh builds and
# brings up two hubs and three spokes with a Valkey each, and every service
# turns healthy. Then through
# each hub from this machine, with TLS and the token: spokes, spawn on each
# spoke, get, list, kill, watch, grpcurl; agents run in their spoke's
# container and each Valkey holds its own spoke's keys only, on a network
# of its own. Last, down.sh leaves nothing of the deployment, and a second
# up.sh starts clean.
. "$(dirname "$0")/lib.sh"

add_test_agents
# No image: the tests' own tags, their base's included, are removed with
# every layer only they use (the user's images keep theirs).
docker rmi -f "$TESSERA_IMAGE" "$TESSERA_VALKEY_IMAGE" "$TESSERA_BASE_IMAGE" >/dev/null 2>&1
check "no image of the tests' is left" \
	bash -c "! docker image inspect '$TESSERA_IMAGE' '$TESSERA_VALKEY_IMAGE' '$TESSERA_BASE_IMAGE' >/dev/null 2>&1"
check "nothing of the deployment exists before" [ -z "$(project_leftovers)" ]

start=$SECONDS
if bash "$UP" >"$WORK/up.log" 2>&1; then
	ok "up.sh, as the README has it, builds the images and every service is healthy"
else
	not_ok "up.sh, as the README has it, builds the images and every service is healthy"
	sed 's/^/# /' "$WORK/up.log" | tail -n 40
	bail "no deployment"
fi
echo "# from no image and no volume (base image by debootstrap or pull included) to 8 healthy services: $((SECONDS - start)) s"
check "up.sh prints how to point the CLI at a hub" \
	grep -q "TESSERA_HUB=127.0.0.1:$PORT_A" "$WORK/up.log"
check "it made three spokes" [ "$(compose_spokes | wc -l)" -eq 3 ]
check "compose ps shows 8 services healthy" \
	[ "$(compose ps 2>/dev/null | grep -c '(healthy)')" -eq 8 ]

for h in cli cli_b; do
	check "$h: tessera spokes shows 3 connected spokes" [ "$(connected_spokes "$h")" -eq 3 ]
done

ids=()
for i in 1 2 3; do
	id=$(cli --json spawn sleep --spoke "spoke-$i" | jq -r .id)
	ids+=("$id")
	check "spawn on spoke-$i through hub-a: $id" [ "${id%%.*}" = "spoke-$i" ]
	check "get through hub-b: spoke-$i's agent is running" \
		[ "$("$TESSERA_CLI" --hub "$HUB_B_ADDR" --json get "$id" | jq -r .state)" = AGENT_STATE_RUNNING ]
done
check "list through hub-b has the three agents running" \
	[ "$(cli_b --json list --state running | jq '.agents | length')" -eq 3 ]

# The agent's process is in its spoke's container, under its shim.
top=$(docker top "$(ctr spoke-2)" -eo pid,args)
check "the agent of spoke-2 runs in spoke-2's container" \
	grep -q "tessera-shim .*${ids[1]}" <<<"$top"
check "its sleep runs there too" grep -q 'sleep 3600' <<<"$top"
check "no agent of spoke-2 runs in spoke-1's container" \
	bash -c "! docker top $(ctr spoke-1) -eo args | grep -q '${ids[1]}'"

for i in 1 2 3; do
	keys=$(vk "$i" --scan)
	check "valkey-$i holds keys, only spoke-$i's" \
		bash -c '[ -n "$1" ] && ! grep -v "^tessera:{spoke-$2}:" <<<"$1"' _ "$keys" "$i"
	nets=$(docker inspect --format '{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}' "$(ctr "valkey-$i")")
	check "valkey-$i is on its store network only ($nets)" [ "$nets" = "${COMPOSE_PROJECT}_store-$i " ]
done
check "valkey-1 refuses a client without the password" \
	bash -c "docker exec $(ctr valkey-1) valkey-cli get x | grep -q NOAUTH"

# A user's own agent program, from the mounted agents/ folder.
uid=$(cli --json spawn exit-after "5 0" --spoke spoke-3 | jq -r .id)
wait_for 20 bash -c "[ \"\$('$TESSERA_CLI' --hub $HUB_ADDR --json get $uid | jq -r .state)\" = AGENT_STATE_FAILED ]"
check "a user's agent from agents/ ran and exited 5" [ "$(cli --json get "$uid" | jq -r .exitCode)" -eq 5 ]
check "its output names its spoke's container" \
	bash -c "'$TESSERA_CLI' --hub $HUB_ADDR logs $uid | grep -q 'in spoke-3'"

"$TESSERA_CLI" --hub "$HUB_B_ADDR" --json watch --from-start --agent "${ids[0]}" --count 3 \
	>"$WORK/watch.out" 2>/dev/null &
watcher=$!
track "$watcher" -
check "kill through hub-b" quiet cli_b kill "${ids[0]}"
wait_for 20 bash -c "! kill -0 $watcher 2>/dev/null"
check "watch --json saw spawning, running and killed" \
	[ "$(jq -r .event.type "$WORK/watch.out" | paste -sd' ')" = "agent.spawning agent.running agent.killed" ]
check "the agent is killed" [ "$(cli --json get "${ids[0]}" | jq -r .state)" = AGENT_STATE_KILLED ]

check "grpcurl lists tessera.v1.Hub through hub-a's published port" \
	bash -c "grpcurl -cacert '$TESSERA_TLS_CA' 127.0.0.1:$PORT_A list | grep -qx tessera.v1.Hub"
check "grpcurl without the token is refused" \
	bash -c "grpcurl -cacert '$TESSERA_TLS_CA' -d '{}' 127.0.0.1:$PORT_A tessera.v1.Hub/ListSpokes 2>&1 | grep -q Unauthenticated"
check "grpcurl with the token lists 3 spokes through hub-b" \
	bash -c "[ \$(grpcurl -cacert '$TESSERA_TLS_CA' -H \"authorization: Bearer \$(cat '$TESSERA_TOKEN_FILE')\" \
		-d '{}' 127.0.0.1:$PORT_B tessera.v1.Hub/ListSpokes | jq '.spokes | length') -eq 3 ]"
check "the image's own CLI, as up.sh shows it, reaches hub-a" \
	bash -c "docker run --rm --network host --user $(id -u) -v '$TESSERA_COMPOSE_DIR/secrets/client:/c:ro' \
		'$TESSERA_IMAGE' tessera --hub 127.0.0.1:$PORT_A --tls-ca /c/ca.pem --token-file /c/token spokes |
		grep -c connected | grep -qx 3"
check "the hubs listen on 127.0.0.1 only" \
	bash -c "docker port $(ctr hub-a) | grep -qx '7000/tcp -> 127.0.0.1:$PORT_A'"

before=$(docker ps -q --filter "label=com.docker.compose.project=$COMPOSE_PROJECT" | sort)
start=$SECONDS
check "up.sh again succeeds" quiet bash "$UP"
echo "# up.sh on a running deployment: $((SECONDS - start)) s"
check "it changed nothing: the same containers run" \
	[ "$(docker ps -q --filter "label=com.docker.compose.project=$COMPOSE_PROJECT" | sort)" = "$before" ]
check "spoke-2's agent still runs" [ "$(cli --json get "${ids[1]}" | jq -r .state)" = AGENT_STATE_RUNNING ]

check "down.sh stops the deployment" quiet bash "$DOWN"
check "no container, network or volume of it is left" [ -z "$(project_leftovers)" ]
check "the secrets are kept" [ -s "$TESSERA_TOKEN_FILE" ]
start=$SECONDS
check "a second up.sh after it starts clean" bash -c "bash '$UP' 3 >'$WORK/up2.log' 2>&1"
echo "# a second bring-up (images built): $((SECONDS - start)) s"
check "no agent from before (the volumes were new)" \
	[ "$(cli --json list | jq '.agents | length')" -eq 0 ]
id=$(cli --json spawn sample "hello" --wait | jq -r .id)
check "a sample agent completes there" [ "$(cli --json get "$id" | jq -r .state)" = AGENT_STATE_COMPLETED ]
check "down.sh --secrets removes the deployment and its secrets" quiet bash "$DOWN" --secrets
check "its folder is gone" [ ! -e "$TESSERA_COMPOSE_DIR" ]
check "no container, network or volume of it is left" [ -z "$(project_leftovers)" ]

finish
