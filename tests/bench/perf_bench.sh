#!/usr/bin/env bash
# Perf benchmark: each figure of Tessera beside a floor measured
# in the same run on the same machine, and their ratio. It prints figures,
# never judges them; the exit status only says whether the set-up worked.
#
# Set-up: the build folder it runs from (TESSERA_BUILD), one Valkey started
# with deploy/valkey.conf (append-only, appendfsync always), one spoke on
# it, one hub with token auth, all plaintext on loopback.
#
# Figures (sample sizes from the environment):
#   CLI wall time p50 of `tessera spokes` and `tessera get ID`, by hyperfine
#     (no shell; PERF_CLI_ROUNDS (4) rounds of every command, each
#     PERF_CLI_RUNS (50) runs after PERF_CLI_WARMUP (5), so that a slow
#     moment of the VM does not fall on one command alone; the median of
#     all its runs); floors: /bin/true,
#     `tessera --version` and `tessera health` (the CLI's start, and its
#     start, connection and one call), and grpc-floor (grpc_floor.c, the
#     third argument): the same call from a bare gRPC core client linked
#     as the CLI is
#   kill latency as a watcher sees it (perf_client.py): SpawnAgent(sleep),
#     agent.running on the watch, KillAgent right away or after
#     PERF_KILL_PAUSE_MS (200), until agent.killed arrives; p50 and p90 of
#     PERF_KILLS (50) each; floor: posix_spawn+waitpid of /bin/true
#   GetAgent p50, sequential (PERF_GETS 500); floor: the hub's
#     grpc.health.v1.Health/Check from the same client, the two in turns
#     of 50 calls
#   SpawnAgent(true) p50, sequential (PERF_SPAWNS 200); floor:
#     posix_spawn+waitpid. Twice: back to back, where each call meets the
#     last agent's start, end and events on the same cores; and each call
#     made once the last agent's end reached the watch, as posix_spawn+wait
#     meets no earlier child. Then PERF_SPACED (50) calls, each
#     PERF_SPACE_MS (100) after the last agent ended, as a person or a
#     scheduler spawns; floor: PERF_SPACED posix_spawn+waitpid as far apart
#   short agents end to end: PERF_SHORT (1000) `true` agents, PERF_IN_FLIGHT
#     (16) at a time, each until its terminal event; rate, and the CPU of
#     hub, spoke, Valkey and the whole machine per agent; floor: spawn-floor
#     with as many in flight (its rate, and its own and its children's CPU)
#   PERF_SLEEPS (1000) `sleep` agents spawned PERF_IN_FLIGHT at a time, then
#     all killed (each until agent.killed); both rates; floor as above
#   live agents: PERF_LIVE (10000; 0 skips it) `idle` agents (/bin/sleep
#     3600) spawned PERF_IN_FLIGHT at a time, all running at once on the one
#     spoke, then all killed likewise; both rates (floor as above), and what
#     they cost: spoke, hub (VmRSS) and Valkey (used_memory) before and with
#     all live, per live agent; the mean PSS (smaps_rollup) of the spoke's
#     tessera-shim children and of the agents below them. Goals are printed
#     beside them, not judged. The spoke gets max-agents of at least
#     PERF_LIVE, and the file descriptors and processes that needs (see
#     below), or PERF_LIVE is capped, with a note.
# The floors come from spawn-floor (spawn_floor.c, the first argument):
# PERF_FLOOR_SEQ (2000) sequential spawns, PERF_FLOOR_PAR (5000) in flight.
# Two more make the floors of a relayed call: sign-floor (sign_floor.c, the
# second argument), one Ed25519 signature and its check, PERF_SIGNS (2000)
# times; and valkey-benchmark's SET, one client, PERF_WRITES (2000) times,
# against the run's Valkey (appendfsync always): one durable write. Every
# relayed call crosses two gRPC hops (each at least a Health/Check) and
# two signatures (the command's, the reply's), each made and checked;
# a spawn adds one durable write (the agent, RUNNING with its process, and
# the command's nonce) and a process creation. Those sums are printed
# beside GetAgent and SpawnAgent.
. "$(dirname "$0")/../integration/lib.sh"

