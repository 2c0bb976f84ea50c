#!/usr/bin/env bash
# Event retention: a spoke configured "event-retention 100" keeps its
# newest 100 events. Resuming a watch from a cursor whose next events were
# trimmed off fails OUT_OF_RANGE (grpcurl, tessera watch) instead of
# silently skipping them; a cursor at the newest trimmed event or later
# resumes exactly; --from-start gives every event kept; a watcher that
# never fell behind goes on untouched. The spoke's Valkey stream is the
# reference.
. "$(dirname "$0")/lib.sh"

command -v grpcurl >/dev/null || bail "grpcurl is not installed (deploy/install-go-tools.sh)"

KEPT=100
AGENTS=45	# spawning, running, completed each: well over KEPT events
EVENTS="tessera:{spoke-1}:events"

start_valkey vk1
keygen hub
start_spoke spoke-1 vk1 hub

# The bounds are checked when the configuration is read.
cp "$WORK/spoke-1.conf" "$WORK/bad.conf"
echo "event-retention 99" >>"$WORK/bad.conf"
timeout 10 "$TESSERA_SPOKE" --config "$WORK/bad.conf" >"$WORK/bad.out" 2>&1
rc=$?
check "a spoke refuses event-retention below 100" test "$rc" -ne 0 -a "$rc" -ne 124
check "... and says what is allowed" \
	grep -q "event-retention must be a number from 100 to 100000000" "$WORK/bad.out"

kill_hard "$SPOKE_PID_spoke_1"
echo "event-retention $KEPT" >>"$WORK/spoke-1.conf"
restart_spoke spoke-1
start_hub hub hub spoke-1

# stream_positions: every position the spoke's Valkey keeps, in order.
stream_positions() {
	valkey vk1 --json XRANGE "$EVENTS" - + | jq -r '.[][0]'
}

# stream_info FIELD: one field of XINFO STREAM.
stream_info() {
	valkey vk1 XINFO STREAM "$EVENTS" | sed -n "/^$1\$/{n;p;q}"
}

# cursor_at POSITION: the watch cursor of spoke-1 at that position.
cursor_at() {
	printf 'spoke-1=%s' "$1" | basenc --base64url | tr -d '='
}

# watch_json ARGS...: tessera --json watch, bounded in time so that an
# endless resume loop fails the test instead of hanging it.
watch_json() {
	timeout 20 "$TESSERA_CLI" --hub "$HUB_ADDR" --json watch "$@"
}

lacks() {
	! grep -q "$@"
}

# The very first event's cursor, soon to be too old.
cli spawn true --wait >/dev/null || bail "the first spawn failed"
old=$(watch_json --from-start --count 1 2>/dev/null | jq -r .cursor)
first=$(stream_positions | head -n 1)
[ -n "$old" ] && [ -n "$first" ] || bail "no first event"

# A watcher from now on, which must not notice the others' trouble.
"$TESSERA_CLI" --hub "$HUB_ADDR" --json watch >"$WORK/live.out" 2>"$WORK/live.err" &
LIVE_PID=$!
track "$LIVE_PID" -
wait_for 10 grep -q watching "$WORK/live.err" || bail "the live watch did not start"

for i in $(seq 2 "$AGENTS"); do
	why=$(cli spawn true --wait 2>&1 >/dev/null) || bail "spawn $i failed: $why"
done
kept=$(stream_positions)
deleted=$(stream_info max-deleted-entry-id)
check "the stream keeps $KEPT events" [ "$(valkey vk1 XLEN "$EVENTS")" = "$KEPT" ]
check "more than that were written" [ "$(stream_info entries-added)" -gt "$KEPT" ]
check "the first event is gone" [ -z "$(valkey vk1 XRANGE "$EVENTS" "$first" "$first")" ]

# The old cursor: OUT_OF_RANGE for grpcurl, naming spoke and position.
out=$(grpcurl -plaintext -max-time 15 -d "{\"cursor\": \"$old\"}" "$HUB_ADDR" \
	tessera.v1.Hub/WatchEvents 2>&1)
check "grpcurl: a watch from a trimmed cursor ends OutOfRange" grep -q "Code: OutOfRange" <<<"$out"
check "... naming the spoke and the position" \
	grep -q "spoke spoke-1 no longer has events after position $first (retention)" <<<"$out"
check "... and delivering no event" lacks '"event"' <<<"$out"

# The same through tessera watch: an error and exit 1, no resume loop.
watch_json --cursor "$old" >"$WORK/old.out" 2>"$WORK/old.err"
rc=$?
check "tessera watch from a trimmed cursor exits 1 at once" [ "$rc" = 1 ]
check "... printing OUT_OF_RANGE" grep -q \
	"^tessera: OUT_OF_RANGE: spoke spoke-1 no longer has events after position $first" \
	"$WORK/old.err"
check "... and how to start over" grep -q -- "--from-start" "$WORK/old.err"
check "... without reconnecting" lacks reconnecting "$WORK/old.err"
check "... and without printing an event" [ ! -s "$WORK/old.out" ]

# Exactly at the boundary: the newest deleted event was seen, none is missed.
got=$(watch_json --cursor "$(cursor_at "$deleted")" --count "$KEPT" 2>/dev/null |
	jq -r .event.position)
check "a cursor at the newest trimmed event resumes with every event kept" [ "$got" = "$kept" ]
ms=${deleted%-*}
seq=${deleted#*-}
if [ "$seq" -gt 0 ]; then below=$ms-$((seq - 1)); else below=$((ms - 1))-0; fi
watch_json --cursor "$(cursor_at "$below")" >/dev/null 2>"$WORK/below.err"
check "a cursor just before it is OUT_OF_RANGE" grep -q "OUT_OF_RANGE" "$WORK/below.err"

# A recent cursor, as the live watcher got it: exactly the events after it.
at=$(sed -n 10p <<<"$kept")
recent=$(jq -r --arg p "$at" 'select(.event.position == $p) | .cursor' "$WORK/live.out")
got=$(watch_json --cursor "$recent" --count $((KEPT - 10)) 2>/dev/null | jq -r .event.position)
check "a recent cursor resumes with no gap and no duplicate" \
	[ "$got" = "$(sed -n '11,$p' <<<"$kept")" ]

# From the start: every event kept, through the CLI and grpcurl.
got=$(watch_json --from-start --count "$KEPT" 2>/dev/null | jq -r .event.position)
check "--from-start gives every event kept" [ "$got" = "$kept" ]
got=$(grpcurl -plaintext -max-time 10 -d '{"fromStart": true}' "$HUB_ADDR" \
	tessera.v1.Hub/WatchEvents 2>/dev/null | jq -r .event.position | head -n "$KEPT")
check "grpcurl: fromStart gives every event kept" [ "$got" = "$kept" ]

# The live watcher saw every event once, and still follows.
live_positions() {
	jq -r .event.position "$WORK/live.out"
}
check "the live watcher saw every event kept" [ "$(live_positions | tail -n "$KEPT")" = "$kept" ]
check "... none twice" [ -z "$(live_positions | sort | uniq -d)" ]
id=$(cli spawn true | awk '{print $1; exit}')
check "... and follows a new agent's events" wait_for 10 grep -q "$id" "$WORK/live.out"
check "... still running" kill -0 "$LIVE_PID"
check "... with no error" lacks -i "OUT_OF_RANGE\|reconnecting" "$WORK/live.err"

finish
