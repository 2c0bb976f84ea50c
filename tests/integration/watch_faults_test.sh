#!/usr/bin/env bash
# A watcher loses nothing and sees nothing twice across crashes: one hub,
# three spokes each with its own Valkey; a spoke and then the hub are
# killed with SIGKILL and restarted on the same port while events keep
# coming; then a second hub loses the network to its spoke for longer than
# gRPC keepalive allows, in network namespaces of the test's own. What the
# watchers printed is compared with each spoke's Valkey stream, which is
# the record: the same positions, once each, in the same order.
. "$(dirname "$0")/lib.sh"

SPOKES="spoke-1 spoke-2 spoke-3"
keygen hub
n=0
for s in $SPOKES; do
	n=$((n + 1))
	start_valkey "vk$n"
	start_spoke "$s" "vk$n" hub
done
start_hub hub hub $SPOKES

# vk_of SPOKE: the Valkey that spoke writes to.
vk_of() {
	echo "vk${1#spoke-}"
}

# stream_positions SPOKE: every position of its event stream, in order.
stream_positions() {
	valkey "$(vk_of "$1")" --json XRANGE "tessera:{$1}:events" - + | jq -r '.[][0]'
}

stream_total() {
	local s t=0
	for s in $SPOKES; do
		t=$((t + $(valkey "$(vk_of "$s")" XLEN "tessera:{$s}:events")))
	done
	echo "$t"
}

# watched_positions SPOKE FILE...: the positions of that spoke in watch
# --json output, in the order they were printed.
watched_positions() {
	local s=$1
	shift
	cat "$@" | jq -r --arg s "$s" 'select(.event.spokeId == $s) | .event.position'
}

# same_as_streams FILE...: for every spoke, the watched positions are its
# whole stream: none missing, none twice, in stream order.
same_as_streams() {
	local s
	for s in $SPOKES; do
		[ "$(watched_positions "$s" "$@")" = "$(stream_positions "$s")" ] || return 1
	done
}

total_at_least() {
	[ "$(stream_total)" -ge "$1" ]
}

lines_at_least() {
	[ -f "$2" ] && [ "$(wc -l <"$2")" -ge "$1" ]
}

spoke_events_above() {
	[ "$(valkey "$(vk_of "$1")" XLEN "tessera:{$1}:events")" -gt "$2" ]
}

# watch_bg NAME ARGS...: a tessera watch --json in the background, tracked,
# writing $WORK/NAME.out and .err; sets WATCH_PID.
watch_bg() {
	local name=$1
	shift
	"$TESSERA_CLI" --hub "$HUB_ADDR" --json watch "$@" \
		>"$WORK/$name.out" 2>"$WORK/$name.err" &
	WATCH_PID=$!
	track "$WATCH_PID" -
}

# Spawns /bin/true on every spoke in turn until told to stop (bounded);
# spawns refused while a spoke is down do not matter: the streams are the
# record either way.
spawner() {
	local i s
	for i in $(seq 1 300); do
		[ ! -e "$WORK/stop-spawning" ] || return 0
		for s in $SPOKES; do
			cli spawn true --spoke "$s" >/dev/null 2>&1
		done
	done
}

# a. A spoke crashes and comes back on the same port while agents keep
# being spawned; w1 follows everything from the start of the streams.
watch_bg w1 --from-start
w1=$WATCH_PID
wait_for 15 grep -q '^watching' "$WORK/w1.err" || bail "w1 did not subscribe"
spawner &
spawner_pid=$!
track "$spawner_pid" -
wait_for 30 spoke_events_above spoke-2 20 || bail "no events from spoke-2"
kill_hard "$SPOKE_PID_spoke_2"
before=$(valkey vk2 XLEN "tessera:{spoke-2}:events")
check "spawns continue on the other spokes while spoke-2 is down" \
	wait_for 30 spoke_events_above spoke-1 "$(valkey vk1 XLEN "tessera:{spoke-1}:events")"
restart_spoke spoke-2
check "spawns reach the restarted spoke-2" wait_for 30 spoke_events_above spoke-2 $((before + 6))
touch "$WORK/stop-spawning"
wait "$spawner_pid"
total=$(stream_total)
check "w1 prints as many events as the three streams hold ($total)" \
	wait_for 30 lines_at_least "$total" "$WORK/w1.out"
check "w1 saw every event of every stream once, in each spoke's order" \
	same_as_streams "$WORK/w1.out"
echo "# a: $(wc -l <"$WORK/w1.out") events compared ($(for s in $SPOKES; do
	echo -n "$s $(stream_positions "$s" | wc -l) "; done))"

# b. w2 stops, keeping its last cursor; the hub crashes; while it is down
# the spokes record more events (sleep agents ended from outside); w3
# resumes with the cursor on the restarted hub.
pids=()
for s in $SPOKES; do
	for i in 1 2; do
		id=$(cli --json spawn sleep --spoke "$s" | jq -r .id) || bail "spawn sleep failed"
		pids+=("$(agent_field "$id" .pid)")
	done
