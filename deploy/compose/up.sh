#!/usr/bin/env bash
# up.sh [N]: builds Tessera's images, makes the secrets once, and brings up
# two hubs and N spokes (default: as many as the deployment has, else 3),
# each spoke with its own Valkey, TLS on every gRPC hop, a token for users;
# then waits until every service is healthy and prints how to reach the
# hubs from this machine. Running it again changes only what changed.
# deploy/compose/down.sh tears it down. The environment of lib.sh and
# gen.sh chooses folder, project, images and ports; TESSERA_BASE_IMAGE the
# base (default debian:bookworm-slim), TESSERA_COMPOSE_WAIT how many
# seconds to wait for health (default 300).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

base=${TESSERA_BASE_IMAGE:-debian:bookworm-slim}
wait_s=${TESSERA_COMPOSE_WAIT:-300}

if ! docker info >/dev/null 2>&1; then
	echo "up: no Docker Engine answers (docker info failed)" >&2
	exit 1
fi
compose_tool >/dev/null

n=${1:-}
if [ -z "$n" ]; then
	n=$(compose_spokes | wc -l)
	[ "$n" -gt 0 ] || n=3
fi

# A host port taken by anything but this deployment fails the bring-up
# before anything starts, naming the port.
read -r port_a port_b <<<"${TESSERA_COMPOSE_HUB_PORTS:-7100 7101}"
own_ports=$(docker ps --filter "label=com.docker.compose.project=$COMPOSE_PROJECT" \
	--format '{{.Ports}}')
for p in "$port_a" "$port_b"; do
	case $own_ports in *"127.0.0.1:$p->"*) continue ;; esac
	if [ -n "$(ss -Hltn "sport = :$p" 2>/dev/null)" ]; then
		echo "up: port $p on this machine is already in use (a hub would publish it);" \
			"free it or set TESSERA_COMPOSE_HUB_PORTS" >&2
		exit 1
	fi
done

mkdir -p "$COMPOSE_DIR"
log=$COMPOSE_DIR/build.log
bash "$here/base-image.sh" "$base"
echo "up: building $TESSERA_IMAGE and $TESSERA_VALKEY_IMAGE (log: $log)"
for target in runtime valkey; do
	image=$TESSERA_IMAGE
	[ "$target" = valkey ] && image=$TESSERA_VALKEY_IMAGE
	# --force-rm: a failed step leaves no container behind.
	if ! docker build --force-rm -f "$compose_root/deploy/Dockerfile" --build-arg "BASE=$base" \
		--target "$target" -t "$image" "$compose_root" >"$log" 2>&1; then
		tail -n 30 "$log" >&2
		echo "up: building $image failed; the whole log: $log" >&2
		exit 1
	fi
done

bash "$here/gen.sh" "$n"
compose up -d --remove-orphans

want=$((2 + 2 * n))
echo "up: waiting for $want services to be healthy (at most $wait_s s)"
deadline=$((SECONDS + wait_s))
while :; do
	states=$(docker ps -aq --filter "label=com.docker.compose.project=$COMPOSE_PROJECT" |
		xargs -r docker inspect --format \
			'{{index .Config.Labels "com.docker.compose.service"}} {{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}')
	healthy=$(grep -c ' healthy$' <<<"$states" || true)
	[ "$healthy" -eq "$want" ] && break
	if [ "$SECONDS" -ge "$deadline" ]; then
		echo "up: after $wait_s s, $healthy of $want services are healthy:" >&2
		grep -v ' healthy$' <<<"$states" >&2 || true
		echo "up: 'docker logs' of those, or: cd $COMPOSE_DIR && docker compose logs" >&2
		exit 1
	fi
	sleep 1
done
echo "up: all $want services healthy after ${SECONDS}s"

cat <<EOF

Tessera is up: hubs hub-a (127.0.0.1:$port_a) and hub-b (127.0.0.1:$port_b),
$(compose_spokes | tr '\n' ' ')each with its own Valkey. From this machine:

  export TESSERA_HUB=127.0.0.1:$port_a      # or :$port_b: either hub serves every call
  export TESSERA_TLS_CA=$COMPOSE_DIR/secrets/client/ca.pem
  export TESSERA_TOKEN_FILE=$COMPOSE_DIR/secrets/client/token
  tessera spokes
  tessera spawn sample "hello"

  # no tessera here? the image's:
  docker run --rm --network host --user \$(id -u) -v $COMPOSE_DIR/secrets/client:/c:ro \\
      $TESSERA_IMAGE tessera --hub 127.0.0.1:$port_a --tls-ca /c/ca.pem --token-file /c/token spokes

  grpcurl -cacert \$TESSERA_TLS_CA -H "authorization: Bearer \$(cat \$TESSERA_TOKEN_FILE)" \\
      127.0.0.1:$port_a list

Status: (cd $COMPOSE_DIR && docker compose ps). Tear down: deploy/compose/down.sh
(add --secrets to delete the keys, certificates and token too).
EOF
