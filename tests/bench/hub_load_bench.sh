#!/usr/bin/env bash
# Hub load benchmark: prints figures, never judges them. Starts a few Valkey
# servers, BENCH_SPOKES spokes (24) sharing them, and one hub over all of
# them; spawns BENCH_AGENTS agents per spoke; then drives the hub with ghz:
#   1. GetAgent over every spoke's agents (BENCH_CONC concurrent calls,
#      BENCH_CALLS calls) alongside a stream of ListSpokes;
#   2. the same with the last spoke stopped (SIGSTOP): GetAgent over the
#      other spokes' agents, plus a separate stream of GetAgent to the
#      stopped spoke's agents with a short deadline (BENCH_SLOW_DEADLINE),
#      started first so that about 20 of its calls are pending at the hub
#      for the whole of the other load.
# It prints calls/s, p50/p95/p99 latency and status counts of each group,
# and the hub's RSS and thread count before and after. The exit status only
# says whether the set-up worked.
. "$(dirname "$0")/../integration/lib.sh"

NSPOKES=${BENCH_SPOKES:-24}
NVALKEY=${BENCH_VALKEYS:-3}
NAGENTS=${BENCH_AGENTS:-5}
CONC=${BENCH_CONC:-200}
CALLS=${BENCH_CALLS:-4000}
SLOW_DEADLINE=${BENCH_SLOW_DEADLINE:-2s}

for tool in ghz jq; do
	command -v "$tool" >/dev/null || bail "$tool is not installed (deploy/install-go-tools.sh)"
done

# A spoke left stopped must be continued before stop_all asks it to end.
STOPPED_PID=
bench_cleanup() {
	[ -z "$STOPPED_PID" ] || kill -CONT "$STOPPED_PID" 2>/dev/null
	cleanup
}
trap bench_cleanup EXIT

say() { echo "# $*"; }

# bg_started PID: a background ghz is tracked (so that a bail-out stops it
# by its PID) until wait_tracked has waited for it.
bg_started() { track "$1" -; }

# hub_mem WHEN: the hub's resident set (now and peak) and thread count.
hub_mem() {
	awk -v when="$1" '
		/^VmRSS:/ { rss = $2 } /^VmHWM:/ { hwm = $2 } /^Threads:/ { th = $2 }
		END { printf "# hub %s: VmRSS %d KiB (peak %d KiB), %d threads\n", when, rss, hwm, th }
	' "/proc/$HUB_PID/status"
}

