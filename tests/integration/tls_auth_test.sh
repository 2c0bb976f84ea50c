#!/usr/bin/env bash
# TLS on both hops and bearer tokens on the hub API, with certificates made
# by openssl: a spoke that requires client certificates, hubs reaching it
# with theirs, a hub API over TLS (and one over mutual TLS) that wants a
# token on every tessera.v1.Hub call but not for health; a token revoked by
# editing the config and sending SIGHUP; daemons that refuse to start when
# their config says nothing about TLS.
. "$(dirname "$0")/lib.sh"

for tool in openssl grpcurl grpc-health-probe; do
	command -v "$tool" >/dev/null || bail "$tool is not installed"
done
make_certs
CA=$TLS_DIR/ca.pem

# A daemon whose config does not choose between TLS and plaintext stops at once.
keygen lone
printf 'id lone\nlisten 127.0.0.1:1\nvalkey unix:%s/none.sock\nkey %s/lone.key\ntrust-hub %s\n' \
	"$WORK" "$WORK" "$(pubkey lone)" >"$WORK/lone-spoke.conf"
err=$(timeout 10 "$TESSERA_SPOKE" --config "$WORK/lone-spoke.conf" 2>&1)
check "a spoke without TLS or \"plaintext yes\" refuses to start" \
	grep -q 'no TLS configured' <<<"$err"
printf 'key %s/lone.key\nspoke s 127.0.0.1:1 %s\nspoke-plaintext yes\nauth none\n' \
	"$WORK" "$(pubkey lone)" >"$WORK/lone-hub.conf"
err=$(timeout 10 "$TESSERA_HUB" --config "$WORK/lone-hub.conf" 2>&1)
check "a hub without TLS or \"plaintext yes\" refuses to start" \
	grep -q 'no TLS configured' <<<"$err"
printf 'key %s/lone.key\nspoke s 127.0.0.1:1 %s\nplaintext yes\nspoke-plaintext yes\n' \
	"$WORK" "$(pubkey lone)" >"$WORK/lone-hub.conf"
err=$(timeout 10 "$TESSERA_HUB" --config "$WORK/lone-hub.conf" 2>&1)
check "a hub without tokens or \"auth none\" refuses to start" \
	grep -q 'no "token NAME HASH" line' <<<"$err"

start_valkey vk1
keygen hub
SPOKE_TLS=mtls start_spoke spoke-1 vk1 hub
SPOKE_ADDR=127.0.0.1:$SPOKE_PORT_spoke_1
HUB_TLS=tls HUB_SPOKE_TLS=mtls HUB_TOKENS="alice ops" start_hub hub hub spoke-1
TOKEN=$(token alice)
unset TESSERA_TOKEN TESSERA_TOKEN_FILE

tcli() {
	"$TESSERA_CLI" --hub "$HUB_ADDR" --tls-ca "$CA" "$@"
}

# End to end: CLI -(TLS, token)-> hub -(mutual TLS)-> spoke.
id=$(tcli --token "$TOKEN" --json spawn true | jq -r .id)
check "spawn over TLS with a token returns an agent id" [ "${id%%.*}" = spoke-1 ]
completed() { [ "$(tcli --token "$TOKEN" --json get "$id" | jq -r .state)" = AGENT_STATE_COMPLETED ]; }
check "the agent reaches COMPLETED through both TLS hops" wait_for 10 completed
check "the token is read from TESSERA_TOKEN" \
	quiet env TESSERA_TOKEN="$TOKEN" "$TESSERA_CLI" --hub "$HUB_ADDR" --tls-ca "$CA" spokes
printf '%s\n' "$TOKEN" >"$WORK/alice.token"
check "the token is read from --token-file" quiet tcli --token-file "$WORK/alice.token" spokes
check "the CA is read from TESSERA_TLS_CA" \
	quiet env TESSERA_TLS_CA="$CA" "$TESSERA_CLI" --hub "$HUB_ADDR" --token "$TOKEN" spokes