usage="usage: perf_bench.sh SPAWN_FLOOR_PROGRAM SIGN_FLOOR_PROGRAM GRPC_FLOOR_PROGRAM"
SPAWN_FLOOR=${1:?$usage}
SIGN_FLOOR=${2:?$usage}
GRPC_FLOOR=${3:?$usage}
SRC=$(cd "$(dirname "$0")/../.." && pwd)
CLI_WARMUP=${PERF_CLI_WARMUP:-5}
CLI_RUNS=${PERF_CLI_RUNS:-50}
CLI_ROUNDS=${PERF_CLI_ROUNDS:-4}
KILLS=${PERF_KILLS:-50}
KILL_PAUSE_MS=${PERF_KILL_PAUSE_MS:-200}
GETS=${PERF_GETS:-500}
SPAWNS=${PERF_SPAWNS:-200}
SPACED=${PERF_SPACED:-50}
SPACE_MS=${PERF_SPACE_MS:-100}
SHORT=${PERF_SHORT:-1000}
SLEEPS=${PERF_SLEEPS:-1000}
IN_FLIGHT=${PERF_IN_FLIGHT:-16}
FLOOR_SEQ=${PERF_FLOOR_SEQ:-2000}
FLOOR_PAR=${PERF_FLOOR_PAR:-5000}
SIGNS=${PERF_SIGNS:-2000}
WRITES=${PERF_WRITES:-2000}
LIVE=${PERF_LIVE:-10000}

say() { echo "# $*"; }

case $CLI_ROUNDS in
"" | *[!0-9]* | 0) bail "PERF_CLI_ROUNDS must be a whole number above 0" ;;
esac

for tool in hyperfine jq valkey-server valkey-benchmark; do
	command -v "$tool" >/dev/null || bail "$tool is not installed (deploy/install-deps.sh)"
done
# The whole run's own processes are tracked (a bail-out stops them by
# PID) until wait_tracked has waited for them.

# kv FILE KEY: a value from a line of key=value pairs.
kv() {
	tr ' ' '\n' <"$1" | sed -n "s/^$2=//p"
}

t_start=$(date +%s)
say "perf: $(nproc) CPUs, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)," \
	"kernel $(uname -r)"
say "commit $(git -C "$SRC" describe --always --dirty --abbrev=12 2>/dev/null || echo unknown)," \
	"build $TESSERA_BUILD ($(sed -n 's/^buildtype = //p' "$TESSERA_BUILD/meson-private/cmd_line.txt" 2>/dev/null || echo '?'))"

python_grpc_stubs
STUBS=$PY_STUBS

# Valkey with the deployment's persistence settings (deploy/valkey.conf),
# listening where lib.sh's helpers look for it.
mkdir -p "$WORK/vk"
valkey-server "$SRC/deploy/valkey.conf" --port 0 --unixsocket "$WORK/vk/valkey.sock" \
	--unixsocketperm 700 --dir "$WORK/vk" --daemonize no --logfile "$WORK/vk.log" &
VALKEY_PID=$!
track "$VALKEY_PID" "valkey vk"
wait_for 10 valkey vk ping || bail "valkey did not start"
say "valkey $(valkey-server --version | sed -n 's/.*v=\([^ ]*\).*/\1/p'):" \
	"$(valkey vk config get appendonly | paste -sd ' ')," \
	"$(valkey vk config get appendfsync | paste -sd ' ')"

keygen hub
# The hub counts every spawn it places against the spoke's last polled load
# (every 2 s), ended or not, so short agents need room too; and the live
# stage needs PERF_LIVE at once.
max_agents=${PERF_MAX_AGENTS:-4096}
live_notes=()
if [ "$LIVE" -gt 16384 ]; then # SUPERVISOR_AGENTS_MAX (spoke/supervisor.h)
	live_notes+=("PERF_LIVE $LIVE capped at 16384, the most max-agents a spoke accepts")
	LIVE=16384
fi
[ "$max_agents" -ge "$LIVE" ] || max_agents=$LIVE
# The spoke holds 1 descriptor per agent (SUPERVISOR_FDS_PER_AGENT) beyond
# 1024 of its own (SPOKE_FDS_OWN), and raises its soft RLIMIT_NOFILE to the
# hard one (refusing to start short of it).
# Raising the hard limit needs CAP_SYS_RESOURCE (root may lack it in a
# container); the soft one is left as it is, since agents start with the
# soft limit the spoke had (as under systemd's 1024).
nofile_need=$((max_agents + 1024))
nofile_was=$(ulimit -Hn)
if [ "$nofile_was" != unlimited ] && [ "$nofile_was" -lt "$nofile_need" ]; then
	want=65536
	[ "$want" -ge "$nofile_need" ] || want=$nofile_need
	ulimit -Hn "$want" 2>/dev/null || true
