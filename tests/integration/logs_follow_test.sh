#!/usr/bin/env bash
# tessera logs -f (Hub/ReadAgentOutput, relayed as a signed OUTPUT_STREAM
# to the spoke): an agent printing numbered lines at 1 kHz for 3 s is
# followed with no line missing or repeated and the CLI exits 0 saying it
# completed; a hub restart mid-follow resumes at the right byte; a reader
# that falls behind a fast agent is told how many bytes it skipped, and
# what it printed plus what it skipped is exactly what the agent wrote;
# a killed agent's follow exits 1 saying so; logs without -f, -n and
# grpcurl read the same bytes; bad requests get clear errors.
. "$(dirname "$0")/lib.sh"

for tool in grpcurl jq python3 base64; do
	command -v "$tool" >/dev/null || bail "$tool is not installed"
done

start_valkey vk1
keygen hub
SPOKE_CONF_EXTRA="output-tail-bytes 65536" start_spoke spoke-1 vk1 hub
start_hub hub hub spoke-1

spawn() {
	cli --json spawn "$@" | jq -r .id
}

# The numbered lines "line 0".."line 2999", one per millisecond.
NUMBERS='exec python3 -u -c "
import time
t0 = time.monotonic()
for i in range(3000):
    print(\"line\", i)
    time.sleep(max(0, t0 + (i + 1) / 1000 - time.monotonic()))
"'
expected=$WORK/expected
for i in $(seq 0 2999); do echo "line $i"; done >"$expected"

# 1 kHz for 3 s, followed from its first byte.
id=$(spawn sh "$NUMBERS") || bail "spawn failed"
cli logs -f --since-start "$id" >"$WORK/follow.out" 2>"$WORK/follow.err"
rc=$?
check "logs -f exits 0 when the agent completes" [ "$rc" = 0 ]
check "every line, in order, none repeated" cmp -s "$WORK/follow.out" "$expected"
check "it says how the agent ended" grep -q "agent $id completed (exit 0)" "$WORK/follow.err"
check "logs without -f prints the same output" cmp -s <(cli logs "$id") "$expected"
check "-n 3 prints its last three lines" cmp -s <(cli logs -n 3 "$id") <(tail -n 3 "$expected")
check "grpcurl reads the same bytes" cmp -s \
	<(grpcurl -plaintext -d "{\"agent_id\":\"$id\",\"from_start\":true}" "$HUB_ADDR" \
		tessera.v1.Hub/ReadAgentOutput | jq -r '.data // empty' | base64 -d) "$expected"

# Lines as they happen: the first is out while the agent still sleeps.
id=$(spawn sh 'echo first; sleep 3; echo second') || bail "spawn failed"
cli logs -f "$id" >"$WORK/live.out" 2>/dev/null &
follower=$!
track $follower "logs -f of a sleeping agent"
check "a line is printed as it is written, while the agent runs" \
	wait_for 2 grep -q first "$WORK/live.out"
check "... and before the next one" [ "$(agent_state "$id")" = running ] && ! grep -q second "$WORK/live.out"
wait_tracked "$follower"
check "then the rest, once written" [ "$(cat "$WORK/live.out")" = "first
second" ]

# A hub restart mid-follow: the CLI resumes at the byte it got to.
id=$(spawn sh "$NUMBERS") || bail "spawn failed"
cli logs -f --since-start "$id" >"$WORK/resume.out" 2>"$WORK/resume.err" &
follower=$!
track $follower "logs -f follower"
wait_for 10 sh -c "[ \$(wc -l <'$WORK/resume.out') -ge 300 ]" || not_ok "the follower got going"
stop_pid "$HUB_PID" >/dev/null
lines_at_stop=$(wc -l <"$WORK/resume.out")
restart_hub hub
wait_tracked "$follower"
rc=$?
check "the follow went on across a hub restart (after $lines_at_stop lines)" \
	[ "$rc" = 0 ] && [ "$lines_at_stop" -lt 3000 ]
check "it said it was resuming" grep -q "resuming" "$WORK/resume.err"
check "no line missing or repeated across the restart" cmp -s "$WORK/resume.out" "$expected"

# A reader far slower than its agent, which writes 6,000,000 numbered
# lines (45,888,897 bytes) over 6 s, read through a pipe that takes
# nothing for 4 s: meanwhile the spoke keeps only the output's tail.
SLOW='i=0; while [ $i -lt 60 ]; do seq $((i * 100000 + 1)) $((i * 100000 + 100000)); sleep 0.1; i=$((i + 1)); done'
id=$(spawn sh "$SLOW") || bail "spawn failed"
cli logs -f --since-start "$id" 2>"$WORK/slow.err" | { sleep 4; cat; } >"$WORK/slow.out"
total=$(seq 1 6000000 | wc -c)
skipped=$(sed -n 's/^tessera: skipped \([0-9]*\) bytes.*/\1/p' "$WORK/slow.err" | paste -sd+ | bc)
got=$(wc -c <"$WORK/slow.out")
check "the slow reader was told it skipped bytes (${skipped:-none})" [ "${skipped:-0}" -gt 0 ]
check "printed ($got) + skipped = written ($total)" [ $((got + ${skipped:-0})) = "$total" ]
check "it still got the output's end" [ "$(tail -n 1 "$WORK/slow.out")" = 6000000 ]
check "and its start" [ "$(head -n 1 "$WORK/slow.out")" = 1 ]

# Killed while followed: exit 1, and why.
id=$(spawn sh 'echo started; exec sleep 60') || bail "spawn failed"
cli logs -f "$id" >"$WORK/kill.out" 2>"$WORK/kill.err" &
follower=$!
track $follower "logs -f of a killed agent"
wait_for 10 grep -q started "$WORK/kill.out" || not_ok "the follower printed the first line"
out=$(grpcurl -plaintext -d "{\"agent_id\":\"$id\",\"offset\":\"999999999\"}" "$HUB_ADDR" \
	tessera.v1.Hub/ReadAgentOutput 2>&1)
check "an offset past the end is OUT_OF_RANGE" grep -q OutOfRange <<<"$out"
cli kill "$id" >/dev/null
wait_tracked "$follower"
rc=$?
check "logs -f exits 1 when the agent is killed" [ "$rc" = 1 ]
check "it says the agent was killed" grep -q "agent $id killed" "$WORK/kill.err"

# Bad requests.
out=$(cli logs spoke-1.000000000000000000000000 2>&1)
rc=$?
check "an unknown agent is NOT_FOUND, exit 1" [ "$rc" = 1 ] && [[ $out == *NOT_FOUND* ]]
cli logs -n x "$id" >/dev/null 2>&1
check "a bad -n is a usage error" [ $? = 2 ]
cli logs -n 2 --since-start "$id" >/dev/null 2>&1
check "-n and --since-start together are a usage error" [ $? = 2 ]
out=$(grpcurl -plaintext -d '{"agent_id":"nope"}' "$HUB_ADDR" tessera.v1.Hub/ReadAgentOutput 2>&1)
check "a malformed agent id is INVALID_ARGUMENT" grep -q InvalidArgument <<<"$out"

finish
