#!/usr/bin/env bash
# Spokes the hub cannot command, shown as such: a spoke that does not trust
# the hub's key, and a spoke whose key the hub has wrong, are "refused" in
# `tessera spokes` with the reason, spawns go to the other spokes, and the
# hub does not count them for its health; once the config is fixed and
# reloaded (SIGHUP) they are connected again, with no reason.
. "$(dirname "$0")/lib.sh"

command -v jq >/dev/null || bail "jq is not installed"

start_valkey vk1
start_valkey vk2
start_valkey vk3
keygen hub
keygen other
keygen stale
start_spoke spoke-1 vk1 hub
start_spoke spoke-2 vk2 other
start_spoke spoke-3 vk3 hub
start_hub hub hub spoke-1 spoke-2 spoke-3

# field ID JQ: one field of that spoke in `tessera spokes --json`.
field() {
	cli --json spokes | jq -r --arg s "$1" ".spokes[] | select(.id == \$s) | $2"
}

state_is() {
	[ "$(field "$1" .state)" = "$2" ]
}

spawn_id() {
	cli --json spawn "$@" | jq -r .id
}

# A spoke that does not trust the hub's key refuses every poll.
check "a spoke without the hub's key in trust-hub is refused" wait_for 10 state_is spoke-2 refused
reason=$(field spoke-2 .reason)
check "--json gives the refusal as the reason" \
	grep -q "^PERMISSION_DENIED: spoke spoke-2 refused the command: .*untrusted key" <<<"$reason"
check "tessera spokes shows it refused in the STATE column" \
	sh -c "'$TESSERA_CLI' --hub '$HUB_ADDR' spokes | grep -Eq '^spoke-2 +[^ ]+ +refused '"
check "and the reason on a line under the table" \
	sh -c "'$TESSERA_CLI' --hub '$HUB_ADDR' spokes | grep -q '^spoke-2: PERMISSION_DENIED: '"
check "the other spokes are connected" state_is spoke-1 connected
check "... with no reason" [ -z "$(field spoke-1 .reason)$(field spoke-3 .reason)" ]
check "the hub logs the refusal" grep -q "spoke spoke-2 (.*) is refused: PERMISSION_DENIED" \
	"$WORK/hub.log"
where=""
for i in 1 2 3 4 5 6; do
	id=$(spawn_id true)
	where="$where ${id%%.*}"
done
only_1_3() {
	[ -z "$(tr ' ' '\n' <<<"$where" | grep -v -e '^$' -e '^spoke-1$' -e '^spoke-3$')" ]
}
check "spawns go to the other spokes only" only_1_3
check "... all six of them" [ "$(wc -w <<<"$where")" -eq 6 ]
err=$(cli spawn true --spoke spoke-2 2>&1)
check "a spawn that names the refused spoke fails PERMISSION_DENIED" \
	grep -q PERMISSION_DENIED <<<"$err"
check "the spoke created nothing" [ "$(valkey vk2 zcard "tessera:{spoke-2}:agents")" -eq 0 ]

# Its config fixed and reloaded: the next poll clears the refusal.
sed -i "s|^trust-hub .*|trust-hub $(pubkey hub)|" "$WORK/spoke-2.conf"
kill -HUP "$SPOKE_PID_spoke_2"
check "after SIGHUP with the hub's key, the spoke is connected again" \
	wait_for 10 state_is spoke-2 connected
check "... with an empty reason" [ "$(field spoke-2 .reason)" = "" ]
check "tessera spokes has no reason line left" \
	sh -c "! '$TESSERA_CLI' --hub '$HUB_ADDR' spokes | grep -q '^spoke-2:'"
id=$(spawn_id true --spoke spoke-2)
check "and spawns reach it" [ "${id%%.*}" = spoke-2 ]

# The hub holding a wrong key for a spoke: its replies do not verify.
sed -i "s|$(pubkey spoke-3)|$(pubkey stale)|" "$WORK/hub.conf"
kill -HUP "$HUB_PID"
check "a spoke whose key the hub has wrong is refused" wait_for 10 state_is spoke-3 refused
check "... with a reason about its key" \
	grep -q "does not verify against its key" <<<"$(field spoke-3 .reason)"
where=""
for i in 1 2 3 4; do
	id=$(spawn_id true)
	where="$where ${id%%.*}"
done
check "spawns avoid it" [ -z "$(tr ' ' '\n' <<<"$where" | grep spoke-3)" ]

# Only the refused spoke left connected: the hub is not serving, and a
# spawn fails UNAVAILABLE naming the refusal.
stop_tracked "spoke spoke-1"
stop_tracked "spoke spoke-2"
check "stopped spokes are unreachable" wait_for 15 state_is spoke-1 unreachable
check "... with the failed poll as the reason" \
	wait_for 10 sh -c "'$TESSERA_CLI' --hub '$HUB_ADDR' --json spokes |
		jq -e '.spokes[] | select(.id == \"spoke-1\") | .reason | startswith(\"UNAVAILABLE: \")'"
not_serving() {
	cli health >/dev/null
	[ $? -eq 1 ]
}
check "the hub does not count a refused spoke for its health" wait_for 15 not_serving
check "... and says NOT_SERVING" [ "$(cli health)" = NOT_SERVING ]
err=$(cli spawn true 2>&1)
check "a spawn fails UNAVAILABLE, naming the refused spoke and why" \
	grep -q "UNAVAILABLE: .*spoke spoke-3 is refused: .*does not verify" <<<"$err"

# The right key again: connected, serving.
sed -i "s|$(pubkey stale)|$(pubkey spoke-3)|" "$WORK/hub.conf"
kill -HUP "$HUB_PID"
check "after SIGHUP with its right key, the spoke is connected again" \
	wait_for 10 state_is spoke-3 connected
check "... with an empty reason" [ "$(field spoke-3 .reason)" = "" ]
check "and the hub is SERVING again" wait_for 10 quiet cli health
id=$(spawn_id true)
check "and spawns reach it" [ "${id%%.*}" = spoke-3 ]

finish
