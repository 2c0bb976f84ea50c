#!/usr/bin/env bash
# The guards on event streams, against real daemons: a token removed from
# the hub's config (SIGHUP) ends the watches and output streams opened with
# it and no other;
# a hub key removed from a spoke's trust-hub (SIGHUP) ends the StreamEvents
# opened with it (tessera-forge holding one, and the hub's own) while the
# streams of keys still trusted go on; an event a spoke signs about another
# spoke's agent (written into its Valkey by hand) never reaches a watcher,
# and the watch goes on past it; one token holds at most
# HUB_WATCHERS_PER_TOKEN_MAX watches, while other tokens still get theirs;
# one host holds at most HEALTH_WATCHERS_PER_PEER_MAX Health.Watch calls.
. "$(dirname "$0")/lib.sh"

command -v grpcurl >/dev/null || bail "grpcurl is not installed"
TESSERA_FORGE=$TESSERA_BUILD/tests/tools/tessera-forge
PER_TOKEN=$(sed -n 's/^#define HUB_WATCHERS_PER_TOKEN_MAX \([0-9]*\).*/\1/p' \
	"$(dirname "$0")/../../hub/hub_limits.h")
[ -n "$PER_TOKEN" ] || bail "no HUB_WATCHERS_PER_TOKEN_MAX in hub/hub_limits.h"

keygen hub
keygen other # a second hub key, which only tessera-forge uses
start_valkey vk1
start_valkey vk2
start_spoke spoke-1 vk1 hub other
start_spoke spoke-2 vk2 hub
HUB_TOKENS="alice bob carol" start_hub hub hub spoke-1 spoke-2
ALICE=$(token alice) BOB=$(token bob) CAROL=$(token carol)
unset TESSERA_TOKEN TESSERA_TOKEN_FILE

# start_watch NAME TOKEN: `tessera watch --json` in the background, its output in
# $WORK/NAME.out and .err; sets WATCH_PID once it has subscribed.
start_watch() {
	# The program itself, not through cli(): its PID is the one to stop.
	"$TESSERA_CLI" --hub "$HUB_ADDR" --token "$2" watch --json >"$WORK/$1.out" \
		2>"$WORK/$1.err" &
	WATCH_PID=$!
	track "$WATCH_PID" -
	wait_for 15 grep -q watching "$WORK/$1.err" || bail "watch $1 did not subscribe"
}

# ended PID: the process has exited.
ended() {
	! kill -0 "$1" 2>/dev/null
}

# seen FILE AGENT TYPE: the watch output has that event of that agent.
seen() {
	jq -e --arg a "$2" --arg t "$3" 'select(.event.agentId == $a and .event.type == $t)' \
		"$1" >/dev/null
}

# spawn TOKEN ARGS...: a `true` agent through the hub; prints its id.
spawn() {
	local t=$1
	shift
	cli --token "$t" --json spawn true "$@" | jq -r .id
}

# --- A token removed on SIGHUP ends its watches, and only those.
start_watch alice "$ALICE"
ALICE_PID=$WATCH_PID
start_watch bob "$BOB"
BOB_PID=$WATCH_PID
# And alice follows an agent's output (tessera logs -f).
sleeper=$(cli --token "$CAROL" --json spawn sleep --spoke spoke-2 | jq -r .id)
"$TESSERA_CLI" --hub "$HUB_ADDR" --token "$ALICE" logs -f "$sleeper" >/dev/null \
	2>"$WORK/alice-logs.err" &
LOGS_PID=$!
track "$LOGS_PID" -
sleep 1
sed -i '/^token alice /d' "$WORK/hub.conf"
kill -HUP "$HUB_PID"
check "the watch of a token removed on SIGHUP ends within 2 s" wait_for 2 ended "$ALICE_PID"
wait "$ALICE_PID"
check "... and the CLI exits 1" [ $? -eq 1 ]
check "... saying UNAUTHENTICATED" grep -q "UNAUTHENTICATED.*no longer accepted" "$WORK/alice.err"
check "the hub logs the watches it ended" \
	grep -q "SIGHUP: ended 1 watches whose token is gone" "$WORK/hub.log"
check "the token's output stream (logs -f) ends too" wait_for 2 ended "$LOGS_PID"
wait "$LOGS_PID"
check "... exit 1, UNAUTHENTICATED" [ $? -eq 1 ] &&
	grep -q "UNAUTHENTICATED.*no longer accepted" "$WORK/alice-logs.err"