check "hub log never shows the token" sh -c "! grep -qF '$TOKEN' '$WORK/hub.log'"

# Refused first: no token, a wrong one, another scheme.
err=$(tcli get "$id" 2>&1)
check "no token: UNAUTHENTICATED" grep -q UNAUTHENTICATED <<<"$err"
err=$(tcli --token "not-a-token-of-this-hub" get "$id" 2>&1)
check "wrong token: UNAUTHENTICATED" grep -q UNAUTHENTICATED <<<"$err"
err=$(grpcurl -cacert "$CA" -max-time 10 -H "authorization: Basic $TOKEN" \
	-d "{\"agentId\": \"$id\"}" "$HUB_ADDR" tessera.v1.Hub/GetAgent 2>&1)
check "another scheme: Unauthenticated for grpcurl" grep -q "Code: Unauthenticated" <<<"$err"
err=$(grpcurl -cacert "$CA" -max-time 10 -d '{"type": "no such type!"}' \
	"$HUB_ADDR" tessera.v1.Hub/SpawnAgent 2>&1)
check "a bad request without a token is refused before it is parsed" \
	grep -q "Code: Unauthenticated" <<<"$err"
check "grpcurl with the token calls ListSpokes" \
	sh -c "grpcurl -cacert '$CA' -max-time 10 -H 'authorization: Bearer $TOKEN' \
		'$HUB_ADDR' tessera.v1.Hub/ListSpokes | grep -q spoke-1"
err=$(timeout 10 "$TESSERA_CLI" --hub "$HUB_ADDR" --tls-ca "$CA" watch --count 1 2>&1)
check "WatchEvents without a token: UNAUTHENTICATED" grep -q UNAUTHENTICATED <<<"$err"
agents_before=$(valkey vk1 zcard "tessera:{spoke-1}:agents")
for method in SpawnAgent GetAgent KillAgent ListAgents ListSpokes WatchEvents DrainSpoke \
	UndrainSpoke; do
	case $method in
	SpawnAgent) body='{"type": "true"}' ;;
	GetAgent | KillAgent | WatchEvents) body="{\"agentId\": \"$id\"}" ;;
	DrainSpoke | UndrainSpoke) body='{"spokeId": "spoke-1"}' ;;
	*) body='{}' ;;
	esac
	err=$(grpcurl -cacert "$CA" -max-time 10 -d "$body" "$HUB_ADDR" "tessera.v1.Hub/$method" 2>&1)
	check "grpcurl $method without a token: Unauthenticated" \
		grep -q "Code: Unauthenticated" <<<"$err"
done
check "no call without a token created anything" \
	[ "$(valkey vk1 zcard "tessera:{spoke-1}:agents")" = "$agents_before" ]
check "... nor drained spoke-1" [ "$(valkey vk1 exists "tessera:{spoke-1}:draining")" = 0 ]
check "the agent a tokenless KillAgent named is still COMPLETED" completed

# Health and reflection stay open; TLS is still required.
check "health over TLS without a token: SERVING" \
	quiet grpc-health-probe -addr "$HUB_ADDR" -tls -tls-ca-cert "$CA" -service tessera.v1.Hub
check "reflection over TLS without a token lists tessera.v1.Hub" \
	sh -c "grpcurl -cacert '$CA' '$HUB_ADDR' list | grep -q tessera.v1.Hub"
err=$("$TESSERA_CLI" --hub "$HUB_ADDR" --token "$TOKEN" --timeout 3 spokes 2>&1)
check "a plaintext CLI cannot reach the TLS hub" grep -q UNAVAILABLE <<<"$err"
check "a plaintext health check cannot reach the TLS hub" \
	sh -c "! grpc-health-probe -addr '$HUB_ADDR' -connect-timeout 3s >/dev/null 2>&1"
