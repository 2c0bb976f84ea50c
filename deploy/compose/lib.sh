# Sourced by the compose scripts and tests: where a deployment lives and
# how to run the compose tool on it. The environment chooses:
#   TESSERA_COMPOSE_DIR      the deployment's folder (default .tessera/compose)
#   TESSERA_COMPOSE_PROJECT  its compose project name (default tessera)
#   TESSERA_COMPOSE_TOOL     `plugin` (docker compose) or `standalone`
#                            (docker-compose); default: the plugin if present
#   TESSERA_IMAGE, TESSERA_VALKEY_IMAGE  the images (tessera:latest,
#                            tessera-valkey:latest)

compose_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
COMPOSE_DIR=${TESSERA_COMPOSE_DIR:-$compose_root/.tessera/compose}
COMPOSE_PROJECT=${TESSERA_COMPOSE_PROJECT:-tessera}
TESSERA_IMAGE=${TESSERA_IMAGE:-tessera:latest}
TESSERA_VALKEY_IMAGE=${TESSERA_VALKEY_IMAGE:-tessera-valkey:latest}
HUBS="hub-a hub-b"

compose_tool() {
	case ${TESSERA_COMPOSE_TOOL:-} in
	plugin) echo plugin ;;
	standalone) echo standalone ;;
	'')
		if docker compose version >/dev/null 2>&1; then
			echo plugin
		elif command -v docker-compose >/dev/null 2>&1; then
			echo standalone
		else
			echo "compose: neither 'docker compose' nor 'docker-compose' is installed" >&2
			return 1
		fi
		;;
	*)
		echo "compose: TESSERA_COMPOSE_TOOL must be plugin or standalone" >&2
		return 1
		;;
	esac
}

# compose ARGS...: the compose tool on this deployment's file and project.
compose() {
	local tool
	tool=$(compose_tool) || return 1
	if [ "$tool" = plugin ]; then
		docker compose -p "$COMPOSE_PROJECT" -f "$COMPOSE_DIR/docker-compose.yml" "$@"
	else
		docker-compose -p "$COMPOSE_PROJECT" -f "$COMPOSE_DIR/docker-compose.yml" "$@"
	fi
}

# The containers of this project, by service name, whatever the tool
# calls them.
compose_container() {
	docker ps -aq --filter "label=com.docker.compose.project=$COMPOSE_PROJECT" \
		--filter "label=com.docker.compose.service=$1" | head -n 1
}

# The deployment's spokes, one a line; none before gen.sh ran.
compose_spokes() {
	if [ -f "$COMPOSE_DIR/spokes" ]; then
		cat "$COMPOSE_DIR/spokes"
	fi
}