fi
nofile=$(ulimit -Hn)
if [ "$nofile" != unlimited ] && [ "$nofile" -lt "$nofile_need" ]; then
	cap=$((nofile - 1024))
	[ "$cap" -ge 1 ] || bail "RLIMIT_NOFILE hard limit $nofile leaves the spoke no agents"
	caps=$(sed -n 's/^CapEff:[[:space:]]*//p' /proc/self/status)
	if [ -n "$caps" ] && (((0x$caps >> 24) & 1)); then why="raising it failed"
	elif [ "$(id -u)" -eq 0 ]; then why="root, but without CAP_SYS_RESOURCE, cannot raise it"
	else why="not root, cannot raise it"; fi
	capped="max-agents $max_agents"
	[ "$LIVE" -le "$cap" ] || capped="$capped and PERF_LIVE $LIVE"
	live_notes+=("RLIMIT_NOFILE hard limit $nofile ($why) holds $cap agents at 1 descriptor each
		beyond the spoke's 1024: $capped capped at that")
	[ "$max_agents" -le "$cap" ] || max_agents=$cap
	[ "$LIVE" -le "$cap" ] || LIVE=$cap
fi
# Each live agent is two processes (its shim and itself), beside the tasks
# already there (a margin of 2048 for the daemons' and the client's threads).
pid_max=$(cat /proc/sys/kernel/pid_max)
threads_max=$(cat /proc/sys/kernel/threads-max)
tasks=$(ls -d /proc/[0-9]*/task/[0-9]* 2>/dev/null | wc -l)
pids_cg=$(sed -n 's/^[0-9]*:pids:\(.*\)/\1/p; s/^0::\(.*\)/\1/p' /proc/self/cgroup | head -n 1)
pids_max=none
for f in "/sys/fs/cgroup/pids$pids_cg/pids.max" "/sys/fs/cgroup$pids_cg/pids.max"; do
	if [ -r "$f" ]; then
		pids_max=$(cat "$f")
		break
	fi
done
room=$pid_max
[ "$threads_max" -ge "$room" ] || room=$threads_max
[ "$pids_max" = none ] || [ "$pids_max" = max ] || [ "$pids_max" -ge "$room" ] || room=$pids_max
if [ "$(id -u)" -ne 0 ] && [ "$(ulimit -u)" != unlimited ] && [ "$(ulimit -u)" -lt "$room" ]; then
	room=$(ulimit -u)
fi
room=$(((room - tasks - 2048) / 2))
if [ "$LIVE" -gt "$room" ]; then
	live_notes+=("pid_max $pid_max, threads-max $threads_max, cgroup pids.max $pids_max and
		$tasks tasks running leave room for $room agents: PERF_LIVE $LIVE capped at that")
	LIVE=$((room > 0 ? room : 0))
fi
say "limits: RLIMIT_NOFILE hard $nofile_was -> $nofile (max-agents $max_agents needs" \
	"$((max_agents + 1024))), soft $(ulimit -Sn); pid_max $pid_max, threads-max $threads_max, cgroup" \
	"pids.max $pids_max, $tasks tasks running; MemAvailable" \
	"$(sed -n 's/^MemAvailable: *//p' /proc/meminfo)"
# The live stage's agents: lib.sh's sleep (60 s) would end before 10,000
# are up at ~100 a second.
SPOKE_CONF_EXTRA="agent idle stdin /bin/sleep 3600" \
	SPOKE_MAX_AGENTS=$max_agents start_spoke spoke-1 vk hub
SPOKE_PID=$SPOKE_PID_spoke_1
HUB_TOKENS=bench start_hub hub hub spoke-1

unset TESSERA_TOKEN_FILE TESSERA_TLS_CA TESSERA_TLS_CERT TESSERA_TLS_KEY TESSERA_TLS_NAME
: >"$WORK/cli.conf"
export TESSERA_CONFIG=$WORK/cli.conf TESSERA_HUB=$HUB_ADDR
TESSERA_TOKEN=$(token bench)
export TESSERA_TOKEN
polled() {
	[ "$(cli --json spokes | jq '.spokes[0].maxAgents // 0')" -gt 0 ]
}
wait_for 30 polled || bail "the spoke did not answer the hub's load poll"
target=$(cli --json spawn true "perf get target" | jq -r .id) || bail "spawn failed"
wait_for 10 agent_terminal "$target" || bail "agent $target did not end"
say "daemons: valkey $VALKEY_PID, spoke $SPOKE_PID (max-agents $max_agents), hub $HUB_PID;" \
	"set-up $(($(date +%s) - t_start)) s"

# 1. CLI wall time: hyperfine without a shell, /bin/true alongside, two
# floors of the CLI's own: `tessera --version` (the program's start, no
# gRPC) and `tessera health` (start, gRPC, a connection and the cheapest
# call the hub answers), and grpc-floor, that call with nothing of the CLI.
for r in $(seq 1 "$CLI_ROUNDS"); do
	hyperfine -N --warmup "$CLI_WARMUP" --runs "$CLI_RUNS" --export-json "$WORK/cli-$r.json" \
		/bin/true "$TESSERA_CLI spokes" "$TESSERA_CLI get $target" "$TESSERA_CLI --version" \
		"$TESSERA_CLI health" "$GRPC_FLOOR $HUB_ADDR" >"$WORK/hyperfine.log" 2>&1 ||
		bail "hyperfine failed: $(tail -n 5 "$WORK/hyperfine.log")"
done
# The median of one command's runs in every round.
cli_ms() {
	jq -s -r --argjson i "$1" '[.[].results[$i].times[]] | sort | .[length / 2 | floor] * 1000' \
		"$WORK"/cli-*.json
}
true_ms=$(cli_ms 0)
spokes_ms=$(cli_ms 1)
get_ms=$(cli_ms 2)
version_ms=$(cli_ms 3)
health_cli_ms=$(cli_ms 4)
grpc_floor_ms=$(cli_ms 5)
say "CLI timed: $(($(date +%s) - t_start)) s"

# The floors.
"$SPAWN_FLOOR" seq "$FLOOR_SEQ" >"$WORK/floor-seq" || bail "spawn-floor seq failed"
"$SPAWN_FLOOR" par "$FLOOR_PAR" "$IN_FLIGHT" >"$WORK/floor-par" || bail "spawn-floor par failed"
fl_p50=$(awk -v us="$(kv "$WORK/floor-seq" p50_us)" 'BEGIN { print us / 1000 }')
fl_p90=$(awk -v us="$(kv "$WORK/floor-seq" p90_us)" 'BEGIN { print us / 1000 }')
"$SPAWN_FLOOR" seq "$SPACED" "$SPACE_MS" >"$WORK/floor-spaced" || bail "spawn-floor seq (spaced) failed"
fl_spaced=$(awk -v us="$(kv "$WORK/floor-spaced" p50_us)" 'BEGIN { print us / 1000 }')
fl_rate=$(kv "$WORK/floor-par" rate_per_s)
fl_cpu=$(awk -v us="$(kv "$WORK/floor-par" cpu_us_per)" 'BEGIN { print us / 1000 }')
"$SIGN_FLOOR" "$SIGNS" >"$WORK/floor-sign" || bail "sign-floor failed"
fl_sign=$(awk -v us="$(kv "$WORK/floor-sign" p50_us)" 'BEGIN { print us / 1000 }')
# -q prints "SET: R requests per second, p50=X msec"; the keys are its own.
valkey-benchmark -s "$WORK/vk/valkey.sock" -c 1 -n "$WRITES" -t set -q \
	>"$WORK/floor-write" 2>&1 || bail "valkey-benchmark failed: $(tail -n 3 "$WORK/floor-write")"
fl_write=$(tr '\r' '\n' <"$WORK/floor-write" | sed -n 's/^SET: .*p50=\([0-9.]*\) msec.*/\1/p' | tail -n 1)
[ -n "$fl_write" ] || bail "no p50 in valkey-benchmark's output: $(tail -c 300 "$WORK/floor-write")"
# Without -r its one key is that name itself; the spoke's keys stay.
valkey vk DEL "key:__rand_int__" >/dev/null || bail "cannot delete valkey-benchmark's key"
say "floors measured: $(($(date +%s) - t_start)) s"

# 2-7. Everything else through the gRPC API.
"$PY" "$SRC/tests/bench/perf_client.py" --addr "$HUB_ADDR" --stubs "$STUBS" \
	--kills "$KILLS" --kill-pause-ms "$KILL_PAUSE_MS" --gets "$GETS" --spawns "$SPAWNS" \
	--spaced "$SPACED" --space-ms "$SPACE_MS" \
	--short "$SHORT" --sleeps "$SLEEPS" --in-flight "$IN_FLIGHT" \
	--pids "hub=$HUB_PID,spoke=$SPOKE_PID,valkey=$VALKEY_PID" \
	--live "$LIVE" --live-type idle --shim "$TESSERA_BUILD/spoke/tessera-shim" \
	--valkey-sock "$WORK/vk/valkey.sock" \
	>"$WORK/client.json" 2>"$WORK/client.err" &
client_pid=$!
track "$client_pid" -
wait_tracked "$client_pid" || bail "perf_client failed: $(tail -n 5 "$WORK/client.err")"
say "client done: $(($(date +%s) - t_start)) s"
c() { jq -r "$1" "$WORK/client.json"; }

# The table. ratio: how many times the floor's cost tessera's is (a time
# over the floor's time; the floor's rate over a rate).
row() { # LABEL UNIT TESSERA FLOOR time|rate FLOOR_LABEL
	awk -v l="$1" -v u="$2" -v t="$3" -v f="$4" -v k="$5" -v fl="$6" 'BEGIN {
		r = (k == "rate") ? f / t : t / f
		printf "# %-46s | %10.3f | %10.3f | %7.1fx | %-6s | %s\n", l, t, f, r, u, fl
	}'
}
echo "#"
printf '# %-46s | %10s | %10s | %8s | %-6s | %s\n' figure tessera floor ratio unit floor
printf '# %s\n' "$(printf '%.0s-' $(seq 1 116))"
row "CLI \`tessera spokes\` wall p50" ms "$spokes_ms" "$true_ms" time "/bin/true (hyperfine -N)"
row "CLI \`tessera get ID\` wall p50" ms "$get_ms" "$true_ms" time "/bin/true (hyperfine -N)"
row "CLI \`tessera --version\` wall p50" ms "$version_ms" "$true_ms" time "/bin/true (hyperfine -N)"
row "CLI \`tessera health\` wall p50" ms "$health_cli_ms" "$true_ms" time "/bin/true (hyperfine -N)"
row "a bare gRPC client's Health/Check wall p50" ms "$grpc_floor_ms" "$true_ms" time \
	"/bin/true (hyperfine -N)"
row "CLI \`tessera spokes\`, beside a bare client" ms "$spokes_ms" "$grpc_floor_ms" time \
	"grpc-floor: gRPC core's start, connection and call"
for v in now pause; do
	[ "$v" = now ] && what="kill at running" || what="kill ${KILL_PAUSE_MS} ms after running"
	row "$what, to agent.killed p50" ms "$(c ".kill_$v.p50_ms")" "$fl_p50" time "posix_spawn+wait p50"
	row "$what, to agent.killed p90" ms "$(c ".kill_$v.p90_ms")" "$fl_p90" time "posix_spawn+wait p90"
done
row "GetAgent p50 (sequential)" ms "$(c .get.p50_ms)" "$(c .health.p50_ms)" time "Health/Check p50"
relay_floor=$(awk -v h="$(c .health.p50_ms)" -v s="$fl_sign" 'BEGIN { print 2 * h + 2 * s }')
row "GetAgent p50, beside a relayed call's floor" ms "$(c .get.p50_ms)" "$relay_floor" time \
	"2 Health + 2 (sign+verify)"
row "SpawnAgent(true) p50 (sequential)" ms "$(c .spawn.p50_ms)" "$fl_p50" time "posix_spawn+wait p50"
spawn_floor=$(awk -v r="$relay_floor" -v w="$fl_write" -v p="$fl_p50" 'BEGIN { print r + w + p }')
row "SpawnAgent p50, beside a relayed spawn's floor" ms "$(c .spawn.p50_ms)" "$spawn_floor" time \
	"the above + a durable write + posix_spawn+wait"
row "SpawnAgent(true) p50, after the last ended" ms "$(c .spawn_alone.p50_ms)" "$fl_p50" time \
	"posix_spawn+wait p50"
row "SpawnAgent p50 alone, beside that floor" ms "$(c .spawn_alone.p50_ms)" "$spawn_floor" \
	time "the above + a durable write + posix_spawn+wait"
row "SpawnAgent(true) p50, ${SPACE_MS} ms apart" ms "$(c .spawn_spaced.p50_ms)" "$fl_spaced" time \
	"posix_spawn+wait p50, as far apart"
row "short agents, $IN_FLIGHT in flight, to end" "/s" "$(c .short.rate_per_s)" "$fl_rate" rate \
	"posix_spawn+wait, $IN_FLIGHT in flight"
for p in hub spoke valkey; do
	row "CPU per short agent: $p" ms "$(c ".short.cpu_ms_per.$p")" "$fl_cpu" time \
		"CPU per posix_spawn+wait (self+children)"
done
row "CPU per short agent: hub+spoke+valkey" ms \
	"$(c '.short.cpu_ms_per | .hub + .spoke + .valkey')" "$fl_cpu" time \
	"CPU per posix_spawn+wait (self+children)"
row "CPU per short agent: whole machine" ms "$(c .short.machine_cpu_ms_per)" "$fl_cpu" time \
	"CPU per posix_spawn+wait (self+children)"
row "sleep agents spawned, $IN_FLIGHT in flight" "/s" "$(c .sleep.spawn_rate_per_s)" "$fl_rate" rate \
	"posix_spawn+wait, $IN_FLIGHT in flight"
row "sleep agents killed, $IN_FLIGHT in flight" "/s" "$(c .sleep.kill_rate_per_s)" "$fl_rate" rate \
	"posix_spawn+wait, $IN_FLIGHT in flight"
if [ "$LIVE" -gt 0 ]; then
	row "$LIVE live agents spawned, $IN_FLIGHT in flight" "/s" "$(c .live.spawn_rate_per_s)" \
		"$fl_rate" rate "posix_spawn+wait, $IN_FLIGHT in flight"
	row "$LIVE live agents killed, $IN_FLIGHT in flight" "/s" "$(c .live.kill_rate_per_s)" \
		"$fl_rate" rate "posix_spawn+wait, $IN_FLIGHT in flight"
fi
echo "#"
# The live stage's memory: before it, with every agent live, and the
# difference per live agent; goals beside, not judged.
if [ "$LIVE" -gt 0 ]; then
	mrow() { # LABEL BEFORE WITH_LIVE PER_AGENT UNIT GOAL
		awk -v l="$1" -v b="$2" -v w="$3" -v p="$4" -v u="$5" -v g="$6" 'BEGIN {
			if (p != "-") p = sprintf("%.2f", p)
			printf "# %-40s | %12s | %12s | %10s | %-9s | %s\n", l, b, w, p, u, g
		}'
	}
	per() { # BEFORE WITH_LIVE
		awk -v b="$1" -v w="$2" -v n="$LIVE" 'BEGIN { print (w - b) / n }'
	}
	printf '# %-40s | %12s | %12s | %10s | %-9s | %s\n' \
		"live agents: $LIVE at once, one spoke" before "all live" "per agent" unit goal
	printf '# %s\n' "$(printf '%.0s-' $(seq 1 116))"
	for p in spoke hub; do
		b=$(c ".live.before.${p}_rss_kib")
		w=$(c ".live.with_live.${p}_rss_kib")
		[ "$p" = spoke ] && goal="<= 4 KiB per agent" || goal=-
		mrow "$p RSS (VmRSS), KiB" "$b" "$w" "$(per "$b" "$w")" "KiB/agent" "$goal"
	done
	b=$(c .live.before.valkey_used_memory)
	w=$(c .live.with_live.valkey_used_memory)
	mrow "Valkey used_memory, bytes" "$b" "$w" "$(per "$b" "$w")" "B/agent" -
	mrow "tessera-shim PSS, mean of $(c .live.shim.n)" - - "$(c .live.shim.pss_kib)" "KiB each" \
		"<= 256 KiB each"
	mrow "agent ($(basename "$(c .live.agent_exe)")) PSS, mean of $(c .live.agent.n)" - - \
		"$(c .live.agent.pss_kib)" "KiB each" -
	mrow "agents live at once (tessera-shim count)" - "$(c .live.shim.n)" - agents ">= 10,000 live"
	echo "#"
