#!/usr/bin/env bash
# Prometheus metrics (metrics-listen) of a spoke and a hub, scraped with
# curl during a run and checked against what happened: N agents that
# complete and one killed give exactly those spawns, exits, kills,
# histogram counts, relayed commands and API calls; events streamed to a
# watcher and delivered to it; the spoke's running gauge, and the hub's
# view of the spoke; process_* on both; the text is the Prometheus format
# throughout. /metrics is the only path (404), GET and HEAD the only
# methods (405). Scrapes in a loop and idle connections beyond the
# server's limit, on both daemons, leave gRPC calls answering. Without
# the line nothing more listens; a malformed address, one without a port
# and one already taken stop either daemon at start, naming it.
. "$(dirname "$0")/lib.sh"

for tool in curl jq python3 ss; do
	command -v "$tool" >/dev/null || bail "$tool is not installed"
done

N=5
LOAD_SECONDS=8
CALL_MS_MAX=5000 # a gRPC call while the metrics ports are under load (loopback: ms)

start_valkey vk1
keygen hub
SPOKE_M=$(free_port)
HUB_M=$(free_port)
SPOKE_CONF_EXTRA="metrics-listen 127.0.0.1:$SPOKE_M" start_spoke spoke-1 vk1 hub
start_spoke spoke-2 vk1 hub # no metrics-listen line
HUB_CONF_EXTRA="metrics-listen $HUB_M" start_hub hub hub spoke-1 spoke-2

# scrape PORT: the exposition of the daemon whose metrics listen on PORT.
scrape() {
	curl -fsS --max-time 5 "http://127.0.0.1:$1/metrics"
}

# value PORT SAMPLE: the value of one sample (name and labels, as the text
# has them), or nothing if it has none.
value() {
	scrape "$1" | awk -v s="$2" '$1 == s { print $2 }'
}

# is PORT SAMPLE WANT: the sample's value is WANT.
is() {
	[ "$(value "$1" "$2")" = "$3" ]
}

# check_is PORT SAMPLE WANT: one TAP line for it, with what was there if not.
check_is() {
	local got
	got=$(value "$1" "$2")
	if [ "$got" = "$3" ]; then ok "$2 is $3"; else not_ok "$2 is $3 (got '$got')"; fi
}

# well_formed PORT: every line is a HELP or TYPE comment, or a sample of a
# family declared before it with a number; each family is declared once.
well_formed() {
	scrape "$1" | python3 -c '
import re, sys
name = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
label = r"[a-zA-Z_][a-zA-Z0-9_]*=\"(?:[^\"\\\\\n]|\\\\[\\\\\"n])*\""
number = r"-?[0-9]+(?:\.[0-9]+)?(?:e[+-]?[0-9]+)?|[+-]Inf|NaN"
sample = re.compile(r"^(%s)(\{%s(?:,%s)*\})? (%s)$" % (name, label, label, number))
types, helps = {}, set()
for line in sys.stdin.read().splitlines():
    m = re.match(r"^# (HELP|TYPE) (%s) (.*)$" % name, line)
    if m:
        kind, fam, rest = m.groups()
        if kind == "TYPE":
            assert fam not in types and rest in ("counter", "gauge", "histogram"), line
            types[fam] = rest
        else:
            assert fam not in helps, line
            helps.add(fam)
        continue
    m = sample.match(line)
    assert m, "not a sample: " + line
    fam = m.group(1)
    if fam not in types:
        fam = re.sub("_(bucket|sum|count)$", "", fam)
        assert types.get(fam) == "histogram", line
assert types and set(types) == helps
'
}

check "the spoke serves its metrics" wait_for 10 scrape "$SPOKE_M"
check "the hub serves its metrics" wait_for 10 scrape "$HUB_M"
check "the spoke's exposition is the Prometheus text format" well_formed "$SPOKE_M"
check "the hub's exposition is the Prometheus text format" well_formed "$HUB_M"
check "the spoke logs where its metrics are" \
	grep -q "metrics at http://127.0.0.1:$SPOKE_M/metrics" "$WORK/spoke-1.log"

spoke_connected() {
	[ "$(cli --json spokes | jq -r '[.spokes[] | select(.state == "connected")] | length')" = 2 ]
}
wait_for 15 spoke_connected || bail "the spokes did not connect"

