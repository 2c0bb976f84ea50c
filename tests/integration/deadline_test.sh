#!/usr/bin/env bash
# Deadlines and cancellation cross the hub: a caller's deadline bounds the
# relayed Spoke/Execute call, so a spoke that was frozen (SIGSTOP) past it
# never carries out the stale command once it runs again; and a watcher
# that goes away, or whose deadline passes, makes the hub end its
# StreamEvents on the spoke (each holds one Valkey connection there).
. "$(dirname "$0")/lib.sh"

for tool in grpcurl jq; do
	command -v "$tool" >/dev/null || bail "$tool is not installed"
done

AGENTS_KEY='tessera:{spoke-1}:agents'
EVENTS_KEY='tessera:{spoke-1}:events'
RAN=$WORK/ran			# every `sh` agent of this test appends a line here

start_valkey vk1
keygen hub
start_spoke spoke-1 vk1 hub
SPOKE_PID=$SPOKE_PID_spoke_1
start_hub hub hub spoke-1
# Again with debug logging, where the hub says how each relayed call ended.
hub_debug() {
	exec "$TESSERA_HUB" "$@" --log-level debug
}
kill_hard "$HUB_PID"
restart_daemon hub_debug hub hub
RELAY_MS=10000			# the hub's own relay timeout (the default)

now_ms() {
	date +%s%3N
}

# between VALUE MIN MAX: MIN <= VALUE < MAX.
between() {
	[ "$1" -ge "$2" ] && [ "$1" -lt "$3" ]
}

ran_lines() {
	if [ -f "$RAN" ]; then wc -l <"$RAN"; else echo 0; fi
}

# A task for the `sh` type: leaves a line in $RAN, so a started process
# shows even if Valkey were not told.
task() {
	echo "echo $1 >>$RAN"
}

spoke_connected() {
	[ "$(cli --json spokes | jq -r '.spokes[0].state')" = connected ]
}

check "the spoke is connected to the hub" wait_for 15 spoke_connected
id=$(cli --json spawn sh "$(task warm-up)" | jq -r .id)
check "a spawn through the hub works before the spoke is frozen" \
	wait_for 10 grep -qx warm-up "$RAN"
wait_for 10 agent_terminal "$id"
agents_before=$(valkey vk1 zcard "$AGENTS_KEY")
events_before=$(valkey vk1 xlen "$EVENTS_KEY")

# Freeze the spoke: its socket still takes the relayed calls, nothing answers.
kill -STOP "$SPOKE_PID"

# A caller with a long deadline that goes away: the hub relays its spawn
# now (with the hub's 10 s), and must cancel it when the caller is gone.
"$TESSERA_CLI" --hub "$HUB_ADDR" --timeout 60 spawn sh "$(task cancelled)" \
	>"$WORK/cancelled.out" 2>&1 &
cpid=$!
track "$cpid" -

t0=$(now_ms)
out=$(grpcurl -plaintext -max-time 2 -d "{\"type\": \"sh\", \"task\": \"$(task grpcurl)\"}" \
	"$HUB_ADDR" tessera.v1.Hub/SpawnAgent 2>&1)
t1=$(now_ms)
check "grpcurl with a 2 s deadline gets DeadlineExceeded from a frozen spoke" \
	grep -q "DeadlineExceeded" <<<"$out"
check "it ends at its own deadline ($((t1 - t0)) ms), not the hub's ${RELAY_MS} ms" \
	between $((t1 - t0)) 1900 5000

t0=$(now_ms)
out=$(cli --timeout 2 spawn sh "$(task cli)" 2>&1)
rc=$?
t1=$(now_ms)
check "the CLI with --timeout 2 fails on a frozen spoke" [ "$rc" -eq 1 ]
check "the CLI names DEADLINE_EXCEEDED" grep -q "DEADLINE_EXCEEDED" <<<"$out"
check "it ends at its own deadline ($((t1 - t0)) ms), not the hub's ${RELAY_MS} ms" \
	between $((t1 - t0)) 1900 5000

