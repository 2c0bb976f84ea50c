#!/usr/bin/env bash
# Any number of spokes, and bad input: a deployment of five spokes made by
# gen.sh 5 and run with Debian's docker-compose 1.29 (the other tests use
# the `docker compose` plugin) comes up healthy and takes a spawn on each
# spoke. A host port already taken fails the bring-up naming it; a secrets
# folder that lost a certificate is completed, one that lost the CA's key
# is refused naming it; a spoke whose key the hubs do not have shows as
# refused, with a reason.
. "$(dirname "$0")/lib.sh"

if ! command -v docker-compose >/dev/null 2>&1; then
	bail "docker-compose (Debian's, 1.29) is not installed"
fi
export TESSERA_COMPOSE_TOOL=standalone

# A port already taken on this machine.
python3 -c 'import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(1); time.sleep(600)' "$PORT_B" &
track "$!" -
wait_for 10 bash -c "ss -Hltn 'sport = :$PORT_B' | grep -q ." || bail "could not take port $PORT_B"
out=$(bash "$UP" 5 2>&1)
check "up.sh fails when a hub's port is taken" [ $? -ne 0 ]
check "naming the port" grep -q "port $PORT_B .*already in use" <<<"$out"
check "nothing was started" [ -z "$(project_leftovers)" ]
stop_all

start=$SECONDS
if bash "$UP" 5 >"$WORK/up.log" 2>&1; then
	ok "up.sh 5 with docker-compose 1.29: 12 services healthy"
else
	not_ok "up.sh 5 with docker-compose 1.29: 12 services healthy"
	sed 's/^/# /' "$WORK/up.log" | tail -n 40
	bail "no deployment"
fi
echo "# five spokes up and healthy: $((SECONDS - start)) s"
check "gen.sh wrote five spokes" [ "$(compose_spokes | wc -l)" -eq 5 ]
check "hub-a shows 5 connected spokes" wait_for 30 bash -c "[ \$('$TESSERA_CLI' --hub $HUB_ADDR --json spokes | jq '[.spokes[] | select(.state == \"connected\")] | length') -eq 5 ]"
for i in 1 2 3 4 5; do
	id=$(cli_b --json spawn sample "task $i" --spoke "spoke-$i" --wait | jq -r .id)
	check "a sample agent on spoke-$i through hub-b completes ($id)" \
		[ "$(cli --json get "$id" | jq -r .state)" = AGENT_STATE_COMPLETED ]
done

# Half-made secrets: a lost certificate is issued again; the CA's lost key
# cannot be made again, and gen.sh says which file is missing.
S=$TESSERA_COMPOSE_DIR/secrets
rm -f "$S/spoke-2/tls.key.pem"
out=$(bash "$GEN" 5 2>&1)
check "gen.sh completes a secrets folder that lost spoke-2/tls.key.pem" [ $? -eq 0 ]
check "saying what it made again" grep -q 'spoke-2/tls.pem' <<<"$out"
check "the new pair is there" [ -s "$S/spoke-2/tls.key.pem" ]
cp "$S/ca/ca.key" "$WORK/ca.key"
rm -f "$S/ca/ca.key"
out=$(bash "$GEN" 5 2>&1)
check "gen.sh refuses a secrets folder that lost ca/ca.key" [ $? -ne 0 ]
check "naming ca/ca.key" grep -q 'ca/ca.key is missing' <<<"$out"
cp "$WORK/ca.key" "$S/ca/ca.key"

# A spoke whose key the hubs do not have: hub-a configured with another key
# for spoke-5.
other=$(docker run --rm --entrypoint sh "$TESSERA_IMAGE" -c 'tessera keygen /tmp/k >/dev/null && cat /tmp/k.pub')
sed -i "s|^spoke spoke-5 spoke-5:7001 .*|spoke spoke-5 spoke-5:7001 $other|" "$TESSERA_COMPOSE_DIR/config/hub-a.conf"
docker restart "$(ctr hub-a)" >/dev/null
check "hub-a shows spoke-5 refused" wait_for 60 bash -c "[ \"\$('$TESSERA_CLI' --hub $HUB_ADDR --json spokes | jq -r '.spokes[] | select(.id == \"spoke-5\") | .state')\" = refused ]"
reason=$(cli --json spokes | jq -r '.spokes[] | select(.id == "spoke-5") | .reason')
check "with a reason ($reason)" [ -n "$reason" ]
check "tessera spokes prints it" bash -c "'$TESSERA_CLI' --hub $HUB_ADDR spokes | grep spoke-5 | grep -q refused"
check "the other four stay connected" [ "$(connected_spokes)" -eq 4 ]
check "hub-b, which has spoke-5's key, still shows it connected" \
	[ "$(spoke_state spoke-5 cli_b)" = connected ]

finish