# report LABEL GHZ_JSON: one line of figures from a ghz JSON report.
report() {
	jq -r --arg name "$1" '
		def ms: . / 1000000 * 100 | round / 100;
		def pct(p): ([.latencyDistribution[]? | select(.percentage == p) | .latency][0] // 0) | ms;
		"# \($name): \(.count) calls in \(.total | ms / 1000 * 100 | round / 100) s, " +
		"\(.rps | floor) calls/s; latency p50 \(pct(50)) ms, p95 \(pct(95)) ms, " +
		"p99 \(pct(99)) ms, max \(.slowest | ms) ms; status " +
		([.statusCodeDistribution // {} | to_entries[] | "\(.key) \(.value)"] | join(", ")) +
		"; errors \([.statusCodeDistribution // {} | to_entries[] | select(.key != "OK") | .value] | add // 0)"
	' "$2"
}

# load NAME DATA_FILE CALL CONCURRENCY CALLS DEADLINE: ghz against the hub,
# its JSON report in $WORK/NAME.json. Latencies include failed calls.
load() {
	ghz --insecure --call "tessera.v1.Hub/$3" -D "$WORK/$2" -c "$4" -n "$5" -t "$6" \
		--connections 4 --count-errors -O json -o "$WORK/$1.json" "$HUB_ADDR" \
		2>"$WORK/$1.err"
}

say "hub-load: $NSPOKES spokes on $NVALKEY Valkey servers, $NAGENTS agents each," \
	"$CONC concurrent calls, $(nproc) CPUs"
t0=$(date +%s)
for v in $(seq 1 "$NVALKEY"); do start_valkey "vk$v"; done
keygen hub
spokes=()
for i in $(seq 1 "$NSPOKES"); do
	spokes+=("spoke-$i")
	start_spoke "spoke-$i" "vk$(((i - 1) % NVALKEY + 1))" hub
done
start_hub hub hub "${spokes[@]}"
say "daemons started: $(($(date +%s) - t0)) s"

# Every spoke connected and answering the hub's load poll.
all_polled() {
	[ "$(cli --json spokes | jq '[.spokes[] | select(.maxAgents > 0)] | length')" -eq "$NSPOKES" ]
}
wait_for 30 all_polled || bail "not every spoke answered the hub's load poll"
say "every spoke polled: $(($(date +%s) - t0)) s"

# A handful of agents per spoke, of several types, the spokes in parallel.
types=(true false cat true sleep)
spawn_on() {
	local s=$1 k t id
	for k in $(seq 1 "$NAGENTS"); do
		t=${types[$(((k - 1) % ${#types[@]}))]}
		id=$(cli --json spawn "$t" "bench $k" --spoke "$s" | jq -r .id) || return 1
		echo "$id" >>"$WORK/agents-$s"
		[ "$t" != sleep ] || echo "$id" >>"$WORK/sleepers-$s"
	done
}
jobs_pids=()
for s in "${spokes[@]}"; do
	spawn_on "$s" &
	jobs_pids+=($!)
done
for p in "${jobs_pids[@]}"; do wait "$p" || bail "spawning agents failed"; done
slow=${spokes[-1]}
cat "$WORK"/agents-* | grep -c . >"$WORK/nagents"
[ "$(cat "$WORK/nagents")" -eq $((NSPOKES * NAGENTS)) ] || bail "not every agent was spawned"
to_json() { jq -R '{agentId: .}' | jq -s .; }
cat "$WORK"/agents-* | to_json >"$WORK/all.json"
for s in "${spokes[@]}"; do [ "$s" = "$slow" ] || cat "$WORK/agents-$s"; done |
	to_json >"$WORK/others.json"
to_json <"$WORK/agents-$slow" >"$WORK/slow.json"
echo '{}' >"$WORK/empty.json"
say "set-up: $(cat "$WORK/nagents") agents spawned, $(($(date +%s) - t0)) s"
hub_mem "before load"

# 1. Every spoke up.
load warm all.json GetAgent 20 200 10s || bail "ghz warm-up failed: $(tail -n 3 "$WORK/warm.err")"
load list1 empty.json ListSpokes 20 2000 10s &
list_pid=$!
bg_started "$list_pid"
load all all.json GetAgent "$CONC" "$CALLS" 10s || bail "ghz failed: $(tail -n 3 "$WORK/all.err")"
wait_tracked "$list_pid" || bail "ghz ListSpokes failed: $(tail -n 3 "$WORK/list1.err")"
say "phase 1: all $NSPOKES spokes up"
report "GetAgent, all spokes, -c $CONC" "$WORK/all.json"
report "ListSpokes alongside, -c 20" "$WORK/list1.json"
hub_mem "after phase 1"

# 2. One spoke stopped: its calls fail within their deadline, the others'
# stay fast.
kill -STOP "$(eval echo "\$SPOKE_PID_${slow//-/_}")"
STOPPED_PID=$(eval echo "\$SPOKE_PID_${slow//-/_}")
load slow slow.json GetAgent 20 100 "$SLOW_DEADLINE" &
slow_pid=$!
bg_started "$slow_pid"
load list2 empty.json ListSpokes 20 2000 10s &
list_pid=$!
bg_started "$list_pid"
sleep 0.5
load others others.json GetAgent "$CONC" "$CALLS" 10s || bail "ghz failed: $(tail -n 3 "$WORK/others.err")"
wait_tracked "$list_pid" || bail "ghz ListSpokes failed: $(tail -n 3 "$WORK/list2.err")"
wait_tracked "$slow_pid" || bail "ghz (stopped spoke) failed: $(tail -n 3 "$WORK/slow.err")"
say "phase 2: $slow stopped (SIGSTOP)"
report "GetAgent, the other $((NSPOKES - 1)) spokes, -c $CONC" "$WORK/others.json"
report "GetAgent, stopped $slow, -c 20, deadline $SLOW_DEADLINE" "$WORK/slow.json"
report "ListSpokes alongside, -c 20" "$WORK/list2.json"
kill -CONT "$STOPPED_PID"
STOPPED_PID=
hub_mem "after load"

# The sleepers are killed through the hub before the daemons stop.
for id in $(cat "$WORK"/sleepers-* 2>/dev/null); do
	cli kill "$id" >/dev/null || say "kill $id failed"
done
say "total $(($(date +%s) - t0)) s"
finish
