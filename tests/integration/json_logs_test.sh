#!/usr/bin/env bash
# log-format json on both daemons, read back with jq: every line of every
# log is one JSON object in well-formed UTF-8 with time, level, daemon and
# msg; a spoke's lines carry its id as "spoke"; every line that names an
# agent carries it as "agent" (spawns, completions, failures, a kill, a
# timeout, a refused command, an adoption after a SIGKILL, a spawn failure
# naming a path with \xff, and on the hub an event about another spoke's
# agent); and a log-format other than text or json stops either daemon at
# start, saying why.
. "$(dirname "$0")/lib.sh"

# all_json FILE: each line is one JSON object (jq), the file well-formed
# UTF-8 (jq itself would replace what is not) without a raw control byte.
all_json() {
	[ -s "$1" ] && iconv -f UTF-8 -t UTF-8 "$1" >/dev/null 2>&1 &&
		! tr -d '\n' <"$1" | LC_ALL=C grep -q '[[:cntrl:]]' &&
		jq -Rne '[inputs | try (fromjson | type == "object") catch false] | all' "$1" >/dev/null
}

# every FILE FILTER [JQ_ARGS...]: FILTER holds for every line of FILE.
every() {
	local f=$1 filter=$2
	shift 2
	jq -ne "$@" "[inputs | $filter] | all" "$f" >/dev/null
}

# some FILE FILTER [JQ_ARGS...]: FILTER holds for at least one line of FILE.
some() {
	local f=$1 filter=$2
	shift 2
	jq -ne "$@" "[inputs | $filter] | any" "$f" >/dev/null
}

FIELDS='(.time | type == "string" and test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z$"))
	and (.level | IN("debug", "info", "warn", "error")) and .daemon == $d
	and (.msg | type == "string")'

start_valkey vk1
keygen hub
SPOKE_CONF_EXTRA="log-format json" start_spoke spoke-1 vk1 hub
# spoke-2's shim is named by a path with \xff in it, and gone once it runs:
# its spawns fail with an error that names that path.
SHIM_DIR=$WORK/sh$(printf '\377')im
mkdir -p "$SHIM_DIR"
ln -s "$TESSERA_BUILD/spoke/tessera-shim" "$SHIM_DIR/tessera-shim"
SPOKE_CONF_EXTRA="log-format json
shim $SHIM_DIR/tessera-shim" start_spoke spoke-2 vk1 hub
rm "$SHIM_DIR/tessera-shim"
HUB_CONF_EXTRA="log-format json" start_hub hub hub spoke-1 spoke-2

spawn() {
	cli --json spawn "$@" | jq -r .id
}

refused() {
	! "$@" >/dev/null 2>&1
}

ids=()
done_id=$(spawn true --spoke spoke-1) && ids+=("$done_id")
failed_id=$(spawn false --spoke spoke-1) && ids+=("$failed_id")
# A task that holds an escape byte, quotes, a backslash and U+0085 (a C1
# control), and prints bytes that are not UTF-8.
odd_task=$'printf \'odd \\377 \\033[31m\\n\'; echo "\e[0m \\"q\\" \\\\ \xc2\x85" >&2; exit 3'
odd_id=$(spawn sh --spoke spoke-1 "$odd_task") && ids+=("$odd_id")
killed_id=$(spawn sleep --spoke spoke-1) && ids+=("$killed_id")
timeout_id=$(spawn sleep --spoke spoke-1 --agent-timeout 1) && ids+=("$timeout_id")
adopted_id=$(spawn sleep --spoke spoke-1) && ids+=("$adopted_id")
nospawn_id=$(spawn true --spoke spoke-2) && ids+=("$nospawn_id")
[ "${#ids[@]}" -eq 7 ] || bail "a spawn failed"
check "the kill returns" quiet cli kill "$killed_id"
check "a second kill is refused" refused cli kill "$killed_id"
for id in "$done_id" "$failed_id" "$odd_id" "$timeout_id" "$nospawn_id"; do
	wait_for 20 agent_terminal "$id" || bail "agent $id did not end"
done
check "the agent without a shim is FAILED" [ "$(agent_state "$nospawn_id")" = failed ]

