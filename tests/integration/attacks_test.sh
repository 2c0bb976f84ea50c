#!/usr/bin/env bash
# Attacks on a spoke, one check each: every forged, altered, misdirected,
# stale, replayed, oversized or unsigned command is refused with its own
# status, and leaves Valkey (the agents index and the event stream) and the
# spoke's processes exactly as they were. tessera-forge plays the hub.
. "$(dirname "$0")/lib.sh"

FORGE=$TESSERA_BUILD/tests/tools/tessera-forge
AGENTS_KEY='tessera:{spoke-1}:agents'
EVENTS_KEY='tessera:{spoke-1}:events'

start_valkey vk1
keygen hub
keygen hub2
keygen rogue
start_spoke spoke-1 vk1 hub hub2
SPOKE_ADDR=127.0.0.1:$SPOKE_PORT_spoke_1
SPOKE_PID=${PIDS[-1]}
CONF=$WORK/spoke-1.conf

# forge KEY_NAME [OPTION...]: one command (by default, spawn a `true`
# agent, which leaves no process behind); prints its outcome.
forge() {
	local key=$1
	shift
	"$FORGE" -a "$SPOKE_ADDR" -k "$WORK/$key.key" -s spoke-1 -p "$WORK/spoke-1.key.pub" \
		"$@" 2>>"$WORK/forge.log"
}

# What an attack must not change: agents recorded, events written, processes.
snapshot() {
	echo "$(valkey vk1 zcard "$AGENTS_KEY") $(valkey vk1 xlen "$EVENTS_KEY")" \
		"$(pgrep -c -P "$SPOKE_PID")"
}

# refused DESCRIPTION STATUS KEY_NAME [OPTION...]: the forged command gets
# STATUS and nothing changes. It asks for a sleep agent, whose process
# would still be there to count had one been started.
refused() {
	local desc=$1 want=$2 before got after
	shift 2
	before=$(snapshot)
	got=$(forge "$@" -A sleep)
	after=$(snapshot)
	if [ "$got" = "$want" ] && [ "$before" = "$after" ]; then
		ok "$desc: $want, nothing changed"
	else
		not_ok "$desc: got '$got' (want $want), state '$before' -> '$after'"
	fi
}

# The newest event is a `true` agent's last: a spawn has played out.
settled() {
	valkey vk1 xrevrange "$EVENTS_KEY" + - COUNT 1 | grep -qx agent.completed
}

# accepted DESCRIPTION KEY_NAME [OPTION...]: the spawn is carried out, to the end.
accepted() {
	local desc=$1
	shift
	check "$desc" [ "$(forge "$@")" = OK ]
	wait_for 10 settled || bail "the accepted agent did not complete"
}

# restart_spoke: stops the spoke and starts it again on the same config.
restart_spoke() {
	local n
	stop_pid "$SPOKE_PID" || true
	n=$(grep -c "listening on" "$WORK/spoke-1.log")
	"$TESSERA_SPOKE" --config "$CONF" >>"$WORK/spoke-1.log" 2>&1 &
	SPOKE_PID=$!
	track "$SPOKE_PID" "spoke spoke-1 (restarted)"
	wait_for 15 sh -c "[ \$(grep -c 'listening on' '$WORK/spoke-1.log') -gt $n ]" ||
		bail "spoke-1 did not restart"
}

# hup_spoke: SIGHUP, then waits for the spoke to log the reload's outcome.
hup_spoke() {
	local n
	n=$(grep -c "SIGHUP:" "$WORK/spoke-1.log")
	kill -HUP "$SPOKE_PID"
	wait_for 10 sh -c "[ \$(grep -c 'SIGHUP:' '$WORK/spoke-1.log') -gt $n ]"
}

NONCE=00112233445566778899aabbccddeeff

# The honest path first, so that every refusal below is the attack's doing.
before=$(snapshot)
accepted "a well-formed command is carried out" hub -n "$NONCE"
check "and it changed the agents and the events" [ "$(snapshot)" != "$before" ]

refused "forged signature" PERMISSION_DENIED hub -d badsig
refused "unknown issuer" PERMISSION_DENIED rogue
refused "tampered command bytes" PERMISSION_DENIED hub -d tamper
refused "wrong audience" PERMISSION_DENIED hub -u spoke-2
refused "expired command" PERMISSION_DENIED hub -i -120000
refused "future-dated command" PERMISSION_DENIED hub -i 120000
refused "replayed nonce" PERMISSION_DENIED hub -n "$NONCE"
refused "oversized task" INVALID_ARGUMENT hub -T 70000
refused "oversized command" RESOURCE_EXHAUSTED hub -T 300000
refused "truncated command" INVALID_ARGUMENT hub -d truncate

restart_spoke
refused "replayed nonce after a spoke restart" PERMISSION_DENIED hub -n "$NONCE"

# StreamEvents takes the same envelope, and the same nonce record.
SNONCE=ffeeddccbbaa99887766554433221100
check "a signed event stream is accepted" [ "$(forge hub -S -n "$SNONCE")" = OK ]
refused "replayed event stream nonce" PERMISSION_DENIED hub -S -n "$SNONCE"
refused "replayed command nonce on StreamEvents" PERMISSION_DENIED hub -S -n "$NONCE"
refused "event stream signed by an unknown issuer" PERMISSION_DENIED rogue -S

# Revocation: hub2 is trusted, then its line is removed and the spoke told.
accepted "hub2's key is trusted before the revocation" hub2
sed -i "\|$(pubkey hub2)|d" "$CONF"
check "SIGHUP is acted on" hup_spoke
refused "revoked key after SIGHUP" PERMISSION_DENIED hub2
echo "no-such-keyword 1" >>"$CONF"
check "SIGHUP with a broken config is acted on" hup_spoke
check "a broken config is logged and keeps the keys" \
	grep -q "keeping the trusted hub keys" "$WORK/spoke-1.log"
refused "revoked key after a failed reload" PERMISSION_DENIED hub2
accepted "the remaining key still works after a failed reload" hub

# Unsigned: each Spoke method, straight from grpcurl with no signature.
unsigned() {
	local method=$1 body=$2 before out after
	before=$(snapshot)
	out=$(grpcurl -plaintext -max-time 10 -d "$body" "$SPOKE_ADDR" "tessera.v1.Spoke/$method" 2>&1)
	after=$(snapshot)
	grep -qE 'Code: (InvalidArgument|PermissionDenied)' <<<"$out" && [ "$before" = "$after" ]
}
check "unsigned Execute is refused, nothing changed" unsigned Execute '{}'
check "Execute with garbage command bytes is refused, nothing changed" \
	unsigned Execute '{"command":"AAECAwQFBgc=","signature":"AAECAwQFBgc="}'
check "unsigned StreamEvents is refused, nothing changed" unsigned StreamEvents '{}'

# Fail closed: a nonce that cannot be recorded means no command.
before=$(snapshot)
stop_pid "${PIDS[0]}" || true
got=$(forge hub)
start_valkey vk1
check "any command while Valkey is down is UNAVAILABLE" [ "$got" = UNAVAILABLE ]
check "and nothing changed once Valkey is back" [ "$(snapshot)" = "$before" ]
finish
