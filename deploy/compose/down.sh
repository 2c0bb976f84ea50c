#!/usr/bin/env bash
# down.sh [--secrets]: stops and removes the compose deployment's
# containers, networks and volumes (Valkey data and agents' state with
# them: `down -v`). With --secrets it also deletes the secrets folder (CA,
# keys, certificates, token), and the generated files, so the next up.sh
# starts from nothing. Images stay, to be reused.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

secrets=0
case ${1:-} in
'') ;;
--secrets) secrets=1 ;;
*) echo "down: usage: down.sh [--secrets]" >&2; exit 2 ;;
esac

if [ -f "$COMPOSE_DIR/docker-compose.yml" ]; then
	compose down -v --remove-orphans --timeout 20
fi
if [ "$secrets" -eq 1 ] && [ -d "$COMPOSE_DIR" ]; then
	# Files there belong to the containers' users: a container deletes them.
	if [ -d "$COMPOSE_DIR/secrets" ]; then
		docker run --rm --user 0 --network none -v "$COMPOSE_DIR:/d" \
			--entrypoint /bin/rm "$TESSERA_IMAGE" -rf /d/secrets
	fi
	rm -rf "$COMPOSE_DIR"
	echo "down: removed $COMPOSE_DIR, secrets included"
fi