# A watcher from the start: every event from here on is streamed to it.
"$TESSERA_CLI" --hub "$HUB_ADDR" watch --json >"$WORK/watch.out" 2>"$WORK/watch.err" &
WATCH_PID=$!
track "$WATCH_PID" -
wait_for 10 grep -q watching "$WORK/watch.err" || bail "the watch did not start"
check_is "$SPOKE_M" tessera_spoke_event_streams 1
check "the hub counts its watcher" wait_for 5 is "$HUB_M" tessera_hub_watchers 1

ids=()
for i in $(seq 1 "$N"); do
	ids+=("$(cli --json spawn true "task $i" --spoke spoke-1 | jq -r .id)")
done
for id in "${ids[@]}"; do
	wait_for 20 agent_terminal "$id" || bail "agent $id did not end"
done
sleeper=$(cli --json spawn sleep --spoke spoke-1 | jq -r .id)
[ -n "$sleeper" ] || bail "the sleep agent did not spawn"
check_is "$SPOKE_M" 'tessera_spoke_agents{state="running",type="sleep"}' 1
check_is "$SPOKE_M" 'tessera_spoke_agents{state="running",type="true"}' 0
check_is "$SPOKE_M" 'tessera_spoke_agents{state="running",type="cat"}' 0
check "the hub's last poll shows the sleep agent running on spoke-1" \
	wait_for 5 is "$HUB_M" 'tessera_hub_spoke_running_agents{spoke="spoke-1"}' 1
check "the kill returns" quiet cli kill "$sleeper"
wait_for 20 agent_terminal "$sleeper" || bail "the sleep agent did not end"
check "the kill of an ended agent is refused" \
	bash -c "! $TESSERA_CLI --hub $HUB_ADDR kill $sleeper 2>/dev/null"

# The spoke: exactly what happened.
check_is "$SPOKE_M" 'tessera_spoke_spawns_total{type="true",result="ok"}' "$N"
check_is "$SPOKE_M" 'tessera_spoke_spawns_total{type="sleep",result="ok"}' 1
check_is "$SPOKE_M" 'tessera_spoke_agent_exits_total{type="true",state="completed"}' "$N"
check_is "$SPOKE_M" 'tessera_spoke_agent_exits_total{type="sleep",state="killed"}' 1
check_is "$SPOKE_M" 'tessera_spoke_kills_total{result="ok"}' 1
check_is "$SPOKE_M" 'tessera_spoke_kills_total{result="FAILED_PRECONDITION"}' 1
check_is "$SPOKE_M" 'tessera_spoke_agents{state="running",type="sleep"}' 0
check_is "$SPOKE_M" tessera_spoke_spawn_to_running_seconds_count $((N + 1))
check_is "$SPOKE_M" 'tessera_spoke_spawn_to_running_seconds_bucket{le="+Inf"}' $((N + 1))
check_is "$SPOKE_M" 'tessera_spoke_agent_runtime_seconds_count{type="true"}' "$N"
check_is "$SPOKE_M" 'tessera_spoke_agent_runtime_seconds_count{type="sleep"}' 1
check_is "$SPOKE_M" 'tessera_spoke_commands_total{type="AGENT_SPAWN",status="OK"}' $((N + 1))
check_is "$SPOKE_M" 'tessera_spoke_commands_total{type="AGENT_KILL",status="OK"}' 1
check_is "$SPOKE_M" tessera_spoke_valkey_up 1
# Its Valkey's records by state, read each second: once the kill shows,
# the read came after every end.
check "agents recorded: 1 killed" \
	wait_for 5 is "$SPOKE_M" 'tessera_spoke_agents_recorded{state="killed"}' 1
check_is "$SPOKE_M" 'tessera_spoke_agents_recorded{state="completed"}' "$N"
check_is "$SPOKE_M" 'tessera_spoke_agents_recorded{state="running"}' 0
check_is "$SPOKE_M" 'tessera_spoke_agents_recorded{state="failed"}' 0
check_is "$SPOKE_M" tessera_spoke_max_agents 16
evalsha=$(value "$SPOKE_M" 'tessera_spoke_valkey_command_seconds_count{command="EVALSHA"}')
check "Valkey commands are timed ($evalsha scripts run)" [ "${evalsha:-0}" -ge $((3 * (N + 1))) ]
check "no Valkey command failed" bash -c "! curl -fsS http://127.0.0.1:$SPOKE_M/metrics |
	grep -q '^tessera_spoke_valkey_errors_total{'"
# Each agent: spawning, running and its end, each streamed to the watcher.
check "every event is streamed" \
	wait_for 5 is "$SPOKE_M" tessera_spoke_events_streamed_total $((3 * (N + 1)))
check "every event is delivered to the watcher" \
	wait_for 5 is "$HUB_M" tessera_hub_events_delivered_total $((3 * (N + 1)))