fi
say "samples: CLI $CLI_ROUNDS rounds of $CLI_RUNS runs (warmup $CLI_WARMUP); kills $KILLS per" \
	"variant; GetAgent and Health $GETS; SpawnAgent $SPAWNS ($SPACED spaced); short agents" \
	"$SHORT; sleep agents $SLEEPS; live agents $LIVE; floor $FLOOR_SEQ sequential, $SPACED" \
	"spaced, $FLOOR_PAR at $IN_FLIGHT in flight; sign+verify $SIGNS; durable writes $WRITES"
say "SpawnAgent has no wait field: it returns once the agent is RUNNING (docs/DESIGN.md);" \
	"kill latency runs from the KillAgent call to agent.killed on one WatchEvents stream"
say "kill p50, at running / after the pause: the KillAgent call returns in" \
	"$(c '.kill_now.call_p50_ms * 1000 | round / 1000') / $(c '.kill_pause.call_p50_ms * 1000 | round / 1000') ms;" \
	"the spoke's agent.killed time_ms is" \
	"$(c '.kill_now.recorded_p50_ms * 1000 | round / 1000') / $(c '.kill_pause.recorded_p50_ms * 1000 | round / 1000') ms" \
	"after the call was made (wall clock)"
say "GetAgent p90 $(c '.get.p90_ms * 1000 | round / 1000') ms, Health p90" \
	"$(c '.health.p90_ms * 1000 | round / 1000') ms; SpawnAgent p90" \
	"$(c '.spawn.p90_ms * 1000 | round / 1000') ms, each after the last ended" \
	"$(c '.spawn_alone.p90_ms * 1000 | round / 1000') ms, ${SPACE_MS} ms apart" \
	"$(c '.spawn_spaced.p90_ms * 1000 | round / 1000') ms"