# The hub logs each relayed call's end; one that ran out of time says
# after how long. Both spawns above must have run out at the callers'
# 2 s (give or take the time to relay), not at the hub's own 10 s. (The
# callers' end cancels them at about the same moment: one may say so.)
relayed_with_callers_deadline() {
	local ms n=0
	for ms in $(sed -n 's/.*AGENT_SPAWN .* on spoke spoke-1: spoke spoke-1 did not answer within \([0-9]*\) ms$/\1/p' \
		"$WORK/hub.log"); do
		[ "$ms" -le 2000 ] || return 1
		n=$((n + 1))
	done
	[ "$n" -ge 1 ]
}
check "the hub relayed the spawns with the callers' deadline, not its own" \
	wait_for 5 relayed_with_callers_deadline

# Four seconds on, the 60 s caller's spawn has long been relayed; it dies.
check "the caller with a 60 s deadline is still waiting" kill -0 "$cpid"
{ kill -KILL "$cpid" && wait "$cpid"; } 2>/dev/null
relay_cancelled() {
	grep -q "AGENT_SPAWN .* on spoke spoke-1: cancelled before" "$WORK/hub.log"
}
check "the hub cancels its relayed spawn when the caller goes away" \
	wait_for 10 relay_cancelled

# Thaw it well inside the hub's relay timeout: a relayed call that still
# lived would be carried out now.
kill -CONT "$SPOKE_PID"
id=$(cli --json --timeout 20 spawn sh "$(task after)" | jq -r .id)
check "the thawed spoke takes new commands" [ "${id%%.*}" = spoke-1 ]
# The spoke handles its calls in order: the stale ones came first.
wait_for 10 grep -qx after "$RAN"
wait_for 10 agent_terminal "$id"
check "Valkey holds only the new agent: no stale or cancelled spawn was carried out" \
	[ "$(valkey vk1 zcard "$AGENTS_KEY")" -eq $((agents_before + 1)) ]
check "the event stream has only the new agent's three events" \
	[ "$(valkey vk1 xlen "$EVENTS_KEY")" -eq $((events_before + 3)) ]
check "no process ran a stale or cancelled spawn's task" [ "$(ran_lines)" -eq 2 ]

# Cancellation: every open event stream holds one Valkey connection on
# the spoke, so the spoke's open streams are its clients beyond the idle count.
clients() {
	# valkey-cli's own connection is one of them.
	valkey vk1 info clients | tr -d '\r' | sed -n 's/^connected_clients://p'
}
clients_are() {
	[ "$(clients)" -eq "$1" ]
}
idle=$(clients)

"$TESSERA_CLI" --hub "$HUB_ADDR" watch >"$WORK/watch.out" 2>"$WORK/watch.err" &
wpid=$!
track "$wpid" -
check "a watch through the hub subscribes" wait_for 15 grep -q '^watching' "$WORK/watch.err"
check "the spoke has one more open stream for it" wait_for 10 clients_are $((idle + 1))
{ kill -KILL "$wpid" && wait "$wpid"; } 2>/dev/null
check "a watcher that disconnects makes the hub end its spoke stream" \
	wait_for 15 clients_are "$idle"

t0=$(now_ms)
grpcurl -plaintext -max-time 3 -d '{}' "$HUB_ADDR" tessera.v1.Hub/WatchEvents \
	>"$WORK/grpcurl-watch.out" 2>&1 &
gpid=$!
track "$gpid" -
check "a grpcurl watch with a 3 s deadline opens a spoke stream" \
	wait_for 10 clients_are $((idle + 1))
wait "$gpid"
t1=$(now_ms)
check "the watch ends at its deadline ($((t1 - t0)) ms)" [ $((t1 - t0)) -lt 6000 ]
check "the watch's deadline ends its spoke stream too" wait_for 15 clients_are "$idle"

finish
