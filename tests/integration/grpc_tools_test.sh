#!/usr/bin/env bash
# Tessera through the gRPC ecosystem's own tools, with no .proto files at
# hand: grpcurl (reflection, JSON calls), grpc-health-probe (health, which
# follows the spoke's reach to Valkey) and ghz (a short load, zero errors).
. "$(dirname "$0")/lib.sh"

for tool in grpcurl grpc-health-probe ghz; do
	command -v "$tool" >/dev/null || bail "$tool is not installed (deploy/install-go-tools.sh)"
done

start_valkey vk1
keygen hub
start_spoke spoke-1 vk1 hub
start_hub hub hub spoke-1
SPOKE_ADDR=127.0.0.1:$SPOKE_PORT_spoke_1

hub_rpc() {
	local method=$1
	shift
	grpcurl -plaintext -max-time 10 "$@" "$HUB_ADDR" "tessera.v1.Hub/$method"
}

# Reflection: services listed and described without any .proto file.
services=$(grpcurl -plaintext "$HUB_ADDR" list | paste -sd' ')
check "hub lists its services by reflection" \
	[ "$services" = "grpc.health.v1.Health grpc.reflection.v1.ServerReflection grpc.reflection.v1alpha.ServerReflection tessera.v1.Hub" ]
services=$(grpcurl -plaintext "$SPOKE_ADDR" list | paste -sd' ')
check "spoke lists its services by reflection" \
	[ "$services" = "grpc.health.v1.Health grpc.reflection.v1.ServerReflection grpc.reflection.v1alpha.ServerReflection tessera.v1.Spoke" ]
check "describe shows the Hub service's methods" \
	sh -c "grpcurl -plaintext $HUB_ADDR describe tessera.v1.Hub | grep -q 'rpc WatchEvents'"
check "describe resolves a message type" \
	sh -c "grpcurl -plaintext $HUB_ADDR describe tessera.v1.Agent | grep -q 'string spoke_id = 2'"

# Calls with JSON bodies.
id=$(hub_rpc SpawnAgent -d '{"type": "true", "task": "from grpcurl"}' | jq -r .id)
check "SpawnAgent through grpcurl returns an agent id" [ "${id%%.*}" = spoke-1 ]
completed() {
	[ "$(hub_rpc GetAgent -d "{\"agentId\": \"$id\"}" | jq -r .state)" = AGENT_STATE_COMPLETED ]
}
check "GetAgent through grpcurl sees it COMPLETED" wait_for 10 completed
check "GetAgent returns the task as sent" \
	[ "$(hub_rpc GetAgent -d "{\"agentId\": \"$id\"}" | jq -r .task)" = "from grpcurl" ]
sid=$(hub_rpc SpawnAgent -d '{"type": "sleep"}' | jq -r .id)
hub_rpc KillAgent -d "{\"agentId\": \"$sid\"}" >/dev/null
killed() {
	[ "$(hub_rpc GetAgent -d "{\"agentId\": \"$sid\"}" | jq -r .state)" = AGENT_STATE_KILLED ]
}
check "KillAgent through grpcurl ends a sleeping agent KILLED" wait_for 10 killed
err=$(hub_rpc GetAgent -d '{"agentId": "spoke-1.ffffffffffffffffffffffff"}' 2>&1)
check "an unknown agent is NotFound for grpcurl too" grep -q "Code: NotFound" <<<"$err"
err=$(hub_rpc SpawnAgent -d '{"type": "no such type!"}' 2>&1)
check "a malformed type is InvalidArgument" grep -q "Code: InvalidArgument" <<<"$err"
err=$(hub_rpc SpawnAgent -d '{"type": "true", "timeoutMs": 86400001}' 2>&1)
check "the hub refuses a timeout above 24 h as InvalidArgument" \
	grep -q "Code: InvalidArgument" <<<"$err"
events=$(grpcurl -plaintext -max-time 10 -d "{\"agentId\": \"$id\", \"fromStart\": true}" \
	"$HUB_ADDR" tessera.v1.Hub/WatchEvents 2>/dev/null | jq -r '.event.type' | head -n 3 | paste -sd' ')
check "WatchEvents streams the agent's events to grpcurl" \
	[ "$events" = "agent.spawning agent.running agent.completed" ]

# Health: both daemons serve; the spoke stops serving without its Valkey.
check "grpc-health-probe: hub SERVING" quiet grpc-health-probe -addr "$HUB_ADDR"
check "grpc-health-probe: hub's tessera.v1.Hub SERVING" \
	quiet grpc-health-probe -addr "$HUB_ADDR" -service tessera.v1.Hub
check "grpc-health-probe: spoke SERVING" \
	quiet grpc-health-probe -addr "$SPOKE_ADDR" -service tessera.v1.Spoke
grpcurl -plaintext -d '{"service": "tessera.v1.Spoke"}' "$SPOKE_ADDR" \
	grpc.health.v1.Health/Watch >"$WORK/health-watch.out" 2>&1 &
track $! -
wait_for 5 grep -q SERVING "$WORK/health-watch.out"
stop_valkey vk1
not_serving() { ! grpc-health-probe -addr "$SPOKE_ADDR" -service tessera.v1.Spoke >/dev/null 2>&1; }
check "spoke is NOT_SERVING while its Valkey is down" wait_for 10 not_serving
check "Health/Watch saw the change" wait_for 5 grep -q NOT_SERVING "$WORK/health-watch.out"
start_valkey vk1
check "spoke is SERVING again once Valkey is back" \
	wait_for 10 quiet grpc-health-probe -addr "$SPOKE_ADDR" -service tessera.v1.Spoke

# A short load: GetAgent through the hub, no errors.
ghz --insecure --call tessera.v1.Hub/GetAgent -d "{\"agentId\": \"$id\"}" \
	-n 2000 -c 20 --timeout 10s -O json "$HUB_ADDR" >"$WORK/ghz.json" 2>"$WORK/ghz.err"
check "ghz: 2000 GetAgent calls" [ "$(jq -r .count "$WORK/ghz.json")" = 2000 ]
check "ghz: every call OK" [ "$(jq -r '.statusCodeDistribution.OK // 0' "$WORK/ghz.json")" = 2000 ]
echo "# ghz: $(jq -r '"\(.rps | floor) calls/s, average \(.average / 1000000) ms"' "$WORK/ghz.json")"

finish