say "the floors' parts, p50: one Ed25519 signature made and checked $fl_sign ms; one durable" \
	"write (valkey-benchmark SET) $fl_write ms"
say "short agents: $(c .short.n) in $(c '.short.seconds * 100 | round / 100') s; the client's" \
	"own CPU $(c '.short.client_cpu_ms_per * 1000 | round / 1000') ms per agent (in the machine's)"
say "machine CPU is /proc/stat busy time: anything else running on the machine counts too"
if [ "$LIVE" -gt 0 ]; then
	say "live stage: $(c '.live.stage_seconds | round') s (spawn $(c '.live.spawn_seconds | round') s," \
		"measure $(c '.live.measure_seconds * 10 | round / 10') s, kill $(c '.live.kill_seconds | round') s);" \
		"spawns retried after RESOURCE_EXHAUSTED: $(c .live.spawn_retries); max-agents $max_agents"
	say "live rates, first / last tenth: spawn $(c '.live.spawn_rate_first_tenth | round') /" \
		"$(c '.live.spawn_rate_last_tenth | round') /s, kill $(c '.live.kill_rate_first_tenth | round') /" \
		"$(c '.live.kill_rate_last_tenth | round') /s"
	for w in spawn kill; do
		say "live CPU ms per $w, hub / spoke / valkey: all" \
			"$(c ".live.${w}_cpu_ms_per | [.hub, .spoke, .valkey] | map(. * 100 | round / 100) | join(\" / \")");" \
			"first tenth" \
			"$(c ".live.${w}_cpu_ms_per_tenth.first // {} | [.hub, .spoke, .valkey] | map(. // 0 | . * 100 | round / 100) | join(\" / \")");" \
			"last tenth" \
			"$(c ".live.${w}_cpu_ms_per_tenth.last // {} | [.hub, .spoke, .valkey] | map(. // 0 | . * 100 | round / 100) | join(\" / \")")"
	done
	say "live RSS KiB mean each: tessera-shim $(c '.live.shim.rss_kib | round')," \
		"agent $(c '.live.agent.rss_kib | round') (PSS shares what they map in common)"
	say "the spoke's tables for max-agents $max_agents are allocated at its start, so they are in" \
		"its RSS before; per agent is the growth from there"
	say "after the kills: spoke RSS $(c .live.after.spoke_rss_kib) KiB, hub RSS" \
		"$(c .live.after.hub_rss_kib) KiB, Valkey used_memory $(c .live.after.valkey_used_memory) B," \
		"$(c .live.after.shims) tessera-shim left"
fi
for n in "${live_notes[@]}"; do
	say "note: $(printf '%s' "$n" | tr '\n\t' '  ' | tr -s ' ')"
done
say "total $(($(date +%s) - t_start)) s"
finish