check "the watcher got them" wait_for 5 bash -c "[ \$(wc -l <'$WORK/watch.out') -eq $((3 * (N + 1))) ]"

# The hub: the same commands, relayed and called.
check_is "$HUB_M" 'tessera_hub_relay_calls_total{method="AGENT_SPAWN",code="OK"}' $((N + 1))
check_is "$HUB_M" 'tessera_hub_relay_calls_total{method="AGENT_KILL",code="OK"}' 1
check_is "$HUB_M" 'tessera_hub_relay_calls_total{method="AGENT_KILL",code="FAILED_PRECONDITION"}' 1
check_is "$HUB_M" 'tessera_hub_relay_seconds_count{method="AGENT_SPAWN"}' $((N + 1))
check_is "$HUB_M" 'tessera_hub_api_calls_total{method="SpawnAgent",code="OK"}' $((N + 1))
check_is "$HUB_M" 'tessera_hub_api_calls_total{method="KillAgent",code="OK"}' 1
check_is "$HUB_M" 'tessera_hub_api_calls_total{method="KillAgent",code="FAILED_PRECONDITION"}' 1
check_is "$HUB_M" 'tessera_hub_spoke_up{spoke="spoke-1"}' 1
check_is "$HUB_M" 'tessera_hub_spoke_up{spoke="spoke-2"}' 1
check "the hub polls spoke-1 (last poll within 10 s)" python3 -c "
import sys, time
t = float(sys.argv[1] or 0)
sys.exit(0 if abs(time.time() - t) < 10 else 1)" \
	"$(value "$HUB_M" 'tessera_hub_spoke_last_poll_timestamp_seconds{spoke="spoke-1"}')"
polls=$(value "$HUB_M" 'tessera_hub_relay_calls_total{method="SPOKE_INFO",code="OK"}')
check "the hub counts its status polls ($polls)" [ "${polls:-0}" -ge 2 ]
# No user call is in flight now; a status poll of each spoke may be.
inflight=$(value "$HUB_M" tessera_hub_relays_in_flight)
check "tessera_hub_relays_in_flight counts at most the two polls ($inflight)" \
	[ -n "$inflight" ] && [ "$inflight" -le 2 ]

kill_hard "$WATCH_PID"
check "the hub no longer counts the watcher" wait_for 5 is "$HUB_M" tessera_hub_watchers 0
check "the spoke's stream to it ends" wait_for 5 is "$SPOKE_M" tessera_spoke_event_streams 0

# process_* on both: present, and true of this process.
for port in "$SPOKE_M" "$HUB_M"; do
	for m in process_resident_memory_bytes process_cpu_seconds_total process_open_fds \
		process_max_fds process_start_time_seconds process_virtual_memory_bytes; do
		v=$(value "$port" "$m")
		check "$m on :$port is a number above 0 ($v)" python3 -c \
			'import sys; sys.exit(0 if float(sys.argv[1]) > 0 else 1)' "${v:-0}"
	done
done
# Those of the spoke's process, not of curl's: within a few of what /proc shows.
fds=$(value "$SPOKE_M" process_open_fds)
proc_fds=$(ls "/proc/$SPOKE_PID_spoke_1/fd" | wc -l)
check "the spoke's open fds are its own ($fds, /proc: $proc_fds)" \
	[ $((fds - proc_fds)) -le 3 -a $((proc_fds - fds)) -le 3 ]