# The hub meets an event spoke-1 signed about spoke-2's agent.
forged=spoke-2.$(printf '%024x' 7)
"$TESSERA_CLI" --hub "$HUB_ADDR" watch --json >"$WORK/watch.out" 2>"$WORK/watch.err" &
watch_pid=$!
track "$watch_pid" -
wait_for 15 grep -q watching "$WORK/watch.err" || bail "the watch did not subscribe"
mapfile -t fields < <(valkey vk1 --json XRANGE "tessera:{spoke-1}:events" - + COUNT 1 |
	jq -r --arg a "$forged" '.[0][1] as $f | range(0; $f | length; 2) as $i |
		$f[$i], (if $f[$i] == "agent" then $a else $f[$i + 1] end)')
valkey vk1 XADD "tessera:{spoke-1}:events" '*' "${fields[@]}" >/dev/null || bail "XADD failed"
wait_for 15 grep -q "not its own" "$WORK/hub.log" || bail "the hub did not drop the forged event"
stop_pid "$watch_pid" || true

# A spoke SIGKILLed and started again adopts its running agent.
kill_hard "$SPOKE_PID_spoke_1"
restart_spoke spoke-1
spoke1_connected() {
	cli --json spokes | jq -e '.spokes[] | select(.id == "spoke-1") | .state == "connected"' >/dev/null
}
wait_for 30 spoke1_connected || bail "the hub did not reconnect to spoke-1"
check "the adopted agent is killed" quiet cli kill "$adopted_id"
wait_for 20 agent_terminal "$adopted_id" || bail "the adopted agent did not end"

stop_tracked "hub hub"
stop_tracked "spoke spoke-1"
stop_tracked "spoke spoke-2"

ids_json=$(printf '%s\n' "${ids[@]}" | jq -R . | jq -sc .)
for log in spoke-1 spoke-2 hub; do
	check "$log: every line is one JSON object" all_json "$WORK/$log.log"
done
for s in spoke-1 spoke-2; do
	check "$s: every line has time, level, daemon and msg" \
		every "$WORK/$s.log" "$FIELDS" --arg d tessera-spoke
	check "$s: every line carries the spoke's id" every "$WORK/$s.log" '.spoke == $s' --arg s "$s"
done
check "hub: every line has time, level, daemon and msg" \
	every "$WORK/hub.log" "$FIELDS" --arg d tessera-hub
check "hub: no line claims a spoke of its own" every "$WORK/hub.log" 'has("spoke") | not'
check "spoke lines name only agents spawned" \
	every <(cat "$WORK/spoke-1.log" "$WORK/spoke-2.log") \
	'(has("agent") | not) or (.agent | IN($ids[]))' --argjson ids "$ids_json"
check "every agent spawned is named by some line" \
	quiet jq -se --argjson ids "$ids_json" '[.[].agent] as $named | $ids | all(IN($named[]))' \
	"$WORK/spoke-1.log" "$WORK/spoke-2.log"
check "every spoke line that mentions an agent carries it" \
	every <(cat "$WORK/spoke-1.log" "$WORK/spoke-2.log") \
	'. as $l | all($ids[]; . as $id | ($l.msg | contains($id) | not) or $l.agent == $id)' \
	--argjson ids "$ids_json"
check "a line about an agent has the message alone" \
	some "$WORK/spoke-1.log" '.agent == $a and .msg == "kill requested"' --arg a "$killed_id"
check "its end is logged" some "$WORK/spoke-1.log" \
	'.agent == $a and .msg == "agent \($a) completed (exited with code 0)"' --arg a "$done_id"
check "the odd agent's end too" some "$WORK/spoke-1.log" \
	'.agent == $a and (.msg | endswith(" failed (exited with code 3)"))' --arg a "$odd_id"
check "the timeout" some "$WORK/spoke-1.log" \
	'.agent == $a and .msg == "timed out after 1000 ms"' --arg a "$timeout_id"
check "the refused second kill, tagged with its agent" some "$WORK/spoke-1.log" \
	'.agent == $a and (.msg | test("^AGENT_KILL .*is already killed$"))' --arg a "$killed_id"
check "the adoption after a SIGKILL" some "$WORK/spoke-1.log" \
	'.agent == $a and (.msg | startswith("adopted again, pid "))' --arg a "$adopted_id"
check "the spawn failure, its path's \\xff as U+FFFD" some "$WORK/spoke-2.log" \
	'.agent == $a and .level == "warn" and (.msg | startswith("spawn failed: ") and contains("sh\ufffdim"))' \
	--arg a "$nospawn_id"
check "hub: the dropped event names the other spoke's agent" some "$WORK/hub.log" \
	'.agent == $a and .level == "error" and (.msg | contains("not its own"))' --arg a "$forged"

# A log-format other than text or json stops the daemon, naming the line.
out=$(timeout 20 "$TESSERA_SPOKE" --config "$WORK/spoke-1.conf" --set 'log-format yaml' 2>&1)
rc=$?
check "a spoke with log-format yaml exits 1" [ "$rc" -eq 1 ]
check "... saying why, in text" grep -q ' error tessera-spoke: --set:1: log-format must be text or json, not "yaml"$' <<<"$out"
sed 's/^log-format json$/log-format yaml/' "$WORK/hub.conf" >"$WORK/hub-bad.conf"
out=$(timeout 20 "$TESSERA_HUB" --config "$WORK/hub-bad.conf" 2>&1)
rc=$?
check "a hub with log-format yaml exits 1" [ "$rc" -eq 1 ]
check "... naming file and line" \
	grep -qF "$WORK/hub-bad.conf:$(grep -n '^log-format' "$WORK/hub-bad.conf" | cut -d: -f1): log-format must be text or json, not \"yaml\"" <<<"$out"
out=$(timeout 20 "$TESSERA_HUB" --log-format json --config "$WORK/hub-bad.conf" 2>&1)
check "with --log-format json the refusal is a JSON line" \
	quiet jq -e 'select(.level == "error" and .daemon == "tessera-hub" and
		(.msg | endswith("log-format must be text or json, not \"yaml\"")))' <<<"$out"
out=$(timeout 20 "$TESSERA_HUB" --log-format yaml --config "$WORK/hub.conf" 2>&1)
rc=$?
check "--log-format yaml is a usage error" [ "$rc" -eq 2 ]
check "... showing the usage" grep -q -- '--log-format text|json' <<<"$out"

# --log-format beats the config line: this hub logs text.
port=$(free_port)
sed "s/^listen .*/listen 127.0.0.1:$port/" "$WORK/hub.conf" >"$WORK/texthub.conf"
"$TESSERA_HUB" --config "$WORK/texthub.conf" --log-format text >"$WORK/texthub.log" 2>&1 &
track $! "hub texthub"
wait_for 15 grep -q "listening on" "$WORK/texthub.log" || bail "hub texthub did not start"
check "--log-format text beats log-format json" \
	grep -qE '^[0-9T:.-]+Z info tessera-hub: listening on 127.0.0.1:'"$port"' ' "$WORK/texthub.log"
check "(all_json refuses its text log)" refused all_json "$WORK/texthub.log"

finish
