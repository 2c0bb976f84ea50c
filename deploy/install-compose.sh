#!/usr/bin/env bash
# Installs the Docker Compose CLI plugin (`docker compose`) at a pinned
# version, built from the Go module proxy, where a Docker Engine runs and
# the plugin is missing or at another version. Debian's `docker-compose`
# 1.29 stays as it is: the deployment works with both. Idempotent; needs
# root. `go install` refuses the module (its go.mod has exclude
# directives), so a throwaway module requires it and builds its command.
set -euo pipefail

COMPOSE_MOD=github.com/docker/compose/v5
COMPOSE_VERSION=v5.6.0
PLUGIN_DIR=/usr/local/lib/docker/cli-plugins
PLUGIN=$PLUGIN_DIR/docker-compose

if [ "$(id -u)" -ne 0 ]; then
	if command -v sudo >/dev/null 2>&1; then
		exec sudo -E bash "$0" "$@"
	fi
	echo "install-compose: must run as root" >&2
	exit 1
fi

if [ -x "$PLUGIN" ] && [ "$(cat "$PLUGIN_DIR/.docker-compose.version" 2>/dev/null)" = "$COMPOSE_VERSION" ]; then
	exit 0
fi

. "$(dirname "$0")/find-go.sh"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(
	cd "$work"
	"$go" mod init tessera.invalid/compose-build >/dev/null 2>&1
	GOFLAGS=-mod=mod "$go" get "$COMPOSE_MOD@$COMPOSE_VERSION"
	mkdir -p "$PLUGIN_DIR"
	GOFLAGS=-mod=mod CGO_ENABLED=0 "$go" build -trimpath -o "$work/docker-compose" \
		-ldflags "-s -w -X github.com/docker/compose/v5/internal.Version=$COMPOSE_VERSION" \
		"$COMPOSE_MOD/cmd"
)
install -m 0755 "$work/docker-compose" "$PLUGIN"
echo "$COMPOSE_VERSION" >"$PLUGIN_DIR/.docker-compose.version"
