#!/usr/bin/env bash
# The README's first command: installs what is missing, builds Tessera and
# runs it on loopback (one Valkey, two spokes, a hub), then spawns a sample
# agent and prints its lifecycle as the hub streams it. Keeps running until
# Ctrl-C (or stops at once with --once); every process it started is
# stopped by PID on the way out.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

once=0
[ "${1:-}" = --once ] && once=1

bash deploy/install-deps.sh
if [ ! -f build/build.ninja ]; then
	meson setup build
fi
meson compile -C build >/dev/null

hub_port=${TESSERA_DEMO_HUB_PORT:-7000}
spoke_ports=(${TESSERA_DEMO_SPOKE_PORTS:-7001 7002})
state=$root/.tessera/demo
cli=$root/build/hub/tessera
pids=()

# Agents run under their own shims and outlive a spoke (docs/DESIGN.md: restart and
# recovery): the demo ends them through the hub before stopping the daemons.
stop_agents() {
	local id n=0
	[ -n "${TESSERA_TOKEN:-}" ] || return 0
	for id in $("$cli" --json list --state running 2>/dev/null | jq -r '.agents[].id'); do
		"$cli" kill --no-wait "$id" >/dev/null 2>&1 || true
	done
	while [ "$n" -lt 50 ] &&
		[ "$("$cli" --json list --state running 2>/dev/null | jq '.agents | length')" != 0 ]; do
		sleep 0.1
		n=$((n + 1))
	done
}

stop() {
	local i
	stop_agents
	for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
		kill -TERM "${pids[$i]}" 2>/dev/null || true
	done
	for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
		wait "${pids[$i]}" 2>/dev/null || true
	done
	echo "demo: stopped (state and logs in $state)"
}
trap stop EXIT
trap 'exit 130' INT TERM

port_free() {
	! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}
for p in "$hub_port" "${spoke_ports[@]}"; do
	port_free "$p" || { echo "demo: port $p is in use; set TESSERA_DEMO_HUB_PORT / TESSERA_DEMO_SPOKE_PORTS" >&2; exit 1; }
done

wait_log() {
	local i
	for i in $(seq 1 150); do
		grep -q "listening on" "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	echo "demo: $2 did not start; see $1" >&2
	exit 1
}

rm -rf "$state"
mkdir -p "$state/valkey"
echo "demo: Valkey (append-only, fsync always) on $state/valkey/valkey.sock"
valkey-server "$root/deploy/valkey.conf" --port 0 --unixsocket "$state/valkey/valkey.sock" \
	--unixsocketperm 700 --dir "$state/valkey" --daemonize no --logfile "$state/valkey.log" &
pids+=($!)
for i in $(seq 1 100); do
	valkey-cli -s "$state/valkey/valkey.sock" ping >/dev/null 2>&1 && break
	sleep 0.1
done

"$cli" keygen "$state/hub.key" >/dev/null
n=0
for p in "${spoke_ports[@]}"; do
	n=$((n + 1))
	id=spoke-$n
	"$cli" keygen "$state/$id.key" >/dev/null
	cat >"$state/$id.conf" <<CONF
id $id
listen 127.0.0.1:$p
valkey unix:$state/valkey/valkey.sock
key $state/$id.key
state-dir $state/$id.agents
trust-hub $(cat "$state/hub.key.pub")
max-agents 32
kill-grace-ms 3000
agent sample stdin $root/deploy/agents/sample-agent.sh
agent sleep stdin /bin/sleep 3600
# Loopback only: a real deployment gives tls-cert and tls-key instead.
plaintext yes
CONF
	"$root/build/spoke/tessera-spoke" --config "$state/$id.conf" >"$state/$id.log" 2>&1 &
	pids+=($!)
	wait_log "$state/$id.log" "$id"
	echo "demo: $id on 127.0.0.1:$p"
done

# The demo user's bearer token: line 1 the token, line 2 the hub's config line.
(umask 077 && "$cli" token-new demo >"$state/token")
{
	echo "listen 127.0.0.1:$hub_port"
	echo "key $state/hub.key"
	n=0
	for p in "${spoke_ports[@]}"; do
		n=$((n + 1))
		echo "spoke spoke-$n 127.0.0.1:$p $(cat "$state/spoke-$n.key.pub") zone=demo"
	done
	# Loopback only: TLS is spoke-tls-ca and tls-cert/tls-key (README).
	echo "spoke-plaintext yes"
	echo "plaintext yes"
	sed -n 2p "$state/token"
} >"$state/hub.conf"
"$root/build/hub/tessera-hub" --config "$state/hub.conf" >"$state/hub.log" 2>&1 &
pids+=($!)
wait_log "$state/hub.log" hub
echo "demo: hub on 127.0.0.1:$hub_port"
export TESSERA_HUB=127.0.0.1:$hub_port
TESSERA_TOKEN=$(sed -n 1p "$state/token")
export TESSERA_TOKEN

echo
"$cli" spokes
echo
echo "demo: spawning a sample agent on spoke-1"
id=$("$cli" --json spawn sample "summarise the README" --spoke spoke-1 | jq -r .id)
echo "demo: agent $id; its output as it writes it (tessera logs -f):"
"$cli" logs -f "$id"
echo "demo: its lifecycle as the hub streams it:"
"$cli" watch --from-start --agent "$id" --count 3 2>/dev/null
echo
"$cli" get "$id"

if [ "$once" -eq 1 ] || [ ! -t 0 ]; then
	exit 0
fi
cat <<MSG

Tessera is running. In another terminal:
  export TESSERA_HUB=127.0.0.1:$hub_port
  export TESSERA_TOKEN_FILE=$state/token
  $cli spawn sleep            # then: $cli kill <id>
  $cli logs -f <id>           # an agent's output, live
  $cli list
  $cli watch                  # follows every spoke's events
Press Ctrl-C to stop everything.
MSG
while true; do sleep 3600; done
