#!/usr/bin/env bash
# `tessera health [ADDR]`, the check a container's HEALTHCHECK runs: SERVING
# (exit 0) from a hub and a spoke, in plaintext and over TLS (mutual TLS
# for the spoke, and --tls-name for a certificate that does not name the
# address); NOT_SERVING (exit 1) from a hub whose spokes are all down;
# one UNAVAILABLE line (exit 1) for a closed port; named services, an
# unknown one (SERVICE_UNKNOWN, exit 1); usage errors (exit 2).
. "$(dirname "$0")/lib.sh"

for tool in jq openssl; do
	command -v "$tool" >/dev/null || bail "$tool is not installed"
done
make_certs
CA=$TLS_DIR/ca.pem
# A certificate that names neither localhost nor 127.0.0.1.
make_cert named "DNS:hub.tessera.test" serverAuth || bail "openssl could not make named.pem"

start_valkey vk1
start_valkey vk2
keygen hub
start_spoke spoke-1 vk1 hub
SPOKE_ADDR=127.0.0.1:$SPOKE_PORT_spoke_1
start_hub hub hub spoke-1
PLAIN_HUB=$HUB_ADDR
# Only what the command line says (lib.sh's TESSERA_HUB is the hub's binary, not exported).
unset TESSERA_TOKEN TESSERA_TOKEN_FILE TESSERA_TLS_CA TESSERA_TLS_CERT TESSERA_TLS_KEY \
	TESSERA_TLS_NAME TESSERA_CONFIG

# health ARGS...: runs `tessera health`; sets OUT, ERR and RC.
health() {
	OUT=$("$TESSERA_CLI" health "$@" 2>"$WORK/health.err")
	RC=$?
	ERR=$(cat "$WORK/health.err")
}

serving() {
	health "$@"
	[ "$RC" -eq 0 ] && [ "$OUT" = SERVING ]
}

# Plaintext, the hub and a spoke.
check "the hub is SERVING (exit 0)" wait_for 15 serving --hub "$HUB_ADDR"
check "... nothing on stderr" [ -z "$ERR" ]
check "ADDR names the daemon to check" serving "$HUB_ADDR"
check "the hub address comes from TESSERA_HUB" \
	sh -c "TESSERA_HUB='$HUB_ADDR' '$TESSERA_CLI' health | grep -qx SERVING"
printf 'hub %s\n' "$HUB_ADDR" >"$WORK/cli.conf"
check "... or from the config file" \
	sh -c "TESSERA_CONFIG='$WORK/cli.conf' '$TESSERA_CLI' health | grep -qx SERVING"
check "a spoke is SERVING" serving "$SPOKE_ADDR"
check "--service tessera.v1.Hub on the hub" serving "$HUB_ADDR" --service tessera.v1.Hub
check "--service tessera.v1.Spoke on the spoke" serving --service tessera.v1.Spoke "$SPOKE_ADDR"
health "$HUB_ADDR" --service no.such.Service
check "an unknown service: SERVICE_UNKNOWN" [ "$OUT" = SERVICE_UNKNOWN ]
check "... exit 1" [ "$RC" -eq 1 ]
health "$HUB_ADDR" --json
check "--json: {\"status\": \"SERVING\"}" [ "$(jq -r .status <<<"$OUT")" = SERVING ]
check "... exit 0" [ "$RC" -eq 0 ]
health --json "$SPOKE_ADDR" --service tessera.v1.Hub
check "--json for a service the spoke does not serve" \
	[ "$(jq -r .status <<<"$OUT")" = SERVICE_UNKNOWN ]
check "... exit 1" [ "$RC" -eq 1 ]
check "a token, when one is configured, does no harm" \
	serving "$HUB_ADDR" --token "$(printf 'a%.0s' $(seq 64))"

# A closed port: one line naming the gRPC status.
closed=127.0.0.1:$(free_port)
t0=$(date +%s%N)
health "$closed"
t1=$(date +%s%N)
check "a closed port: exit 1" [ "$RC" -eq 1 ]
check "... with one line" [ "$(wc -l <<<"$ERR")" -eq 1 ]
check "... naming UNAVAILABLE" grep -q "^tessera: UNAVAILABLE: " <<<"$ERR"
check "... nothing on stdout" [ -z "$OUT" ]
check "... at once, not at the timeout" [ $(((t1 - t0) / 1000000)) -lt 3000 ]

