# Shared by the compose tests: each test gets a deployment of its own — its
# compose project, folder (in the test's work folder), free host ports and
# image tags, the base image's included — brought up with deploy/compose/up.sh and torn down, volumes
# and secrets included, when the test exits, pass or fail. TAP helpers,
# free_port and wait_for come from the integration tests' lib.sh; the
# host's tessera CLI is the meson build's.

. "$(dirname "${BASH_SOURCE[0]}")/../integration/lib.sh"

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
UP=$ROOT/deploy/compose/up.sh
DOWN=$ROOT/deploy/compose/down.sh
GEN=$ROOT/deploy/compose/gen.sh

test_name=$(basename "$0" .sh)
export TESSERA_COMPOSE_PROJECT=tsrtest-${test_name//_/-}
export TESSERA_COMPOSE_DIR=$WORK/deploy
export TESSERA_IMAGE=${TESSERA_TEST_IMAGE:-tessera-test:latest}
export TESSERA_VALKEY_IMAGE=${TESSERA_TEST_VALKEY_IMAGE:-tessera-valkey-test:latest}
# A base of the tests' own, so that a test can start from no image at all
# without deleting the user's.
export TESSERA_BASE_IMAGE=${TESSERA_TEST_BASE_IMAGE:-debian:bookworm-slim-tessera-test}
PORT_A=$(free_port)
PORT_B=$(free_port)
export TESSERA_COMPOSE_HUB_PORTS="$PORT_A $PORT_B"
. "$ROOT/deploy/compose/lib.sh"

export TESSERA_TLS_CA=$TESSERA_COMPOSE_DIR/secrets/client/ca.pem
export TESSERA_TOKEN_FILE=$TESSERA_COMPOSE_DIR/secrets/client/token
HUB_ADDR=127.0.0.1:$PORT_A
HUB_B_ADDR=127.0.0.1:$PORT_B

compose_teardown() {
	[ -n "${TESSERA_KEEP:-}" ] && return 0
	if [ "$TAP_FAILED" -ne 0 ] && [ -f "$TESSERA_COMPOSE_DIR/docker-compose.yml" ]; then
		compose logs --no-color --tail 40 2>&1 | sed 's/^/# /' | tail -n 200
	fi
	bash "$DOWN" --secrets >/dev/null 2>&1
}
trap 'compose_teardown; cleanup' EXIT

# cli_b ARGS...: the CLI through hub-b.
cli_b() {
	"$TESSERA_CLI" --hub "$HUB_B_ADDR" "$@"
}

# ctr SERVICE: its container's id.
ctr() {
	compose_container "$1"
}

# vk N ARGS...: valkey-cli in valkey-N, as the spoke's user.
vk() {
	local n=$1 pw
	shift
	pw=$(cat "$TESSERA_COMPOSE_DIR/secrets/spoke-$n/valkey.password")
	docker exec "$(ctr "valkey-$n")" valkey-cli --no-auth-warning --user spoke --pass "$pw" "$@"
}

# healthy SERVICE: its container's health check passes.
healthy() {
	[ "$(docker inspect --format '{{.State.Health.Status}}' "$(ctr "$1")" 2>/dev/null)" = healthy ]
}

# spoke_state SPOKE [CLI]: its state as the hub shows it.
spoke_state() {
	"${2:-cli}" --json spokes | jq -r --arg s "$1" '.spokes[] | select(.id == $s) | .state'
}

connected_spokes() {
	"${1:-cli}" --json spokes | jq '[.spokes[] | select(.state == "connected")] | length'
}

# project_leftovers: this project's containers, networks and volumes.
project_leftovers() {
	local f=label=com.docker.compose.project=$COMPOSE_PROJECT
	docker ps -aq --filter "$f"
	docker network ls -q --filter "$f"
	docker volume ls -q --filter "$f"
}

# A user's own agent programs, in the deployment's agents/ folder (mounted
# into every spoke) and their types in agents.conf, as the README shows.
add_test_agents() {
	mkdir -p "$TESSERA_COMPOSE_DIR/agents"
	cat >"$TESSERA_COMPOSE_DIR/agents/exit-after.sh" <<'AGENT'
#!/bin/sh
# Reads "CODE SECONDS" from stdin, sleeps that long, exits CODE.
read -r code secs
echo "exit-after: $code after $secs s in $(hostname)"
sleep "$secs"
exit "$code"
AGENT
	chmod 0755 "$TESSERA_COMPOSE_DIR/agents/exit-after.sh"
	echo "agent exit-after stdin /opt/tessera/agents/exit-after.sh" \
		>"$TESSERA_COMPOSE_DIR/agents.conf"
}