err=$(grpcurl -insecure -max-time 10 "$HUB_ADDR" list 2>&1)
check "grpcurl -insecure (TLS, unverified) reaches the hub's reflection" \
	grep -q tessera.v1.Hub <<<"$err"

# The spoke requires a client certificate signed by the test CA.
check "spoke health with the client certificate: SERVING" \
	quiet grpc-health-probe -addr "$SPOKE_ADDR" -tls -tls-ca-cert "$CA" \
	-tls-client-cert "$TLS_DIR/client.pem" -tls-client-key "$TLS_DIR/client.key" \
	-service tessera.v1.Spoke
check "spoke refuses a client without a certificate" \
	sh -c "! grpc-health-probe -addr '$SPOKE_ADDR' -tls -tls-ca-cert '$CA' \
		-connect-timeout 3s >/dev/null 2>&1"
check "spoke refuses a certificate from another CA" \
	sh -c "! grpc-health-probe -addr '$SPOKE_ADDR' -tls -tls-ca-cert '$CA' \
		-tls-client-cert '$TLS_DIR/rogue-client.pem' \
		-tls-client-key '$TLS_DIR/rogue-client.key' -connect-timeout 3s >/dev/null 2>&1"
check "spoke refuses plaintext" \
	sh -c "! grpc-health-probe -addr '$SPOKE_ADDR' -connect-timeout 3s >/dev/null 2>&1"

# A hub that reaches the spoke without its client certificate gets nowhere.
main_hub=$HUB_ADDR
main_pid=$HUB_PID
HUB_TLS=tls HUB_SPOKE_TLS=tls HUB_TOKENS=alice start_hub nocert-hub hub spoke-1
err=$(tcli --token "$TOKEN" spawn true 2>&1)
check "a hub without a client certificate cannot reach the mTLS spoke" \
	grep -q UNAVAILABLE <<<"$err"

# A hub API over mutual TLS: the CLI needs its certificate too.
HUB_TLS=mtls HUB_SPOKE_TLS=mtls HUB_TOKENS=alice start_hub mtls-hub hub spoke-1
err=$(tcli --token "$TOKEN" --timeout 3 spokes 2>&1)
check "the mTLS hub refuses a CLI without a certificate" grep -q UNAVAILABLE <<<"$err"
check "the mTLS hub serves a CLI with its certificate and token" \
	quiet tcli --tls-cert "$TLS_DIR/client.pem" --tls-key "$TLS_DIR/client.key" \
	--token "$TOKEN" spokes
HUB_ADDR=$main_hub

# Revocation: drop alice's line, SIGHUP; ops still works, alice does not.
OPS=$(token ops)
check "before SIGHUP alice's token works" quiet tcli --token "$TOKEN" spokes
grep -v '^token alice ' "$WORK/hub.conf" >"$WORK/hub.conf.new"
mv "$WORK/hub.conf.new" "$WORK/hub.conf"
kill -HUP "$main_pid"
check "the hub logs the reload" wait_for 5 grep -q "SIGHUP: 1 tokens" "$WORK/hub.log"
err=$(tcli --token "$TOKEN" spokes 2>&1)
check "a revoked token: UNAUTHENTICATED" grep -q UNAUTHENTICATED <<<"$err"
check "a token still configured keeps working" quiet tcli --token "$OPS" spokes
id2=$(tcli --token "$OPS" --json spawn true | jq -r .id)
check "calls keep working after the reload" [ "${id2%%.*}" = spoke-1 ]

# A broken config on SIGHUP keeps the tokens in force.
echo "token broken sha256:00" >>"$WORK/hub.conf"
kill -HUP "$main_pid"
check "a bad config on SIGHUP is logged" wait_for 5 grep -q "SIGHUP: keeping the tokens" "$WORK/hub.log"
check "and the old tokens stay in force" quiet tcli --token "$OPS" spokes
err=$(tcli --token "$TOKEN" spokes 2>&1)
check "and the revoked one stays revoked" grep -q UNAUTHENTICATED <<<"$err"

finish