# HTTP: one path, two methods.
code() {
	curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$@"
}
check "GET /other is 404" [ "$(code "http://127.0.0.1:$HUB_M/other")" = 404 ]
check "GET / is 404" [ "$(code "http://127.0.0.1:$SPOKE_M/")" = 404 ]
check "POST /metrics is 405" [ "$(code -X POST -d x "http://127.0.0.1:$HUB_M/metrics")" = 405 ]
check "DELETE /metrics is 405" [ "$(code -X DELETE "http://127.0.0.1:$SPOKE_M/metrics")" = 405 ]
check "HEAD /metrics is 200" [ "$(code -I "http://127.0.0.1:$SPOKE_M/metrics")" = 200 ]
check "the content type is the text format 0.0.4" bash -c \
	"curl -sS -D - -o /dev/null http://127.0.0.1:$HUB_M/metrics | tr -d '\r' |
	grep -qix 'content-type: text/plain; version=0.0.4; charset=utf-8'"

# Under load: scrapes in a loop and more idle connections than the server
# takes, on both metrics ports, while gRPC calls to both daemons are timed.
# (Scrapes themselves wait meanwhile: the idle ones hold every connection
# the server takes until its timeout closes them.)
hammer() {
	local end=$((SECONDS + LOAD_SECONDS))
	while [ "$SECONDS" -lt "$end" ]; do
		curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$1/metrics"
	done
}
hold_open() {
	python3 - "$1" "$LOAD_SECONDS" <<'EOF'
import socket, sys, time
port, seconds = int(sys.argv[1]), float(sys.argv[2])
held = []
for _ in range(48):
    s = socket.socket()
    s.settimeout(2)
    try:
        s.connect(("127.0.0.1", port))
        s.send(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")  # and never the end of it
        held.append(s)
    except OSError:
        s.close()
time.sleep(seconds)
EOF
}
LOAD_PIDS=()
for port in "$SPOKE_M" "$HUB_M"; do
	for load in hammer hammer hold_open; do
		"$load" "$port" &
		LOAD_PIDS+=($!)
		track $! -
	done
done
sleep 1
# timed NAME COMMAND...: runs it; it must succeed within CALL_MS_MAX.
timed() {
	local name=$1 t0 ms
	shift
	t0=$(date +%s%N)
	if ! "$@" >/dev/null 2>&1; then
		not_ok "$name under metrics load: failed"
		return
	fi
	ms=$((($(date +%s%N) - t0) / 1000000))
	if [ "$ms" -le "$CALL_MS_MAX" ]; then ok "$name under metrics load ($ms ms)"; else
		not_ok "$name under metrics load took $ms ms"; fi
}
SPOKE_ADDR=127.0.0.1:$SPOKE_PORT_spoke_1
for i in 1 2 3; do
	timed "hub Health $i" cli health
	timed "GetAgent $i" cli get "${ids[0]}"
	timed "spoke Health $i" "$TESSERA_CLI" health "$SPOKE_ADDR" --service tessera.v1.Spoke
	timed "spawn $i" cli spawn true --spoke spoke-1
done
for pid in "${LOAD_PIDS[@]}"; do
	wait_tracked "$pid" || true
done
check "the spoke serves its metrics after the load" wait_for 15 scrape "$SPOKE_M"
check "the hub serves its metrics after the load" wait_for 15 scrape "$HUB_M"

# Off by default: spoke-2, without the line, listens on its gRPC port alone.
listeners() {
	ss -Hltnp | grep -c "pid=$1,"
}
check "a spoke without metrics-listen listens on one port only" [ "$(listeners "$SPOKE_PID_spoke_2")" = 1 ]
check "with metrics-listen, on two" [ "$(listeners "$SPOKE_PID_spoke_1")" = 2 ]

# refused PROGRAM CONF SET WANT: the daemon, with one more config line,
# exits non-zero at start, and its log says WANT.
refused() {
	local rc=0
	timeout 20 "$1" --config "$2" --set "$3" >"$WORK/refused.log" 2>&1 || rc=$?
	[ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] && grep -qF -- "$4" "$WORK/refused.log"
}
WANT='want IPV4:PORT, [IPV6]:PORT or PORT'
check "a spoke refuses metrics-listen without a port" \
	refused "$TESSERA_SPOKE" "$WORK/spoke-1.conf" "metrics-listen 127.0.0.1" \
	"metrics-listen \"127.0.0.1\": $WANT"
check "a spoke refuses metrics-listen without an address" \
	refused "$TESSERA_SPOKE" "$WORK/spoke-1.conf" "metrics-listen" "metrics-listen takes one address"
check "a hub refuses a malformed metrics-listen" \
	refused "$TESSERA_HUB" "$WORK/hub.conf" "metrics-listen localhost:9464" \
	"metrics-listen \"localhost:9464\": $WANT"
check "a hub refuses an IPv6 metrics-listen without brackets" \
	refused "$TESSERA_HUB" "$WORK/hub.conf" "metrics-listen ::1:9464" "metrics-listen \"::1:9464\""
check "a hub refuses a metrics-listen address already taken, naming it" \
	refused "$TESSERA_HUB" "$WORK/hub.conf" "metrics-listen 127.0.0.1:$SPOKE_M" \
	"metrics-listen 127.0.0.1:$SPOKE_M: cannot listen there: Address already in use"
check "a spoke refuses a metrics-listen address already taken, naming it" \
	refused "$TESSERA_SPOKE" "$WORK/spoke-2.conf" "metrics-listen $HUB_M" \
	"metrics-listen $HUB_M: cannot listen there: Address already in use"

finish