# Usage errors.
health "$HUB_ADDR" "$SPOKE_ADDR"
check "two addresses: usage error (exit 2)" [ "$RC" -eq 2 ]
check "... naming the command's usage" grep -q "usage: tessera .*health \[ADDR\]" <<<"$ERR"
health --service
check "--service without a value: exit 2" [ "$RC" -eq 2 ]
health --bogus "$HUB_ADDR"
check "an unknown flag: exit 2" [ "$RC" -eq 2 ]
health "$HUB_ADDR" --service "$(printf 's%.0s' $(seq 201))"
check "a service name over 200 bytes: exit 2" [ "$RC" -eq 2 ]
check "the usage text lists health" \
	sh -c "'$TESSERA_CLI' -h | grep -q 'tessera health \[ADDR\] \[--service NAME\]'"
health "$HUB_ADDR" --tls-name hub.tessera.test
check "--tls-name without --tls-ca: exit 1" [ "$RC" -eq 1 ]
check "... saying it needs --tls-ca" grep -q "need --tls-ca" <<<"$ERR"

# TLS: a hub over TLS, a spoke over mutual TLS.
SPOKE_TLS=mtls start_spoke spoke-2 vk2 hub
TLS_SPOKE=127.0.0.1:$SPOKE_PORT_spoke_2
HUB_TLS=tls HUB_SPOKE_TLS=mtls start_hub tls-hub hub spoke-2
TLS_HUB=$HUB_ADDR
check "a TLS hub is SERVING with --tls-ca" wait_for 15 serving --tls-ca "$CA" "$TLS_HUB"
health "$TLS_HUB" --timeout 3
check "... not in plaintext: exit 1" [ "$RC" -eq 1 ]
check "... UNAVAILABLE" grep -q "^tessera: UNAVAILABLE: " <<<"$ERR"
check "an mTLS spoke is SERVING with the client certificate" \
	serving "$TLS_SPOKE" --tls-ca "$CA" --tls-cert "$TLS_DIR/client.pem" \
	--tls-key "$TLS_DIR/client.key" --service tessera.v1.Spoke
health "$TLS_SPOKE" --tls-ca "$CA" --timeout 3
check "... but not without one: exit 1" [ "$RC" -eq 1 ]
check "... printing no status" [ -z "$OUT" ]
check "TESSERA_TLS_CA and the client certificate from the environment" \
	sh -c "TESSERA_TLS_CA='$CA' TESSERA_TLS_CERT='$TLS_DIR/client.pem' \
		TESSERA_TLS_KEY='$TLS_DIR/client.key' '$TESSERA_CLI' health '$TLS_SPOKE' |
		grep -qx SERVING"

# --tls-name: the hub's certificate names hub.tessera.test only.
sed -e "s|^listen .*|listen 127.0.0.1:$(free_port)|" \
	-e "s|$TLS_DIR/server.pem|$TLS_DIR/named.pem|" \
	-e "s|$TLS_DIR/server.key|$TLS_DIR/named.key|" "$WORK/tls-hub.conf" >"$WORK/named-hub.conf"
NAMED_HUB=$(sed -n 's/^listen //p' "$WORK/named-hub.conf")
"$TESSERA_HUB" --config "$WORK/named-hub.conf" >"$WORK/named-hub.log" 2>&1 &
track $! "hub named-hub"
wait_for 15 grep -q "listening on" "$WORK/named-hub.log" || bail "hub named-hub did not start"
health "$NAMED_HUB" --tls-ca "$CA" --timeout 3
check "a certificate that does not name the address is refused: exit 1" [ "$RC" -eq 1 ]
check "... UNAVAILABLE" grep -q "^tessera: UNAVAILABLE: " <<<"$ERR"
check "--tls-name with the name it has: SERVING" \
	wait_for 15 serving "$NAMED_HUB" --tls-ca "$CA" --tls-name hub.tessera.test
check "--tls-name also from TESSERA_TLS_NAME" \
	sh -c "TESSERA_TLS_NAME=hub.tessera.test '$TESSERA_CLI' --tls-ca '$CA' \
		health '$NAMED_HUB' | grep -qx SERVING"
health "$NAMED_HUB" --tls-ca "$CA" --tls-name other.tessera.test --timeout 3
check "--tls-name with another name: exit 1" [ "$RC" -eq 1 ]
check "the other commands take --tls-name too" \
	quiet "$TESSERA_CLI" --hub "$NAMED_HUB" --tls-ca "$CA" --tls-name hub.tessera.test spokes

# Every spoke of a hub down: NOT_SERVING, exit 1.
stop_tracked "spoke spoke-1"
not_serving() {
	health "$PLAIN_HUB"
	[ "$RC" -eq 1 ] && [ "$OUT" = NOT_SERVING ]
}
check "a hub with every spoke down: NOT_SERVING, exit 1" wait_for 15 not_serving
check "... and no error line" [ -z "$ERR" ]
health "$PLAIN_HUB" --json --service tessera.v1.Hub
check "--json says NOT_SERVING" [ "$(jq -r .status <<<"$OUT")" = NOT_SERVING ]
check "... exit 1" [ "$RC" -eq 1 ]

finish