check "the hub logs the output streams it ended" \
	grep -q "SIGHUP: ended 1 output streams whose token is gone" "$WORK/hub.log"
id=$(spawn "$BOB" --spoke spoke-2)
check "another token's watch goes on: it sees a new agent complete" \
	wait_for 10 seen "$WORK/bob.out" "$id" agent.completed
check "the removed token's watch saw nothing more" sh -c "! grep -q '$id' '$WORK/alice.out'"

# --- An event a spoke signs about another spoke's agent is dropped.
forged=spoke-2.$(printf '%024x' 1)
id=$(spawn "$BOB" --spoke spoke-1)
wait_for 10 seen "$WORK/bob.out" "$id" agent.completed || bail "no event of spoke-1"
# The fields of a real entry of spoke-1, with another spoke's agent id.
mapfile -t fields < <(valkey vk1 --json XRANGE "tessera:{spoke-1}:events" - + COUNT 1 |
	jq -r --arg a "$forged" '.[0][1] as $f | range(0; $f | length; 2) as $i |
		$f[$i], (if $f[$i] == "agent" then $a else $f[$i + 1] end)')
check "a forged entry naming spoke-2's agent is written into spoke-1's Valkey" \
	grep -qE '^[0-9]+-[0-9]+$' <<<"$(valkey vk1 XADD "tessera:{spoke-1}:events" '*' "${fields[@]}")"
id=$(spawn "$BOB" --spoke spoke-1)
check "the watch goes on past it: a later agent of spoke-1 completes" \
	wait_for 10 seen "$WORK/bob.out" "$id" agent.completed
check "the event about another spoke's agent never reached the watcher" \
	sh -c "! grep -q '$forged' '$WORK/bob.out'"
check "the hub logs that it dropped it" \
	grep -q "spoke spoke-1 signed event .* about an agent that is not its own; dropped" \
	"$WORK/hub.log"
check "the watch is still open" kill -0 "$BOB_PID"

# --- A hub key removed from trust-hub on SIGHUP ends the streams it opened.
SPOKE1=127.0.0.1:$SPOKE_PORT_spoke_1
hold() { # hold NAME: a StreamEvents held open on spoke-1 with key other
	"$TESSERA_FORGE" -a "$SPOKE1" -k "$WORK/other.key" -s spoke-1 -p "$WORK/spoke-1.key.pub" \
		-S -W 60000 >"$WORK/$1.out" 2>"$WORK/$1.err" &
	HOLD_PID=$!
	track "$HOLD_PID" -
	wait_for 10 grep -qx OK "$WORK/$1.out" || bail "forge stream $1 did not start"
}
last_line_is() {
	[ "$(tail -n 1 "$1")" = "$2" ]
}
hold forge1
FORGE1_PID=$HOLD_PID
grep -v "^trust-hub $(pubkey other)\$" "$WORK/spoke-1.conf" >"$WORK/spoke-1.conf.new"
mv "$WORK/spoke-1.conf.new" "$WORK/spoke-1.conf"
kill -HUP "$SPOKE_PID_spoke_1"
check "a stream of a key removed from trust-hub ends within 2 s" wait_for 2 ended "$FORGE1_PID"
check "... PERMISSION_DENIED" last_line_is "$WORK/forge1.out" PERMISSION_DENIED
check "... because its key is no longer trusted" grep -q "no longer trusted" "$WORK/forge1.err"
check "the spoke logs the streams it ended" \
	grep -q "SIGHUP: ending 1 streams of hub keys" "$WORK/spoke-1.log"
id=$(spawn "$BOB" --spoke spoke-1)
check "the hub's stream (its key still trusted) goes on" \
	wait_for 10 seen "$WORK/bob.out" "$id" agent.completed

echo "trust-hub $(pubkey other)" >>"$WORK/spoke-1.conf"
kill -HUP "$SPOKE_PID_spoke_1"
wait_for 5 grep -q "SIGHUP: 2 trusted hub keys" "$WORK/spoke-1.log" || bail "no reload"
hold forge2
FORGE2_PID=$HOLD_PID
grep -v "^trust-hub $(pubkey hub)\$" "$WORK/spoke-1.conf" >"$WORK/spoke-1.conf.new"
mv "$WORK/spoke-1.conf.new" "$WORK/spoke-1.conf"
kill -HUP "$SPOKE_PID_spoke_1"
check "the hub's stream on spoke-1 ends once its key is removed (the hub sees it)" \
	wait_for 3 grep -q "events of spoke spoke-1 stopped (7: the hub key" "$WORK/hub.log"
"$TESSERA_FORGE" -a "$SPOKE1" -k "$WORK/other.key" -s spoke-1 -p "$WORK/spoke-1.key.pub" \
	-A true >/dev/null 2>&1
check "a stream of the key still trusted goes on: it gets the next event" \
	wait_for 10 grep -q "^event " "$WORK/forge2.out"
check "... and is still open" kill -0 "$FORGE2_PID"
id=$(spawn "$BOB" --spoke spoke-2)
check "the watch goes on for the other spoke" \
	wait_for 10 seen "$WORK/bob.out" "$id" agent.completed
echo "trust-hub $(pubkey hub)" >>"$WORK/spoke-1.conf"
kill -HUP "$SPOKE_PID_spoke_1"

# --- One token holds at most PER_TOKEN watches; other tokens get theirs.
# grpcurl_watch TOKEN: a WatchEvents of 2 s; its output and error, verbose.
grpcurl_watch() {
	grpcurl -plaintext -v -max-time 2 -H "authorization: Bearer $1" -d '{}' \
		"$HUB_ADDR" tessera.v1.Hub/WatchEvents 2>&1
}
# watch_accepted TOKEN: a WatchEvents with that token subscribes.
watch_accepted() {
	grpcurl_watch "$1" | grep -q tessera-cursor
}
pids=()
for i in $(seq 2 "$PER_TOKEN"); do # bob's first is still open
	start_watch "bob$i" "$BOB"
	pids+=("$WATCH_PID")
done
out=$(grpcurl_watch "$BOB")
check "watch $((PER_TOKEN + 1)) of one token: ResourceExhausted" \
	grep -q "Code: ResourceExhausted" <<<"$out"
check "... saying the token has its most" grep -q "this token has $PER_TOKEN watches" <<<"$out"
check "another token still gets a watch" watch_accepted "$CAROL"
kill -TERM "${pids[0]}"
wait "${pids[0]}" 2>/dev/null
# The hub frees the slot once it has heard of the hang-up.
check "once one of its watches ends, the token gets one again" wait_for 10 watch_accepted "$BOB"
for p in "${pids[@]:1}"; do kill -TERM "$p" 2>/dev/null; done
check "the first watch of the token is still open" kill -0 "$BOB_PID"

# --- Health.Watch: one host holds at most PER_PEER of the server's watches.
PER_PEER=$(sed -n 's/^#define HEALTH_WATCHERS_PER_PEER_MAX \([0-9]*\).*/\1/p' \
	"$(dirname "$0")/../../common/health.h")
[ -n "$PER_PEER" ] || bail "no HEALTH_WATCHERS_PER_PEER_MAX in common/health.h"
# health_watch SECONDS: a Health/Watch of the hub from this host.
health_watch() {
	grpcurl -plaintext -max-time "$1" -d '{}' "$HUB_ADDR" grpc.health.v1.Health/Watch 2>&1
}
health_watch_ok() {
	health_watch 2 | grep -q SERVING
}
hpids=()
for i in $(seq 1 "$PER_PEER"); do
	grpcurl -plaintext -max-time 30 -d '{}' "$HUB_ADDR" grpc.health.v1.Health/Watch \
		>"$WORK/health$i.out" 2>&1 &
	track $! -
	hpids+=("$!")
done
# all_health_serving: every one of those watches has its first answer, so the
# hub counts all of them before the next one asks.
all_health_serving() {
	local i
	for i in $(seq 1 "$PER_PEER"); do
		grep -q SERVING "$WORK/health$i.out" || return 1
	done
}
wait_for 10 all_health_serving || bail "the health watches did not start"
out=$(health_watch 5)
check "health watch $((PER_PEER + 1)) from one host: ResourceExhausted" \
	grep -q "Code: ResourceExhausted" <<<"$out"
check "... saying the host has its most" grep -q "has $PER_PEER health watches open" <<<"$out"
kill -TERM "${hpids[0]}"
wait "${hpids[0]}" 2>/dev/null
check "once one ends, the host gets one again" wait_for 10 health_watch_ok
for p in "${hpids[@]:1}"; do kill -TERM "$p" 2>/dev/null; done

finish