done
total=$(stream_total)
watch_bg w2 --from-start
wait_for 30 lines_at_least "$total" "$WORK/w2.out" || bail "w2 did not catch up"
stop_pid "$WATCH_PID"
cursor=$(tail -n 1 "$WORK/w2.out" | jq -r .cursor)
check "w2 left a cursor" [ -n "$cursor" ]
kill_hard "$HUB_PID"
# .pid leads the agent's process group (its shim, which ignores SIGTERM).
for p in "${pids[@]}"; do kill -TERM -- "-$p"; done
check "the spokes record the ended agents while the hub is down" \
	wait_for 30 total_at_least $((total + ${#pids[@]}))
restart_hub hub
total=$(stream_total)
watch_bg w3 --cursor "$cursor"
check "w3, resumed with w2's cursor, prints the rest" \
	wait_for 30 lines_at_least $((total - $(wc -l <"$WORK/w2.out"))) "$WORK/w3.out"
check "w2 then w3 saw every event once, in each spoke's order" \
	same_as_streams "$WORK/w2.out" "$WORK/w3.out"
echo "# b: $(wc -l <"$WORK/w2.out") events before the cursor, $(wc -l <"$WORK/w3.out") after"

# c. w1 was attached through the hub's crash: it resumed by itself.
check "w1 reconnected by itself after the hub crashed" \
	grep -q 'reconnecting in' "$WORK/w1.err"
check "w1 prints every event, including those made while the hub was down" \
	wait_for 30 lines_at_least "$total" "$WORK/w1.out"
check "w1 still saw every event once, in each spoke's order" \
	same_as_streams "$WORK/w1.out"
check "w1 is still watching" kill -0 "$w1"
echo "# c: $(wc -l <"$WORK/w1.out") events compared"

# d. The network between a hub and its spoke is cut and restored. Both
# sides live in namespaces of this test's own, joined by a veth pair on a
# link-local /30, so nothing outside the test sees an address or a route.
# A second hub in one holds spoke-4 in the other; w4 watches through it.
ns=tessera-test-$$-$RANDOM
nsh=$ns-h
nss=$ns-s
link=tsr$((RANDOM % 100000))
net=169.254.$((RANDOM % 256))
make_netns "$nsh"
make_netns "$nss"
ip -n "$nsh" link add "${link}h" type veth peer name "${link}s" netns "$nss" &&
	ip -n "$nsh" addr add "$net.1/30" dev "${link}h" &&
	ip -n "$nss" addr add "$net.2/30" dev "${link}s" &&
	ip -n "$nsh" link set "${link}h" up &&
	ip -n "$nss" link set "${link}s" up || bail "cannot join the namespaces"
SPOKES=spoke-4
start_valkey vk4
NETNS=$nss SPOKE_HOST=$net.2 start_spoke spoke-4 vk4 hub
NETNS=$nsh start_hub cut-hub hub spoke-4

# cli_h ARGS...: the CLI beside the second hub, in its namespace.
cli_h() {
	ip netns exec "$nsh" "$TESSERA_CLI" --hub "$HUB_ADDR" "$@"
}

ip netns exec "$nsh" "$TESSERA_CLI" --hub "$HUB_ADDR" --json watch --from-start \
	>"$WORK/w4.out" 2>"$WORK/w4.err" &
track $! -
wait_for 15 grep -q '^watching' "$WORK/w4.err" || bail "w4 did not subscribe"
pids=()
for i in 1 2 3; do
	quiet cli_h spawn true || bail "spawn through the namespaces failed"
	id=$(cli_h --json spawn sleep | jq -r .id) || bail "spawn sleep failed"
	pids+=("$(cli_h --json get "$id" | jq -r .pid)")
done
total=$(stream_total)
ip -n "$nsh" link set "${link}h" down
check "with the link down, the hub cannot reach its spoke" \
	sh -c '! ip netns exec "$1" "$2" --hub "$3" --timeout 2 spawn true 2>/dev/null' \
	- "$nsh" "$TESSERA_CLI" "$HUB_ADDR"
# .pid leads the agent's process group (its shim, which ignores SIGTERM).
for p in "${pids[@]}"; do kill -TERM -- "-$p"; done
check "the spoke records the ended agents while cut off" \
	wait_for 30 total_at_least $((total + ${#pids[@]}))
# Held until gRPC keepalive gives up on the connection, so that the stream
# must be resumed rather than merely retransmitted.
check "the hub notices the cut" \
	wait_for 90 grep -q "events of spoke spoke-4 stopped" "$WORK/cut-hub.log"
ip -n "$nsh" link set "${link}h" up
check "once the link is back, spawns reach the spoke" wait_for 60 quiet cli_h spawn true
total=$(stream_total)
check "w4 prints as many events as the stream holds ($total)" \
	wait_for 60 lines_at_least "$total" "$WORK/w4.out"
check "w4 saw every event once, in order, across the cut" same_as_streams "$WORK/w4.out"
echo "# d: $(wc -l <"$WORK/w4.out") events compared"

finish
